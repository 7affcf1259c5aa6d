"""`treue checkout`: Checkout holds (reserve, capture, release) and cashback wallets."""

from __future__ import annotations

from typing import Annotated

import typer

from treue.cli.common import emit, friendly, now, program_uuid, uow, uuid_arg
from treue.services import checkout as cases
from treue.services import wallet as wallets
from treue.services.purchases import RecordPurchase

checkout = typer.Typer(help="Checkout holds (reserve, capture, release) and cashback wallets.", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", "-p", help="programme id")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]
Store = Annotated[str | None, typer.Option("--store", help="the till's store id")]
Cashier = Annotated[str | None, typer.Option("--cashier", help="the till's cashier id")]


@checkout.command("wallet")
@friendly
def wallet(member: str, program: Program, as_json: Json = False) -> None:
    """A member's cashback wallet: balance, available, pending, held at checkout, usable."""
    view = wallets.get_wallet(uow()(read_only=True), program_uuid(program), uuid_arg(member, "member"), now())
    emit(view, as_json, f"{view['balance']} {view['currency']} (available {view['available']}, pending "
                        f"{view['pending']}, held {view['held']}, usable {view['usable']})")  # fmt: skip


@checkout.command("history")
@friendly
def history(member: str, program: Program, limit: int = 50, as_json: Json = False) -> None:
    """The wallet's transfers, newest first."""
    rows = wallets.wallet_history(uow()(read_only=True), program_uuid(program), uuid_arg(member, "member"), limit)
    emit(rows, as_json, "\n".join(f"{r['created_at']}  {r['kind']:<9} {r['amount']:>10} {r['currency']}"
                                  for r in rows) or "no wallet entries")  # fmt: skip


@checkout.command("reserve")
@friendly
def reserve(member: str, program: Program, points: int = 0,
            wallet_amount: Annotated[str, typer.Option("--wallet", help='wallet money, e.g. "5.00"')] = "0",
            cart_total: Annotated[str | None, typer.Option("--cart-total")] = None,
            minutes: Annotated[int | None, typer.Option("--minutes", help="hold lifetime")] = None,
            reference: str | None = None, store: Store = None, cashier: Cashier = None,
            as_json: Json = False) -> None:  # fmt: skip
    """Keep points and/or wallet money for a cart until the hold expires."""
    command = cases.ReserveHold(member_id=uuid_arg(member, "member"), points=points, wallet_amount=wallet_amount,
                                cart_total=cart_total, expires_in_minutes=minutes, reference=reference,
                                store=store, cashier=cashier)  # fmt: skip
    view = cases.reserve(uow()(), program_uuid(program), command, now())
    emit(view, as_json, f"hold {view['id']}: {view['points']} points, {view['wallet_amount']} {view['currency']} "
                        f"until {view['expires_at']}")  # fmt: skip


@checkout.command("capture")
@friendly
def capture(hold: str, program: Program, order_id: Annotated[str, typer.Option("--order-id")],
            total: Annotated[str, typer.Option("--total", help="the whole cart")],
            points: Annotated[int | None, typer.Option("--points", help="fewer points than held")] = None,
            wallet_amount: Annotated[str | None, typer.Option("--wallet", help="less wallet money than held")] = None,
            store: Store = None, cashier: Cashier = None, as_json: Json = False) -> None:  # fmt: skip
    """Pay with the hold and record the order as a purchase, in one transaction."""
    pid, at = program_uuid(program), now()
    with uow()(read_only=True) as reading:
        currency = reading.programs.get(pid).currency
    order = RecordPurchase(external_order_id=order_id, total=total, currency=currency, occurred_at=at, store=store,
                           cashier=cashier)  # fmt: skip
    view = cases.capture(uow()(), pid, uuid_arg(hold, "hold"), cases.CaptureHold(order, points, wallet_amount), at)
    paid = view["paid"]
    emit(view, as_json, f"captured: {paid['points']} points ({paid['points_value']}), wallet {paid['wallet']}, "
                        f"money {paid['money']} {paid['currency']}; earned {view['purchase']['points_earned']}")  # fmt: skip


@checkout.command("release")
@friendly
def release(hold: str, program: Program, store: Store = None, cashier: Cashier = None, as_json: Json = False) -> None:
    """Give a hold's points and wallet money back (cart abandoned)."""
    view = cases.release(uow()(), program_uuid(program), uuid_arg(hold, "hold"), now(), store, cashier)
    emit(view, as_json, f"hold {view['id']}: {view['state']}")


@checkout.command("show")
@friendly
def show(hold: str, program: Program, as_json: Json = False) -> None:
    """A hold and its state now (active, expired, captured, released)."""
    view = cases.get_hold(uow()(read_only=True), program_uuid(program), uuid_arg(hold, "hold"), now())
    emit(view, as_json, f"hold {view['id']}: {view['state']}, {view['points']} points, {view['wallet_amount']} "
                        f"{view['currency']}, expires {view['expires_at']}")  # fmt: skip
