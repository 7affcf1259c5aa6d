"""Rule and campaign use cases: create, edit (a new version), archive, read, validate, export and import.

Definitions are plain data (the format of `treue.domain.rules.definitions`); every refusal is a `RuleInvalid`
(422) whose `location` extra names the offending value (`effects[1].per`, `rules[2].condition`...). Every
write is checked against the whole rule set of the programme (e.g. two exclusive rules of one group with the
same priority), under a lock on the programme so that two concurrent edits cannot both pass that check.

Editing a rule never changes history: it adds a version valid from now (or a later instant), and an event is
evaluated against the version in force at its time. Archived rules are no longer evaluated at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from treue.domain.durations import require_aware
from treue.domain.errors import Conflict, RuleInvalid
from treue.domain.programs import Program
from treue.domain.rules import definitions as d
from treue.domain.rules.conditions import Needs
from treue.domain.rules.definitions import Rule, RuleSet
from treue.domain.rules.spec import Spec, join
from treue.domain.rules.stored import StoredCampaign, StoredRule, build_rule_set, campaign_of
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork
from treue.services.views import iso

FORMAT = "treue.rules/1"
_TICK = timedelta(microseconds=1)


class RuleExists(Conflict):
    """A rule or campaign with that id exists already in the programme (409, code `conflict`)."""


class RuleArchived(Conflict):
    """An archived rule cannot be edited (409, code `conflict`); import it again to restore it."""


# -- views ------------------------------------------------------------------------------------------
def rule_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A rule row with its latest version (`version`, `valid_from`, `definition`) or all `versions`."""
    versions = row.get("versions")
    latest = versions[-1] if versions else row
    view: dict[str, Any] = {
        "id": row["id"], "name": row["name"], "campaign": row["campaign_id"],
        "status": "archived" if row["archived_at"] else "active",
        "created_at": iso(row["created_at"]), "archived_at": iso(row["archived_at"]),
        "version": latest["version"], "valid_from": iso(latest["valid_from"]), "definition": latest["definition"],
    }  # fmt: skip
    if versions is not None:
        view["versions"] = [
            {"version": v["version"], "valid_from": iso(v["valid_from"]), "created_at": iso(v["created_at"]),
             "created_by": v["created_by"], "definition": v["definition"]}
            for v in versions
        ]  # fmt: skip
    return view


def campaign_view(row: Mapping[str, Any], rules: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    definition = row["definition"]
    budget, spent = row["budget_points"], row["budget_spent"]
    view: dict[str, Any] = {
        "id": row["id"], "name": row["name"], "status": definition.get("status", "draft"),
        "starts": definition.get("starts"), "ends": definition.get("ends"), "audience": definition.get("audience"),
        "budget": None if budget is None else {"points": budget, "spent": spent, "left": max(budget - spent, 0)},
        "definition": definition, "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
    }  # fmt: skip
    if rules is not None:
        view["rules"] = [rule_view(r) for r in rules]
    return view


# -- checking a change against the whole rule set -----------------------------------------------------
def _rule_set(program: Program, rules: Iterable[StoredRule], campaigns: Iterable[StoredCampaign]) -> RuleSet:
    return build_rule_set(rules, campaigns, timezone=program.timezone, currency=program.currency)


def _with_rule(stored: Sequence[StoredRule], rule: Rule) -> list[StoredRule]:
    """The stored rules with `rule` added or replacing the one with its id."""
    versions = tuple((v.valid_from, v.definition) for v in rule.versions)
    return [r for r in stored if r.id != rule.id] + [StoredRule(rule.id, rule.campaign, versions)]


def _stored(rule_row: Mapping[str, Any]) -> StoredRule:
    return StoredRule(rule_row["id"], rule_row["campaign_id"],
                      tuple((v["valid_from"], v["definition"]) for v in rule_row["versions"]))  # fmt: skip


def _rule_of(program: Program, rule_row: Mapping[str, Any]) -> Rule:
    stored = _stored(rule_row)
    return d.rule_from_versions(stored.id, stored.versions, currency=program.currency, campaign=stored.campaign)


def _json(value: Any) -> Any:
    """A definition as storage gives it back (JSON), for comparing and storing."""
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError):
        raise RuleInvalid("a definition must be plain JSON data (objects, lists, strings, numbers)",
                          location="(definition)") from None  # fmt: skip


