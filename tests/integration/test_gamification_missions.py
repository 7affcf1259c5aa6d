"""Missions on both backends: windows in the programme's timezone (month ends, DST), opt-in, audience, repeatable
and once, completion rewards through the ledger, and their reversal after a refund (progress goes back too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import event, rule
from treue.domain.errors import GamificationInvalid, MissionNotOpen
from treue.services import gamification as g
from treue.services.points import get_balance
from treue.services.programs import create_program
from treue.services.purchases import RefundPurchase, refund_purchase
from treue.services.tiers import assign_tier, set_ladder
from treue.services.verify import verify

# Europe/Berlin: summer time starts Sunday 2026-03-29 02:00 and ends Sunday 2026-10-25 03:00.
MAY_31_2330_BERLIN = datetime(2026, 5, 31, 21, 30, tzinfo=UTC)  # still May in Berlin, June 1 is 22:00 UTC
JUNE_1_0030_BERLIN = datetime(2026, 5, 31, 22, 30, tzinfo=UTC)
MARCH_31_2330_BERLIN = datetime(2026, 3, 31, 21, 30, tzinfo=UTC)  # summer time (UTC+2) since March 29
OCT_31_2330_BERLIN = datetime(2026, 10, 31, 22, 30, tzinfo=UTC)  # winter time again (UTC+1) since October 25


def mission(uow, pid, now, code="three", **fields):
    values = {"code": code, "name": {"de": "Drei Einkäufe", "en": "Three purchases"},
              "goal": {"type": "count", "target": 3, "event": "purchase"}, "window": {"type": "month"},
              "reward": {"points": 500}} | fields  # fmt: skip
    return g.create_mission(uow(), pid, values, now)


def balance(uow, pid, member, now):
    return get_balance(uow(), pid, member, now)["points"]


def progress(uow, pid, member, code, now, locale=None):
    return next(m for m in g.member_missions(uow(), pid, member, now, locale) if m["code"] == code)


def test_count_mission_completes_once_with_points_and_shows_progress(uow_factory, program_id, now):
    mission(uow_factory, program_id, now)
    member = enrol(uow_factory, program_id, now)
    first = buy(uow_factory, program_id, member, "10.00", now)
    assert first["missions"][0]["current"] == 1 and first["missions"][0]["completed_now"] is False
    view = progress(uow_factory, program_id, member, "three", now, "en")
    assert (view["current"], view["target"], view["label"]) == (1, 3, "1 of 3 purchases in March 2026")
    assert view["labels"]["de"] == "1 von 3 Einkäufen im März 2026"
    assert (
        view["window"]["start"] == "2026-03-01T00:00:00+01:00" and view["window"]["end"] == "2026-04-01T00:00:00+02:00"
    )
    buy(uow_factory, program_id, member, "10.00", now + timedelta(hours=1))
    third = buy(uow_factory, program_id, member, "10.00", now + timedelta(hours=2))
    assert third["missions"][0]["completed_now"] is True
    assert balance(uow_factory, program_id, member, now + timedelta(hours=3)) == 30 + 500
    fourth = buy(uow_factory, program_id, member, "10.00", now + timedelta(hours=3))
    assert fourth["missions"][0]["completed_now"] is False  # once: not again in April or ever
    april = buy(uow_factory, program_id, member, "10.00", datetime(2026, 4, 2, 10, tzinfo=UTC))
    buy(uow_factory, program_id, member, "10.00", datetime(2026, 4, 3, 10, tzinfo=UTC))
    buy(uow_factory, program_id, member, "10.00", datetime(2026, 4, 4, 10, tzinfo=UTC))
    assert april["missions"][0]["window"]["key"] == "2026-04"
    assert balance(uow_factory, program_id, member, datetime(2026, 4, 5, tzinfo=UTC)) == 70 + 500
    assert verify(uow_factory(), program_id) == []


def test_repeatable_mission_completes_in_every_window(uow_factory, program_id, now):
    mission(uow_factory, program_id, now, repeatable=True, goal={"type": "count", "target": 2, "event": "purchase"})
    member = enrol(uow_factory, program_id, now)
    for at in (now, now + timedelta(days=1), datetime(2026, 4, 2, 10, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC)):
        buy(uow_factory, program_id, member, "1.00", at)
    assert balance(uow_factory, program_id, member, datetime(2026, 4, 5, tzinfo=UTC)) == 4 + 2 * 500
    view = progress(uow_factory, program_id, member, "three", datetime(2026, 4, 5, tzinfo=UTC))
    assert view["completed"] is True and view["completions"] == 2


@pytest.mark.parametrize(("inside", "outside", "window"), [
    (MAY_31_2330_BERLIN, JUNE_1_0030_BERLIN, "2026-05"),
    (MARCH_31_2330_BERLIN, datetime(2026, 3, 31, 22, 0, tzinfo=UTC), "2026-03"),
    (OCT_31_2330_BERLIN, datetime(2026, 10, 31, 23, 0, tzinfo=UTC), "2026-10"),
])  # fmt: skip
def test_a_month_ends_at_local_midnight_across_dst(uow_factory, program_id, now, inside, outside, window):
    mission(uow_factory, program_id, now, goal={"type": "count", "target": 2, "event": "purchase"})
    member = enrol(uow_factory, program_id, now)
    counted = buy(uow_factory, program_id, member, "1.00", inside)
    assert counted["missions"][0]["window"]["key"] == window
    later = buy(uow_factory, program_id, member, "1.00", outside)
    assert later["missions"][0]["window"]["key"] != window and later["missions"][0]["current"] == 1
    assert later["missions"][0]["completed_now"] is False


def test_a_week_window_in_the_programme_timezone(uow_factory, program_id, now):
    mission(uow_factory, program_id, now, window={"type": "week"}, goal={"type": "count", "target": 2,
                                                                          "event": "purchase"})  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    sunday_night = datetime(2026, 3, 29, 21, 30, tzinfo=UTC)  # Sunday 23:30 CEST, the day summer time began
    monday = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)  # Monday 00:30 CEST
    a = buy(uow_factory, program_id, member, "1.00", sunday_night)
    b = buy(uow_factory, program_id, member, "1.00", monday)
    assert a["missions"][0]["window"]["key"] == "2026-W13" and b["missions"][0]["window"]["key"] == "2026-W14"
    assert a["missions"][0]["window"]["start"] == "2026-03-23T00:00:00+01:00"
    assert a["missions"][0]["window"]["end"] == "2026-03-30T00:00:00+02:00"
    assert b["missions"][0]["labels"]["en"] == "1 of 2 purchases in week 14 of 2026"
    assert b["missions"][0]["label"] == "1 von 2 Einkäufen in KW 14/2026"  # the programme speaks German


def test_opt_in_is_required_and_a_days_window_runs_from_it(uow_factory, program_id, now):
    mission(uow_factory, program_id, now, opt_in=True, window={"type": "days", "days": 7},
            goal={"type": "count", "target": 2, "event": "purchase"})  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    before = buy(uow_factory, program_id, member, "1.00", now)
    assert "missions" not in before  # not opted in: nothing counted
    view = progress(uow_factory, program_id, member, "three", now)
    assert view["opt_in_required"] is True and view["opted_in"] is False and view["window"] is None
    joined = g.opt_in(uow_factory(), program_id, member, "three", now + timedelta(hours=1))
    assert joined["opted_in"] is True and joined["window"]["key"] == "days-0"
    assert joined["window"]["end"] == "2026-03-09T12:00:00+01:00"  # 7 local days after the opt-in
    again = g.opt_in(uow_factory(), program_id, member, "three", now + timedelta(days=2))
    assert again["opted_in_at"] == joined["opted_in_at"]  # the first opt-in stands
    buy(uow_factory, program_id, member, "1.00", now + timedelta(days=1))
    late = buy(uow_factory, program_id, member, "1.00", now + timedelta(days=8))  # the next 7 days
    assert late["missions"][0]["window"]["key"] == "days-1" and late["missions"][0]["current"] == 1
    assert balance(uow_factory, program_id, member, now + timedelta(days=9)) == 3  # goal not reached in one window


def test_audience_by_tier(uow_factory, program_id, now):
    set_ladder(uow_factory(), program_id, {"basis": "spend", "tiers": [
        {"code": "basis", "name": {"de": "Basis"}, "threshold": "0"},
        {"code": "gold", "name": {"de": "Gold"}, "threshold": "1000.00"}]}, now)  # fmt: skip
    mission(uow_factory, program_id, now, audience="member.tier == 'gold'",
            goal={"type": "count", "target": 1, "event": "purchase"})  # fmt: skip
    basic, gold = enrol(uow_factory, program_id, now), enrol(uow_factory, program_id, now)
    assign_tier(uow_factory(), program_id, gold, "gold", None, "vip", now)
    assert "missions" not in buy(uow_factory, program_id, basic, "1.00", now + timedelta(minutes=1))
    assert buy(uow_factory, program_id, gold, "1.00", now + timedelta(minutes=1))["missions"][0]["completed_now"]
    assert [m["code"] for m in g.member_missions(uow_factory(), program_id, basic, now)] == []
    with pytest.raises(MissionNotOpen):
        g.opt_in(uow_factory(), program_id, basic, "three", now)


def test_sum_goal_with_a_filter_and_partial_refunds(uow_factory, program_id, now):
    mission(uow_factory, program_id, now, code="spend", goal={"type": "sum", "target": "100.00", "event": "purchase",
                                                               "filter": "purchase.channel == 'store'"})  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    online = buy(uow_factory, program_id, member, "80.00", now, channel="online")
    assert "missions" not in online
    first = buy(uow_factory, program_id, member, "60.00", now)
    assert first["missions"][0]["current_amount"] == "60.00"
    assert first["missions"][0]["labels"]["en"] == "60.00 of 100.00 EUR in March 2026"
    second = buy(uow_factory, program_id, member, "50.00", now + timedelta(hours=1))
    assert second["missions"][0]["completed_now"] is True
    assert balance(uow_factory, program_id, member, now) == 190 + 500
    # 5.00 back: still 105.00, still complete
    refund_purchase(uow_factory(), program_id, UUID(second["id"]), RefundPurchase(amount="5.00"), now)
    assert progress(uow_factory, program_id, member, "spend", now)["current"] == 10500
    # 10.00 more back: 95.00 < 100.00: the completion is reversed, its 500 points taken back
    refunded = refund_purchase(uow_factory(), program_id, UUID(second["id"]), RefundPurchase(amount="10.00"), now)
    assert refunded["gamification_reversed"][0]["points_taken_back"] == 500
    view = progress(uow_factory, program_id, member, "spend", now)
    assert view["current"] == 9500 and view["completed"] is False
    assert balance(uow_factory, program_id, member, now) == 190 - 15 + 0
    # a new purchase completes it again (the reversed completion does not block it)
    buy(uow_factory, program_id, member, "5.00", now + timedelta(hours=2))
    assert progress(uow_factory, program_id, member, "spend", now)["completed"] is True
    assert balance(uow_factory, program_id, member, now) == 190 - 15 + 5 + 500
    assert verify(uow_factory(), program_id) == []


def test_a_fully_refunded_purchase_no_longer_counts_and_its_completion_is_reversed(uow_factory, program_id, now):
    mission(uow_factory, program_id, now, goal={"type": "count", "target": 2, "event": "purchase"})
    member = enrol(uow_factory, program_id, now)
    first = buy(uow_factory, program_id, member, "10.00", now)
    buy(uow_factory, program_id, member, "10.00", now + timedelta(hours=1))
    assert balance(uow_factory, program_id, member, now) == 20 + 500
    partial = refund_purchase(uow_factory(), program_id, UUID(first["id"]), RefundPurchase(amount="5.00"), now)
    assert "gamification_reversed" not in partial  # a partly refunded purchase still counts
    rest = refund_purchase(uow_factory(), program_id, UUID(first["id"]), RefundPurchase(), now)
    assert rest["gamification_reversed"] == [{"mission": "three", "window": "2026-03", "progress": 1,
                                              "points_taken_back": 500, "points_forgiven": 0,
                                              "transfer_id": rest["gamification_reversed"][0]["transfer_id"]}]  # fmt: skip
    assert progress(uow_factory, program_id, member, "three", now)["current"] == 1
    assert balance(uow_factory, program_id, member, now) == 10
    assert verify(uow_factory(), program_id) == []


def test_reversal_follows_the_return_policy(uow_factory, now):
    pid = UUID(create_program(uow_factory(), "Strict", "EUR", "Europe/Berlin", {"return_policy": "only_pending",
                                                                               "pending_days": 0}, now)["id"])  # fmt: skip
    mission(uow_factory, pid, now, goal={"type": "count", "target": 1, "event": "purchase"})
    member = enrol(uow_factory, pid, now)
    bought = buy(uow_factory, pid, member, "10.00", now)
    assert balance(uow_factory, pid, member, now) == 510
    refunded = refund_purchase(uow_factory(), pid, UUID(bought["id"]), RefundPurchase(), now)
    # the points are available already: only_pending takes nothing back and says so
    assert refunded["gamification_reversed"][0]["points_forgiven"] == 500
    assert progress(uow_factory, pid, member, "three", now)["current"] == 0
    assert verify(uow_factory(), pid) == []


def test_rules_move_missions_and_custom_events_count(uow_factory, program_id, now):
    mission(uow_factory, program_id, now, code="reviews", goal={"type": "count", "target": 3, "event": "review.created"},
            reward={"points": 50})  # fmt: skip
    mission(uow_factory, program_id, now, code="steps", goal={"type": "count", "target": 2}, reward={"points": 7})
    rule(uow_factory, program_id, now, "step", {"type": "mission_progress", "mission": "steps", "steps": 1},
         trigger="review.created")  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    first = event(uow_factory, program_id, member, "review.created", now, stars=5)
    assert first["missions"][0]["code"] == "reviews" and first["missions"][0]["current"] == 1
    assert progress(uow_factory, program_id, member, "steps", now)["current"] == 1
    event(uow_factory, program_id, member, "review.created", now + timedelta(minutes=1))
    event(uow_factory, program_id, member, "review.created", now + timedelta(minutes=2))
    assert balance(uow_factory, program_id, member, now) == 50 + 7
    assert progress(uow_factory, program_id, member, "steps", now)["completions"] == 1


def test_definitions_are_checked(uow_factory, program_id, now):
    with pytest.raises(GamificationInvalid) as refused:
        mission(uow_factory, program_id, now, goal={"type": "count", "target": 3, "event": "purchase",
                                                    "filter": "purchase.totl > 1"})  # fmt: skip
    assert refused.value.extra["location"] == "goal.filter"
    with pytest.raises(GamificationInvalid):
        mission(uow_factory, program_id, now, window={"type": "days", "days": 7})  # needs opt_in
    with pytest.raises(GamificationInvalid):
        mission(uow_factory, program_id, now, reward={})


def test_no_gamification_costs_no_query(uow_factory, program_id, now, engine):
    from sqlalchemy import event as sa_event

    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "1.00", now)  # warm the caches
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        buy(uow_factory, program_id, member, "1.00", now)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert not [s for s in statements if "mission" in s or "streak" in s or "instant_win" in s], statements


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 40), st.sampled_from(["keep", "part", "all"])), min_size=1, max_size=6))
def test_progress_is_the_purchases_still_counting_and_the_reward_follows_it(uow_factory, now, backend, steps):
    """Whatever is bought and refunded: progress equals what still counts (a partly refunded purchase still
    counts, a fully refunded one does not), the reward is held exactly while the goal is reached, and the ledger
    stays consistent."""
    if backend != "sqlite":
        pytest.skip("a property over many histories: SQLite is enough (the SQL is the same)")
    pid = UUID(create_program(uow_factory(), "P", "EUR", "Europe/Berlin", {}, now)["id"])
    mission(uow_factory, pid, now, goal={"type": "count", "target": 3, "event": "purchase"})
    member = enrol(uow_factory, pid, now)
    counting = 0
    for n, (euros, fate) in enumerate(steps):
        bought = buy(uow_factory, pid, member, f"{euros}.00", now + timedelta(minutes=n))
        if fate == "part" and euros > 1:
            refund_purchase(uow_factory(), pid, UUID(bought["id"]), RefundPurchase(amount="1.00"), now)
        if fate == "all":
            refund_purchase(uow_factory(), pid, UUID(bought["id"]), RefundPurchase(), now)
        else:
            counting += 1
    view = progress(uow_factory, pid, member, "three", now)
    assert view["current"] == counting
    assert view["completed"] is (counting >= 3)
    kept = sum(e - (1 if f == "part" and e > 1 else 0) for e, f in steps if f != "all")
    assert balance(uow_factory, pid, member, now) == kept + (500 if view["completed"] else 0)
    assert verify(uow_factory(), pid) == []
