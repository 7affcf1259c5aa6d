"""`treue club`: Paid premium club: plans, subscriptions, payments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow, uuid_arg
from treue.services import club as cases

club = typer.Typer(help="Paid premium club: plans, subscriptions, payments.", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Member = Annotated[str, typer.Option("--member", "-m", help="member id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def _instant(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"invalid_input: {what} '{text}' is not an ISO 8601 instant such as 2026-03-01T00:00:00Z")
        raise AssertionError from None  # unreachable; fail() exits


@club.command("plans")
@friendly
def plans(program: Program, as_json: Json = False) -> None:
    """The programme's club plans."""
    found = cases.list_plans(uow()(), program_uuid(program))
    if as_json:
        emit(found)
        return
    for p in found:
        state = "" if p["active"] else "  (inactive)"
        typer.echo(f"{p['code']}  {p['price']} {p['currency']}/{p['interval']}  trial {p['trial_days']}d  "
                   f"{p['name'].get('en') or p['name'].get('de')}{state}")  # fmt: skip


@club.command("create-plan")
@friendly
def create_plan(program: Program, code: str = typer.Option(...), price: str = typer.Option(..., help='e.g. "9.90"'),
                name_de: str | None = typer.Option(None, "--name-de"), name_en: str | None = typer.Option(None, "--name-en"),
                interval: str = typer.Option("month", help="month or year"), trial_days: int = 0, grace_days: int = 7,
                multiplier: str | None = typer.Option(None, help='earn multiplier, e.g. "1.5"'),
                cashback: str | None = typer.Option(None, help='cashback percent, e.g. "2"'),
                perk: list[str] = typer.Option([], help="a perk flag such as free_shipping (repeatable)"),
                bonus_points: int = typer.Option(0, help="points per paid period"),
                voucher_reward: str | None = typer.Option(None, help="reward id issued as a coupon per paid period"),
                as_json: Json = False) -> None:  # fmt: skip
    """Create a club plan."""
    name = {k: v for k, v in (("de", name_de), ("en", name_en)) if v}
    if not name:
        fail("invalid_input: give the plan a name with --name-de and/or --name-en")
    benefits: dict[str, object] = {"perks": perk}
    if multiplier is not None:
        benefits["earn_multiplier"] = multiplier
    if cashback is not None:
        benefits["cashback_percent"] = cashback
    values = {"code": code, "name": name, "price": price, "interval": interval, "trial_days": trial_days,
              "grace_days": grace_days, "benefits": benefits, "bonus_points": bonus_points,
              "voucher_reward_id": str(uuid_arg(voucher_reward, "reward")) if voucher_reward else None}  # fmt: skip
    view = cases.create_plan(uow()(), program_uuid(program), values, now(), actor="cli")
    emit(view, as_json, f"{view['code']}  {view['price']} {view['currency']}/{view['interval']}  created")


@club.command("join")
@friendly
def join(program: Program, member: Member, plan: str = typer.Option(..., help="plan code"),
         payment_ref: str | None = typer.Option(None, help="provider reference of the first payment"),
         amount: str | None = None, currency: str | None = None, as_json: Json = False) -> None:  # fmt: skip
    """A member joins the club (with the first payment when the plan has no trial)."""
    pid = program_uuid(program)
    payment = None
    if payment_ref:
        if amount is None or currency is None:
            fail("invalid_input: --amount and --currency are needed with --payment-ref")
        payment = cases.PaymentInput(payment_ref, str(amount), str(currency))
    view = cases.join_club(uow()(), pid, uuid_arg(member, "member"), plan, now(), payment, actor="cli")
    emit(view, as_json, f"{view['id']}  {view['plan']}  {view['status']}  until {view['current_period']['end']}")


@club.command("pay")
@friendly
def pay(program: Program, member: Member, reference: str = typer.Option(..., help="the provider's reference"),
        amount: str = typer.Option(...), currency: str = typer.Option(...),
        status: str = typer.Option("succeeded", help="succeeded or failed"),
        period_start: str | None = typer.Option(None, help="the period paid (default: the next one due)"),
        as_json: Json = False) -> None:  # fmt: skip
    """Record a payment the payment provider reported (idempotent by its reference)."""
    payment = cases.PaymentInput(reference, amount, currency, status, _instant(period_start, "--period-start"))
    view = cases.record_payment(uow()(), program_uuid(program), uuid_arg(member, "member"), payment, now())
    emit(view, as_json, f"{view['id']}  {view['status']}  {view['amount']} {view['currency']}  period "
                        f"{view['period']['index']} {view['period']['start']} - {view['period']['end']}")  # fmt: skip


@club.command("cancel")
@friendly
def cancel(program: Program, member: Member, immediately: bool = typer.Option(False, "--immediately"),
           reason: str | None = None, as_json: Json = False) -> None:  # fmt: skip
    """Cancel the member's subscription at the end of the paid period (or --immediately)."""
    view = cases.cancel_subscription(uow()(), program_uuid(program), uuid_arg(member, "member"), now(),
                                     at_period_end=not immediately, reason=reason, actor="cli")  # fmt: skip
    emit(view, as_json, f"{view['id']}  {view['status']}  ends {view['cancel_at']}")


@club.command("show")
@friendly
def show(program: Program, member: Member, as_json: Json = False) -> None:
    """The member's subscription, its payments and perks, and the benefits in force now."""
    view = cases.member_club(uow()(), program_uuid(program), uuid_arg(member, "member"), now())
    sub = view["subscription"]
    text = "no club subscription" if sub is None else (
        f"{sub['id']}  {sub['plan']}  {sub['status']}  period {sub['current_period']['start']} - "
        f"{sub['current_period']['end']}  benefits {'yes' if sub['benefits_apply'] else 'no'}")  # fmt: skip
    emit(view, as_json, text)
