"""`treue export`: bulk export of members, transactions and balances as CSV or JSON Lines (issue 5)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from treue.cli.common import fail, friendly, program_uuid, uow
from treue.services.exports import start_export

exports = typer.Typer(help="Bulk export: members, transactions, balances (CSV or JSON Lines).", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Format = Annotated[str, typer.Option("--format", "-f", help="csv or jsonl")]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="file to write (default: stdout)")]
From = Annotated[str | None, typer.Option("--from", help="recorded at or after (ISO 8601, e.g. 2026-03-01T00:00Z)")]
To = Annotated[str | None, typer.Option("--to", help="recorded before (ISO 8601)")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar and no summary line")]


def _instant(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"invalid_input: {option} '{text}' is not an ISO 8601 time such as 2026-03-01T00:00:00Z")
        raise AssertionError from None  # unreachable; fail() exits


def _export(kind: str, program: str, fmt: str, out: Path | None, start: str | None, end: str | None,
            quiet: bool) -> None:  # fmt: skip
    columns = (TextColumn(f"[bold]exporting {kind}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(
        *columns,
        console=Console(stderr=True),
        redirect_stdout=False,
        transient=True,
        disable=quiet or not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(kind, total=None)
        export = start_export(uow(), program_uuid(program), kind, fmt, _instant(start, "--from"), _instant(end, "--to"),
                              progress=lambda n: bar.advance(task, n))  # fmt: skip
        bar.update(task, total=export.total)
        target: IO[str]
        with out.open("w", encoding="utf-8", newline="") if out else nullcontext(sys.stdout) as target:
            for chunk in export.chunks:
                target.write(chunk)
    if not quiet:
        where = f" to {out}" if out else ""
        typer.echo(f"exported {export.total} {export.unit}{where}", err=True)


@exports.command("members")
@friendly
def members(program: Program, fmt: Format = "csv", out: Out = None, start: From = None, end: To = None,
            quiet: Quiet = False) -> None:  # fmt: skip
    """Every member (enrolled in [--from, --to)), one row each."""
    _export("members", program, fmt, out, start, end, quiet)


@exports.command("transactions")
@friendly
def transactions(program: Program, fmt: Format = "csv", out: Out = None, start: From = None, end: To = None,
                 quiet: Quiet = False) -> None:  # fmt: skip
    """The ledger's transfers booked in [--from, --to): CSV one row per posting, JSON Lines one per transfer."""
    _export("transactions", program, fmt, out, start, end, quiet)


@exports.command("balances")
@friendly
def balances(program: Program, fmt: Format = "csv", out: Out = None, quiet: Quiet = False) -> None:
    """Every account's balance now: members' points and wallets, then the programme's own accounts."""
    _export("balances", program, fmt, out, None, None, quiet)
