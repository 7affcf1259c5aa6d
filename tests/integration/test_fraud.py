"""Fraud controls (issue 10) on both backends: caps hold earns and refuse redemptions, staff decide holds, the
scan raises alerts once, and a programme without caps pays nothing on the earn path."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import event, select

from tests.integration.helpers import buy, enrol, race
from treue.domain.errors import FraudHoldDecided, InvalidInput, VelocityCapExceeded
from treue.domain.fraud import Origin
from treue.services import fraud
from treue.services.points import adjust_points, get_balance
from treue.services.purchases import PaymentInput, RefundPurchase, refund_purchase
from treue.services.rewards import create_reward, list_redemptions, redeem_reward
from treue.services.verify import verify
from treue.store import tables as t
from treue.store.fraud import Fraud


def configure(uow_factory, program_id, now, *caps: dict, **alerts: int) -> dict:
    return fraud.save_settings(uow_factory(), program_id, {"caps": list(caps), "alerts": alerts}, now, actor="test")


def cap(action: str, subject: str, window: str, count: int | None = None, points: int | None = None) -> dict:
    return {"action": action, "subject": subject, "window": window, "max_count": count, "max_points": points}


def reward(uow_factory, program_id, now, cost: int) -> UUID:
    values = {"name": {"de": "Kaffee"}, "type": "free_product", "sku": "COFFEE", "cost_points": cost}
    return UUID(create_reward(uow_factory(), program_id, values, now)["id"])


def events_of(uow_factory, program_id, topic: str) -> list[dict]:
    with uow_factory() as uow:
        rows = uow.conn.execute(select(t.outbox.c.payload).where(t.outbox.c.program_id == program_id,
                                                                 t.outbox.c.topic == topic)).all()  # fmt: skip
    return [row.payload for row in rows]


def audit_actions(uow_factory, program_id) -> list[str]:
    with uow_factory() as uow:
        rows = uow.conn.execute(select(t.audit_log.c.action).where(t.audit_log.c.program_id == program_id)).all()
    return [row.action for row in rows]


def test_an_earn_over_the_cap_is_held_and_approving_makes_it_spendable(uow_factory, program_id, now):
    configure(uow_factory, program_id, now, cap("earn", "member", "day", count=2))
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "10.00", now)
    buy(uow_factory, program_id, member, "20.00", now + timedelta(minutes=1))
    third = buy(uow_factory, program_id, member, "50.00", now + timedelta(minutes=2))
    assert third["fraud_hold"]["status"] == "pending"
    assert third["fraud_hold"]["reasons"][0]["cap"] == "earn:member:day"
    balance = get_balance(uow_factory(), program_id, member, now + timedelta(minutes=3))
    assert (balance["points"], balance["available"], balance["pending"]) == (80, 30, 50)

    held = fraud.list_holds(uow_factory(), program_id)
    assert [(h["member_id"], h["points"], h["purchase_id"]) for h in held] == [(str(member), 50, third["id"])]
    later = now + timedelta(hours=1)
    decided = fraud.decide_hold(uow_factory(), program_id, UUID(held[0]["id"]), "approve", later, actor="staff:anna",
                                note="known customer")  # fmt: skip
    assert decided["status"] == "approved"
    assert get_balance(uow_factory(), program_id, member, later)["available"] == 80
    assert fraud.list_holds(uow_factory(), program_id) == []
    assert [h["decided_by"] for h in fraud.list_holds(uow_factory(), program_id, "approved")] == ["staff:anna"]
    with pytest.raises(FraudHoldDecided):
        fraud.decide_hold(uow_factory(), program_id, UUID(held[0]["id"]), "reject", later)
    assert "fraud.hold.approve" in audit_actions(uow_factory, program_id)
    assert len(events_of(uow_factory, program_id, "fraud.transaction_held")) == 1
    assert events_of(uow_factory, program_id, "fraud.transaction_approved")[0]["points"] == 50
    assert verify(uow_factory(), program_id) == []


def test_rejecting_a_hold_reverses_the_points_and_a_later_refund_takes_nothing_more(uow_factory, program_id, now):
    configure(uow_factory, program_id, now, cap("earn", "member", "hour", points=100))
    member = enrol(uow_factory, program_id, now)
    adjust_points(uow_factory(), program_id, member, 40, "goodwill", now)
    buy(uow_factory, program_id, member, "90.00", now)
    big = buy(uow_factory, program_id, member, "30.00", now)  # 120 points in the hour: over 100
    assert big["fraud_hold"]["points"] == 30
    hold_id = UUID(fraud.list_holds(uow_factory(), program_id)[0]["id"])
    decided = fraud.decide_hold(uow_factory(), program_id, hold_id, "reject", now, actor="staff:bo", note="fraud")
    assert decided["points_reversed"] == 30
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 130
    assert events_of(uow_factory, program_id, "fraud.transaction_rejected")[0]["note"] == "fraud"
    # the purchase keeps nothing earned: refunding it must not take the member's other points
    refund_purchase(uow_factory(), program_id, UUID(big["id"]), RefundPurchase(), now)
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 130
    assert verify(uow_factory(), program_id) == []


def test_caps_count_per_card_device_and_ip_across_members(uow_factory, program_id, now):
    configure(uow_factory, program_id, now, cap("earn", "device", "day", count=1), cap("earn", "card", "day", count=1))
    alice, bob, carol = (enrol(uow_factory, program_id, now) for _ in range(3))
    phone = Origin(device_id="phone-1", ip="203.0.113.9")
    assert "fraud_hold" not in buy(uow_factory, program_id, alice, "10.00", now, origin=phone)
    assert buy(uow_factory, program_id, bob, "10.00", now, origin=phone)["fraud_hold"]["reasons"][0]["cap"] == (
        "earn:device:day")  # fmt: skip
    assert "fraud_hold" not in buy(uow_factory, program_id, carol, "10.00", now, origin=Origin(device_id="other"))
    # no device given: a device cap counts nothing
    assert "fraud_hold" not in buy(uow_factory, program_id, carol, "10.00", now)
    with uow_factory() as uow:
        subjects = {row.subject.split(":")[0] for row in uow.conn.execute(
            select(t.fraud_counters.c.subject).where(t.fraud_counters.c.program_id == program_id))}  # fmt: skip
        stored = [row.subject for row in uow.conn.execute(select(t.fraud_counters.c.subject))]
    assert subjects == {"device"} and not any("phone-1" in s for s in stored)  # digests only


def test_card_cap_counts_the_payment_token(uow_factory, program_id, now):
    from treue.services.cards import link_card

    configure(uow_factory, program_id, now, cap("earn", "card", "day", count=1))
    member = enrol(uow_factory, program_id, now)
    link_card(uow_factory(), program_id, member, {"token": "tok_fraud_1", "brand": "visa", "last4": "4242",
                                                  "exp_month": 12, "exp_year": 2030}, now)  # fmt: skip
    pay = PaymentInput("tok_fraud_1", "visa")
    assert "fraud_hold" not in buy(uow_factory, program_id, None, "10.00", now, payment=pay)
    assert buy(uow_factory, program_id, None, "10.00", now, payment=pay)["fraud_hold"]["status"] == "pending"


def test_a_redemption_over_the_cap_is_refused_and_changes_nothing(uow_factory, program_id, now):
    configure(uow_factory, program_id, now, cap("redeem", "member", "day", count=1))
    member = enrol(uow_factory, program_id, now)
    adjust_points(uow_factory(), program_id, member, 100, "start", now)
    coffee = reward(uow_factory, program_id, now, 10)
    redeem_reward(uow_factory(), program_id, member, coffee, now)
    with pytest.raises(VelocityCapExceeded) as refused:
        redeem_reward(uow_factory(), program_id, member, coffee, now + timedelta(hours=1))
    assert refused.value.extra["caps"][0]["cap"] == "redeem:member:day"
    # 11:00 in Berlin; the local day ends at 23:00 UTC: twelve hours left
    assert refused.value.extra["retry_after"] == 12 * 3600
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 90
    assert len(list_redemptions(uow_factory(), program_id, member)) == 1
    with uow_factory() as uow:
        hits = uow.conn.execute(select(t.fraud_counters.c.hits).where(t.fraud_counters.c.program_id == program_id,
                                                                      t.fraud_counters.c.action == "redeem")).all()  # fmt: skip
    assert [h.hits for h in hits] == [1]  # the refused one rolled back with its count
    redeem_reward(uow_factory(), program_id, member, coffee, now + timedelta(days=1))  # a new local day
    assert verify(uow_factory(), program_id) == []


def test_settings_are_validated_and_audited(uow_factory, program_id, now):
    assert fraud.get_settings(uow_factory(), program_id)["configured"] is False
    with pytest.raises(InvalidInput):
        configure(uow_factory, program_id, now, cap("earn", "member", "week", count=1))
    with pytest.raises(InvalidInput):
        configure(uow_factory, program_id, now, cap("earn", "member", "day"))
    with pytest.raises(InvalidInput):
        configure(uow_factory, program_id, now, cap("earn", "member", "day", 1), cap("earn", "member", "day", 2))
    saved = configure(uow_factory, program_id, now, cap("redeem", "ip", "hour", points=500), cap_hits=2)
    assert saved["alerts"]["cap_hits"] == 2 and saved["alerts"]["refund_days"] == 14
    assert fraud.get_settings(uow_factory(), program_id)["caps"] == [cap("redeem", "ip", "hour", None, 500)]
    assert audit_actions(uow_factory, program_id).count("fraud.settings") == 1


def _count_statements(engine, run) -> int:
    seen: list[str] = []

    def listen(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return len(seen)


def test_the_earn_path_costs_nothing_without_caps_and_one_statement_with(engine, uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "1.00", now)  # warm every cache of the purchase path
    Fraud.forget(program_id)
    with uow_factory() as uow:
        uow.fraud.settings(program_id, cached=True)  # as on a busy till: the process's cache is warm
    without = _count_statements(engine, lambda: buy(uow_factory, program_id, member, "1.00", now))
    configure(uow_factory, program_id, now, cap("earn", "member", "day", count=100), cap("earn", "member", "hour",
                                                                                         points=10**6))  # fmt: skip
    with uow_factory() as uow:
        uow.fraud.settings(program_id, cached=True)
    with_caps = _count_statements(engine, lambda: buy(uow_factory, program_id, member, "1.00", now))
    assert with_caps == without + 1  # one upsert for both windows

    def screen_only() -> None:
        with uow_factory() as uow:
            program = uow.programs.get(program_id, cached=True)
            Fraud.forget(program_id)
            uow.fraud.settings(program_id, cached=True)
            from treue.domain.fraud import Action

            assert _count_statements(engine, lambda: fraud.screen(uow, program, Action.EARN, member, 1, now)) == 1
            assert _count_statements(engine, lambda: fraud.screen(uow, program, Action.REDEEM, member, 1, now)) == 0

    screen_only()


def test_racing_earns_cannot_both_slip_under_a_cap(postgres_only, uow_factory, program_id, now):
    configure(uow_factory, program_id, now, cap("earn", "member", "hour", count=3))
    member = enrol(uow_factory, program_id, now)
    results = race([lambda: buy(uow_factory, program_id, member, "10.00", now)] * 12)
    assert all(isinstance(r, dict) for r in results), results
    assert sum("fraud_hold" not in r for r in results) == 3
    assert len(fraud.list_holds(uow_factory(), program_id)) == 9
    assert verify(uow_factory(), program_id) == []


def test_racing_redemptions_cannot_both_slip_under_a_cap(postgres_only, uow_factory, program_id, now):
    configure(uow_factory, program_id, now, cap("redeem", "device", "day", count=2))
    members = [enrol(uow_factory, program_id, now) for _ in range(10)]
    for member in members:
        adjust_points(uow_factory(), program_id, member, 100, "start", now)
    coffee = reward(uow_factory, program_id, now, 10)
    shared = Origin(device_id="one-phone-for-all")
    results = race([lambda m=m: redeem_reward(uow_factory(), program_id, m, coffee, now, origin=shared)
                    for m in members])  # fmt: skip
    assert sum(isinstance(r, dict) for r in results) == 2
    assert all(isinstance(r, dict | VelocityCapExceeded) for r in results)
    assert sum(get_balance(uow_factory(), program_id, m, now)["points"] for m in members) == 980
    assert verify(uow_factory(), program_id) == []


def test_the_scan_raises_each_alert_once_per_day(uow_factory, program_id, now):
    configure(uow_factory, program_id, now, cap("earn", "member", "day", count=1), cap_hits=2, spike_min_points=300,
              refunds_after_redemption=2)  # fmt: skip
    quiet, busy, returner = (enrol(uow_factory, program_id, now - timedelta(days=40)) for _ in range(3))
    for day in range(1, 31):  # quiet's own history: about 10 points a day
        buy(uow_factory, program_id, quiet, "10.00", now - timedelta(days=day, hours=1))
    buy(uow_factory, program_id, quiet, "20.00", now - timedelta(minutes=5))
    for i in range(3):  # busy: two earns over the cap (held), and 400 points in a day from nothing
        buy(uow_factory, program_id, busy, "150.00", now - timedelta(minutes=30 - i))
    adjust_points(uow_factory(), program_id, returner, 500, "start", now - timedelta(days=5))
    coffee = reward(uow_factory, program_id, now, 10)
    for i in range(2):  # returner redeems, then returns what earned points
        redeem_reward(uow_factory(), program_id, returner, coffee, now - timedelta(days=3, hours=i))
    # (the purchases are recorded the same day as their refunds, after the redemptions)
    for i in range(2):
        bought = buy(uow_factory, program_id, returner, "5.00", now - timedelta(days=2))
        refund_purchase(uow_factory(), program_id, UUID(bought["id"]), RefundPurchase(),
                        now - timedelta(days=2) + timedelta(minutes=i))  # fmt: skip

    first = fraud.scan(uow_factory, now, program_id)
    alerts = fraud.list_alerts(uow_factory(), program_id)
    found = {(a["kind"], a["member_id"]) for a in alerts}
    assert found == {("repeated_cap_hits", str(busy)), ("earning_spike", str(busy)),
                     ("refunds_after_redemptions", str(returner))}, alerts  # fmt: skip
    assert first["alerts"] == 3
    assert len(events_of(uow_factory, program_id, "fraud.alert_raised")) == 3
    # the same hour: not scanned again; a later hour of the same day: scanned, nothing new raised
    assert fraud.scan(uow_factory, now + timedelta(minutes=10), program_id)["alerts"] == 0
    assert fraud.scan(uow_factory, now + timedelta(hours=1), program_id)["results"][str(program_id)]["findings"] == 3
    assert len(fraud.list_alerts(uow_factory(), program_id)) == 3
    assert len(events_of(uow_factory, program_id, "fraud.alert_raised")) == 3

    alert_id = UUID(alerts[0]["id"])
    done = fraud.acknowledge_alert(uow_factory(), program_id, alert_id, now, actor="staff:anna", note="checked")
    assert (done["status"], done["acknowledged_by"]) == ("acknowledged", "staff:anna")
    assert len(fraud.list_alerts(uow_factory(), program_id)) == 2
    assert len(fraud.list_alerts(uow_factory(), program_id, "acknowledged")) == 1


def test_the_scan_finds_referrals_from_one_device(uow_factory, program_id, now):
    from treue.services.members import EnrolMember, enrol_member
    from treue.services.referrals import member_referrals, put_settings

    configure(uow_factory, program_id, now, referrals_per_fingerprint=3)
    put_settings(uow_factory(), program_id, {"velocity_limit": None}, now)
    host = enrol(uow_factory, program_id, now)
    code = member_referrals(uow_factory(), program_id, host, now)["code"]
    for i in range(3):
        enrol_member(uow_factory(), program_id, EnrolMember(email=f"friend{i}@x.example", referral_code=code,
                                                            device_id="farm-phone"), now)  # fmt: skip
    fraud.scan(uow_factory, now, program_id)
    alerts = fraud.list_alerts(uow_factory(), program_id)
    assert [(a["kind"], a["details"]["referrals"]) for a in alerts] == [("referrals_per_fingerprint", 3)]
    assert alerts[0]["subject"].startswith("device:") and "farm-phone" not in alerts[0]["subject"]
