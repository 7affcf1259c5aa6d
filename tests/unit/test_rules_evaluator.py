"""The evaluator: ordering and exclusive groups, the programme's timezone, versions, campaigns, explanations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from treue.domain.rules.base import evaluate_purchase
from treue.domain.rules.context import EventFacts
from treue.domain.rules.definitions import SCHEDULE_EVENT, RuleSet, edit_rule
from treue.domain.rules.evaluator import evaluate_purchase_rules
from treue.domain.rules.limits import LimitState, Period, Scope, Usage, UsageKey

from .test_rules_fixtures import (
    T0,
    WEDNESDAY,
    campaign,
    fixed,
    line,
    member,
    points_by_rule,
    program,
    purchase,
    rule,
    run,
)

SATURDAYS = "now.weekday == 6"


def test_without_rules_the_outcome_is_the_base_rules():
    bought = purchase("37.40", line("A", 2, "18.70"))
    assert evaluate_purchase_rules(program(), bought, RuleSet()).outcome == evaluate_purchase(program(), bought)


def test_stacking_rules_all_apply_in_priority_order():
    result = run([rule("low", fixed(1), priority=1), rule("high", fixed(2), priority=9), rule("mid", fixed(3))])
    assert [c.rule for c in result.outcome.contributions] == ["base", "high", "low", "mid"]
    assert result.points == 56


def test_within_an_exclusive_group_only_the_most_points_apply():
    rules = [
        rule("double", {"type": "multiplier", "factor": "2"}, mode="exclusive", group="promo", priority=1),
        rule("flat", fixed(30), mode="exclusive", group="promo", priority=5),
        rule("stacking", fixed(1)),
    ]
    result = run(rules, purchase("50.00"))
    assert points_by_rule(result) == {"base": 50, "double": 50, "stacking": 1}
    assert any(s.rule == "flat" and "double applies instead" in s.reason for s in result.skipped)
    small = run(rules, purchase("20.00"))  # the base is 20: flat 30 beats double's 20
    assert points_by_rule(small) == {"base": 20, "flat": 30, "stacking": 1}


def test_exclusive_ties_go_to_the_higher_priority():
    # (Equal priorities within a group are refused when the rule set is built, so the rule id never has to decide.)
    tie = [rule("b", fixed(10), mode="exclusive", group="g", priority=2),
           rule("a", fixed(10), mode="exclusive", group="g", priority=1)]  # fmt: skip
    assert points_by_rule(run(tie)) == {"base": 50, "b": 10}


def test_an_exclusive_rule_blocked_by_its_limit_lets_the_next_best_apply():
    rules = [rule("big", fixed(40), mode="exclusive", group="g", priority=2,
                  limits={"per_member": [{"awards": 1, "per": "month"}]}),
             rule("small", fixed(10), mode="exclusive", group="g", priority=1)]  # fmt: skip
    state = LimitState({UsageKey(Scope.RULE, "big", Period.MONTH, "2026-03"): Usage(40, 1)})
    assert points_by_rule(run(rules, state=state)) == {"base": 50, "small": 10}


def test_saturday_means_saturday_in_berlin():
    saturdays = [rule("sat", {"type": "multiplier", "factor": "2"}, condition=SATURDAYS)]
    # 22:30 UTC on Saturday Mar 7 is 23:30 in Berlin: still Saturday.
    late_saturday = run(saturdays, purchase(at=datetime(2026, 3, 7, 22, 30, tzinfo=UTC)))
    assert points_by_rule(late_saturday)["sat"] == 50
    # 23:30 UTC on Saturday is 00:30 on Sunday in Berlin: not Saturday any more.
    early_sunday = run(saturdays, purchase(at=datetime(2026, 3, 7, 23, 30, tzinfo=UTC)))
    assert "sat" not in points_by_rule(early_sunday)
    # 23:30 UTC on Friday is 00:30 on Saturday in Berlin.
    assert "sat" in points_by_rule(run(saturdays, purchase(at=datetime(2026, 3, 6, 23, 30, tzinfo=UTC))))


def test_saturday_around_the_summer_time_changes():
    saturdays = [rule("sat", fixed(10), condition=SATURDAYS)]

    def on_saturday(at: datetime) -> bool:
        return "sat" in points_by_rule(run(saturdays, purchase(at=at)))

    # Spring forward (Sun Mar 29, 2026): Saturday the 28th is still UTC+1.
    assert on_saturday(datetime(2026, 3, 28, 22, 59, tzinfo=UTC))  # 23:59 Saturday
    assert not on_saturday(datetime(2026, 3, 28, 23, 0, tzinfo=UTC))  # 00:00 Sunday
    # Fall back (Sun Oct 25, 2026): Saturday the 24th is UTC+2, so it ends at 22:00 UTC.
    assert on_saturday(datetime(2026, 10, 24, 21, 59, tzinfo=UTC))  # 23:59 Saturday
    assert not on_saturday(datetime(2026, 10, 24, 22, 30, tzinfo=UTC))  # 00:30 Sunday, though 22:30 UTC


def test_now_fields_follow_the_programme_timezone():
    at = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, half an hour before clocks go back
    hour = [rule("two", fixed(1), condition='now.hour == 2 && now.date == "2026-10-25" && now.time == "02:30"')]
    assert "two" in points_by_rule(run(hour, purchase(at=at)))
    again = at + timedelta(hours=1)  # 02:30 again, now CET
    assert "two" in points_by_rule(run(hour, purchase(at=again)))


def test_a_scheduled_rule_fires_at_its_local_time():
    monday_nine = [rule("monday", fixed(5), trigger="cron: 0 9 * * mon")]
    tick = EventFacts(SCHEDULE_EVENT, datetime(2026, 3, 30, 7, 0, tzinfo=UTC), member())  # 09:00 CEST
    assert run(monday_nine, facts=tick).points == 5
    winter_tick = EventFacts(SCHEDULE_EVENT, datetime(2026, 3, 23, 7, 0, tzinfo=UTC), member())  # 08:00 CET
    assert run(monday_nine, facts=winter_tick).points == 0


def test_birthday_rules_see_the_members_birthday():
    birthday = [rule("bday", fixed(100), trigger="birthday", condition="member.birthday_month_day == now.month_day")]
    on_the_day = EventFacts("birthday", datetime(2026, 3, 3, 23, 30, tzinfo=UTC), member(birthday=date(1990, 3, 4)))
    assert run(birthday, facts=on_the_day).points == 100  # 00:30 on Mar 4 in Berlin


def test_the_version_in_force_at_the_event_time_applies():
    edit_at = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    original = rule("bonus", fixed(10))
    edited = edit_rule(original, {"effects": [fixed(25)]}, valid_from=edit_at, currency="EUR")
    before = run([edited], purchase(at=edit_at - timedelta(seconds=1)))
    after = run([edited], purchase(at=edit_at))
    assert (points_by_rule(before)["bonus"], before.awards[0].version) == (10, 1)
    assert (points_by_rule(after)["bonus"], after.awards[0].version) == (25, 2)
    assert run([edited], purchase(at=T0 - timedelta(days=1))).awards == ()  # before the rule existed


def test_one_rule_set_kept_across_events_follows_versions_and_campaign_windows():
    # The rule set caches what is in force per interval between changes; a kept rule set must still
    # switch versions and campaigns at the right instant, in whichever order events arrive.
    edit_at = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    edited = edit_rule(rule("bonus", fixed(10)), {"effects": [fixed(25)]}, valid_from=edit_at, currency="EUR")
    week = campaign({"id": "week", "starts": "2026-03-02", "ends": "2026-03-08", "status": "active",
                     "rules": [{"id": "week-bonus", "trigger": "purchase", "effects": [fixed(7)]}]})  # fmt: skip
    kept = RuleSet([edited], [week])
    moments = [edit_at, edit_at - timedelta(seconds=1), datetime(2026, 3, 8, 23, 0, tzinfo=UTC),
               datetime(2026, 3, 7, 22, 59, tzinfo=UTC), T0 - timedelta(days=1), edit_at]  # fmt: skip
    expected = [{"bonus": 25, "week-bonus": 7}, {"bonus": 10, "week-bonus": 7}, {"bonus": 25},
                {"bonus": 25, "week-bonus": 7}, {}, {"bonus": 25, "week-bonus": 7}]  # fmt: skip
    for at, points in zip(moments, expected, strict=True):
        found = points_by_rule(run(kept, purchase(at=at)))
        found.pop("base")
        assert found == points, at
    assert kept.plan("purchase", edit_at) is kept.plan("purchase", edit_at + timedelta(hours=1))


def test_a_condition_failing_beside_others_leaves_their_outcome_alone():
    rules = [rule("vip", fixed(5), condition="member.attributes.vip == true"),
             rule("big", fixed(3), condition="purchase.total >= 4000"),
             rule("small", fixed(2), condition="purchase.total < 4000")]  # fmt: skip
    result = run(rules, who=member())  # no vip attribute: that condition fails, the others decide for themselves
    assert points_by_rule(result) == {"base": 50, "big": 3}
    assert {s.rule: s.reason.split(":")[0] for s in result.skipped} == {
        "vip": "condition could not be evaluated (no value for 'vip')", "small": "condition not met",
    }  # fmt: skip


def test_a_campaign_applies_inside_its_window_when_scheduled_or_active():
    def spring(status: str) -> RuleSet:
        return RuleSet(campaigns=[campaign({
            "id": "spring", "starts": "2026-03-01", "ends": "2026-03-07", "status": status,
            "rules": [{"id": "spring-bonus", "trigger": "purchase", "effects": [fixed(20)]}],
        })])  # fmt: skip

    inside = purchase(at=datetime(2026, 3, 7, 22, 59, tzinfo=UTC))  # 23:59 on the last day in Berlin
    outside = purchase(at=datetime(2026, 3, 7, 23, 0, tzinfo=UTC))
    assert "spring-bonus" in points_by_rule(run(spring("active"), inside))
    assert "spring-bonus" in points_by_rule(run(spring("scheduled"), inside))
    assert "spring-bonus" not in points_by_rule(run(spring("active"), outside))
    assert "spring-bonus" not in points_by_rule(run(spring("draft"), inside))
    assert "spring-bonus" not in points_by_rule(run(spring("ended"), inside))
    before = purchase(at=datetime(2026, 2, 28, 22, 59, tzinfo=UTC))
    assert "spring-bonus" not in points_by_rule(run(spring("active"), before))


def test_a_campaign_audience_selects_members():
    gold_only = RuleSet(campaigns=[campaign({
        "id": "gold", "starts": "2026-03-01", "ends": "2026-03-31", "status": "active",
        "audience": 'member.tier == "gold" || "vip" in member.segments',
        "rules": [{"id": "gold-bonus", "trigger": "purchase", "effects": [fixed(20)]}],
    })])  # fmt: skip
    assert "gold-bonus" in points_by_rule(run(gold_only, who=member("gold")))
    assert "gold-bonus" in points_by_rule(run(gold_only, who=member("silver", segments=("vip",))))
    result = run(gold_only, who=member("silver"))
    assert "gold-bonus" not in points_by_rule(result)
    assert result.skipped[0].reason == "not in the audience of campaign gold"


def test_a_condition_that_fails_at_run_time_counts_as_not_met():
    vip = [rule("vip", fixed(5), condition="member.attributes.vip == true")]
    result = run(vip, who=member())
    assert result.points == 50
    assert "could not be evaluated" in result.skipped[0].reason
    assert "vip" in points_by_rule(run(vip, who=member(attributes={"vip": True})))


def test_conditions_see_money_in_minor_units_and_the_members_history():
    rules = [rule("big", fixed(5), condition="purchase.total >= 5000 && member.spend >= 100000 && "
                                             "member.purchase_count > 3 && member.days_enrolled >= 30")]  # fmt: skip
    regular = member(spend_minor=100000, purchase_count=4)
    assert "big" in points_by_rule(run(rules, purchase("50.00"), who=regular))
    assert "big" not in points_by_rule(run(rules, purchase("49.99"), who=regular))
    assert "big" not in points_by_rule(run(rules, purchase("50.00"), who=member(spend_minor=99999, purchase_count=4)))


def test_every_award_explains_rule_version_base_multiplier_points_and_why():
    result = run([rule("double", {"type": "multiplier", "factor": "2"}, condition=SATURDAYS)],
                 purchase("50.00", at=datetime(2026, 3, 7, 12, 0, tzinfo=UTC)))  # fmt: skip
    assert result.explanation() == {
        "points": 100,
        "rules": [
            {"rule": "base", "points": 50, "reason": "1 point(s) per 1.00 EUR on 50.00 EUR (floor)",
             "details": {"basis": "per_amount", "amount": "50.00", "currency": "EUR"}},
            {"rule": "double", "points": 50, "reason": "x2 on 50 base point(s): +50", "version": 1, "base": 50,
             "multiplier": "2"},
        ],
    }  # fmt: skip


def test_campaign_awards_name_their_campaign():
    spring = RuleSet(campaigns=[campaign({
        "id": "spring", "starts": "2026-03-01", "ends": "2026-03-31", "status": "active",
        "rules": [{"id": "spring-bonus", "trigger": "purchase", "effects": [fixed(20)]}],
    })])  # fmt: skip
    result = run(spring)
    assert result.awards[0].campaign == "spring"
    assert result.outcome.contributions[-1].as_dict()["campaign"] == "spring"


def test_the_same_inputs_give_the_same_evaluation():
    rules = [rule("a", fixed(5), condition="purchase.total > 100"), rule("b", {"type": "multiplier", "factor": "1.5"})]
    bought = purchase("12.34", line("X", 1, "12.34"))
    assert run(rules, bought) == run(rules, bought)
    assert run(rules, bought, who=member()).outcome == run(rules, bought, who=member()).outcome
    assert bought.occurred_at == WEDNESDAY
