"""`treue referrals`: referral codes, statistics, settings and the moderation of social events (issue 7)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.services import events as event_cases
from treue.services import referrals as cases

referrals = typer.Typer(help="Referrals: codes, statistics, settings; moderation of events.", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


@referrals.command("code")
@friendly
def code(program: Program, member: str = typer.Option(..., "--member", "-m", help="member id"),
         rotate: bool = typer.Option(False, help="replace the code (the old one is refused from now on)"),
         as_json: Json = False) -> None:  # fmt: skip
    """A member's referral code and link, and how the referrals they sent went."""
    member_id = uuid_arg(member, "member")
    if rotate:
        view = cases.rotate_code(uow()(), program_uuid(program), member_id, now(), actor="cli")
    else:
        view = cases.member_referrals(uow()(), program_uuid(program), member_id, now())
    emit(view, as_json, f"{view['code']}  {view['link'] or '(no link: set TREUE_PUBLIC_URL or link_base)'}")


@referrals.command("stats")
@friendly
def stats(program: Program, as_json: Json = False) -> None:
    """The programme's referrals: sent, pending, completed, expired, reversed, rejected by reason, cost."""
    view = cases.program_stats(uow()(), program_uuid(program))
    if as_json:
        emit(view)
        return
    typer.echo(f"sent {view['sent']}  pending {view['pending']}  completed {view['completed']}  "
               f"expired {view['expired']}  reversed {view['reversed']}  rejected {view['rejected']}")  # fmt: skip
    for reason, count in sorted(view["rejected_by_reason"].items()):
        typer.echo(f"  rejected {reason}: {count}")
    typer.echo(f"reward cost {view['reward_cost_points']} points ({view['reward_points']} points, "
               f"{view['coupon_cost_points']} in coupons)")  # fmt: skip


@referrals.command("settings")
@friendly
def settings(program: Program,
             set_: str | None = typer.Option(None, "--set", help='JSON, e.g. \'{"condition": "purchase.total >= 3000"}\''),
             as_json: Json = False) -> None:  # fmt: skip
    """Show the referral settings, or replace them with --set."""
    if set_ is None:
        view = cases.get_settings(uow()(), program_uuid(program))
    else:
        try:
            values = json.loads(set_)
        except ValueError:
            fail("invalid_input: --set is not JSON")
            return
        if not isinstance(values, dict):
            fail("invalid_input: --set must be a JSON object")
        view = cases.put_settings(uow()(), program_uuid(program), values, now(), actor="cli")
    emit(view, as_json, "\n".join(f"{k}: {v}" for k, v in view.items()))


@referrals.command("list")
@friendly
def list_(program: Program, status: str | None = typer.Option(None, help="pending, completed, rejected, ..."),
          limit: int = 100, as_json: Json = False) -> None:  # fmt: skip
    """The programme's referrals, newest first."""
    found = cases.list_referrals(uow()(), program_uuid(program), status, limit)
    if as_json:
        emit(found)
        return
    for r in found:
        why = f" ({r['reason']})" if r["reason"] else ""
        typer.echo(f"{r['id']}  {r['code']}  {r['status']}{why}  referee {r['referee_id']}  {r['created_at']}")


@referrals.command("moderate")
@friendly
def moderate(program: Program, event: str = typer.Option(..., "--event", help="event id"),
             decision: str = typer.Option(..., help="approve or reject"), note: str | None = None,
             as_json: Json = False) -> None:  # fmt: skip
    """Approve or reject an event recorded with moderation pending."""
    view = event_cases.moderate_event(uow()(), program_uuid(program), uuid_arg(event, "event"), decision, now(),
                                      actor="cli", note=note)  # fmt: skip
    emit(view, as_json, f"{view['event_id']}  {view['status']}  {view['points']} point(s)")
