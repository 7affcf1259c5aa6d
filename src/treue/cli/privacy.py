"""`treue privacy`: GDPR export and erasure, retention (issue 10)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.domain.durations import require_aware
from treue.services import privacy as cases

privacy = typer.Typer(help="GDPR export and erasure, retention (issue 10).", no_args_is_help=True)
retention = typer.Typer(help="Erase members inactive for longer than the programme's setting.", no_args_is_help=True)
privacy.add_typer(retention, name="retention")

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Member = Annotated[str, typer.Option("--member", "-m", help="member id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


@privacy.command("export")
@friendly
def export(program: Program, member: Member,
           out: Annotated[Path | None, typer.Option("--out", "-o", help="write to this file (else stdout)")] = None,
           ) -> None:  # fmt: skip
    """Everything stored about a member as one JSON document (GDPR art. 15/20). The export is audited."""
    document = cases.export_member(uow()(), program_uuid(program), uuid_arg(member, "member"), now(), actor="cli")
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        fail(f"invalid_input: cannot write {out}: {type(error).__name__}")
    typer.echo(f"exported member {member} to {out}", err=True)


@privacy.command("erase")
@friendly
def erase(program: Program, member: Member,
          reason: Annotated[str, typer.Option("--reason", help="why (kept in the audit log)")] = "",
          yes: Annotated[bool, typer.Option("--yes", help="confirm: erasure cannot be undone")] = False,
          as_json: Json = False) -> None:  # fmt: skip
    """Erase a member's personal data for good; the ledger keeps a pseudonym and the remaining points are
    written off. Needs --reason and --yes."""
    if not reason.strip():
        fail("invalid_input: --reason is needed (it is kept in the audit log)")
    if not yes:
        fail("invalid_input: erasure cannot be undone; add --yes to confirm")
    done = cases.erase_member(uow()(), program_uuid(program), uuid_arg(member, "member"), reason, now(), actor="cli")
    if done["status"] == "already_erased":
        emit(done, as_json, f"member {done['member_id']} was already erased at {done['erased_at']}; nothing changed")
        return
    emit(done, as_json, f"member {done['member_id']} erased; {done['points_forfeited']} points written off")


@retention.command("show")
@friendly
def show(program: Program, as_json: Json = False) -> None:
    """The programme's retention setting."""
    view = cases.get_retention(uow()(), program_uuid(program))
    months = view["retention_months"]
    emit(view, as_json, f"retention: {months} months of inactivity" if months else "retention: off")


@retention.command("set")
@friendly
def set_(program: Program,
         months: Annotated[int | None, typer.Option("--months", help="months of inactivity; leave out with --off")] = None,
         off: Annotated[bool, typer.Option("--off", help="never erase automatically")] = False,
         as_json: Json = False) -> None:  # fmt: skip
    """Erase members inactive for longer than --months (or --off: never)."""
    if (months is None) == (not off):
        fail("invalid_input: give either --months N or --off")
    view = cases.set_retention(uow()(), program_uuid(program), None if off else months, now(), actor="cli")
    months = view["retention_months"]
    emit(view, as_json, f"retention: {months} months of inactivity" if months else "retention: off")


@retention.command("run")
@friendly
def run(program: Program,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="list the members it would erase, erase none")] = False,
        at: Annotated[str | None, typer.Option("--at", help="as of this instant (ISO 8601 with offset); default now")] = None,
        ) -> None:  # fmt: skip
    """Erase the programme's members inactive for longer than its setting (as the `retention` job does)."""
    pid = program_uuid(program)
    if cases.get_retention(uow()(), pid)["retention_months"] is None:
        fail("invalid_input: retention is off for this programme (treue privacy retention set --months N)")
    instant = now()
    if at is not None:
        try:
            instant = require_aware(datetime.fromisoformat(at), "--at")
        except ValueError:
            fail("invalid_input: --at is an instant such as 2027-01-01T00:00:00+00:00")
    emit(cases.run_retention(uow(), instant, pid, dry_run=dry_run, actor="cli"))
