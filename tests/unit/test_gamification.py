"""The gamification domain without a database: windows and periods in the programme's timezone, streak arithmetic
(with hypothesis), the instant-win draw with an injected chooser, definitions, labels, rarity and display names."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.domain.errors import GamificationInvalid, InvariantViolated
from treue.domain.gamification import streaks as s
from treue.domain.gamification.badges import Badge, parse_badge, rarity
from treue.domain.gamification.instant_wins import SCALE, Prize, PrizeKind, draw, parse_instant_win, probability_ppm
from treue.domain.gamification.leaderboards import display_name
from treue.domain.gamification.missions import parse_mission, progress_label
from treue.domain.gamification.periods import (
    Unit,
    WindowKind,
    period_bounds,
    period_first_day,
    period_index,
    period_key,
    window_at,
)

BERLIN = ZoneInfo("Europe/Berlin")


# -- periods and windows ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("instant", "key"), [
    (datetime(2026, 5, 31, 21, 59, tzinfo=UTC), "2026-05"),  # 23:59 CEST on May 31
    (datetime(2026, 5, 31, 22, 0, tzinfo=UTC), "2026-06"),  # midnight in Berlin
    (datetime(2026, 3, 31, 21, 30, tzinfo=UTC), "2026-03"),  # 23:30 CEST, after the spring change
    (datetime(2026, 10, 31, 22, 30, tzinfo=UTC), "2026-10"),  # 23:30 CET, after the autumn change
    (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "2027-01"),  # 00:30 on New Year in Berlin
])  # fmt: skip
def test_month_windows_follow_local_midnight(instant, key):
    window = window_at(WindowKind.MONTH, instant, BERLIN)
    assert window is not None and window.key == key and window.contains(instant)


def test_month_bounds_across_dst_are_local_midnights():
    march = period_index(Unit.MONTH, date(2026, 3, 15))
    start, end = period_bounds(Unit.MONTH, march, BERLIN)
    assert start == datetime(2026, 2, 28, 23, tzinfo=UTC) and end == datetime(2026, 3, 31, 22, tzinfo=UTC)
    assert end - start == timedelta(days=31, hours=-1)  # the hour lost to summer time
    october = period_index(Unit.MONTH, date(2026, 10, 1))
    start, end = period_bounds(Unit.MONTH, october, BERLIN)
    assert end - start == timedelta(days=31, hours=1)


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)), st.sampled_from(list(Unit)))
def test_periods_are_numbered_consecutively_and_contain_their_days(day, unit):
    index = period_index(unit, day)
    first = period_first_day(unit, index)
    assert first <= day and period_index(unit, first) == index
    assert period_index(unit, first - timedelta(days=1)) == index - 1
    if unit is Unit.WEEK:
        assert first.weekday() == 0 and period_key(unit, index) == f"{day.isocalendar()[0]}-W{day.isocalendar()[1]:02d}"


def test_a_days_window_runs_from_the_opt_in_in_local_days():
    opted = datetime(2026, 3, 27, 11, 0, tzinfo=UTC)  # 12:00 CET, two days before summer time
    first = window_at(WindowKind.DAYS, opted + timedelta(days=1), BERLIN, days=7, opted_in_at=opted)
    assert first is not None and first.key == "days-0"
    assert first.end.astimezone(BERLIN).hour == 12  # the same wall time a week later, not 13:00
    second = window_at(WindowKind.DAYS, first.end, BERLIN, days=7, opted_in_at=opted)
    assert second is not None and second.key == "days-1" and second.start == first.end
    assert window_at(WindowKind.DAYS, opted - timedelta(minutes=1), BERLIN, days=7, opted_in_at=opted) is None


def test_mission_dates_bound_the_windows():
    starts, ends = datetime(2026, 5, 10, 22, tzinfo=UTC), datetime(2026, 6, 20, 22, tzinfo=UTC)
    assert window_at(WindowKind.MONTH, starts - timedelta(seconds=1), BERLIN, starts_at=starts, ends_at=ends) is None
    may = window_at(WindowKind.MONTH, starts, BERLIN, starts_at=starts, ends_at=ends)
    assert may is not None and may.start == starts and may.key == "2026-05"
    june = window_at(WindowKind.MONTH, ends - timedelta(seconds=1), BERLIN, starts_at=starts, ends_at=ends)
    assert june is not None and june.end == ends
    campaign = window_at(WindowKind.CAMPAIGN, starts, BERLIN, starts_at=starts, ends_at=ends)
    assert campaign is not None and (campaign.start, campaign.end, campaign.key) == (starts, ends, "campaign")


# -- streaks -------------------------------------------------------------------------------------------------
def test_runs_break_on_a_gap_and_the_freeze_bridges_one_period_once():
    assert [(r.start, r.last, r.length) for r in s.runs([1, 2, 3, 5, 6], freeze=False)] == [(1, 3, 3), (5, 6, 2)]
    bridged = s.runs([1, 2, 4, 5, 7], freeze=True)
    assert [(r.start, r.last, r.length, r.frozen) for r in bridged] == [(1, 5, 4, 3), (7, 7, 1, None)]
    assert s.runs([1, 4], freeze=True)[1].start == 4  # a gap of two periods is never bridged


def test_state_now():
    found = s.state([10, 11, 12], 13, freeze=False)
    assert (found.length, found.at_risk) == (3, True)
    assert s.state([10, 11, 12], 14, freeze=False).length == 0  # broken
    assert s.state([10, 11, 12], 14, freeze=True).length == 3  # the freeze can still bridge 13
    assert s.state([10, 12], 14, freeze=True).length == 0  # used already
    assert s.state([10, 11, 12], 12, freeze=False).at_risk is False
    assert s.state([], 5, freeze=True) == s.StreakState(0, None, 0, True, False)


@given(st.sets(st.integers(0, 200), max_size=60), st.booleans())
def test_runs_partition_the_qualifying_periods(periods, freeze):
    found = s.runs(periods, freeze)
    assert sum(r.length for r in found) == len(periods)  # every period counted once; frozen ones add nothing
    for earlier, later in itertools.pairwise(found):
        assert later.start - earlier.last >= (3 if freeze and not earlier.freeze_used else 2)
    for run in found:
        inside = {p for p in periods if run.start <= p <= run.last}
        assert len(inside) == run.length and run.start in periods and run.last in periods
        assert (run.last - run.start + 1) - run.length == (1 if run.freeze_used else 0)
        if not freeze:
            assert run.frozen is None


@given(st.sets(st.integers(0, 100), max_size=40), st.integers(0, 120), st.booleans())
def test_the_current_streak_never_exceeds_the_best_and_adding_today_never_shortens_it(periods, now, freeze):
    before = s.state(periods, now, freeze)
    assert 0 <= before.length <= before.best
    after = s.state(periods | {now}, now, freeze)
    assert after.length >= max(before.length, 1) and not after.at_risk


def test_milestones_are_keyed_by_the_run():
    run = s.runs([3, 4, 5, 6, 7], freeze=False)[0]
    milestones = (s.Milestone(3, _reward()), s.Milestone(7, _reward()))
    assert [m.length for m in s.reached(run, milestones)] == [3]
    assert s.milestone_key(run, milestones[0]) == "3:3"


def _reward():
    from treue.domain.gamification.missions import Reward

    return Reward(points=1)


# -- instant wins --------------------------------------------------------------------------------------------
def _campaign(prizes):
    return parse_instant_win({"code": "spin", "name": {"en": "Spin"}, "event": "purchase", "prizes": prizes},
                             campaign_id="c", tz=BERLIN)  # fmt: skip


def test_the_draw_maps_the_chosen_number_onto_the_cumulative_table():
    campaign = _campaign([{"code": "a", "probability": "10", "points": 5},
                          {"code": "b", "probability": "0.5", "coupon": "X"}])  # fmt: skip
    picks = {n: draw(campaign.prizes, lambda bound, n=n: n).prize for n in (0, 99_999, 100_000, 104_999, 105_000)}
    assert [p.code if p else None for p in picks.values()] == ["a", "a", "b", "b", None]
    asked = []
    draw(campaign.prizes, lambda bound: asked.append(bound) or 0)
    assert asked == [SCALE]
    with pytest.raises(InvariantViolated):
        draw(campaign.prizes, lambda bound: SCALE)
    assert campaign.odds_table()[-1] == {"prize": None, "from": 105_000, "to": SCALE}


@given(st.lists(st.integers(1, 200_000), min_size=1, max_size=5), st.integers(0, SCALE - 1))
def test_every_number_wins_exactly_the_prize_whose_range_holds_it(weights, number):
    prizes = tuple(Prize(f"p{i}", PrizeKind.POINTS, ppm, points=1) for i, ppm in enumerate(weights))
    won = draw(prizes, lambda bound: number).prize
    bounds = [sum(weights[:i]) for i in range(len(weights) + 1)]
    expected = next((prizes[i] for i in range(len(prizes)) if bounds[i] <= number < bounds[i + 1]), None)
    assert won == expected
    assert (won is None) == (number >= sum(weights))


def test_probabilities_are_exact():
    assert probability_ppm("2.5", "p") == 25_000 and probability_ppm(100, "p") == SCALE
    for bad in ("0.00001", "0", "101", 0.5):
        with pytest.raises(Exception):  # noqa: B017 - RuleInvalid at this level, wrapped by the parser
            probability_ppm(bad, "p")
    with pytest.raises(GamificationInvalid):
        _campaign([{"code": "a", "probability": "60", "points": 1}, {"code": "b", "probability": "41", "points": 1}])
    with pytest.raises(GamificationInvalid):
        _campaign([{"code": "a", "probability": "1", "points": 1, "coupon": "X"}])


# -- definitions, labels, rarity, names --------------------------------------------------------------------
def _mission(**fields):
    values = {"code": "m", "name": {"de": "M", "en": "M"}, "goal": {"target": 3, "event": "purchase"},
              "reward": {"points": 5}} | fields  # fmt: skip
    return parse_mission(values, mission_id="m", currency="EUR", tz=BERLIN)


def test_a_mission_document_reads_back_to_the_same_mission():
    mission = _mission(goal={"type": "sum", "target": "99.50", "event": "purchase", "filter": "purchase.total > 0"},
                       window={"type": "week"}, starts="2026-05-01", ends="2026-05-31", audience="member.tier == 'gold'",
                       repeatable=True)  # fmt: skip
    assert mission.goal.target == 9950 and mission.ends_at == datetime(2026, 5, 31, 22, tzinfo=UTC)
    again = parse_mission(mission.document("EUR"), mission_id="m", currency="EUR", tz=BERLIN)
    assert again.document("EUR") == mission.document("EUR")


@pytest.mark.parametrize(("fields", "location"), [
    ({"goal": {"target": 3, "event": "refund"}}, "goal.event"),
    ({"goal": {"type": "sum", "target": "1.00", "event": "review.created"}}, "goal.event"),
    ({"window": {"type": "campaign"}}, "starts"),
    ({"audience": "purchase.total > 1"}, "audience"),
    ({"reward": {"points": 0}}, "reward"),
    ({"code": "Not A Code"}, "code"),
])  # fmt: skip
def test_unsound_missions_are_refused_with_the_location(fields, location):
    with pytest.raises(GamificationInvalid) as refused:
        _mission(**fields)
    assert refused.value.extra["location"] == location


def test_progress_labels_in_german_and_english():
    mission = _mission()
    window = window_at(WindowKind.MONTH, datetime(2026, 5, 3, tzinfo=UTC), BERLIN)
    assert progress_label(mission, 2, window, BERLIN, "EUR", "en") == "2 of 3 purchases in May 2026"
    assert progress_label(mission, 2, window, BERLIN, "de", "de") == "2 von 3 Einkäufen im Mai 2026"
    sums = _mission(goal={"type": "sum", "target": "100.00", "event": "purchase"}, window={"type": "campaign"},
                    starts="2026-05-01", ends="2026-05-20")  # fmt: skip
    campaign = sums.window_at(datetime(2026, 5, 3, tzinfo=UTC), BERLIN)
    assert progress_label(sums, 4550, campaign, BERLIN, "EUR", "de") == "45,50 von 100,00 EUR bis 20. Mai 2026"
    assert progress_label(sums, 4550, campaign, BERLIN, "EUR", "en") == "45.50 of 100.00 EUR until 20 May 2026"


def test_rarity_is_a_share_of_the_members():
    badge = parse_badge({"code": "b", "name": {"en": "B"}, "rare_below_percent": "5"}, badge_id="b")
    assert rarity(badge, 4, 100).rare is True and rarity(badge, 5, 100).rare is False
    assert rarity(badge, 0, 100).rare is False and rarity(badge, 1, 3).percent == "33.33"
    assert rarity(Badge("x", "x", {}, {}), 1, 1000).rare is False  # no criterion: never rare
    with pytest.raises(GamificationInvalid):
        parse_badge({"code": "b", "name": {"en": "B"}, "image_url": "javascript:alert(1)"}, badge_id="b")


def test_display_names_never_show_more_than_a_first_name_and_an_initial():
    assert display_name(None, "Anna Lena", "meier") == "Anna M."
    assert display_name("Ace", "Anna", "Meier") == "Ace"
    assert display_name(None, None, "Meier", "de") == "Anonym"
    assert display_name(None, "anna@example.org", None) == "Anonymous"
