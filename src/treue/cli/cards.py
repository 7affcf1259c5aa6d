"""`treue cards`: Linked payment cards, card-transaction feeds, card-linked offers (issue 11)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.services import card_feeds, offers
from treue.services import cards as cases

cards = typer.Typer(
    help="Linked payment cards, card-transaction feeds, card-linked offers (issue 11).", no_args_is_help=True
)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Member = Annotated[str, typer.Option("--member", "-m", help="member id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def _expiry(text: str) -> tuple[int, int]:
    try:
        month, year = text.split("/")
        return int(month), int(year) if len(year) == 4 else 2000 + int(year)
    except ValueError:
        fail("invalid_input: --expiry is MM/YYYY, e.g. 12/2028")
        raise AssertionError from None  # unreachable; fail() exits


@cards.command("link")
@friendly
def link(program: Program, member: Member, token: str = typer.Option(..., help="the payment provider's token"),
         brand: str = typer.Option(..., help="visa, mastercard, amex, ..."),
         last4: str = typer.Option(..., "--last4", help="the card's last 4 digits"),
         expiry: str = typer.Option(..., help="MM/YYYY"), as_json: Json = False) -> None:  # fmt: skip
    """Link a payment card to a member by its provider token (never a card number)."""
    month, year = _expiry(expiry)
    view = cases.link_card(uow()(), program_uuid(program), uuid_arg(member, "member"),
                           {"token": token, "brand": brand, "last4": last4, "exp_month": month, "exp_year": year},
                           now(), actor="cli")  # fmt: skip
    emit(view, as_json, f"{view['id']}  {view['brand']} **** {view['last4']}  {view['status']}"
                        + ("" if view["created"] else "  (linked already)"))  # fmt: skip


@cards.command("list")
@friendly
def list_cards(program: Program, member: Member, include_unlinked: bool = typer.Option(False, "--all"),
               as_json: Json = False) -> None:  # fmt: skip
    """The member's linked cards (--all: with unlinked ones)."""
    found = cases.member_cards(uow()(), program_uuid(program), uuid_arg(member, "member"), now(),
                               include_unlinked=include_unlinked)  # fmt: skip
    if as_json:
        emit(found)
        return
    for card in found:
        typer.echo(f"{card['id']}  {card['brand']} **** {card['last4']}  {card['exp_month']:02d}/{card['exp_year']}  "
                   f"{card['status']}  since {card['linked_at']}")  # fmt: skip


@cards.command("unlink")
@friendly
def unlink(card_id: str, program: Program, member: Member, reason: str | None = None, as_json: Json = False) -> None:
    """Unlink a card now (purchases from now on no longer match; history stays)."""
    view = cases.unlink_card(uow()(), program_uuid(program), uuid_arg(member, "member"), uuid_arg(card_id, "card"),
                             now(), reason, actor="cli")  # fmt: skip
    emit(view, as_json, f"{view['id']}  {view['status']}  {view['unlinked_at']}")


@cards.command("merchant")
@friendly
def merchant(merchant_id: str, program: Program, partner: str = typer.Option("default", help="partner code"),
             as_json: Json = False) -> None:  # fmt: skip
    """Map an acquirer's merchant id to a partner of the programme."""
    view = cases.set_merchant(uow()(), program_uuid(program), merchant_id, partner, now(), actor="cli")
    emit(view, as_json, f"{view['merchant_id']} -> {view['partner']}")


@cards.command("import-feed")
@friendly
def import_feed(file: Path, program: Program,
                fmt: str | None = typer.Option(None, "--format", help="csv or jsonl (default: from the file name)"),
                as_json: Json = False) -> None:  # fmt: skip
    """Import an acquirer's card-transaction feed (CSV or JSON Lines). Idempotent: a second run changes nothing.

    Columns: merchant_id,token,amount,currency,occurred_at,authorisation_code,type[,original_authorisation_code,
    brand]; type is sale, refund or chargeback."""
    if not file.exists():
        fail(f"invalid_input: no such file: {file}")
    chosen = fmt or ("jsonl" if file.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv")
    if chosen not in ("csv", "jsonl"):
        fail("invalid_input: --format is csv or jsonl")
    text = file.read_text(encoding="utf-8-sig")
    pid = program_uuid(program)
    columns = (TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=as_json or not sys.stderr.isatty()) as bar:
        task = bar.add_task("feed", total=card_feeds.count_lines(text, chosen))
        report = card_feeds.import_feed(uow(), pid, text, chosen, now(), filename=file.name,
                                        progress=lambda n: bar.advance(task, n))  # fmt: skip
    if as_json:
        emit(report)
        return
    for error in report["errors"]:
        typer.echo(f"line {error['line']}: {error['code']}: {error['message']}", err=True)
    typer.echo(f"done: {report['lines']} lines, {report['sales']} sales ({report['matched']} matched to members, "
               f"{report['anonymous']} anonymous), {report['refunds']} refunds, {report['chargebacks']} chargebacks, "
               f"{report['already_imported']} already imported, {len(report['errors'])} errors; "
               f"{report['points_earned']} points earned, {report['points_taken_back']} taken back")  # fmt: skip


@cards.command("create-offer")
@friendly
def create_offer(program: Program, file: Path = typer.Option(..., help="the offer as JSON (see docs/cards.md)"),
                 as_json: Json = False) -> None:  # fmt: skip
    """Create a card-linked offer from a JSON file."""
    try:
        data: Any = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        fail(f"invalid_input: cannot read {file}: {type(error).__name__}")
        raise AssertionError from None
    if not isinstance(data, dict):
        fail("invalid_input: the offer file must hold a JSON object")
    view = offers.create_offer(uow()(), program_uuid(program), data, now(), actor="cli")
    emit(view, as_json, f"{view['code']}  {view['starts_at']} - {view['ends_at']}  {view['status']}")


@cards.command("offers")
@friendly
def list_offers(program: Program, member: Annotated[str | None, typer.Option("--member", "-m")] = None,
                as_json: Json = False) -> None:  # fmt: skip
    """The programme's offers with their funnel, or (--member) the member's offers and where they stand."""
    pid = program_uuid(program)
    if member:
        found = offers.member_offers(uow()(), pid, uuid_arg(member, "member"), now())
        lines = [f"{o['code']}  {o['state']}  uses {o['uses']}" for o in found]
    else:
        found = offers.list_offers(uow()(), pid, now())
        lines = [f"{o['code']}  {o['status']}  shown {o['members_shown']}  activated {o['members_activated']}  "
                 f"uses {o['uses']}" for o in found]  # fmt: skip
    if as_json:
        emit(found)
        return
    for line in lines:
        typer.echo(line)


@cards.command("activate")
@friendly
def activate(offer: str, program: Program, member: Member, as_json: Json = False) -> None:
    """A member activates an offer."""
    view = offers.activate_offer(uow()(), program_uuid(program), uuid_arg(member, "member"), offer, now())
    emit(view, as_json, f"{view['code']}  {view['state']}")
