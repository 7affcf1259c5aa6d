"""`treue tiers`: Tier ladders, member tiers and progress."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.services import tiers as cases

tiers = typer.Typer(help="Tier ladders, member tiers and progress.", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Member = Annotated[str, typer.Option("--member", "-m", help="member id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


@tiers.command("show")
@friendly
def show(program: Program, as_json: Json = False) -> None:
    """The programme's tier ladder."""
    ladder = cases.get_ladder(uow()(), program_uuid(program))
    if as_json:
        emit(ladder)
        return
    if not ladder["tiers"]:
        typer.echo("no tier ladder (set one with: treue tiers set --file ladder.json)")
        return
    typer.echo(f"basis {ladder['basis']}, review {ladder['review']}, grace {ladder['grace_days']}d, "
               f"notice {ladder['notice_days']}d")  # fmt: skip
    for tier in ladder["tiers"]:
        b = tier["benefits"]
        perks = ", ".join(b["perks"]) or "-"
        typer.echo(f"{tier['code']:<10} {tier['threshold']!s:>10} in {tier['window']:<13} "
                   f"x{b['earn_multiplier']} {b['cashback_percent']}% back  perks: {perks}")  # fmt: skip


@tiers.command("set")
@friendly
def set_ladder(program: Program, file: Path = typer.Option(..., help="the ladder as JSON (see docs/tiers.md)"),
               as_json: Json = False) -> None:  # fmt: skip
    """Replace the programme's tier ladder from a JSON file."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        fail(f"invalid_input: cannot read {file}: {error}")
    view = cases.set_ladder(uow()(), program_uuid(program), data, now(), actor="cli")
    emit(view, as_json, f"ladder set: {', '.join(t['code'] for t in view['tiers'])}")


@tiers.command("member")
@friendly
def member(program: Program, member_id: Member, as_json: Json = False) -> None:
    """A member's tier, progress to the next tier and the next review."""
    view = cases.member_tier(uow()(), program_uuid(program), uuid_arg(member_id, "member"), now())
    if as_json or view["tier"] is None:
        emit(view)
        return
    typer.echo(f"tier {view['tier']['code']} (earned: {view['earned_tier']}), basis {view['basis']} "
               f"in {view['window']}: {view['amount']}")  # fmt: skip
    if view["next_tier"]:
        typer.echo(f"next: {view['next_tier']['code']}, still needed {view['needed']}")
    typer.echo(f"secured until: {view['secured_until'] or 'no review'}")
    if view["review"] and view["review"]["downgrade_to"]:
        typer.echo(f"at the review {view['review']['decides_at']}: down to {view['review']['downgrade_to']}")


@tiers.command("assign")
@friendly
def assign(program: Program, member_id: Member, tier: str = typer.Option(..., help="tier code"),
           until: str | None = typer.Option(None, help="expiry as ISO 8601, e.g. 2026-12-31T23:00:00Z"),
           reason: str | None = None, as_json: Json = False) -> None:  # fmt: skip
    """Assign a tier by hand (a VIP), optionally until an instant."""
    expiry = None
    if until is not None:
        try:
            expiry = datetime.fromisoformat(until.replace("Z", "+00:00"))
        except ValueError:
            fail(f"invalid_input: until '{until}' is not an ISO 8601 instant such as 2026-12-31T23:00:00Z")
    view = cases.assign_tier(uow()(), program_uuid(program), uuid_arg(member_id, "member"), tier, expiry, reason,
                             now(), actor="cli")  # fmt: skip
    emit(view, as_json, f"{member_id}: tier {view['tier']['code']} until {view['secured_until'] or 'removed'}")


@tiers.command("unassign")
@friendly
def unassign(program: Program, member_id: Member, reason: str | None = None, as_json: Json = False) -> None:
    """Remove a manual tier assignment."""
    view = cases.unassign_tier(uow()(), program_uuid(program), uuid_arg(member_id, "member"), reason, now(),
                               actor="cli")  # fmt: skip
    emit(view, as_json, f"{member_id}: tier {view['tier']['code']} (earned)")
