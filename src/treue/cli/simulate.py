"""`treue simulate`: a draft programme's rules replayed over a recorded period, beside today's rules."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from treue.cli.common import emit, fail, friendly, program_uuid, uow
from treue.cli.rules import read_document
from treue.services.simulation import simulate as run_simulation


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"invalid_input: {option} '{value}' is not a date (YYYY-MM-DD)")
        raise AssertionError from None  # unreachable; fail() exits


@friendly
def simulate(
    program: Annotated[str, typer.Option("--program", "-p", help="programme id")],
    draft: Annotated[Path, typer.Option("--draft", help="draft rules: a treue.rules/1 document, JSON or YAML")],
    first: Annotated[str, typer.Option("--from", help="first day replayed (programme-local date)")],
    last: Annotated[str, typer.Option("--to", help="last day replayed, inclusive")],
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="how many rules and members to list")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Replay the period's purchases and events against the draft and today's rules; nothing is written."""
    document = read_document(draft)
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=as_json or not sys.stderr.isatty()) as bar:
        task = bar.add_task("replay", total=None)
        factory = uow()
        url = factory.engine.url.render_as_string(hide_password=False)  # the second process reads the same database
        report = run_simulation(factory(read_only=True), program_uuid(program), document, _day(first, "--from"),
                                _day(last, "--to"), top=top, database_url=url,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
    if as_json:
        emit(report)
        return
    now, new = report["current"], report["draft"]
    typer.echo(f"{report['period']['from']} .. {report['period']['to']}: {now['purchases']} purchases, "
               f"{now['events']} events, {now['members']} members, revenue {now['revenue']} {report['currency']}")  # fmt: skip
    typer.echo(f"{'':24}{'current':>16}{'draft':>16}")
    for key in ("points_issued", "points_taken_back", "points_net", "projected_liability", "cost_per_100_revenue"):
        typer.echo(f"{key:24}{now[key]!s:>16}{new[key]!s:>16}")
    typer.echo("top rules of the draft by cost: " + ", ".join(f"{r['rule']} {r['cost']}" for r in new["top_rules"]))
    for member in report["most_affected"]:
        typer.echo(f"  member {member['member_id']}: {member['points_current']} -> {member['points_draft']} points")
