"""Tiers on SQLite and PostgreSQL: upgrades at once, reviews at the review date with grace, refunds, manual
assignment, progress, benefits in the earn path and in rules - travelling through time by passing the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.integration.api_helpers import snapshot
from tests.integration.helpers import buy, enrol
from treue.domain import events
from treue.domain.errors import InvalidInput, NotFound, NoTierLadder, TierInUse, TierUnknown
from treue.services import tiers
from treue.services.points import get_balance, get_history
from treue.services.purchases import RecordPurchase, RefundPurchase, preview_purchase, refund_purchase
from treue.services.rewards import create_reward, redeem_reward
from treue.services.rules import create_rule
from treue.services.scheduled import run_scheduled_rules
from treue.services.verify import verify
from treue.services.views import iso

# The seed's furniture store: Basis (5% back on the first purchase, a rule), Bronze 10% back within 6 months,
# Silber and Gold 20% back within 12 months plus free shipping.
FURNITURE: dict[str, Any] = {
    "basis": "spend", "review": "window_end", "grace_days": 0, "notice_days": 14,
    "tiers": [
        {"code": "basis", "name": {"de": "Basis", "en": "Basic"}, "threshold": "0", "window": "6M"},
        {"code": "bronze", "name": {"de": "Bronze", "en": "Bronze"}, "threshold": "500.00", "window": "6M",
         "benefits": {"cashback_percent": "10"}},
        {"code": "silber", "name": {"de": "Silber", "en": "Silver"}, "threshold": "2000.00", "window": "12M",
         "benefits": {"cashback_percent": "20", "perks": ["free_shipping"]}},
        {"code": "gold", "name": {"de": "Gold", "en": "Gold"}, "threshold": "5000.00", "window": "12M",
         "benefits": {"cashback_percent": "20", "perks": ["free_shipping"], "earn_multiplier": "2"}},
    ],
}  # fmt: skip
FIRST_PURCHASE_RULE = {"id": "basis-first-purchase", "trigger": "purchase",
                       "condition": 'member.tier == "basis" && member.purchase_count == 0',
                       "effects": [{"type": "cashback_percent", "percent": "5"}]}  # fmt: skip


def ladder(**changes: Any) -> dict[str, Any]:
    return FURNITURE | changes


def simple(basis: str, window: str, thresholds: tuple[Any, Any], **changes: Any) -> dict[str, Any]:
    return {"basis": basis, "tiers": [
        {"code": "basis", "name": {"de": "Basis"}, "threshold": 0 if basis != "spend" else "0", "window": window},
        {"code": "silber", "name": {"de": "Silber"}, "threshold": thresholds[0], "window": window},
        {"code": "gold", "name": {"de": "Gold"}, "threshold": thresholds[1], "window": window}]} | changes  # fmt: skip


def topics(uow_factory, program_id, topic: str) -> list[dict[str, Any]]:
    with uow_factory() as uow:
        return [row["payload"] for row in uow.outbox.recent(program_id, topic, 100)]


def tier_of(uow_factory, program_id, member_id, at: datetime) -> dict[str, Any]:
    return tiers.member_tier(uow_factory(), program_id, member_id, at)


def job(uow_factory, program_id, at: datetime) -> dict[str, int]:
    return tiers.run_tiers_job(uow_factory, at, program_id)


def test_furniture_store_upgrades_at_once_and_gives_its_benefits(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, FURNITURE, now)
    create_rule(uow_factory(), program_id, FIRST_PURCHASE_RULE, now)
    member = enrol(uow_factory, program_id, now)
    first = buy(uow_factory, program_id, member, "100.00", now)
    # Basis: 5% back on the first purchase (a rule reading member.tier), nothing from the tier itself.
    assert [(h["rule"], h["amount"]) for h in first["explanation"]["hooks"]] == [("basis-first-purchase", "5.00")]
    assert tier_of(uow_factory, program_id, member, now)["tier"]["code"] == "basis"

    second = buy(uow_factory, program_id, member, "450.00", now + timedelta(days=1))
    # 550 EUR within 6 months: Bronze from this purchase on (this purchase was still bought as Basis).
    assert second["explanation"].get("hooks") is None
    view = tier_of(uow_factory, program_id, member, now + timedelta(days=1))
    assert view["tier"]["code"] == "bronze" and view["basis"] == "spend" and view["window"] == "12M"
    assert view["amount"] == "550.00" and view["next_tier"]["code"] == "silber" and view["needed"] == "1450.00"
    assert view["secured_until"] == "2026-09-03T09:00:00Z"  # 11:00 in Berlin, as bought
    [up] = topics(uow_factory, program_id, events.TIER_UPGRADED)
    assert (up["from"], up["to"], up["member_id"]) == ("basis", "bronze", str(member))

    third = buy(uow_factory, program_id, member, "200.00", now + timedelta(days=2))
    assert [(h["rule"], h["amount"], h["percent"]) for h in third["explanation"]["hooks"]] == [
        ("tier:bronze", "20.00", "10")]  # fmt: skip
    # Gold doubles the base points and gives 20% back and free shipping.
    buy(uow_factory, program_id, member, "5000.00", now + timedelta(days=3))
    gold = tier_of(uow_factory, program_id, member, now + timedelta(days=3))
    assert gold["tier"]["code"] == "gold" and gold["perks"] == ["free_shipping"] and gold["next_tier"] is None
    assert [t["to"] for t in topics(uow_factory, program_id, events.TIER_UPGRADED)] == ["gold", "bronze"]
    fifth = buy(uow_factory, program_id, member, "10.00", now + timedelta(days=4))
    assert fifth["points_earned"] == 20
    rules = {r["rule"]: r["points"] for r in fifth["explanation"]["rules"]}
    assert rules == {"base": 10, "tier:gold": 10}
    # The preview shows the same as the purchase.
    preview = preview_purchase(uow_factory(), program_id, RecordPurchase("", "10.00", "EUR", now + timedelta(days=4),
                                                                         member_id=member), now + timedelta(days=4))  # fmt: skip
    assert preview["points"] == 20 and [h["rule"] for h in preview["hooks"]] == ["tier:gold"]
    assert verify(uow_factory(), program_id) == []


def test_rolling_window_review_downgrades_at_the_review_date_and_the_job_is_idempotent(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, simple("spend", "6M", ("100.00", "1000.00")), now)
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "150.00", now)
    state = tier_of(uow_factory, program_id, member, now)
    review_at = datetime(2026, 9, 2, 9, 0, tzinfo=UTC)  # 11:00 in Berlin (summer time)
    assert state["tier"]["code"] == "silber" and state["secured_until"] == iso(review_at)
    # Nothing bought since: the next review would lower it to basis.
    assert state["review"]["downgrade_to"] == "basis"

    assert job(uow_factory, program_id, review_at - timedelta(seconds=1))["downgraded"] == 0
    assert tier_of(uow_factory, program_id, member, review_at)["tier"]["code"] == "silber"
    assert job(uow_factory, program_id, review_at + timedelta(hours=1))["downgraded"] == 1
    assert job(uow_factory, program_id, review_at + timedelta(hours=2)) == {
        "renewed": 0, "upgraded": 0, "downgraded": 0, "notices": 0, "assignments_expired": 0}  # fmt: skip
    after = tier_of(uow_factory, program_id, member, review_at + timedelta(hours=2))
    assert after["tier"]["code"] == "basis" and after["secured_until"] is None and after["review"] is None
    [down] = topics(uow_factory, program_id, events.TIER_DOWNGRADED)
    assert (down["from"], down["to"], down["at"]) == ("silber", "basis", iso(review_at))
    assert [h["kind"] for h in after["history"]] == ["downgraded", "upgraded"]


def test_requalifying_in_the_new_window_renews_until_the_next_review(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, simple("spend", "6M", ("100.00", "1000.00")), now)
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "150.00", now)
    buy(uow_factory, program_id, member, "120.00", now + timedelta(days=100))  # within the next 6 months
    review_at = datetime(2026, 9, 2, 9, 0, tzinfo=UTC)  # 11:00 in Berlin (summer time)
    assert job(uow_factory, program_id, review_at)["renewed"] == 1
    state = tier_of(uow_factory, program_id, member, review_at)
    assert state["tier"]["code"] == "silber" and state["secured_until"] == "2027-03-02T10:00:00Z"
    assert topics(uow_factory, program_id, events.TIER_DOWNGRADED) == []


def test_grace_period_keeps_the_tier_and_lets_the_member_qualify_again(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, simple("spend", "6M", ("100.00", "1000.00"), grace_days=30), now)
    member = enrol(uow_factory, program_id, now)
    other = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "150.00", now)
    buy(uow_factory, program_id, other, "150.00", now)
    review_at = datetime(2026, 9, 2, 9, 0, tzinfo=UTC)  # 11:00 in Berlin (summer time)
    assert job(uow_factory, program_id, review_at + timedelta(days=1))["downgraded"] == 0  # in grace
    progress = tier_of(uow_factory, program_id, member, review_at + timedelta(days=1))
    assert progress["tier"]["code"] == "silber" and progress["review"]["decides_at"] == "2026-10-02T09:00:00Z"
    # In the grace period `member` buys enough for the window that ends when the grace ends.
    buy(uow_factory, program_id, member, "100.00", review_at + timedelta(days=10))
    counts = job(uow_factory, program_id, review_at + timedelta(days=31))
    assert counts["downgraded"] == 1 and counts["renewed"] == 1
    assert tier_of(uow_factory, program_id, member, review_at + timedelta(days=31))["tier"]["code"] == "silber"
    assert tier_of(uow_factory, program_id, other, review_at + timedelta(days=31))["tier"]["code"] == "basis"


def test_calendar_year_window_is_reviewed_at_the_end_of_the_year_in_programme_time(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, simple("purchases", "calendar_year", (2, 5)), now)
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "10.00", now)
    buy(uow_factory, program_id, member, "10.00", now + timedelta(days=1))
    state = tier_of(uow_factory, program_id, member, now + timedelta(days=1))
    new_year = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # midnight in Berlin
    assert state["tier"]["code"] == "silber" and state["secured_until"] == "2026-12-31T23:00:00Z"
    assert state["amount"] == 2 and state["needed"] == 3
    # The review at the end of 2026 counts 2026: still 2 purchases, so Silber holds through 2027.
    assert job(uow_factory, program_id, new_year)["renewed"] == 1
    assert tier_of(uow_factory, program_id, member, new_year)["secured_until"] == "2027-12-31T23:00:00Z"
    # Nothing bought in 2027: down at the end of 2027.
    assert job(uow_factory, program_id, datetime(2028, 1, 1, tzinfo=UTC))["downgraded"] == 1


def test_lifetime_window_is_never_reviewed(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, simple("spend", "lifetime", ("100.00", "1000.00")), now)
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "100.00", now)
    state = tier_of(uow_factory, program_id, member, now)
    assert state["tier"]["code"] == "silber" and state["secured_until"] is None and state["review"] is None
    assert job(uow_factory, program_id, now + timedelta(days=3650))["downgraded"] == 0


def test_anniversary_review(uow_factory, program_id, now):
    enrolled = datetime(2025, 6, 15, 8, 0, tzinfo=UTC)
    tiers.set_ladder(uow_factory(), program_id, simple("spend", "12M", ("100.00", "1000.00"), review="anniversary"),
                     now)  # fmt: skip
    member = enrol(uow_factory, program_id, enrolled)
    buy(uow_factory, program_id, member, "200.00", now)
    state = tier_of(uow_factory, program_id, member, now)
    assert state["secured_until"] == "2026-06-14T22:00:00Z"  # 15 June, midnight in Berlin
    # At the anniversary the last 12 months hold 200 EUR: renewed until the next anniversary.
    assert job(uow_factory, program_id, datetime(2026, 6, 15, tzinfo=UTC))["renewed"] == 1
    assert tier_of(uow_factory, program_id, member, now)["secured_until"] == "2027-06-14T22:00:00Z"


def test_refunds_lower_the_amounts_but_never_the_tier_before_the_review(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, simple("spend", "6M", ("100.00", "1000.00")), now)
    member = enrol(uow_factory, program_id, now)
    bought = buy(uow_factory, program_id, member, "150.00", now)
    refund_purchase(uow_factory(), program_id, UUID(bought["id"]), RefundPurchase(amount="100.00"),
                    now + timedelta(days=2))  # fmt: skip
    state = tier_of(uow_factory, program_id, member, now + timedelta(days=2))
    assert state["tier"]["code"] == "silber" and state["amount"] == "50.00" and state["needed"] == "950.00"
    assert job(uow_factory, program_id, now + timedelta(days=3))["downgraded"] == 0
    assert job(uow_factory, program_id, datetime(2026, 9, 3, tzinfo=UTC))["downgraded"] == 1
    assert verify(uow_factory(), program_id) == []


def test_status_points_count_earned_points_and_redeeming_never_lowers_them(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, simple("status_points", "12M", (300, 1000)), now)
    member = enrol(uow_factory, program_id, now)
    bought = buy(uow_factory, program_id, member, "400.00", now)  # 400 points
    reward = create_reward(uow_factory(), program_id, {"name": {"de": "Lampe"}, "type": "merchandise",
                                                        "cost_points": 350}, now)  # fmt: skip
    redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now + timedelta(hours=1))
    state = tier_of(uow_factory, program_id, member, now + timedelta(hours=1))
    assert state["tier"]["code"] == "silber" and state["amount"] == 400 and state["needed"] == 600
    # A refund takes points back: they no longer count (within the balance: 50 of 200 due taken back).
    refund_purchase(uow_factory(), program_id, UUID(bought["id"]), RefundPurchase(amount="200.00"),
                    now + timedelta(hours=2))  # fmt: skip
    assert tier_of(uow_factory, program_id, member, now + timedelta(hours=2))["amount"] == 350


def test_manual_assignment_with_expiry_is_audited_and_expires_by_the_job(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, FURNITURE, now)
    member = enrol(uow_factory, program_id, now)
    until = now + timedelta(days=30)
    view = tiers.assign_tier(uow_factory(), program_id, member, "gold", until, "VIP: interior designer", now,
                             actor="anna")  # fmt: skip
    assert view["tier"]["code"] == "gold" and view["earned_tier"] == "basis"
    assert view["manual"] == {"tier": "gold", "until": iso(until), "reason": "VIP: interior designer"}
    assert view["secured_until"] == iso(until)
    with uow_factory() as uow:
        [audit] = [a for a in uow.audit.list(program_id, 10) if a["action"] == "tier.assign"]
    assert audit["actor"] == "anna" and audit["after"]["tier"] == "gold" and audit["reason"].startswith("VIP")
    [up] = topics(uow_factory, program_id, events.TIER_UPGRADED)
    assert up["manual"] is True and up["to"] == "gold"
    # Gold's benefits apply while assigned.
    bought = buy(uow_factory, program_id, member, "10.00", now + timedelta(days=1))
    assert bought["points_earned"] == 20
    # Expired: computed from time at once, and the job records it and announces the way down once.
    assert tier_of(uow_factory, program_id, member, until)["tier"]["code"] == "basis"
    assert job(uow_factory, program_id, until)["assignments_expired"] == 1
    assert job(uow_factory, program_id, until)["assignments_expired"] == 0
    [down] = topics(uow_factory, program_id, events.TIER_DOWNGRADED)
    assert (down["from"], down["to"], down["reason"]) == ("gold", "basis", "assignment_expired")
    after = tier_of(uow_factory, program_id, member, until)
    assert after["manual"] is None and [h["kind"] for h in after["history"]] == ["assignment_expired", "assigned"]


def test_removing_an_assignment_restores_the_earned_tier(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, FURNITURE, now)
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "600.00", now)
    tiers.assign_tier(uow_factory(), program_id, member, "gold", None, None, now)
    assert tier_of(uow_factory, program_id, member, now + timedelta(days=900))["tier"]["code"] == "gold"
    view = tiers.unassign_tier(uow_factory(), program_id, member, "ended", now + timedelta(hours=1))
    assert view["tier"]["code"] == "bronze" and view["manual"] is None
    with pytest.raises(InvalidInput):
        tiers.unassign_tier(uow_factory(), program_id, member, None, now + timedelta(hours=2))


def test_will_downgrade_notice_is_sent_once_within_the_notice_days(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, FURNITURE, now)
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "600.00", now)  # bronze until 2026-09-02
    review_at = datetime(2026, 9, 2, 9, 0, tzinfo=UTC)  # 11:00 in Berlin (summer time)
    assert job(uow_factory, program_id, review_at - timedelta(days=15))["notices"] == 0
    assert job(uow_factory, program_id, review_at - timedelta(days=13))["notices"] == 1
    assert job(uow_factory, program_id, review_at - timedelta(days=12))["notices"] == 0
    [notice] = topics(uow_factory, program_id, events.TIER_WILL_DOWNGRADE)
    assert notice["tier"] == "bronze" and notice["would_be"] == "basis" and notice["needed_to_keep"] == "500.00"
    assert notice["review_at"] == iso(review_at)


def test_member_tier_in_rules_gives_tier_only_campaigns(uow_factory, program_id, now):
    tiers.set_ladder(uow_factory(), program_id, FURNITURE, now)
    create_rule(uow_factory(), program_id, {"id": "gold-bonus", "trigger": "purchase",
                                            "condition": 'member.tier == "gold"',
                                            "effects": [{"type": "fixed_points", "points": 100}]}, now)  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    assert buy(uow_factory, program_id, member, "10.00", now)["points_earned"] == 10
    tiers.assign_tier(uow_factory(), program_id, member, "gold", None, "VIP", now)
    rules = {r["rule"] for r in buy(uow_factory, program_id, member, "10.00", now)["explanation"]["rules"]}
    assert rules == {"base", "tier:gold", "gold-bonus"}


def test_bad_input_is_refused_and_changes_nothing(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    with pytest.raises(NoTierLadder):
        tiers.assign_tier(uow_factory(), program_id, member, "gold", None, None, now)
    before = snapshot(uow_factory.engine, program_id)
    for bad in (ladder(basis="balance"), ladder(tiers=[]), simple("spend", "6M", ("100.00", "50.00")),
                simple("spend", "7X", ("1", "2")), simple("purchases", "6M", ("1.5", 3)),
                simple("spend", "6M", ("1.001", "2")),
                ladder(tiers=[FURNITURE["tiers"][0] | {"threshold": "1.00"}]),
                ladder(tiers=[FURNITURE["tiers"][1] | {"benefits": {"earn_multiplier": 2.5}}])):  # fmt: skip
        with pytest.raises(InvalidInput):
            tiers.set_ladder(uow_factory(), program_id, bad, now)
    assert snapshot(uow_factory.engine, program_id) == before
    tiers.set_ladder(uow_factory(), program_id, FURNITURE, now)
    with pytest.raises(TierUnknown):
        tiers.assign_tier(uow_factory(), program_id, member, "platin", None, None, now)
    with pytest.raises(InvalidInput):
        tiers.assign_tier(uow_factory(), program_id, member, "gold", now - timedelta(days=1), None, now)
    with pytest.raises(NotFound):
        tiers.assign_tier(uow_factory(), program_id, UUID(int=1), "gold", None, None, now)
    buy(uow_factory, program_id, member, "600.00", now)  # bronze
    with pytest.raises(TierInUse) as refused:
        tiers.set_ladder(uow_factory(), program_id, ladder(tiers=[FURNITURE["tiers"][0], FURNITURE["tiers"][2]]), now)
    assert refused.value.extra["tiers"] == ["bronze"]
    assert tiers.get_ladder(uow_factory(), program_id)["tiers"][1]["code"] == "bronze"


def test_no_ladder_costs_nothing_and_shows_no_tier(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    assert buy(uow_factory, program_id, member, "10.00", now)["points_earned"] == 10
    assert tier_of(uow_factory, program_id, member, now)["tier"] is None
    assert tiers.get_ladder(uow_factory(), program_id)["tiers"] == []
    assert job(uow_factory, program_id, now)["downgraded"] == 0


def test_a_tier_birthday_bonus_is_awarded_once_on_the_birthday_by_the_rules_job(uow_factory, program_id, now):
    with_bonus = simple("spend", "12M", ("100.00", "1000.00"))
    with_bonus["tiers"][1]["benefits"] = {"birthday_bonus_points": 150}  # Silber only
    tiers.set_ladder(uow_factory(), program_id, with_bonus, now)
    birthday = (now + timedelta(days=3)).date()
    silber = enrol(uow_factory, program_id, now, birthday=birthday.replace(year=1990))
    basis = enrol(uow_factory, program_id, now, birthday=birthday.replace(year=1991))
    buy(uow_factory, program_id, silber, "150.00", now)  # 150 base points, Silber at once
    buy(uow_factory, program_id, basis, "50.00", now)

    on_the_day = datetime.combine(birthday, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    first = run_scheduled_rules(uow_factory, on_the_day, program_id)
    again = run_scheduled_rules(uow_factory, on_the_day + timedelta(hours=1), program_id)
    assert (first["awarded"], first["points"]) == (1, 150)
    assert again["awarded"] == 0
    assert get_balance(uow_factory(), program_id, silber, on_the_day)["points"] == 150 + 150
    assert get_balance(uow_factory(), program_id, basis, on_the_day)["points"] == 50  # no bonus at Basis
    earned = next(e for e in get_history(uow_factory(), program_id, silber) if e["kind"] == "earn")
    assert [(r["rule"], r["points"]) for r in earned["explanation"]["rules"]] == [("tier:silber", 150)]
    assert verify(uow_factory(), program_id) == []
