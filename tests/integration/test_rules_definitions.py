"""Rules and campaigns through the use cases: create, version, archive, validate, export and import."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import WEDNESDAY, by_rule, campaign, event, fixed, rule
from treue.domain.errors import NotFound, RuleInvalid
from treue.domain.rules.stored import StoredRule, build_rule_set
from treue.services.audit import list_audit
from treue.services.programs import create_program
from treue.services.rules import (
    RuleArchived,
    RuleExists,
    archive_rule,
    create_rule,
    edit_rule,
    export_rules,
    get_campaign,
    get_rule,
    import_rules,
    list_campaigns,
    list_rules,
    update_campaign,
    validate_rule,
)
from treue.store import tables


def test_create_edit_and_read_a_rule_with_its_versions(uow_factory, program_id, now):
    created = rule(uow_factory, program_id, now, "bonus", fixed(10), name="Bonus")
    assert (created["version"], created["status"], created["campaign"]) == (1, "active", None)
    assert created["definition"]["effects"] == [fixed(10)]
    edit_at = now + timedelta(days=1)
    edited = edit_rule(uow_factory(), program_id, "bonus", {"effects": [fixed(25)], "name": "Bigger bonus"}, edit_at)
    assert [v["version"] for v in edited["versions"]] == [1, 2]
    assert edited["versions"][1]["valid_from"] == edit_at.isoformat().replace("+00:00", "Z")
    assert (edited["name"], edited["version"]) == ("Bigger bonus", 2)
    history = get_rule(uow_factory(), program_id, "bonus")["versions"]
    assert [v["definition"]["effects"][0]["points"] for v in history] == [10, 25]
    assert [r["version"] for r in list_rules(uow_factory(), program_id)] == [2]
    actions = [a["action"] for a in list_audit(uow_factory(), program_id)]
    assert "rule.create" in actions and "rule.edit" in actions


def test_a_purchase_dated_before_an_edit_uses_the_version_then_in_force(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "bonus", fixed(10))
    edit_at = now + timedelta(days=1)
    edit_rule(uow_factory(), program_id, "bonus", {"effects": [fixed(25)]}, edit_at)
    member = enrol(uow_factory, program_id, now)
    # Both purchases are recorded after the edit; each is evaluated with the version in force at its time.
    late_record = buy(uow_factory, program_id, member, "10.00", edit_at - timedelta(hours=1))
    after = buy(uow_factory, program_id, member, "10.00", edit_at + timedelta(hours=1))
    assert by_rule(late_record["explanation"]) == {"base": 10, "bonus": 10}
    assert by_rule(after["explanation"]) == {"base": 10, "bonus": 25}
    assert [line.get("version") for line in after["explanation"]["rules"]] == [None, 2]
    assert [line.get("version") for line in late_record["explanation"]["rules"]] == [None, 1]


def test_an_edit_cannot_rewrite_the_past(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "bonus", fixed(10))
    with pytest.raises(RuleInvalid) as caught:
        edit_rule(uow_factory(), program_id, "bonus", {"effects": [fixed(5)]}, now + timedelta(hours=1),
                  valid_from=now)  # fmt: skip
    assert caught.value.extra["location"] == "valid_from"


def test_an_archived_rule_no_longer_applies_and_cannot_be_edited(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "bonus", fixed(10))
    member = enrol(uow_factory, program_id, now)
    archived = archive_rule(uow_factory(), program_id, "bonus", now + timedelta(hours=1))
    assert archived["status"] == "archived"
    assert (
        archive_rule(uow_factory(), program_id, "bonus", now + timedelta(hours=2))["archived_at"]
        == archived["archived_at"]
    )
    assert by_rule(buy(uow_factory, program_id, member, "10.00", WEDNESDAY)["explanation"]) == {"base": 10}
    assert list_rules(uow_factory(), program_id) == []
    assert [r["id"] for r in list_rules(uow_factory(), program_id, include_archived=True)] == ["bonus"]
    with pytest.raises(RuleArchived):
        edit_rule(uow_factory(), program_id, "bonus", {"priority": 3}, now + timedelta(hours=3))
    with pytest.raises(RuleExists):  # the id stays taken
        rule(uow_factory, program_id, now, "bonus", fixed(1))


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"condition": "purchase.total >= 5000 &&\n  member.tier == "}, "condition"),
        ({"condition": "purchase.totl >= 5000"}, "condition"),
        ({"effects": [fixed(10), {"type": "fixed_points", "points": -5}]}, "effects[1].points"),
        ({"effects": [{"type": "points_per_amount", "points": 1, "per": "1.00", "lines": "line.colour == 'red'"}]},
         "effects[0].lines"),
        ({"limits": {"per_member": [{"points": 100, "per": "fortnight"}]}}, "limits.per_member[0].per"),
        ({"trigger": "Review Created"}, "trigger"),
        ({"mode": "exclusive"}, "group"),
        ({"pionts": 5}, "pionts"),
    ],
)  # fmt: skip
def test_an_invalid_rule_is_refused_with_its_location_and_nothing_is_saved(uow_factory, program_id, now, fields,
                                                                           location):  # fmt: skip
    definition = {"id": "bad", "trigger": "purchase", "effects": [fixed(10)], **fields}
    with pytest.raises(RuleInvalid) as caught:
        create_rule(uow_factory(), program_id, definition, now)
    assert caught.value.status == 422
    assert caught.value.extra["location"] == location
    with pytest.raises(RuleInvalid):
        validate_rule(uow_factory(), program_id, definition, now)
    assert list_rules(uow_factory(), program_id, include_archived=True) == []


def test_a_cel_syntax_error_names_line_and_column(uow_factory, program_id, now):
    with pytest.raises(RuleInvalid) as caught:
        rule(uow_factory, program_id, now, "bad", fixed(1), condition="purchase.total >= 5000 &&\n  member.tier == ")
    assert (caught.value.extra["line"], caught.value.extra["column"]) == (2, 17)


def test_exclusive_rules_of_one_group_need_different_priorities(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "double", {"type": "multiplier", "factor": "2"}, mode="exclusive",
         group="promo", priority=5)  # fmt: skip
    with pytest.raises(RuleInvalid) as caught:
        rule(uow_factory, program_id, now, "flat", fixed(30), mode="exclusive", group="promo", priority=5)
    assert "overlapping exclusive group" in caught.value.detail
    assert caught.value.extra["location"] == "rules[flat].priority"
    rule(uow_factory, program_id, now, "flat", fixed(30), mode="exclusive", group="promo", priority=4)
    with pytest.raises(RuleInvalid):  # an edit is checked against the others too
        edit_rule(uow_factory(), program_id, "flat", {"priority": 5}, now + timedelta(minutes=1))


def test_validate_reports_what_a_rule_reads_without_saving(uow_factory, program_id, now):
    checked = validate_rule(uow_factory(), program_id, {"id": "x", "trigger": "purchase", "effects": [fixed(1)],
                            "condition": "member.purchase_count == 0 && now.weekday == 6"}, now)  # fmt: skip
    assert checked["reads"] == {"member": ["purchase_count"], "now": ["weekday"]}
    assert checked["new"] is True
    assert list_rules(uow_factory(), program_id) == []


def test_campaigns_with_rules_budget_and_updates(uow_factory, program_id, now):
    created = campaign(uow_factory, program_id, now, "app-first", {"id": "app-bonus", "trigger": "purchase",
                       "channels": ["app"], "effects": [fixed(500)], "limits": {"once_per_member": True}},
                       name="500 Bonuspunkte für die erste Bestellung in der App", budget=10_000)  # fmt: skip
    assert created["budget"] == {"points": 10_000, "spent": 0, "left": 10_000}
    assert [r["id"] for r in created["rules"]] == ["app-bonus"]
    assert created["rules"][0]["campaign"] == "app-first"
    updated = update_campaign(uow_factory(), program_id, "app-first", {"status": "ended", "budget": 20_000}, now)
    assert (updated["status"], updated["budget"]["points"]) == ("ended", 20_000)
    assert [c["id"] for c in list_campaigns(uow_factory(), program_id)] == ["app-first"]
    with pytest.raises(RuleInvalid) as caught:
        update_campaign(uow_factory(), program_id, "app-first", {"ends": "2026-02-01"}, now)
    assert caught.value.extra["location"] == "ends"
    with pytest.raises(RuleExists):
        campaign(uow_factory, program_id, now, "app-first")
    with pytest.raises(NotFound):
        get_campaign(uow_factory(), program_id, "nope")
    # A rule added to a campaign later.
    create_rule(uow_factory(), program_id, {"id": "app-extra", "trigger": "purchase", "effects": [fixed(5)]}, now,
                campaign="app-first")  # fmt: skip
    assert [r["id"] for r in get_campaign(uow_factory(), program_id, "app-first")["rules"]] == ["app-bonus",
                                                                                               "app-extra"]  # fmt: skip


def test_another_programmes_rules_are_out_of_reach(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "bonus", fixed(10))
    other = UUID(create_program(uow_factory(), "Other", "EUR", "Europe/Berlin", {}, now)["id"])
    with pytest.raises(NotFound):
        get_rule(uow_factory(), other, "bonus")
    with pytest.raises(NotFound):
        edit_rule(uow_factory(), other, "bonus", {"priority": 1}, now + timedelta(hours=1))
    assert list_rules(uow_factory(), other) == []
    rule(uow_factory, other, now, "bonus", fixed(99))  # the same id in another programme is another rule
    assert get_rule(uow_factory(), program_id, "bonus")["definition"]["effects"] == [fixed(10)]


def test_export_and_import_round_trip_idempotently(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "saturday", {"type": "multiplier", "factor": "2"}, condition="now.weekday == 6")
    rule(uow_factory, program_id, now, "review", fixed(50), trigger="review.created",
         limits={"per_member": [{"awards": 1, "per": "month"}]})  # fmt: skip
    campaign(uow_factory, program_id, now, "spring", {"id": "spring-bonus", "trigger": "purchase",
             "effects": [fixed(20)]}, budget=1000)  # fmt: skip
    document = export_rules(uow_factory(), program_id)
    assert [r["id"] for r in document["rules"]] == ["review", "saturday"]
    assert [r["id"] for r in document["campaigns"][0]["rules"]] == ["spring-bonus"]

    other = UUID(create_program(uow_factory(), "Copy", "EUR", "Europe/Berlin", {}, now)["id"])
    dry = import_rules(uow_factory(), other, document, now, dry_run=True)
    assert dry["created"] == ["review", "saturday", "spring-bonus"] and list_rules(uow_factory(), other) == []
    first = import_rules(uow_factory(), other, document, now)
    assert (first["created"], first["campaigns_created"]) == (["review", "saturday", "spring-bonus"], ["spring"])
    assert export_rules(uow_factory(), other) == document
    again = import_rules(uow_factory(), other, document, now + timedelta(minutes=1))
    assert again["created"] == again["updated"] == [] and again["campaigns_created"] == []
    assert sorted(again["unchanged"]) == ["review", "saturday", "spring-bonus"]

    document["rules"][1]["effects"] = [{"type": "multiplier", "factor": "3"}]
    changed = import_rules(uow_factory(), other, document, now + timedelta(minutes=2))
    assert changed["updated"] == ["saturday"]
    assert [v["version"] for v in get_rule(uow_factory(), other, "saturday")["versions"]] == [1, 2]


def test_an_import_is_checked_whole_before_anything_is_written(uow_factory, program_id, now):
    document = {"rules": [{"id": "ok", "trigger": "purchase", "effects": [fixed(1)]},
                          {"id": "bad", "trigger": "purchase", "effects": [fixed(0)]}]}  # fmt: skip
    with pytest.raises(RuleInvalid) as caught:
        import_rules(uow_factory(), program_id, document, now)
    assert caught.value.extra["location"] == "rules[1].effects[0].points"
    assert list_rules(uow_factory(), program_id) == []


def test_import_restores_archived_rules_and_can_archive_missing_ones(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "a", fixed(1))
    rule(uow_factory, program_id, now, "b", fixed(2))
    document = export_rules(uow_factory(), program_id)
    archive_rule(uow_factory(), program_id, "a", now)
    restored = import_rules(uow_factory(), program_id, document, now + timedelta(minutes=1))
    assert restored["restored"] == ["a"]
    assert [r["id"] for r in list_rules(uow_factory(), program_id)] == ["a", "b"]
    only_b = {"rules": [r for r in document["rules"] if r["id"] == "b"]}
    pruned = import_rules(uow_factory(), program_id, only_b, now + timedelta(minutes=2), archive_missing=True)
    assert pruned["archived"] == ["a"]
    assert [r["id"] for r in list_rules(uow_factory(), program_id)] == ["b"]


def test_a_live_rule_set_leaves_out_rules_that_no_longer_fit_together(uow_factory, program_id, now):
    def exclusive(rule_id: str) -> StoredRule:
        definition = {"id": rule_id, "trigger": "purchase", "effects": [fixed(5)], "mode": "exclusive",
                      "group": "g", "priority": 1}  # fmt: skip
        return StoredRule(rule_id, None, ((now, definition),))

    with pytest.raises(RuleInvalid):
        build_rule_set([exclusive("a"), exclusive("b")], [], timezone="Europe/Berlin", currency="EUR")
    left_out: list[str] = []
    live = build_rule_set([exclusive("a"), exclusive("b")], [], timezone="Europe/Berlin", currency="EUR",
                          on_invalid=lambda owner, error: left_out.append(owner))  # fmt: skip
    assert [r.id for r in live.rules] == ["a"] and left_out == ["b"]


@pytest.mark.parametrize("table", ["rule_versions", "events"])
def test_rule_versions_and_events_are_append_only(engine, uow_factory, program_id, now, table):
    rule(uow_factory, program_id, now, "bonus", fixed(10))
    event(uow_factory, program_id, enrol(uow_factory, program_id, now), "review.created", now)
    rows = getattr(tables, table)
    mine = rows.c.program_id == program_id
    for statement in (update(rows).where(mine).values(created_at=now), delete(rows).where(mine)):
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(statement)
