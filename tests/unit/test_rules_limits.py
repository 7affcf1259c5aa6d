"""Limits: caps per member and period (in the programme's timezone), campaign budgets, minimum purchase."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from treue.domain.rules import evaluator
from treue.domain.rules.context import EventFacts
from treue.domain.rules.definitions import RuleSet
from treue.domain.rules.evaluator import usage_keys
from treue.domain.rules.limits import (
    BudgetDelta,
    LimitState,
    Period,
    Scope,
    Usage,
    UsageDelta,
    UsageKey,
    period_key,
)

from .test_rules_fixtures import WEDNESDAY, campaign, fixed, points_by_rule, program, purchase, rule, run


def key(owner: str, period: Period, value: str, scope: Scope = Scope.RULE) -> UsageKey:
    return UsageKey(scope, owner, period, value)


def test_period_keys():
    local = datetime(2026, 1, 1, 0, 30)  # ISO week 1 of 2026 starts on Monday Dec 29, 2025
    assert [period_key(p, local) for p in Period] == ["2026-01-01", "2026-W01", "2026-01", "2026", "lifetime"]
    assert period_key(Period.WEEK, datetime(2027, 1, 1)) == "2026-W53"


def test_a_monthly_points_cap_reduces_the_award_and_reports_the_usage():
    monthly = rule("bonus", fixed(100), limits={"per_member": [{"points": 500, "per": "month"}]})
    state = LimitState({key("bonus", Period.MONTH, "2026-03"): Usage(points=450, awards=3)})
    result = run([monthly], state=state)
    assert points_by_rule(result)["bonus"] == 50
    assert result.awards[0].capped_from == 100
    assert "capped from 100" in result.outcome.contributions[-1].reason
    assert result.usage == (UsageDelta(key("bonus", Period.MONTH, "2026-03"), 50, 1),)


def test_a_full_monthly_cap_gives_nothing():
    monthly = rule("bonus", fixed(100), limits={"per_member": [{"points": 500, "per": "month"}]})
    state = LimitState({key("bonus", Period.MONTH, "2026-03"): Usage(points=500, awards=5)})
    result = run([monthly], state=state)
    assert "bonus" not in points_by_rule(result)
    assert result.usage == ()
    assert "limit reached" in result.skipped[0].reason


def test_the_monthly_cap_counts_months_in_berlin_across_the_month_boundary():
    monthly = rule("bonus", fixed(100), limits={"per_member": [{"points": 500, "per": "month"}]})
    march_full = LimitState({key("bonus", Period.MONTH, "2026-03"): Usage(points=500, awards=5)})
    # 21:30 UTC on Mar 31 is 23:30 in Berlin (summer time): still March, the cap is full.
    late_march = run([monthly], purchase(at=datetime(2026, 3, 31, 21, 30, tzinfo=UTC)), state=march_full)
    assert "bonus" not in points_by_rule(late_march)
    # 22:30 UTC on Mar 31 is 00:30 on Apr 1 in Berlin: a new month, although it is still March in UTC.
    april = run([monthly], purchase(at=datetime(2026, 3, 31, 22, 30, tzinfo=UTC)), state=march_full)
    assert points_by_rule(april)["bonus"] == 100
    assert april.usage == (UsageDelta(key("bonus", Period.MONTH, "2026-04"), 100, 1),)


@pytest.mark.parametrize(
    ("per", "used_key", "blocked"),
    [
        ("day", "2026-03-04", True),
        ("day", "2026-03-03", False),
        ("week", "2026-W10", True),
        ("week", "2026-W09", False),
        ("month", "2026-03", True),
        ("year", "2026", True),
        ("year", "2025", False),
        ("lifetime", "lifetime", True),
    ],
)
def test_one_award_per_member_and_period(per, used_key, blocked):
    once = rule("once", fixed(10), limits={"per_member": [{"awards": 1, "per": per}]})
    state = LimitState({key("once", Period(per), used_key): Usage(points=10, awards=1)})
    result = run([once], state=state)  # Wednesday, Mar 4 2026 (ISO week 10)
    assert ("once" in points_by_rule(result)) is not blocked


def test_once_per_member():
    once = rule("welcome", fixed(10), trigger="enrolment", limits={"once_per_member": True})
    facts = EventFacts("enrolment", WEDNESDAY)
    first = run([once], facts=facts)
    assert first.points == 10
    assert first.usage == (UsageDelta(key("welcome", Period.LIFETIME, "lifetime"), 10, 1),)
    again = run([once], facts=facts, state=LimitState({key("welcome", Period.LIFETIME, "lifetime"): Usage(10, 1)}))
    assert again.points == 0


def test_several_caps_all_hold():
    capped = rule("bonus", fixed(100), limits={"per_member": [{"points": 150, "per": "day"},
                                                              {"points": 500, "per": "month"}]})  # fmt: skip
    state = LimitState({key("bonus", Period.DAY, "2026-03-04"): Usage(100, 1),
                        key("bonus", Period.MONTH, "2026-03"): Usage(480, 6)})  # fmt: skip
    result = run([capped], state=state)
    assert points_by_rule(result)["bonus"] == 20  # the month allows 20, the day 50
    assert {d.key.period: d.points for d in result.usage} == {Period.DAY: 20, Period.MONTH: 20}


def test_minimum_purchase_amount():
    big = rule("big", fixed(50), limits={"min_purchase": "100.00"})
    assert "big" not in points_by_rule(run([big], purchase("99.99")))
    assert points_by_rule(run([big], purchase("100.00")))["big"] == 50


def test_a_campaign_budget_runs_out_in_the_middle_of_an_evaluation():
    spring = campaign({
        "id": "spring", "starts": "2026-03-01", "ends": "2026-03-31", "status": "active", "budget": 100,
        "rules": [{"id": "first", "trigger": "purchase", "effects": [fixed(15)], "priority": 2},
                  {"id": "second", "trigger": "purchase", "effects": [fixed(15)], "priority": 1},
                  {"id": "third", "trigger": "purchase", "effects": [fixed(15)]}],
    })  # fmt: skip
    result = run(RuleSet(campaigns=[spring]), state=LimitState(budget_spent={"spring": 80}))
    assert points_by_rule(result) == {"base": 50, "first": 15, "second": 5}
    assert result.budgets == (BudgetDelta("spring", 20),)
    assert "campaign budget" in result.outcome.contributions[-1].reason
    assert "limit reached" in result.skipped[-1].reason


def test_a_campaign_cap_per_member_counts_all_its_rules():
    spring = campaign({
        "id": "spring", "starts": "2026-03-01", "ends": "2026-03-31", "status": "active",
        "limits": {"per_member": [{"points": 25, "per": "week"}]},
        "rules": [{"id": "a", "trigger": "purchase", "effects": [fixed(15)], "priority": 1},
                  {"id": "b", "trigger": "purchase", "effects": [fixed(15)]}],
    })  # fmt: skip
    result = run(RuleSet(campaigns=[spring]))
    assert points_by_rule(result) == {"base": 50, "a": 15, "b": 10}
    assert result.usage == (UsageDelta(key("spring", Period.WEEK, "2026-W10", Scope.CAMPAIGN), 25, 2),)


def test_a_capped_award_still_grants_what_is_not_points():
    capped = rule("gift", fixed(10), {"type": "grant_reward", "reward": "mug"},
                  limits={"per_member": [{"points": 10, "per": "month"}]})  # fmt: skip
    result = run([capped], state=LimitState({key("gift", Period.MONTH, "2026-03"): Usage(10, 1)}))
    assert points_by_rule(result) == {"base": 50}
    assert [g.code for g in result.grants] == ["mug"]


def test_usage_keys_name_what_the_store_must_load():
    monthly = rule("bonus", fixed(100), limits={"per_member": [{"points": 500, "per": "month"}],
                                                "once_per_member": True})  # fmt: skip
    other = rule("review", fixed(1), trigger="review.created", limits={"per_member": [{"awards": 1, "per": "day"}]})
    keys = usage_keys(RuleSet([monthly, other]), "purchase", datetime(2026, 3, 31, 22, 30, tzinfo=UTC), program())
    assert set(keys) == {key("bonus", Period.MONTH, "2026-04"), key("bonus", Period.LIFETIME, "lifetime")}


def test_rules_are_skipped_by_channel_partner_and_amount_before_any_cel_runs(monkeypatch):
    def no_cel(*args, **kwargs):
        raise AssertionError("the CEL context was built")

    monkeypatch.setattr(evaluator, "build_context", no_cel)
    rules = [
        rule("online", fixed(5), channels=["online"], condition="member.tier == 'gold'"),
        rule("partner", fixed(5), partners=["bakery"], condition="member.tier == 'gold'"),
        rule("big", fixed(5), limits={"min_purchase": "500.00"}, condition="member.tier == 'gold'"),
        rule("later", fixed(5), valid_from=datetime(2027, 1, 1, tzinfo=UTC), condition="member.tier == 'gold'"),
        rule("review", fixed(5), trigger="review.created", condition="member.tier == 'gold'"),
    ]
    result = run(rules, purchase(channel="store"))
    assert points_by_rule(result) == {"base": 50}
    assert {s.rule: s.reason for s in result.skipped} == {
        "online": "not for this channel", "partner": "not for this partner", "big": "below the minimum purchase",
    }  # fmt: skip