def _not_before_now(valid_from: datetime | None, now: datetime) -> datetime:
    at = require_aware(valid_from, "valid_from") if valid_from is not None else now
    if at < now:
        raise RuleInvalid("a new version cannot be valid before now (events already evaluated keep their version)",
                          location="valid_from")  # fmt: skip
    return at


def _needs_view(needs: Needs) -> dict[str, list[str]]:
    return {variable: sorted(fields) for variable, fields in sorted(needs.items())}


# -- rules ----------------------------------------------------------------------------------------------
def create_rule(uow: UnitOfWork, program_id: UUID, definition: Mapping[str, Any], now: datetime, *,
                campaign: str | None = None, valid_from: datetime | None = None,
                actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """A new rule (version 1, valid from `valid_from`, default now), of the programme or of a campaign."""
    at = require_aware(valid_from, "valid_from") if valid_from is not None else now
    data = _json(definition)
    with uow:
        program = uow.programs.get(program_id)
        uow.rules.lock_program(program_id)
        if campaign is not None:
            uow.rules.get_campaign(program_id, campaign)
        rule = d.parse_rule(data, currency=program.currency, valid_from=at, campaign=campaign)
        _refuse_taken_id(uow, program_id, rule.id)
        _rule_set(program, _with_rule(uow.rules.stored_rules(program_id), rule), uow.rules.stored_campaigns(program_id))
        uow.rules.add_rule(program_id, rule.id, rule.latest.name, campaign, now)
        uow.rules.add_version(program_id, rule.id, 1, at, data, now, actor)
        view = rule_view(uow.rules.get_rule(program_id, rule.id))
        record_audit(uow, program_id, actor, "rule.create", "rule", rule.id, None, view, None, now)
        uow.commit()
    uow.rules.forget(program_id)
    return view


def _refuse_taken_id(uow: UnitOfWork, program_id: UUID, rule_id: str, location: str = "id") -> None:
    if uow.rules.exists(program_id, rule_id):
        raise RuleExists(f"a rule with the id {rule_id!r} exists already (archived rules keep their id)",
                         location=location)  # fmt: skip


def edit_rule(uow: UnitOfWork, program_id: UUID, rule_id: str, changes: Mapping[str, Any], now: datetime, *,
              valid_from: datetime | None = None, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Add a version: the latest definition with `changes` applied (a None value removes a field), valid from
    `valid_from` (default now; never before now). Returns the rule with its version history."""
    at = _not_before_now(valid_from, now)
    with uow:
        program = uow.programs.get(program_id)
        uow.rules.lock_program(program_id)
        row = uow.rules.get_rule(program_id, rule_id)
        if row["archived_at"] is not None:
            raise RuleArchived(f"rule {rule_id!r} is archived; import it again to restore it")
        before = rule_view(row)
        edited = d.edit_rule(_rule_of(program, row), _json(dict(changes)), valid_from=at, currency=program.currency)
        _rule_set(program, _with_rule(uow.rules.stored_rules(program_id), edited),
                  uow.rules.stored_campaigns(program_id))  # fmt: skip
        latest = edited.latest
        uow.rules.add_version(program_id, rule_id, latest.version, at, _json(dict(latest.definition)), now, actor)
        uow.rules.set_rule(program_id, rule_id, name=latest.name)
        view = rule_view(uow.rules.get_rule(program_id, rule_id))
        record_audit(uow, program_id, actor, "rule.edit", "rule", rule_id, before, view, None, now)
        uow.commit()
    uow.rules.forget(program_id)
    return view


def archive_rule(uow: UnitOfWork, program_id: UUID, rule_id: str, now: datetime, *,
                 actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Stop evaluating a rule (its versions and the awards it gave stay readable). Archiving twice is harmless."""
    with uow:
        uow.rules.lock_program(program_id)
        row = uow.rules.get_rule(program_id, rule_id)
        if row["archived_at"] is None:
            uow.rules.set_rule(program_id, rule_id, archived_at=now)
            after = rule_view(uow.rules.get_rule(program_id, rule_id))
            record_audit(uow, program_id, actor, "rule.archive", "rule", rule_id, rule_view(row), after, None, now)
            row = uow.rules.get_rule(program_id, rule_id)
        view = rule_view(row)
        uow.commit()
    uow.rules.forget(program_id)
    return view


def get_rule(uow: UnitOfWork, program_id: UUID, rule_id: str) -> dict[str, Any]:
    """A rule with its version history, oldest first."""
    with uow:
        return rule_view(uow.rules.get_rule(program_id, rule_id))


def list_rules(uow: UnitOfWork, program_id: UUID, *, include_archived: bool = False,
               campaign: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Rules with their latest version, by id."""
    with uow:
        uow.programs.get(program_id, cached=True)
        return [rule_view(row) for row in uow.rules.rules(program_id, include_archived=include_archived,
                                                          campaign_id=campaign)]  # fmt: skip


def validate_rule(
    uow: UnitOfWork, program_id: UUID, definition: Mapping[str, Any], now: datetime, *, campaign: str | None = None
) -> dict[str, Any]:
    """Check a definition without saving it: alone, and with the programme's rules (as a new rule, or as the
    next version of the rule with its id). Raises RuleInvalid; returns what the rule reads from the context."""
    data = _json(definition)
    with uow:
        program = uow.programs.get(program_id, cached=True)
        stored = uow.rules.stored_rules(program_id)
        existing = next((r for r in stored if r.id == data.get("id")), None) if isinstance(data, dict) else None
        if existing is not None:
            rule = d.rule_from_versions(existing.id, existing.versions, currency=program.currency,
                                        campaign=existing.campaign)  # fmt: skip
            changes = {k: None for k in rule.latest.definition if k not in data} | data
            rule = d.edit_rule(rule, changes, valid_from=max(now, rule.latest.valid_from) + _TICK,
                               currency=program.currency)  # fmt: skip
        else:
            if campaign is not None:
                uow.rules.get_campaign(program_id, campaign)
            rule = d.parse_rule(data, currency=program.currency, valid_from=now, campaign=campaign)
        _rule_set(program, _with_rule(stored, rule), uow.rules.stored_campaigns(program_id))
    latest = rule.latest
    return {"valid": True, "id": rule.id, "name": latest.name, "trigger": str(latest.trigger),
            "new": existing is None, "reads": _needs_view(latest.needs())}  # fmt: skip


# -- campaigns --------------------------------------------------------------------------------------------
def _campaign_definition(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "rules"}


def create_campaign(uow: UnitOfWork, program_id: UUID, definition: Mapping[str, Any], now: datetime, *,
                    actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """A campaign with its rules (`definition["rules"]`, optional). Its rules are in force from its start (or
    from now, if it starts later), so that late-recorded events inside its window earn by them."""
    data = _json(definition)
    if isinstance(data, dict):
        data.setdefault("rules", [])
    with uow:
        program = uow.programs.get(program_id)
        uow.rules.lock_program(program_id)
        campaign = d.parse_campaign(data, timezone=program.timezone, currency=program.currency, valid_from=now)
        if any(row["id"] == campaign.id for row in uow.rules.campaigns(program_id)):
            raise RuleExists(f"a campaign with the id {campaign.id!r} exists already", location="id")
        at = min(now, campaign.starts_at)
        rule_data = list(data.get("rules") or [])
        stored = uow.rules.stored_rules(program_id)
        for index, rule in enumerate(campaign.rules):
            _refuse_taken_id(uow, program_id, rule.id, join(join("rules", index), "id"))
            stored.append(StoredRule(rule.id, campaign.id, ((at, rule_data[index]),)))
        stored_campaigns = [*uow.rules.stored_campaigns(program_id),
                            StoredCampaign(campaign.id, _campaign_definition(data))]  # fmt: skip
        _rule_set(program, stored, stored_campaigns)
        uow.rules.add_campaign({
            "program_id": program_id, "id": campaign.id, "name": campaign.name,
            "definition": _campaign_definition(data), "created_at": now, "updated_at": now,
            "budget_points": campaign.budget_points, "budget_spent": 0})  # fmt: skip
        for index, rule in enumerate(campaign.rules):
            uow.rules.add_rule(program_id, rule.id, rule.latest.name, campaign.id, now)
            uow.rules.add_version(program_id, rule.id, 1, at, rule_data[index], now, actor)
        view = _campaign(uow, program_id, campaign.id)
        record_audit(uow, program_id, actor, "campaign.create", "campaign", campaign.id, None, view, None, now)
        uow.commit()
    uow.rules.forget(program_id)
    return view


def update_campaign(uow: UnitOfWork, program_id: UUID, campaign_id: str, changes: Mapping[str, Any],
                    now: datetime, *, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Change a campaign's name, window, audience, caps, budget or status (a None value removes a field). Its
    rules are edited one by one (`edit_rule`; `create_rule(campaign=...)` adds one). Takes effect at once."""
    data = _json(dict(changes))
    if "rules" in data:
        raise RuleInvalid("a campaign's rules are edited one by one (edit_rule, create_rule with its campaign)",
                          location="rules")  # fmt: skip
    if data.get("id", campaign_id) != campaign_id:
        raise RuleInvalid("a campaign's id cannot change", location="id")
    with uow:
        program = uow.programs.get(program_id)
        uow.rules.lock_program(program_id)
        row = uow.rules.get_campaign(program_id, campaign_id, lock=True)
        merged = {k: v for k, v in {**row["definition"], **data}.items() if v is not None}
        campaign = campaign_of(StoredCampaign(campaign_id, merged), (), timezone=program.timezone,
                               currency=program.currency)  # fmt: skip
        if campaign.budget_points is not None and campaign.budget_points < row["budget_spent"]:
            raise RuleInvalid(f"{row['budget_spent']} point(s) of the budget are spent already; the budget cannot "
                              "be less", location="budget")  # fmt: skip
        stored_campaigns = [c if c.id != campaign_id else StoredCampaign(campaign_id, merged)
                            for c in uow.rules.stored_campaigns(program_id)]  # fmt: skip
        _rule_set(program, uow.rules.stored_rules(program_id), stored_campaigns)
        before = campaign_view(row)
        uow.rules.update_campaign(program_id, campaign_id, {
            "name": campaign.name, "definition": merged, "updated_at": now, "budget_points": campaign.budget_points})  # fmt: skip
        view = _campaign(uow, program_id, campaign_id)
        record_audit(uow, program_id, actor, "campaign.update", "campaign", campaign_id, before, view, None, now)
        uow.commit()
    uow.rules.forget(program_id)
    return view


def _campaign(uow: UnitOfWork, program_id: UUID, campaign_id: str) -> dict[str, Any]:
    row = uow.rules.get_campaign(program_id, campaign_id)
    return campaign_view(row, uow.rules.rules(program_id, campaign_id=campaign_id))


def get_campaign(uow: UnitOfWork, program_id: UUID, campaign_id: str) -> dict[str, Any]:
    """A campaign with its budget (points, spent, left) and its rules (latest versions)."""
    with uow:
        return _campaign(uow, program_id, campaign_id)


def list_campaigns(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        uow.programs.get(program_id, cached=True)
        return [campaign_view(row) for row in uow.rules.campaigns(program_id)]


# -- export and import ---------------------------------------------------------------------------------
def export_rules(uow: UnitOfWork, program_id: UUID) -> dict[str, Any]:
    """The programme's rules and campaigns (latest versions, not archived) as one JSON-able document that
    `import_rules` reads back."""
    with uow:
        uow.programs.get(program_id, cached=True)
        rows = uow.rules.rules(program_id)
        campaigns = uow.rules.campaigns(program_id)
    by_campaign: dict[str | None, list[Any]] = {}
    for row in rows:
        by_campaign.setdefault(row["campaign_id"], []).append(row["definition"])
    return {
        "format": FORMAT,
        "rules": by_campaign.get(None, []),
        "campaigns": [{**c["definition"], "rules": by_campaign.get(c["id"], [])} for c in campaigns],
    }


def import_rules(uow: UnitOfWork, program_id: UUID, document: Mapping[str, Any], now: datetime, *,
                 actor: str = "import", dry_run: bool = False, archive_missing: bool = False) -> dict[str, Any]:  # fmt: skip
    """Bring the programme's rules and campaigns to what `document` (the `export_rules` format) says, matching
    rules and campaigns by id - a rule's stable name in the definition format. Idempotent: importing the same
    document again changes nothing. A changed rule gets a new version valid from now; an archived rule in the
    document is restored; rules missing from it are left alone, or archived with `archive_missing`. Everything
    is validated (each definition, then the resulting rule set) before anything is written; `dry_run` only
    reports what would change."""
    data = _json(dict(document))
    spec = Spec(data).only("format", "rules", "campaigns")
    if spec.text("format", FORMAT) != FORMAT:
        raise RuleInvalid(f"unknown format (expected {FORMAT})", location="format")
    report: dict[str, list[str]] = {key: [] for key in ("created", "updated", "unchanged", "restored", "archived",
                                                        "campaigns_created", "campaigns_updated",
                                                        "campaigns_unchanged")}  # fmt: skip
    with uow:
        program = uow.programs.get(program_id)
        uow.rules.lock_program(program_id)
        stored = {r.id: r for r in uow.rules.stored_rules(program_id, include_archived=True)}
        rows = {row["id"]: row for row in uow.rules.rules(program_id, include_archived=True)}
        campaign_rows = {row["id"]: row for row in uow.rules.campaigns(program_id)}
        plan = _Plan(program, now, stored, rows, report)
        for index, item in enumerate(spec.items("rules", [])):
            plan.rule(item, join("rules", index), None)
        for index, item in enumerate(spec.items("campaigns", [])):
            location = join("campaigns", index)
            if isinstance(item, dict):
                item.setdefault("rules", [])
            campaign = d.parse_campaign(item, timezone=program.timezone, currency=program.currency, valid_from=now,
                                        location=location)  # fmt: skip
            definition = _campaign_definition(item)
            existing = campaign_rows.get(campaign.id)
            if existing is None:
                report["campaigns_created"].append(campaign.id)
                plan.campaign_writes.append(("create", campaign.id, definition, campaign))
            elif _json(existing["definition"]) != definition:
                if campaign.budget_points is not None and campaign.budget_points < existing["budget_spent"]:
                    raise RuleInvalid(f"{existing['budget_spent']} point(s) of the budget are spent already",
                                      location=join(location, "budget"))  # fmt: skip
                report["campaigns_updated"].append(campaign.id)
                plan.campaign_writes.append(("update", campaign.id, definition, campaign))
            else:
                report["campaigns_unchanged"].append(campaign.id)
            plan.campaigns[campaign.id] = StoredCampaign(campaign.id, definition)
            at = min(now, campaign.starts_at)
            for rule_index, rule_item in enumerate(item.get("rules") or []):
                plan.rule(rule_item, join(join(location, "rules"), rule_index), campaign.id, first_valid_from=at)
        for existing_id in campaign_rows:
            plan.campaigns.setdefault(
                existing_id, StoredCampaign(existing_id, campaign_rows[existing_id]["definition"])
            )
        if archive_missing:
            for rule_id, row in rows.items():
                if rule_id not in plan.seen and row["archived_at"] is None:
                    report["archived"].append(rule_id)
                    plan.live.discard(rule_id)
        live = [plan.stored[rule_id] for rule_id in sorted(plan.live)]
        _rule_set(program, live, plan.campaigns.values())
        if not dry_run:
            plan.write(uow, program_id, actor)
            for rule_id in report["archived"]:
                uow.rules.set_rule(program_id, rule_id, archived_at=now)
            record_audit(uow, program_id, actor, "rules.import", "program", program_id, None,
                         {k: v for k, v in report.items() if v}, None, now)  # fmt: skip
            uow.commit()
    if not dry_run:
        uow.rules.forget(program_id)
    return {"dry_run": dry_run, **report}


class _Plan:
    """What an import will write, built while every definition is checked."""

    def __init__(self, program: Program, now: datetime, stored: dict[str, StoredRule], rows: dict[str, Any],
                 report: dict[str, list[str]]) -> None:  # fmt: skip
        self.program, self.now, self.rows, self.report = program, now, rows, report
        self.stored = dict(stored)
        self.live = {rule_id for rule_id, row in rows.items() if row["archived_at"] is None}
        self.seen: set[str] = set()
        self.campaigns: dict[str, StoredCampaign] = {}
        self.campaign_writes: list[tuple[str, str, dict[str, Any], d.Campaign]] = []
        self.rule_writes: list[tuple[str, Rule, dict[str, Any]]] = []

    def rule(self, data: Any, location: str, campaign: str | None, *, first_valid_from: datetime | None = None) -> None:
        currency = self.program.currency
        rule_id = d.rule_id_of(data, location)
        if rule_id in self.seen:
            raise RuleInvalid(f"the rule id {rule_id!r} appears twice in the document", location=join(location, "id"))
        self.seen.add(rule_id)
        row = self.rows.get(rule_id)
        if row is None:
            rule = d.parse_rule(data, currency=currency, valid_from=first_valid_from or self.now, campaign=campaign,
                                location=location)  # fmt: skip
            self.report["created"].append(rule_id)
            self.rule_writes.append(("create", rule, data))
        else:
            if row["campaign_id"] != campaign:
                where = f"campaign {row['campaign_id']}" if row["campaign_id"] else "the programme (no campaign)"
                raise RuleInvalid(f"rule {rule_id!r} belongs to {where}; it cannot move", location=join(location, "id"))
            rule = d.rule_from_versions(rule_id, self.stored[rule_id].versions, currency=currency, campaign=campaign)
            restored = row["archived_at"] is not None
            if _json(row["definition"]) != data:
                changes = {k: None for k in rule.latest.definition if k not in data} | data
                try:
                    rule = d.edit_rule(rule, changes, valid_from=self.now, currency=currency)
                except RuleInvalid as error:
                    where = join(location, error.extra["location"]) if error.extra.get("location") else location
                    raise RuleInvalid(f"{location}: {error.detail}", **{**error.extra, "location": where}) from None
                self.report["updated"].append(rule_id)
                self.rule_writes.append(("version", rule, data))
            elif not restored:
                self.report["unchanged"].append(rule_id)
            if restored:
                self.report["restored"].append(rule_id)
                self.rule_writes.append(("restore", rule, data))
        self.stored[rule_id] = StoredRule(rule_id, campaign, tuple((v.valid_from, v.definition) for v in rule.versions))
        self.live.add(rule_id)

    def write(self, uow: UnitOfWork, program_id: UUID, actor: str) -> None:
        now = self.now
        for action, campaign_id, definition, campaign in self.campaign_writes:
            if action == "create":
                uow.rules.add_campaign({
                    "program_id": program_id, "id": campaign_id, "name": campaign.name, "definition": definition,
                    "created_at": now, "updated_at": now, "budget_points": campaign.budget_points, "budget_spent": 0})  # fmt: skip
            else:
                uow.rules.update_campaign(program_id, campaign_id, {
                    "name": campaign.name, "definition": definition, "updated_at": now,
                    "budget_points": campaign.budget_points})  # fmt: skip
        for action, rule, data in self.rule_writes:
            latest = rule.latest
            if action == "create":
                uow.rules.add_rule(program_id, rule.id, latest.name, rule.campaign, now)
                uow.rules.add_version(program_id, rule.id, 1, latest.valid_from, data, now, actor)
            elif action == "version":
                uow.rules.add_version(program_id, rule.id, latest.version, latest.valid_from, data, now, actor)
                uow.rules.set_rule(program_id, rule.id, name=latest.name)
            else:
                uow.rules.set_rule(program_id, rule.id, archived_at=None)
