"""Earning by rules through the use cases: purchases, custom events, campaign budgets, refunds, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import event as sa_event

from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import (
    SATURDAY_0030_BERLIN,
    SATURDAY_2330_BERLIN,
    SUNDAY_0030_BERLIN,
    WEDNESDAY,
    by_rule,
    campaign,
    double,
    event,
    fixed,
    rule,
)
from treue.domain.errors import InvalidInput, NotFound, RuleInvalid
from treue.services.events import RecordEvent, get_event, list_events, record_event
from treue.services.points import get_balance, get_history, get_lots
from treue.services.programs import update_program
from treue.services.purchases import LineInput, RefundPurchase, get_purchase, refund_purchase
from treue.services.rules import get_campaign, update_campaign
from treue.services.verify import verify
from treue.store.repositories import Programs
from treue.store.rules import Rules


def assert_verified(uow, pid):
    assert verify(uow(), pid) == []


def outbox(uow, pid, topic):
    with uow() as u:
        return [row["payload"] for row in u.outbox.recent(pid, topic, 100)]


# -- purchases ----------------------------------------------------------------------------------------
def test_double_points_on_saturdays_in_berlin(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "saturday-double", double(), condition="now.weekday == 6",
         name="Doppelte Punkte am Samstag")  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    late_saturday = buy(uow_factory, program_id, member, "50.00", SATURDAY_2330_BERLIN)
    assert late_saturday["points_earned"] == 100
    assert late_saturday["explanation"]["rules"][1] == {
        "rule": "saturday-double", "points": 50, "reason": "x2 on 50 base point(s): +50", "version": 1, "base": 50,
        "multiplier": "2"}  # fmt: skip
    assert buy(uow_factory, program_id, member, "50.00", SUNDAY_0030_BERLIN)["points_earned"] == 50
    assert buy(uow_factory, program_id, member, "50.00", SATURDAY_0030_BERLIN)["points_earned"] == 100
    history = get_history(uow_factory(), program_id, member)
    assert sorted(h["points"] for h in history) == [50, 100, 100]
    stored = next(h for h in history if h["purchase_id"] == late_saturday["id"])
    assert by_rule(stored["explanation"]) == {"base": 50, "saturday-double": 50}
    assert get_purchase(uow_factory(), program_id, UUID(late_saturday["id"]))["points_earned"] == 100
    assert get_balance(uow_factory(), program_id, member, SATURDAY_0030_BERLIN)["points"] == 250
    assert_verified(uow_factory, program_id)


def test_a_category_bonus_pending_14_days_is_a_second_lot_of_the_same_earn(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "sofa-bonus",
         {"type": "points_per_amount", "points": 2, "per": "1.00", "lines": "line.category == 'sofa'",
          "pending": "14D"})  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    lines = [LineInput("SOFA-1", 1, "500.00", "sofa"), LineInput("LAMP-1", 2, "50.00", "lamp")]
    result = buy(uow_factory, program_id, member, "600.00", WEDNESDAY, lines=lines)
    assert by_rule(result["explanation"]) == {"base": 600, "sofa-bonus": 1000}
    assert [lot["points"] for lot in result["lots"]] == [600, 1000]
    history = get_history(uow_factory(), program_id, member)
    assert [(h["kind"], h["points"]) for h in history] == [("earn", 1600)]  # one transfer
    lots = get_lots(uow_factory(), program_id, member, WEDNESDAY)
    assert sorted((lot["points"], lot["state"]) for lot in lots) == [(600, "available"), (1000, "pending")]
    balance = get_balance(uow_factory(), program_id, member, WEDNESDAY)
    assert (balance["available"], balance["pending"]) == (600, 1000)
    later = get_balance(uow_factory(), program_id, member, WEDNESDAY + timedelta(days=14))
    assert (later["available"], later["pending"]) == (1600, 0)
    assert_verified(uow_factory, program_id)


def test_bonus_available_at_once_while_the_base_stays_pending(uow_factory, program_id, now):
    update_program(uow_factory(), program_id, {"pending_days": 30}, now)
    rule(uow_factory, program_id, now, "instant", fixed(5, pending="0D"))
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "20.00", WEDNESDAY)
    balance = get_balance(uow_factory(), program_id, member, WEDNESDAY)
    assert (balance["available"], balance["pending"]) == (5, 20)


def test_exclusive_group_applies_only_the_best(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "double", double(), mode="exclusive", group="promo", priority=1)
    rule(uow_factory, program_id, now, "flat", fixed(30), mode="exclusive", group="promo", priority=5)
    rule(uow_factory, program_id, now, "always", fixed(1))
    member = enrol(uow_factory, program_id, now)
    assert by_rule(buy(uow_factory, program_id, member, "50.00", WEDNESDAY)["explanation"]) == {
        "base": 50, "double": 50, "always": 1}  # fmt: skip
    assert by_rule(buy(uow_factory, program_id, member, "20.00", WEDNESDAY)["explanation"]) == {
        "base": 20, "flat": 30, "always": 1}  # fmt: skip
    assert_verified(uow_factory, program_id)


def test_conditions_on_the_members_history(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "welcome", fixed(100), condition="member.purchase_count == 0")
    rule(uow_factory, program_id, now, "loyal", fixed(7), condition="member.spend >= 10000")
    member = enrol(uow_factory, program_id, now)
    first = buy(uow_factory, program_id, member, "60.00", WEDNESDAY)
    second = buy(uow_factory, program_id, member, "60.00", WEDNESDAY + timedelta(hours=1))
    third = buy(uow_factory, program_id, member, "1.00", WEDNESDAY + timedelta(hours=2))
    assert by_rule(first["explanation"]) == {"base": 60, "welcome": 100}
    assert by_rule(second["explanation"]) == {"base": 60}  # spend before it: 60.00
    assert by_rule(third["explanation"]) == {"base": 1, "loyal": 7}  # spend before it: 120.00


def test_a_member_attribute_condition(uow_factory, program_id, now):
    rule(
        uow_factory, program_id, now, "vip", fixed(10), condition="has(member.attributes.vip) && member.attributes.vip"
    )
    vip = enrol(uow_factory, program_id, now, attributes={"vip": True})
    plain = enrol(uow_factory, program_id, now)
    assert by_rule(buy(uow_factory, program_id, vip, "5.00", WEDNESDAY)["explanation"]) == {"base": 5, "vip": 10}
    assert by_rule(buy(uow_factory, program_id, plain, "5.00", WEDNESDAY)["explanation"]) == {"base": 5}


def test_an_anonymous_purchase_earns_nothing_and_touches_no_budget(uow_factory, program_id, now):
    campaign(uow_factory, program_id, now, "spring", {"id": "spring-bonus", "trigger": "purchase",
             "effects": [fixed(20)]}, budget=100)  # fmt: skip
    result = buy(uow_factory, program_id, None, "50.00", WEDNESDAY)
    assert result["points_earned"] == 0
    assert get_campaign(uow_factory(), program_id, "spring")["budget"]["spent"] == 0


def test_an_unknown_member_is_refused_on_the_rules_path_too(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "capped", fixed(5), limits={"per_member": [{"awards": 1, "per": "day"}]})
    with pytest.raises(NotFound):
        buy(uow_factory, program_id, UUID(int=12345), "10.00", WEDNESDAY)


# -- custom events ----------------------------------------------------------------------------------------
def test_a_review_earns_fixed_points_at_most_once_per_month(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "review-bonus", fixed(50), trigger="review.created",
         limits={"per_member": [{"awards": 1, "per": "month"}]}, name="Punkte für Bewertungen")  # fmt: skip
    anna, ben = enrol(uow_factory, program_id, now), enrol(uow_factory, program_id, now)
    first = event(uow_factory, program_id, anna, "review.created", WEDNESDAY, product="SOFA-1", stars=5)
    assert (first["points"], first["name"], first["attributes"]) == (50, "review.created", {"product": "SOFA-1",
                                                                                             "stars": 5})  # fmt: skip
    assert first["transfer_id"] is not None
    assert by_rule(first["explanation"]) == {"review-bonus": 50}
    second = event(uow_factory, program_id, anna, "review.created", WEDNESDAY + timedelta(days=1), product="LAMP-1")
    assert (second["points"], second["transfer_id"]) == (0, None)
    assert "limit reached" in second["skipped"][0]["reason"]
    # 22:30 UTC on Mar 31 is 00:30 on Apr 1 in Berlin (summer time): a new month.
    april = event(uow_factory, program_id, anna, "review.created", datetime(2026, 3, 31, 22, 30, tzinfo=UTC))
    assert april["points"] == 50
    assert event(uow_factory, program_id, ben, "review.created", WEDNESDAY)["points"] == 50
    assert get_balance(uow_factory(), program_id, anna, WEDNESDAY)["points"] == 100
    history = get_history(uow_factory(), program_id, anna)
    assert [h["explanation"]["event"] for h in history] == ["review.created", "review.created"]
    assert [e["name"] for e in list_events(uow_factory(), program_id, anna)] == ["review.created"] * 3
    assert get_event(uow_factory(), program_id, UUID(second["id"]))["transfer_id"] is None
    assert_verified(uow_factory, program_id)


def test_unknown_events_are_stored_and_earn_nothing(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    stored = event(uow_factory, program_id, member, "social.shared", WEDNESDAY, network="mastodon")
    assert (stored["points"], stored["explanation"]["rules"]) == (0, [])
    assert get_event(uow_factory(), program_id, UUID(stored["id"]))["attributes"] == {"network": "mastodon"}
    with pytest.raises(InvalidInput):
        record_event(uow_factory(), program_id, RecordEvent("Review Created!", member_id=member), now)
    with pytest.raises(InvalidInput):
        record_event(uow_factory(), program_id, RecordEvent("purchase", member_id=member), now)
    with pytest.raises(NotFound):
        record_event(uow_factory(), program_id, RecordEvent("review.created", member_id=UUID(int=5)), now)


def test_event_conditions_read_its_attributes_and_grants_go_to_the_outbox(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "five-stars", fixed(20), {"type": "grant_coupon", "coupon": "DANKE10"},
         {"type": "badge", "badge": "critic"}, trigger="review.created",
         condition="has(event.attributes.stars) && event.attributes.stars >= 5")  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    assert event(uow_factory, program_id, member, "review.created", WEDNESDAY, stars=3)["points"] == 0
    result = event(uow_factory, program_id, member, "review.created", WEDNESDAY, stars=5)
    assert result["points"] == 20
    assert result["explanation"]["grants"] == [{"kind": "coupon", "code": "DANKE10", "quantity": 1,
                                                "rule": "five-stars"}]  # fmt: skip
    coupons = outbox(uow_factory, program_id, "coupon.granted")
    assert [(c["code"], c["member_id"], c["event_id"]) for c in coupons] == [("DANKE10", str(member), result["id"])]
    assert [b["badge"] for b in outbox(uow_factory, program_id, "badge.awarded")] == ["critic"]


def test_purchase_hooks_go_to_the_outbox(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "cashback", {"type": "cashback_percent", "percent": "2.5"})
    member = enrol(uow_factory, program_id, now)
    result = buy(uow_factory, program_id, member, "80.00", WEDNESDAY)
    assert result["points_earned"] == 80
    (cashback,) = outbox(uow_factory, program_id, "cashback.earned")
    assert (cashback["amount"], cashback["purchase_id"], cashback["rule"]) == ("2.00", result["id"], "cashback")


# -- campaign budgets and refunds ---------------------------------------------------------------------------
def test_a_campaign_budget_runs_out_and_is_never_exceeded(uow_factory, program_id, now):
    campaign(uow_factory, program_id, now, "spring", {"id": "spring-bonus", "trigger": "purchase",
             "effects": [fixed(50)]}, name="Frühlingsbonus", budget=120)  # fmt: skip
    members = [enrol(uow_factory, program_id, now) for _ in range(4)]
    bonuses = [by_rule(buy(uow_factory, program_id, m, "10.00", WEDNESDAY)["explanation"]).get("spring-bonus", 0)
               for m in members]  # fmt: skip
    assert bonuses == [50, 50, 20, 0]  # the third award is capped to what is left
    assert get_campaign(uow_factory(), program_id, "spring")["budget"] == {"points": 120, "spent": 120, "left": 0}
    history = get_history(uow_factory(), program_id, members[2])
    assert history[0]["explanation"]["budgets"] == [{"campaign": "spring", "points": 20}]
    assert "capped from 50" in history[0]["explanation"]["rules"][1]["reason"]
    with pytest.raises(RuleInvalid):  # the budget cannot be set below what is spent
        update_campaign(uow_factory(), program_id, "spring", {"budget": 100}, now)
    update_campaign(uow_factory(), program_id, "spring", {"budget": 150}, now)
    assert by_rule(buy(uow_factory, program_id, members[3], "10.00", WEDNESDAY)["explanation"])["spring-bonus"] == 30
    assert_verified(uow_factory, program_id)


def test_a_refund_takes_back_the_bonus_and_returns_the_campaign_budget(uow_factory, program_id, now):
    campaign(uow_factory, program_id, now, "spring", {"id": "spring-double", "trigger": "purchase",
             "effects": [double()]}, budget=1000)  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    purchase = buy(uow_factory, program_id, member, "100.00", WEDNESDAY)
    assert purchase["points_earned"] == 200
    assert get_campaign(uow_factory(), program_id, "spring")["budget"]["spent"] == 100
    pid = UUID(purchase["id"])
    half = refund_purchase(uow_factory(), program_id, pid, RefundPurchase(amount="50.00"), WEDNESDAY)
    assert half["points_taken_back"] == 100  # half of base and bonus
    assert half["budgets_returned"] == [{"campaign": "spring", "points": 50}]
    assert get_campaign(uow_factory(), program_id, "spring")["budget"]["spent"] == 50
    reverse = get_history(uow_factory(), program_id, member)[0]
    assert reverse["kind"] == "reverse"
    assert reverse["explanation"]["budgets_returned"] == [{"campaign": "spring", "points": 50}]
    rest = [refund_purchase(uow_factory(), program_id, pid, RefundPurchase(amount=a), WEDNESDAY)
            for a in ("33.33", "16.67")]  # fmt: skip
    assert sum(r["points_taken_back"] for r in rest) == 100
    assert get_campaign(uow_factory(), program_id, "spring")["budget"]["spent"] == 0
    assert get_balance(uow_factory(), program_id, member, WEDNESDAY)["points"] == 0
    assert_verified(uow_factory, program_id)


def test_points_a_refund_forgives_keep_their_budget_spent(uow_factory, program_id, now):
    update_program(uow_factory(), program_id, {"return_policy": "only_pending"}, now)
    campaign(uow_factory, program_id, now, "spring", {"id": "spring-bonus", "trigger": "purchase",
             "effects": [fixed(100)]}, budget=1000)  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    purchase = buy(uow_factory, program_id, member, "100.00", WEDNESDAY)  # available at once: nothing pending
    result = refund_purchase(uow_factory(), program_id, UUID(purchase["id"]), RefundPurchase(), WEDNESDAY)
    assert (result["points_taken_back"], result["points_forgiven"]) == (0, 200)
    assert "budgets_returned" not in result
    assert get_campaign(uow_factory(), program_id, "spring")["budget"]["spent"] == 100


def test_a_refund_gives_back_the_members_cap_and_a_whole_refund_the_award(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "monthly", fixed(300), limits={"per_member": [{"points": 500, "per": "month"}]})
    rule(uow_factory, program_id, now, "first", fixed(40), limits={"once_per_member": True})
    member = enrol(uow_factory, program_id, now)
    first = buy(uow_factory, program_id, member, "10.00", WEDNESDAY)
    second = buy(uow_factory, program_id, member, "10.00", WEDNESDAY + timedelta(minutes=1))
    assert by_rule(first["explanation"]) == {"base": 10, "monthly": 300, "first": 40}
    assert by_rule(second["explanation"]) == {"base": 10, "monthly": 200}  # capped: 500 a month

    half = refund_purchase(uow_factory(), program_id, UUID(first["id"]), RefundPurchase(amount="5.00"), WEDNESDAY)
    assert half["points_taken_back"] == 175
    [reverse] = [e for e in get_history(uow_factory(), program_id, member) if e["kind"] == "reverse"]
    assert {u["owner"]: (u["points"], u["awards"]) for u in reverse["explanation"]["usage_returned"]} == {
        "monthly": (150, 0),
        "first": (20, 0),
    }  # the award stays counted while part of the purchase is kept
    third = buy(uow_factory, program_id, member, "10.00", WEDNESDAY + timedelta(minutes=2))
    assert by_rule(third["explanation"]) == {"base": 10, "monthly": 150}  # the cap's room came back, "first" did not

    refund_purchase(uow_factory(), program_id, UUID(first["id"]), RefundPurchase(), WEDNESDAY)  # the rest
    fourth = buy(uow_factory, program_id, member, "10.00", WEDNESDAY + timedelta(minutes=3))
    assert by_rule(fourth["explanation"]) == {"base": 10, "monthly": 150, "first": 40}
    assert_verified(uow_factory, program_id)


# -- the hot path --------------------------------------------------------------------------------------
@contextmanager
def statements(engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


RULE_TABLES = ("rule_usage", "rule_versions", "campaigns", "FROM rules", "JOIN rules")


@pytest.fixture
def long_caches(monkeypatch):
    """The cached programme and rule set must not expire in the middle of a test on a slow machine."""
    monkeypatch.setattr(Programs, "CACHE_SECONDS", 600.0)
    monkeypatch.setattr(Rules, "CACHE_SECONDS", 600.0)


def _reads_member(statement: str) -> bool:
    """A statement reading the member's row (the balance update only checks, in itself, that it is not erased)."""
    return "FROM members" in statement and not statement.startswith("UPDATE accounts")


