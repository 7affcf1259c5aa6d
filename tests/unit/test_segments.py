"""Segments, recommendations, surveys and targeted offers in the domain (issue 8): no database."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.domain.errors import InvalidInput, RuleInvalid
from treue.domain.offers import parse_offer
from treue.domain.recommendations import affordability, hit_rate, rank_rewards, similarities
from treue.domain.segments import SAMPLE, SegmentKind, parse_segment, quintile, segment_condition
from treue.domain.surveys import category, check_answer, nps, parse_survey, period_of


def test_quintiles_of_five_distinct_values_are_one_to_five():
    assert [quintile(k, 5) for k in range(5)] == [1, 2, 3, 4, 5]
    assert [quintile(k, 10) for k in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    with pytest.raises(ValueError):
        quintile(5, 5)


@given(st.integers(1, 10_000), st.data())
def test_quintiles_are_monotonic_and_within_one_to_five(count, data):
    smaller = sorted(data.draw(st.lists(st.integers(0, count - 1), min_size=2, max_size=20)))
    scores = [quintile(s, count) for s in smaller]
    assert all(1 <= s <= 5 for s in scores) and scores == sorted(scores)
    assert quintile(count - 1, count) == (5 if count >= 5 else 1 + (5 * (count - 1)) // count)


def test_segment_conditions_read_member_facts_and_are_checked():
    champions = segment_condition("member.r >= 4 && member.f >= 4")
    assert champions.fields == frozenset({"r", "f"})
    assert champions.holds({**SAMPLE, "r": 5, "f": 4}) and not champions.holds({**SAMPLE, "r": 3, "f": 5})
    risky = segment_condition("member.churn_risk > 0.5")
    assert risky.holds({**SAMPLE, "churn_risk": 0.75}) and not risky.holds({**SAMPLE, "churn_risk": None})
    whole = segment_condition('member.attributes.exists(k, k == "vip") || member.rfm == "555"')
    assert whole.holds({**SAMPLE, "attributes": {"vip": True}}) and not whole.holds(SAMPLE)
    for bad, why in [("member.balance > 1", "no field 'balance'"), ("now.year > 1", "unknown variable 'now'"),
                     ("member.r >", "not a valid CEL"), ("member.rfm", "not true or false"), ("", "required")]:  # fmt: skip
        with pytest.raises(RuleInvalid, match=why):
            segment_condition(bad)


def test_parse_segment():
    spec = parse_segment({"code": "vip", "name": "VIP", "condition": "member.m == 5"})
    assert spec.kind is SegmentKind.DYNAMIC and spec.name == {"de": "VIP", "en": "VIP"}
    assert parse_segment({"code": "press", "name": "Press"}).kind is SegmentKind.STATIC
    for data in ({"code": "Bad Code", "name": "x", "kind": "static"}, {"code": "x", "name": "x", "kind": "planet"},
                 {"code": "x", "name": "x", "kind": "static", "condition": "true"}, {"code": "x", "kind": "static"},
                 {"code": "x", "name": "x", "kind": "static", "colour": "red"}):  # fmt: skip
        with pytest.raises(InvalidInput):
            parse_segment(data)


def test_similarities_are_cosines_with_the_diagonal_as_popularity():
    pairs = similarities([("a", "a", 4), ("b", "b", 1), ("a", "b", 1), ("b", "a", 1), ("c", "c", 2)])
    by = {(p.sku, p.other_sku): p for p in pairs}
    assert by[("a", "b")].score == 500_000 and by[("b", "a")].members == 1
    assert by[("a", "a")].score == 4 and by[("c", "c")].members == 2 and ("a", "c") not in by
    assert similarities([]) == []


def test_rewards_affordable_now_come_before_soon_and_popular_in_segments_first():
    assert [affordability(c, 100, 50) for c in (100, 150, 120, 125, 200)] == ["now", "soon", "soon", "soon", None]
    rewards = [{"id": "cheap", "cost_points": 50}, {"id": "dear", "cost_points": 100}, {"id": "near", "cost_points": 140},
               {"id": "far", "cost_points": 1000}]  # fmt: skip
    ranked = rank_rewards(rewards, {"cheap": (3, 5)}, 100, 40, 10)
    assert [r["id"] for r in ranked] == ["cheap", "dear", "near"]
    assert ranked[2]["points_missing"] == 40 and ranked[2]["affordable"] == "soon"
    assert [r["id"] for r in rank_rewards(rewards, {}, 100, 0, 10)] == ["dear", "cheap"]


def test_hit_rate():
    assert hit_rate({1: ["a", "b"], 2: ["c"]}, {1: ["b"], 2: ["d"], 3: ["a"]}) == pytest.approx(1 / 3)
    assert hit_rate({}, {}) == 0.0


def test_nps_worked_example_and_categories():
    scores = [10, 9, 9, 10, 9, 7, 8, 7, 3, 6]
    kinds = [category(s) for s in scores]
    assert (kinds.count("promoter"), kinds.count("passive"), kinds.count("detractor")) == (5, 3, 2)
    assert nps(10, 5, 2) == 30.0 and nps(0, 0, 0) is None and nps(3, 1, 1) == 0.0 and nps(6, 1, 2) == -16.6667
    with pytest.raises(ValueError):
        category(11)


@given(st.lists(st.integers(0, 10), min_size=1, max_size=200))
def test_nps_lies_between_minus_and_plus_one_hundred(scores):
    promoters = sum(1 for s in scores if category(s) == "promoter")
    detractors = sum(1 for s in scores if category(s) == "detractor")
    value = nps(len(scores), promoters, detractors)
    assert value is not None and -100 <= value <= 100
    assert (value == 100) == (promoters == len(scores)) and (value == -100) == (detractors == len(scores))


def test_survey_periods_answers_and_definitions():
    at = datetime(2026, 8, 15, 12, 0)
    assert [period_of(r, at) for r in ("never", "month", "quarter", "year")] == ["", "2026-08", "2026-Q3", "2026"]
    spec = parse_survey({"code": "nps", "name": "NPS", "repeat": "quarter"})
    assert spec.question["en"].startswith("How likely") and spec.active
    assert check_answer(7, "  ", None) == (7, None, "other")
    for bad in ((11, None, None), (True, None, None), (5, "x" * 2001, None), (5, None, "E-Mail")):
        with pytest.raises(InvalidInput):
            check_answer(*bad)
    with pytest.raises(InvalidInput):
        parse_survey({"code": "nps", "name": "NPS", "repeat": "weekly"})


def test_a_segments_offer_runs_as_a_campaign_whose_audience_asks_for_the_segment():
    spec = parse_offer({"code": "double", "kind": "targeted", "segment": "vip", "name": "Double",
                        "starts": "2026-03-01", "ends": "2026-03-31", "audience": 'member.tier == "gold"',
                        "effects": [{"type": "multiplier", "factor": "2"}]})  # fmt: skip
    campaign = spec.campaign_definition()
    assert campaign["audience"] == '"vip" in member.segments && (\nmember.tier == "gold"\n)'
    assert campaign["rules"][0]["condition"] == '"double" in member.offers' and not spec.card_linked
    with pytest.raises(InvalidInput):
        parse_offer({"code": "x", "segment": "Not A Code", "name": "x", "starts": "2026-03-01", "ends": "2026-03-31",
                     "effects": [{"type": "fixed_points", "points": 1}]})  # fmt: skip
