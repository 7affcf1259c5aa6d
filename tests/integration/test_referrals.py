"""Referrals on SQLite and PostgreSQL: enrolment with a code, every rejection reason, completion by the rules,
expiry by the job, reversal by a refund, statistics, and the query budget of the purchase path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import event

from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import fixed, rule
from treue.domain import events
from treue.domain.referrals import COMPLETED_TRIGGER
from treue.domain.rules.context import EventFacts
from treue.domain.rules.evaluator import Evaluation
from treue.domain.rules.outcome import EarnOutcome
from treue.services import referrals
from treue.services.members import EnrolMember, enrol_member
from treue.services.points import get_balance
from treue.services.purchases import RefundPurchase, refund_purchase
from treue.services.rewards import create_reward, list_redemptions
from treue.services.verify import verify
from treue.store.referrals import Referrals

QUALIFY = "event.name == 'purchase' && purchase.total >= 3000"


def topics(uow_factory, program_id, topic: str) -> list[dict[str, Any]]:
    with uow_factory() as uow:
        return [row["payload"] for row in uow.outbox.recent(program_id, topic, 100)]


def configure(uow_factory, program_id, now, **settings: Any) -> dict[str, Any]:
    return referrals.put_settings(uow_factory(), program_id, {"condition": QUALIFY, **settings}, now)


def reward_rules(uow_factory, program_id, now, referrer: int = 500, referee: int = 200, **extra: Any) -> None:
    rule(uow_factory, program_id, now, "refer-referrer", fixed(referrer, pending="0D"), trigger=COMPLETED_TRIGGER,
         condition='event.attributes.role == "referrer"')  # fmt: skip
    effects = [fixed(referee, pending="0D"), *extra.get("referee_effects", [])]
    rule(uow_factory, program_id, now, "refer-referee", *effects, trigger=COMPLETED_TRIGGER,
         condition='event.attributes.role == "referee"')  # fmt: skip


def code_of(uow_factory, program_id, member_id, now) -> str:
    return str(referrals.member_referrals(uow_factory(), program_id, member_id, now)["code"])


def join(uow_factory, program_id, now, code: str | None, **kw: Any) -> dict[str, Any]:
    return enrol_member(uow_factory(), program_id, EnrolMember(referral_code=code, **kw), now)


def points(uow_factory, program_id, member_id, now) -> dict[str, Any]:
    return get_balance(uow_factory(), program_id, member_id, now)


def test_happy_path_enrol_with_code_then_qualifying_purchase_rewards_both(uow_factory, program_id, now):
    configure(uow_factory, program_id, now)
    coupon = create_reward(uow_factory(), program_id, {"name": {"de": "Kaffee"}, "type": "free_product",
                                                         "cost_points": 80, "sku": "COFFEE", "stock": 10}, now)  # fmt: skip
    reward_rules(uow_factory, program_id, now, referee_effects=[{"type": "grant_reward", "reward": coupon["id"]}])
    alice = enrol(uow_factory, program_id, now, email="alice@example.com")
    code = code_of(uow_factory, program_id, alice, now)
    typed = code.lower()[:4] + "-" + code.lower()[4:]  # case and a dash do not matter
    bob = join(uow_factory, program_id, now, typed, email="bob@example.org")
    assert bob["referral"]["status"] == "pending" and bob["referral"]["reason"] is None
    assert bob["referral"]["referrer_id"] == str(alice)
    assert topics(uow_factory, program_id, events.REFERRAL_PENDING)[0]["referee_id"] == bob["id"]

    small = buy(uow_factory, program_id, UUID(bob["id"]), "20.00", now + timedelta(days=1))
    assert "referral" not in small  # below the condition: still pending
    big = buy(uow_factory, program_id, UUID(bob["id"]), "35.00", now + timedelta(days=2))
    done = big["referral"]
    assert done["status"] == "completed"
    assert done["rewards"]["referrer"]["points"] == 500 and done["rewards"]["referee"]["points"] == 200
    assert done["rewards"]["referee"]["grants"] == [{"kind": "reward", "code": coupon["id"], "quantity": 1}]
    later = now + timedelta(days=3)
    assert points(uow_factory, program_id, alice, later)["points"] == 500
    assert points(uow_factory, program_id, UUID(bob["id"]), later)["points"] == 20 + 35 + 200
    granted = [r for r in list_redemptions(uow_factory(), program_id, UUID(bob["id"])) if r["status"] == "granted"]
    assert len(granted) == 1 and granted[0]["coupon_status"] == "issued"
    completed = topics(uow_factory, program_id, events.REFERRAL_COMPLETED)
    assert len(completed) == 1 and completed[0]["referrer_id"] == str(alice)
    assert completed[0]["purchase_id"] == big["id"]
    # a later purchase completes nothing again
    assert "referral" not in buy(uow_factory, program_id, UUID(bob["id"]), "99.00", now + timedelta(days=4))

    stats = referrals.program_stats(uow_factory(), program_id)
    assert stats["sent"] == 1 and stats["completed"] == 1 and stats["pending"] == 0
    assert stats["reward_points"] == 700 and stats["coupon_cost_points"] == 80 and stats["reward_cost_points"] == 780
    mine = referrals.member_referrals(uow_factory(), program_id, alice, now)
    assert mine["code"] == code and mine["completed"] == 1 and mine["reward_points"] == 500
    theirs = referrals.member_referrals(uow_factory(), program_id, UUID(bob["id"]), now)
    assert theirs["referred_by"]["status"] == "completed" and theirs["code"] != code
    assert verify(uow_factory(), program_id, later) == []


def test_link_uses_settings_base_or_environment(uow_factory, program_id, now, monkeypatch):
    monkeypatch.delenv("TREUE_PUBLIC_URL", raising=False)
    alice = enrol(uow_factory, program_id, now)
    assert referrals.member_referrals(uow_factory(), program_id, alice, now)["link"] is None
    monkeypatch.setenv("TREUE_PUBLIC_URL", "https://loyal.example/")
    code = code_of(uow_factory, program_id, alice, now)
    assert (
        referrals.member_referrals(uow_factory(), program_id, alice, now)["link"] == f"https://loyal.example/r/{code}"
    )
    configure(uow_factory, program_id, now, link_base="https://shop.example")
    assert referrals.member_referrals(uow_factory(), program_id, alice, now)["link"] == f"https://shop.example/r/{code}"


@pytest.mark.parametrize("reason", ["code_unknown", "code_expired", "self_referral", "referee_already_member",
                                    "same_household_email", "same_household_phone", "same_household_payment",
                                    "same_household_device", "velocity", "referrer_limit_reached",
                                    "no_scheme"])  # fmt: skip
def test_every_rejection_reason_is_recorded_and_the_member_still_enrolled(uow_factory, program_id, now, reason):
    if reason != "no_scheme":
        configure(uow_factory, program_id, now, velocity_limit=2, referrer_limit=3, referrer_period="month")
    alice = enrol(uow_factory, program_id, now, email="alice.smith@gmail.com", phone="+49 170 1111111",
                  external_ref="alice", **{"device_id": "dev-alice", "payment_fingerprint": "card-alice"})  # fmt: skip
    code = code_of(uow_factory, program_id, alice, now)
    profile: dict[str, Any] = {"email": "new@example.org"}
    expected = reason
    if reason == "code_unknown":
        code = "ZZZZ2222"
    elif reason == "code_expired":
        referrals.rotate_code(uow_factory(), program_id, alice, now)
    elif reason == "self_referral":
        profile = {"email": "alice.smith@gmail.com"}
    elif reason == "referee_already_member":
        enrol(uow_factory, program_id, now, email="carol@example.org")
        profile = {"email": "Carol@Example.org"}
    elif reason == "same_household_email":
        profile, expected = {"email": "Alice.Smith+promo@googlemail.com"}, "same_household"
    elif reason == "same_household_phone":
        profile, expected = {"phone": "0049 170 1111111"}, "same_household"
    elif reason == "same_household_payment":
        profile, expected = {"payment_fingerprint": " CARD-alice "}, "same_household"
    elif reason == "same_household_device":
        profile, expected = {"device_id": "dev-alice"}, "same_household"
    elif reason == "velocity":
        for n in range(2):
            assert join(uow_factory, program_id, now, code, ip="203.0.113.9", email=f"v{n}@example.org")[
                "referral"]["status"] == "pending"  # fmt: skip
        profile = {"ip": "203.0.113.9"}
    elif reason == "referrer_limit_reached":
        for n in range(3):
            join(uow_factory, program_id, now, code, email=f"friend{n}@example.org")
    elif reason == "no_scheme":
        expected = "code_expired"  # the programme runs no referral scheme: codes are refused
    joined = join(uow_factory, program_id, now, code, **profile)
    assert joined["id"] and joined["card_number"]  # enrolled all the same
    assert joined["referral"] == {"id": joined["referral"]["id"], "status": "rejected", "reason": expected,
                                  "referrer_id": None if reason == "code_unknown" else str(alice),
                                  "expires_at": None}  # fmt: skip
    assert topics(uow_factory, program_id, events.REFERRAL_REJECTED)[0]["reason"] == expected
    stats = referrals.program_stats(uow_factory(), program_id)
    assert stats["rejected_by_reason"] == {expected: 1}
    # a rejected referee's purchase completes nothing
    assert "referral" not in buy(uow_factory, program_id, UUID(joined["id"]), "50.00", now)


def test_window_expiry_by_the_job_is_idempotent(uow_factory, program_id, now):
    configure(uow_factory, program_id, now, window_days=60)
    reward_rules(uow_factory, program_id, now)
    alice = enrol(uow_factory, program_id, now)
    bob = UUID(join(uow_factory, program_id, now, code_of(uow_factory, program_id, alice, now))["id"])
    carol = UUID(join(uow_factory, program_id, now, code_of(uow_factory, program_id, alice, now),
                      email="carol@example.org")["id"])  # fmt: skip
    assert "referral" not in buy(uow_factory, program_id, bob, "50.00", now + timedelta(days=61))  # too late
    assert referrals.expire_referrals(uow_factory, now + timedelta(days=59)) == {"expired": 0}
    assert referrals.expire_referrals(uow_factory, now + timedelta(days=61), program_id) == {"expired": 2}
    assert referrals.expire_referrals(uow_factory, now + timedelta(days=62), program_id) == {"expired": 0}
    assert {p["referee_id"] for p in topics(uow_factory, program_id, events.REFERRAL_EXPIRED)} == {str(bob), str(carol)}
    assert "referral" not in buy(uow_factory, program_id, carol, "50.00", now + timedelta(days=63))
    assert referrals.program_stats(uow_factory(), program_id)["expired"] == 2
    assert points(uow_factory, program_id, alice, now + timedelta(days=63))["points"] == 0


def test_refund_in_the_return_window_reverses_rewards_and_cancels_unused_coupons(uow_factory, program_id, now):
    configure(uow_factory, program_id, now, return_days=30)
    coupon = create_reward(uow_factory(), program_id, {"name": {"de": "Gutschein"}, "type": "discount_fixed",
                                                         "cost_points": 100, "value": "5.00", "stock": 3}, now)  # fmt: skip
    reward_rules(uow_factory, program_id, now, referee_effects=[{"type": "grant_coupon", "coupon": coupon["id"]}])
    alice = enrol(uow_factory, program_id, now)
    bob = UUID(join(uow_factory, program_id, now, code_of(uow_factory, program_id, alice, now))["id"])
    bought = buy(uow_factory, program_id, bob, "40.00", now)
    assert bought["referral"]["status"] == "completed"

    # a partial refund that keeps the condition (40 - 5 >= 30) reverses nothing
    kept = refund_purchase(uow_factory(), program_id, UUID(bought["id"]), RefundPurchase(amount="5.00"), now)
    assert "referral" not in kept
    undone = refund_purchase(uow_factory(), program_id, UUID(bought["id"]), RefundPurchase(amount="10.00"),
                             now + timedelta(days=5))  # fmt: skip
    reversed_ = undone["referral"]
    assert reversed_["status"] == "reversed"
    assert reversed_["reversed"]["referrer"]["points_taken_back"] == 500
    assert reversed_["reversed"]["referee"]["points_taken_back"] == 200
    assert reversed_["reversed"]["referee"]["coupons"][0]["status"] == "cancelled"
    at = now + timedelta(days=6)
    assert points(uow_factory, program_id, alice, at)["points"] == 0
    assert points(uow_factory, program_id, bob, at)["points"] == 40 - 5 - 10  # purchase points left
    assert topics(uow_factory, program_id, events.REFERRAL_REVERSED)[0]["referrer_id"] == str(alice)
    stats = referrals.program_stats(uow_factory(), program_id)
    assert stats["reversed"] == 1 and stats["completed"] == 0 and stats["reward_cost_points"] == 0
    with uow_factory() as uow:
        assert uow.rewards.get(program_id, UUID(coupon["id"])).stock == 3  # back in stock
    assert verify(uow_factory(), program_id, at) == []


def test_refund_after_the_return_window_keeps_the_rewards(uow_factory, program_id, now):
    configure(uow_factory, program_id, now, return_days=14)
    reward_rules(uow_factory, program_id, now)
    alice = enrol(uow_factory, program_id, now)
    bob = UUID(join(uow_factory, program_id, now, code_of(uow_factory, program_id, alice, now))["id"])
    bought = buy(uow_factory, program_id, bob, "40.00", now)
    late = refund_purchase(uow_factory(), program_id, UUID(bought["id"]), RefundPurchase(),
                           now + timedelta(days=20))  # fmt: skip
    assert "referral" not in late
    assert points(uow_factory, program_id, alice, now + timedelta(days=21))["points"] == 500
    assert verify(uow_factory(), program_id, now + timedelta(days=21)) == []


def test_completion_on_a_custom_event_and_member_condition(uow_factory, program_id, now):
    configure(uow_factory, program_id, now, condition="event.name == 'app.installed' && member.days_enrolled < 7")
    reward_rules(uow_factory, program_id, now, referrer=50, referee=25)
    from tests.integration.rules_helpers import event as record

    alice = enrol(uow_factory, program_id, now)
    bob = UUID(join(uow_factory, program_id, now, code_of(uow_factory, program_id, alice, now))["id"])
    assert "referral" not in buy(uow_factory, program_id, bob, "99.00", now)
    done = record(uow_factory, program_id, bob, "app.installed", now + timedelta(days=1))
    assert done["referral"]["status"] == "completed" and done["referral"]["rewards"]["referee"]["points"] == 25


def test_referral_events_cannot_be_faked_through_post_events(uow_factory, program_id, now):
    from treue.domain.errors import InvalidInput
    from treue.services.events import RecordEvent, record_event

    alice = enrol(uow_factory, program_id, now)
    with pytest.raises(InvalidInput):
        record_event(uow_factory(), program_id, RecordEvent(COMPLETED_TRIGGER, member_id=alice), now)


def _count_queries(engine, run) -> int:
    seen: list[str] = []

    def listen(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return len(seen)


def test_purchase_path_costs_no_query_without_a_scheme_and_one_with(engine, uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    facts = EventFacts("purchase", now)
    evaluation = Evaluation(EarnOutcome())
    with uow_factory() as uow:
        program = uow.programs.get(program_id)
        Referrals.forget(program_id)
        uow.referrals.settings(program_id, cached=True)  # the process's cache is warm (as on a busy till)
        assert _count_queries(engine, lambda: referrals.on_event(uow, program, member, facts, evaluation,
                                                                 {"purchase_id": str(member)}, now)) == 0  # fmt: skip
    configure(uow_factory, program_id, now)
    with uow_factory() as uow:
        uow.referrals.settings(program_id, cached=True)
        assert _count_queries(engine, lambda: referrals.on_event(uow, program, member, facts, evaluation,
                                                                 {"purchase_id": str(member)}, now)) == 1  # fmt: skip


def test_settings_are_validated(uow_factory, program_id, now):
    from treue.domain.errors import InvalidInput, RuleInvalid

    with pytest.raises(RuleInvalid):
        configure(uow_factory, program_id, now, condition="purchase.totl >= 3000")
    with pytest.raises(InvalidInput):
        configure(uow_factory, program_id, now, window_days=0)
    with pytest.raises(InvalidInput):
        referrals.put_settings(uow_factory(), program_id, {"bonus": 1}, now)
    assert referrals.get_settings(uow_factory(), program_id)["configured"] is False
    shown = configure(uow_factory, program_id, now, window_days=30)
    assert shown["configured"] and shown["window_days"] == 30 and shown["condition"] == QUALIFY