def test_without_rules_for_purchases_an_earn_reads_no_rule_tables(engine, uow_factory, program_id, now, long_caches):
    rule(uow_factory, program_id, now, "review", fixed(5), trigger="review.created")  # another trigger only
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "10.00", WEDNESDAY)  # warms the caches
    with statements(engine) as seen:
        buy(uow_factory, program_id, member, "10.00", WEDNESDAY)
    assert not [s for s in seen if any(name in s for name in RULE_TABLES)]
    assert not [s for s in seen if _reads_member(s)]


def test_rules_that_read_nothing_of_the_member_load_no_member_snapshot(
    engine, uow_factory, program_id, now, long_caches
):
    rule(uow_factory, program_id, now, "big", fixed(5), condition="purchase.total >= 5000")
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "60.00", WEDNESDAY)
    with statements(engine) as seen:
        result = buy(uow_factory, program_id, member, "60.00", WEDNESDAY)
    assert result["points_earned"] == 65
    assert not [s for s in seen if any(name in s for name in RULE_TABLES) or _reads_member(s)]


def test_the_member_history_is_read_only_when_a_rule_reads_it(engine, uow_factory, program_id, now, long_caches):
    rule(uow_factory, program_id, now, "vip", fixed(5), condition="has(member.attributes.vip)")
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "10.00", WEDNESDAY)
    with statements(engine) as seen:
        buy(uow_factory, program_id, member, "10.00", WEDNESDAY)
    snapshot = [s for s in seen if _reads_member(s)]
    assert len(snapshot) == 1 and "count(" not in snapshot[0].lower()
    rule(uow_factory, program_id, now, "regular", fixed(5), condition="member.purchase_count >= 2")
    with statements(engine) as seen:
        buy(uow_factory, program_id, member, "10.00", WEDNESDAY)
    snapshot = [s for s in seen if _reads_member(s)]
    assert len(snapshot) == 1 and "count(" in snapshot[0].lower()


def test_an_enrolment_rule_gives_a_welcome_bonus(uow_factory, program_id, now):
    plain = enrol(uow_factory, program_id, now)
    rule(uow_factory, program_id, now, "welcome", fixed(500), trigger="enrolment", name="Willkommensbonus")
    member = enrol(uow_factory, program_id, now)
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 500
    assert get_balance(uow_factory(), program_id, plain, now)["points"] == 0
    (earn,) = get_history(uow_factory(), program_id, member)
    assert (earn["kind"], earn["explanation"]["event"]) == ("earn", "enrolment")
    assert by_rule(earn["explanation"]) == {"welcome": 500}
    assert_verified(uow_factory, program_id)
