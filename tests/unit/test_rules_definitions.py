"""Rule definitions are refused when they are defined, with the location (and CEL position) of the problem."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from treue.domain.durations import Duration, parse_duration
from treue.domain.errors import InvalidInput, RuleInvalid
from treue.domain.money import Money
from treue.domain.purchases import Channel, Purchase, PurchaseLine
from treue.domain.rules.conditions import compile_expression, condition, flatten, needs_of
from treue.domain.rules.context import EventFacts, MemberSnapshot, build_context
from treue.domain.rules.definitions import RuleSet, edit_rule, parse_trigger, rule_from_versions
from treue.domain.rules.schedules import parse_cron

from .test_rules_fixtures import T0, campaign, fixed, rule


def refused(**fields: Any) -> RuleInvalid:
    fields.setdefault("effects", [fixed(5)])
    effects = fields.pop("effects")
    with pytest.raises(RuleInvalid) as caught:
        rule("r", *effects, **fields)
    return caught.value


def test_a_syntax_error_is_refused_with_line_and_column():
    error = refused(condition="purchase.total >= 5000 &&\n  member.tier == ")
    assert error.extra["location"] == "condition"
    assert (error.extra["line"], error.extra["column"]) == (2, 17)
    assert "line 2, column 17" in error.detail


def test_an_unknown_variable_is_refused_with_its_position():
    error = refused(condition='purchase.total >= 5000 && customer.tier == "gold"')
    assert "unknown variable 'customer'" in error.detail
    assert (error.extra["line"], error.extra["column"]) == (1, 27)


def test_an_unknown_variable_is_refused_even_where_evaluation_would_not_reach_it():
    error = refused(condition="false && secret == 1")
    assert "unknown variable 'secret'" in error.detail


def test_an_unknown_field_is_refused_but_text_in_strings_is_not_read_as_code():
    assert "no field 'totl'" in refused(condition="purchase.totl >= 5000").detail
    rule("ok", fixed(1), condition="member.tier == 'purchase.totl'")


def test_comprehension_variables_and_member_attributes_are_allowed():
    rule("ok", fixed(1), condition='purchase.lines.exists(l, l.category == "coffee") && member.attributes.vip')


def test_an_expression_that_is_not_true_or_false_is_refused():
    assert "gives int" in refused(condition="purchase.total").detail


def test_an_expression_with_a_type_error_is_refused():
    assert "No such overload" in refused(condition='purchase.total > "5000"').detail


def test_an_unknown_function_is_refused():
    assert "sum" in refused(condition="purchase.lines.map(l, l.quantity).sum() > 1").detail


def test_a_line_filter_is_checked_like_a_condition_with_its_own_location():
    error = refused(effects=[fixed(1), {"type": "points_per_item", "points": 1, "lines": "line.colour == 'red'"}])
    assert error.extra["location"] == "effects[1].lines"
    assert "no field 'colour'" in error.detail


def test_compiled_programs_are_cached_by_expression_text():
    compile_expression.cache_clear()
    condition("purchase.total >= 123", "condition")
    condition("purchase.total >= 123", "condition")
    info = compile_expression.cache_info()
    assert (info.misses, info.hits) == (2, 2)  # the text as written (checked) and its flattened form (run)


def test_fields_are_flattened_into_variables_but_literals_comments_and_whole_uses_are_kept():
    source = 'purchase.channel == "purchase.total" && now . weekday == 6 // member.tier\n&& size(member) > 0'
    assert flatten(source) == ('purchase__channel == "purchase.total" && now__weekday == 6 // member.tier\n'
                               "&& size(member) > 0")  # fmt: skip
    assert flatten("purchase.lines.exists(purchase, purchase.sku == 'x')") == (
        "purchase.lines.exists(purchase, purchase.sku == 'x')"  # a macro variable shadows the context variable
    )
    assert flatten("has(member.attributes.vip) && now.date.startsWith('2026')") == (
        "has(member__attributes.vip) && now__date.startsWith('2026')"
    )


@pytest.mark.parametrize(
    "source",
    [
        "purchase.total >= 5000 && purchase.channel == 'store'",
        "has(member.attributes.vip) && member.attributes.vip == true",
        "member.segments.exists(s, s == 'segment') || now.weekday == 1",
        "purchase.lines.exists(l, l.category == 'category') && size(member) > 3",
        "now.date.startsWith('2026') && member.birthday_month_day == now.month_day",
    ],
)
def test_a_flattened_condition_gives_what_the_condition_as_written_gives(source):
    facts = EventFacts("purchase", datetime(2026, 1, 5, 11, 0, tzinfo=UTC),
                       MemberSnapshot("m", attributes={"vip": True}, segments=("segment",), birthday=date(1990, 1, 5)),
                       Purchase(uuid4(), uuid4(), "default", "s1", Channel.STORE, "o", datetime(2026, 1, 5, tzinfo=UTC),
                                Money(6000, "EUR"), (PurchaseLine("SKU", 1, 6000, "category"),)))  # fmt: skip
    tz = ZoneInfo("Europe/Berlin")
    flat = condition(source, "condition")
    written = compile_expression(source).execute(build_context(facts, tz, "EUR").cel)
    assert flat.program is not compile_expression(source)
    assert flat.holds(build_context(facts, tz, "EUR", flat.needs)) is written is True


def test_needs_name_the_fields_an_expression_reads():
    assert needs_of('purchase.total > 1 && member.tier == "gold" && "now.hour" == ""') == {
        "purchase": frozenset({"total"}),
        "member": frozenset({"tier"}),
    }
    assert needs_of("size(member) > 0")["member"] == frozenset({"*"})


@pytest.mark.parametrize(
    ("effect", "location"),
    [
        (fixed(-5), "effects[0].points"),
        (fixed(0), "effects[0].points"),
        ({"type": "points_per_item", "points": -1}, "effects[0].points"),
        ({"type": "points_per_amount", "points": 1, "per": "-1.00"}, "effects[0].per"),
        ({"type": "multiplier", "factor": "0.5"}, "effects[0].factor"),
        ({"type": "tier_credit", "points": -10}, "effects[0].points"),
    ],
)
def test_negative_points_are_refused(effect, location):
    assert refused(effects=[effect]).extra["location"] == location


@pytest.mark.parametrize(
    ("effect", "location"),
    [
        (fixed(1.5), "effects[0].points"),
        ({"type": "multiplier", "factor": 2.0}, "effects[0].factor"),
        ({"type": "points_per_amount", "points": 1, "per": 1.0}, "effects[0].per"),
        ({"type": "points_per_amount", "points": 1, "per": "0.001"}, "effects[0].per"),
        ({"type": "cashback_percent", "percent": "0"}, "effects[0].percent"),
        ({"type": "fixed_points", "pionts": 5}, "effects[0].pionts"),
        ({"type": "bonus"}, "effects[0].type"),
        (fixed(5, pending="14 days"), "effects[0].pending"),
        ({"type": "grant_reward"}, "effects[0].reward"),
    ],
)
def test_malformed_effects_are_refused_with_their_location(effect, location):
    assert refused(effects=[effect]).extra["location"] == location


def test_purchase_effects_need_a_purchase_trigger():
    error = refused(trigger="review.created", effects=[{"type": "multiplier", "factor": "2"}])
    assert error.extra["location"] == "effects[0].type"
    rule("ok", fixed(10), trigger="review.created")


def test_limits_are_checked():
    assert refused(limits={"per_member": [{"points": 5, "per": "fortnight"}]}).extra["location"] == (
        "limits.per_member[0].per"
    )
    assert refused(limits={"per_member": [{"points": 5, "awards": 1, "per": "day"}]}).extra["location"] == (
        "limits.per_member[0]"
    )
    assert refused(limits={"min_purchase": "-1.00"}).extra["location"] == "limits.min_purchase"
    assert refused(trigger="enrolment", limits={"min_purchase": "1.00"}).extra["location"] == "limits.min_purchase"


def test_other_fields_are_checked():
    assert refused(mode="exclusive").extra["location"] == "group"
    assert refused(group="weekend").extra["location"] == "group"
    assert refused(channels=["shop"]).extra["location"] == "channels[0]"
    assert refused(effects=[]).extra["location"] == "effects"
    assert refused(colour="red").extra["location"] == "colour"
    assert refused(priority="high").extra["location"] == "priority"
    with pytest.raises(RuleInvalid):
        rule("base", fixed(1))  # the programme's base rule has this name


def test_rule_invalid_is_an_invalid_input():
    assert isinstance(refused(effects=[fixed(-1)]), InvalidInput)


@pytest.mark.parametrize("trigger", ["purchase", "refund", "enrolment", "birthday", "membership_anniversary",
                                     "review.created", "cron: 0 9 * * mon"])  # fmt: skip
def test_known_triggers_are_accepted(trigger):
    parse_trigger(trigger)


@pytest.mark.parametrize("trigger", ["purchse", "Review.Created", "cron: 0 25 * * *", "cron: * * *", ""])
def test_unknown_triggers_are_refused(trigger):
    with pytest.raises(RuleInvalid):
        parse_trigger(trigger)


def test_cron_schedules_match_local_minutes():
    cron = parse_cron("30 9 * * mon-fri")
    berlin = ZoneInfo("Europe/Berlin")
    assert cron.matches(datetime(2026, 3, 6, 9, 30, tzinfo=berlin))  # Friday
    assert not cron.matches(datetime(2026, 3, 7, 9, 30, tzinfo=berlin))  # Saturday
    assert not cron.matches(datetime(2026, 3, 6, 9, 31, tzinfo=berlin))
    first_of_month_or_sunday = parse_cron("0 0 1 * 0")  # cron's rule: either day field may match
    assert first_of_month_or_sunday.matches(datetime(2026, 3, 1, 0, 0))
    assert first_of_month_or_sunday.matches(datetime(2026, 3, 8, 0, 0))
    assert not first_of_month_or_sunday.matches(datetime(2026, 3, 9, 0, 0))
    assert parse_cron("*/15 * * * *").minutes == frozenset({0, 15, 30, 45})


@pytest.mark.parametrize(("text", "expected"), [("14D", Duration(14, "D")), ("0D", Duration(0, "D")),
                                                ("1M", Duration(1, "M")), ("2w", Duration(2, "W")),
                                                ("P1Y", Duration(1, "Y"))])  # fmt: skip
def test_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["14", "1.5D", "-1D", "D", "14 days", "1H", "99999D"])
def test_bad_durations_are_refused(text):
    with pytest.raises(InvalidInput):
        parse_duration(text)


def test_durations_add_calendar_time_in_the_programme_timezone():
    berlin = ZoneInfo("Europe/Berlin")
    jan31 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert parse_duration("1M").after(jan31, berlin) == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    before_dst = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)  # 10:00 CET; +1 day is 10:00 CEST
    assert parse_duration("1D").after(before_dst, berlin) == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    assert parse_duration("0D").after(before_dst, berlin) == before_dst
    assert parse_duration("2W").days == 14 and parse_duration("1M").days is None


def exclusive(rule_id: str, priority: int, **fields: Any) -> Any:
    return rule(rule_id, fixed(10), mode="exclusive", group="weekend", priority=priority, **fields)


def test_two_exclusive_rules_of_a_group_with_the_same_priority_are_refused():
    with pytest.raises(RuleInvalid, match="overlapping exclusive group without priority") as caught:
        RuleSet([exclusive("a", 5), exclusive("b", 5)])
    assert caught.value.extra["rules"] == ["a", "b"]
    RuleSet([exclusive("a", 5), exclusive("b", 6)])
    RuleSet([exclusive("a", 5), rule("b", fixed(1), mode="exclusive", group="other", priority=5)])
    RuleSet([exclusive("a", 5), exclusive("b", 5, trigger="review.created")])  # never compete


def test_exclusive_rules_in_campaigns_that_never_overlap_may_share_a_priority():
    def weekend(cid: str, starts: str, ends: str) -> Any:
        return campaign({"id": cid, "starts": starts, "ends": ends, "status": "scheduled",
                         "rules": [{"id": f"{cid}-rule", "trigger": "purchase", "effects": [fixed(5)],
                                    "mode": "exclusive", "group": "weekend", "priority": 1}]})  # fmt: skip

    RuleSet(campaigns=[weekend("w1", "2026-03-07", "2026-03-08"), weekend("w2", "2026-03-14", "2026-03-15")])
    with pytest.raises(RuleInvalid):
        RuleSet(campaigns=[weekend("w1", "2026-03-07", "2026-03-08"), weekend("w2", "2026-03-08", "2026-03-09")])


def test_an_edit_that_makes_exclusive_rules_overlap_is_refused_only_from_its_validity():
    a, b = exclusive("a", 5), exclusive("b", 6)
    later = T0 + timedelta(days=30)
    b2 = edit_rule(b, {"priority": 5}, valid_from=later, currency="EUR")
    with pytest.raises(RuleInvalid):
        RuleSet([a, b2])
    a_ends = edit_rule(a, {"group": "gone"}, valid_from=later, currency="EUR")
    RuleSet([a_ends, b2])  # a leaves the group exactly when b joins its priority


def test_duplicate_rule_ids_are_refused():
    with pytest.raises(RuleInvalid, match="two rules"):
        RuleSet([rule("a", fixed(1)), rule("a", fixed(2))])


def test_editing_adds_a_version_and_keeps_the_old_one():
    original = rule("r", fixed(10), condition="purchase.total >= 1000")
    edited = edit_rule(original, {"effects": [fixed(20)], "condition": None}, valid_from=T0 + timedelta(days=1),
                       currency="EUR")  # fmt: skip
    assert [v.version for v in edited.versions] == [1, 2]
    assert edited.version_at(T0 + timedelta(hours=1)).version == 1
    assert edited.version_at(T0 + timedelta(days=2)).condition is None
    assert edited.version_at(T0 - timedelta(seconds=1)) is None
    assert original.versions == edited.versions[:1]  # the rule given is unchanged
    with pytest.raises(RuleInvalid, match="valid after"):
        edit_rule(edited, {"priority": 2}, valid_from=T0, currency="EUR")
    with pytest.raises(RuleInvalid):
        edit_rule(edited, {"effects": [fixed(-1)]}, valid_from=T0 + timedelta(days=3), currency="EUR")


def test_a_rule_is_rebuilt_from_its_stored_versions():
    definition = {"id": "r", "trigger": "purchase", "effects": [fixed(1)]}
    rebuilt = rule_from_versions("r", [(T0, definition), (T0 + timedelta(days=1), {**definition, "priority": 3})],
                                 currency="EUR")  # fmt: skip
    assert [v.priority for v in rebuilt.versions] == [0, 3]
    with pytest.raises(RuleInvalid, match="in order"):
        rule_from_versions("r", [(T0, definition), (T0, definition)], currency="EUR")


def test_campaign_definitions_are_checked():
    base = {"id": "c", "starts": "2026-03-01", "ends": "2026-03-31", "rules": []}
    ok = campaign({**base, "audience": 'member.tier == "gold"', "budget": 1000})
    assert ok.starts_at == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # midnight in Berlin
    assert ok.ends_at == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # the end of Mar 31, summer time
    for bad, location in [
        ({"ends": "2026-02-01"}, "ends"),
        ({"starts": "March"}, "starts"),
        ({"status": "live"}, "status"),
        ({"audience": "purchase.total > 1"}, "audience"),
        ({"budget": -1}, "budget"),
        ({"rules": [{"id": "x", "trigger": "purchase", "effects": [fixed(-1)]}]}, "rules[0].effects[0].points"),
    ]:
        with pytest.raises(RuleInvalid) as caught:
            campaign({**base, **bad})
        assert caught.value.extra["location"] == location
