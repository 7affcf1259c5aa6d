"""`treue partners`: Coalition partners, their terms and settlement (also `treue settle`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from treue.cli.common import emit, friendly, now, program_uuid, uow
from treue.services import partners as cases
from treue.services import settlement as settling

partners = typer.Typer(help="Coalition partners, their terms and settlement.", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def _line(p: dict[str, Any]) -> str:
    return (f"{p['code']}  {p['name']}  issues at {p['issue_price']} {p['currency']}/{p['issue_points']} pts  "
            f"redeems at {p['redeem_price']} {p['currency']}/{p['redeem_points']} pts  {p['billing']}")  # fmt: skip


@partners.command("add")
@friendly
def partners_add(
    code: Annotated[str, typer.Argument(help="the partner's code: the `partner` of its purchases and keys")],
    program: Program,
    name: Annotated[str, typer.Option("--name", help="display name")],
    issue_price: Annotated[str, typer.Option("--issue-price", help="what it pays per --issue-points it issues")] = "0",
    issue_points: Annotated[int, typer.Option("--issue-points")] = 1,
    redeem_price: Annotated[str, typer.Option("--redeem-price", help="what it is paid per --redeem-points")] = "0",
    redeem_points: Annotated[int, typer.Option("--redeem-points")] = 1,
    billing: Annotated[str, typer.Option("--billing", help="prepaid or postpaid")] = "postpaid",
    store: Annotated[list[str] | None, typer.Option("--store", help="a store id (repeatable)")] = None,
    channel: Annotated[list[str] | None, typer.Option("--channel", help="a channel (repeatable)")] = None,
    as_json: Json = False,
) -> None:
    """Register a coalition partner with its terms (prices in the programme currency, e.g. 0.01 per 1 point)."""
    values = {"code": code, "name": name, "issue_price": issue_price, "issue_points": issue_points,
              "redeem_price": redeem_price, "redeem_points": redeem_points, "billing": billing,
              "stores": store or [], "channels": channel or []}  # fmt: skip
    created = cases.create_partner(uow()(), program_uuid(program), values, now(), actor="cli")
    emit(created, as_json, _line(created))


@partners.command("list")
@friendly
def partners_list(program: Program, as_json: Json = False) -> None:
    """The programme's partners and their terms."""
    found = cases.list_partners(uow()(read_only=True), program_uuid(program))
    emit(found, as_json, "\n".join(_line(p) for p in found) or "no partners")


@partners.command("show")
@friendly
def partners_show(code: str, program: Program) -> None:
    """One partner with its stores, channels and terms (JSON)."""
    emit(cases.get_partner(uow()(read_only=True), program_uuid(program), code))


@partners.command("settle")
@friendly
def settle(
    program: Program,
    period: Annotated[str, typer.Option("--period", help="a month that has ended, YYYY-MM (programme timezone)")],
    csv: Annotated[bool, typer.Option("--csv", help="print CSV instead of JSON")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to this file")] = None,
) -> None:
    """Settle a month between the programme and its partners. Settling it again prints the stored result."""
    view, created = settling.settle_period(uow()(), program_uuid(program), period, now(), actor="cli")
    typer.echo(f"{'settled' if created else 'already settled'} {view['period']} at {view['settled_at']}", err=True)
    text = settling.settlement_csv(view) if csv else json.dumps(view, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
