"""`treue rules ...` and `treue events ...`: rules as files (JSON; YAML when PyYAML is installed), custom events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.domain.rules.schema import rules_schema
from treue.services import events as event_cases
from treue.services import rules as rule_cases

rules = typer.Typer(help="Rules and campaigns: list, validate, export and import (JSON; YAML with PyYAML).",
                    no_args_is_help=True)  # fmt: skip
events = typer.Typer(help="Custom events (review.created, social.shared, ...).", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]
DOCUMENT_KEYS = {"format", "rules", "campaigns"}


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        fail("invalid_input: YAML needs PyYAML, which is not installed; use JSON")
    return yaml


def read_document(file: Path) -> Any:
    """A JSON file (or YAML, by its .yaml/.yml suffix, when PyYAML is installed)."""
    if not file.exists():
        fail(f"invalid_input: no such file: {file}")
    text = file.read_text(encoding="utf-8-sig")
    if file.suffix.lower() in (".yaml", ".yml"):
        return _yaml().safe_load(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"invalid_input: {file} is not JSON: {error}")


def dump(data: Any, fmt: str) -> str:
    if fmt == "yaml":
        return str(_yaml().safe_dump(data, allow_unicode=True, sort_keys=False))
    if fmt != "json":
        fail(f"invalid_input: unknown format {fmt!r} (json, yaml)")
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@rules.command("list")
@friendly
def rules_list(program: Program, include_archived: bool = False, as_json: Json = False) -> None:
    """The programme's rules with their latest version."""
    found = rule_cases.list_rules(uow()(), program_uuid(program), include_archived=include_archived)
    if as_json:
        emit(found)
        return
    for rule in found:
        definition = rule["definition"]
        campaign = f"  campaign {rule['campaign']}" if rule["campaign"] else ""
        typer.echo(f"{rule['id']}  v{rule['version']}  {rule['status']}  {definition.get('trigger')}  "
                   f"{rule['name']}{campaign}")  # fmt: skip


@rules.command("export")
@friendly
def rules_export(program: Program, fmt: str = typer.Option("json", "--format", help="json, or yaml with PyYAML"),
                 output: Path | None = typer.Option(None, "--output", "-o", help="file (default: stdout)")) -> None:  # fmt: skip
    """Write the rules and campaigns as a treue.rules/1 document (what `rules import` reads back)."""
    text = dump(rule_cases.export_rules(uow()(), program_uuid(program)), fmt)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@rules.command("import")
@friendly
def rules_import(file: Path, program: Program, dry_run: bool = typer.Option(False, "--dry-run"),
                 archive_missing: bool = typer.Option(False, "--archive-missing")) -> None:  # fmt: skip
    """Bring the rules and campaigns to what FILE says (by id; idempotent). --dry-run only reports."""
    document = read_document(file)
    if not isinstance(document, dict):
        fail("invalid_input: the file must hold a treue.rules/1 document (an object)")
    emit(rule_cases.import_rules(uow()(), program_uuid(program), document, now(), actor="cli", dry_run=dry_run,
                                 archive_missing=archive_missing))  # fmt: skip


@rules.command("validate")
@friendly
def rules_validate(file: Path, program: Program) -> None:
    """Check FILE (one rule definition, or a whole treue.rules/1 document) against the programme, writing
    nothing. Exit 1 with one `error:` line naming the location of the problem."""
    data = read_document(file)
    pid = program_uuid(program)
    if isinstance(data, dict) and DOCUMENT_KEYS & set(data) and "trigger" not in data:
        report = rule_cases.import_rules(uow()(), pid, data, now(), dry_run=True)
        changes = {k: v for k, v in report.items() if k != "dry_run" and v}
        typer.echo("ok: " + (", ".join(f"{len(v)} {k}" for k, v in changes.items()) or "empty document"))
    else:
        if not isinstance(data, dict):
            fail("invalid_input: the file must hold a rule definition or a treue.rules/1 document (an object)")
        result = rule_cases.validate_rule(uow()(read_only=True), pid, data, now())
        typer.echo(f"ok: rule {result['id']} ({'new' if result['new'] else 'next version'}), trigger "
                   f"{result['trigger']}")  # fmt: skip


@rules.command("schema")
def rules_schema_cmd(output: Path | None = typer.Option(None, "--output", "-o")) -> None:
    """Print the JSON Schema (draft 2020-12) of a rules document (docs/rules.schema.json)."""
    text = schema_text()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def schema_text() -> str:
    return json.dumps(rules_schema(), indent=2, ensure_ascii=False) + "\n"


def _attribute(pair: str) -> tuple[str, Any]:
    key, sep, raw = pair.partition("=")
    if not sep or not key.strip():
        fail(f"invalid_input: --attr {pair!r} is not key=value")
    try:
        value = json.loads(raw)  # numbers, true/false, quoted strings, lists
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


@events.command("record")
@friendly
def events_record(program: Program, name: str = typer.Option(..., help="e.g. review.created"),
                  member: str | None = typer.Option(None, help="member id"), card: str | None = None,
                  external_ref: str | None = None, occurred_at: str | None = None,
                  attr: list[str] = typer.Option([], help="key=value (JSON values: stars=5), repeatable"),
                  as_json: Json = False) -> None:  # fmt: skip
    """Record a member's custom event and award what its rules give."""
    at = _instant(occurred_at) if occurred_at else None
    command = event_cases.RecordEvent(name, member_id=uuid_arg(member, "member") if member else None,
                                      card_number=card, external_ref=external_ref,
                                      attributes=dict(_attribute(x) for x in attr), occurred_at=at)  # fmt: skip
    view = event_cases.record_event(uow()(), program_uuid(program), command, now())
    emit(view, as_json, f"{view['id']}  {view['name']}  earned {view['points']} points")


def _instant(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))
