"""Cashback wallet use cases (issue 4): a per-member money account in the same ledger as points.

Cashback comes from the `Cashback` hooks of a purchase's evaluation (rules with a `cashback_percent` effect,
tier and club benefits) and is credited in the purchase's own transaction: a `cashback` transfer programme
cashback account -> member wallet, one lot pending for the programme's return window and expiring after
`cashback_expiry_months` if set. A refund takes back its proportional share under the return policy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.events import Event
from treue.domain.holds import Held, PaymentReturn, return_payment, returned_range
from treue.domain.ledger import AccountKind, Transfer, TransferKind, member_account_id, move, system_account_id
from treue.domain.lots import Lot, NewLot
from treue.domain.money import Money
from treue.domain.points import PointsAccount
from treue.domain.programs import Program
from treue.domain.purchases import Purchase
from treue.domain.rules.effects import Hook
from treue.domain.wallet import WalletAccount, WalletBalance, cashback_lot, cashback_of, cashback_to_take_back
from treue.ids import new_id
from treue.services.ports import UnitOfWork
from treue.services.views import iso

CASHBACK_CREDITED = "cashback.credited"
CASHBACK_REVERSED = "cashback.reversed"
CASHBACK_EXPIRED = "cashback.expired"
PAYMENT_RETURNED = "checkout.payment_returned"


def credit_cashback(uow: UnitOfWork, program: Program, member_id: UUID, hooks: tuple[Hook, ...], purchase: Purchase,
                    now: datetime) -> dict[str, Any] | None:  # fmt: skip
    """Credit the cashback of a purchase's hooks to the member's wallet (inside the purchase's transaction).
    None when there is no cashback."""
    amount, lines = cashback_of(hooks, program.currency)
    if amount.minor <= 0:
        return None
    # The member's points account row is the member's lock (reserve and capture take it first, then the wallet).
    uow.ledger.add_to_balance(program.id, member_id, 0)
    uow.wallet.open(program.id, member_id, program.currency, program.negative_balance_allowed, now)
    wallet = uow.wallet.lock(program.id, member_id, program.currency)
    transfer_id = new_id()
    lot = cashback_lot(program, new_id(), amount, purchase.occurred_at, purchase.id)
    draw = wallet.credit(lot, transfer_id)
    transfer = Transfer(
        transfer_id, TransferKind.CASHBACK, purchase.occurred_at,
        move(system_account_id(program.id, AccountKind.CASHBACK, program.currency), wallet.account_id, amount.minor,
             program.currency),
        member_id=member_id, purchase_id=purchase.id,
        explanation={"reason": "cashback", "order": purchase.external_order_id, "amount": amount.format(),
                     "currency": amount.currency, "cashback": lines},
    )  # fmt: skip
    uow.wallet.record(program.id, transfer, wallet, draw, now)
    credited = {"amount": amount.format(), "currency": amount.currency, "transfer_id": str(transfer_id),
                "available_at": iso(lot.available_at), "expires_at": iso(lot.expires_at), "lines": lines}  # fmt: skip
    uow.emit(program.id, Event(CASHBACK_CREDITED, {"member_id": str(member_id), "purchase_id": str(purchase.id),
                                                   **credited}))  # fmt: skip
    return credited


def reverse_cashback(uow: UnitOfWork, program: Program, purchase: Purchase, refunded_before: int, refund: Money,
                     occurred_at: datetime, now: datetime,
                     wallet: WalletAccount | None = None) -> dict[str, Any] | None:  # fmt: skip
    """Take back a refund's proportional share of the purchase's cashback, from the purchase's own credit first,
    under the programme's return policy (what it does not allow is reported as forgiven). None if the purchase
    credited no cashback. `wallet`: the member's wallet if the refund locked it already (with the purchase's
    lots), else it is locked here."""
    member_id = purchase.member_id
    if member_id is None:
        return None
    account_id = member_account_id(member_id, program.currency)
    credited, cashback_transfer = uow.wallet.cashback_of_purchase(program.id, purchase.id, account_id)
    if credited <= 0:
        return None
    due = cashback_to_take_back(credited, purchase.total.minor, refunded_before, refund.minor, program.rounding)
    if due <= 0:
        return None
    if wallet is None:
        uow.ledger.add_to_balance(program.id, member_id, 0)  # the member's lock first (see credit_cashback)
        wallet = uow.wallet.lock(program.id, member_id, program.currency, purchase_id=purchase.id)
    assert wallet is not None  # it was credited
    own = {lot.id for lot in wallet.account.lots if lot.purchase_id == purchase.id}
    result = wallet.take_back(Money(due, program.currency), now, own, program.return_policy)
    view: dict[str, Any] = {"due": Money(due, program.currency).format(),
                            "taken_back": Money(result.taken, program.currency).format(),
                            "forgiven": Money(result.forgiven, program.currency).format(), "transfer_id": None}  # fmt: skip
    if result.taken > 0:
        transfer_id = new_id()
        transfer = Transfer(
            transfer_id, TransferKind.REVERSE, occurred_at,
            move(wallet.account_id, system_account_id(program.id, AccountKind.CASHBACK, program.currency),
                 result.taken, program.currency),
            member_id=member_id, purchase_id=purchase.id, corrects_id=cashback_transfer,
            explanation={"reason": "refund", "order": purchase.external_order_id, "refund": refund.format(),
                         "currency": program.currency, "cashback_due": view["due"],
                         "cashback_taken_back": view["taken_back"], "cashback_forgiven": view["forgiven"],
                         "return_policy": program.return_policy.value},
        )  # fmt: skip
        uow.wallet.record(program.id, transfer, wallet, result.draw, now)
        view["transfer_id"] = str(transfer_id)
    uow.emit(program.id, Event(CASHBACK_REVERSED, {"member_id": str(member_id), "purchase_id": str(purchase.id),
                                                   "currency": program.currency, **view}))  # fmt: skip
    return view


def return_checkout_payment(uow: UnitOfWork, program: Program, purchase: Purchase, hold: dict[str, Any],
                            refunded_before: int, refund: Money, refund_id: UUID, occurred_at: datetime,
                            now: datetime) -> tuple[dict[str, Any], PointsAccount, WalletAccount | None]:  # fmt: skip
    """Give back a refund's share of what the captured `hold` paid for the purchase: points to the lots they
    came from (as new lots where those expired), wallet money likewise; one reverse transfer per unit, correcting
    the payment transfer, with the refund's id in its explanation. The share is `returned_range`'s.

    Returns the view and the member's locked points account and wallet (loaded with the purchase's lots), for the
    refund's take-back of earned points and cashback that follows: giving back first means that earned points
    or cashback already spent can be taken from what the payment gives back rather than being forgiven."""
    member_id = hold["member_id"]
    base = {"reason": "refund", "refund_id": str(refund_id), "purchase_id": str(purchase.id),
            "order": purchase.external_order_id, "refund": refund.format(), "currency": refund.currency,
            "hold_id": str(hold["id"])}  # fmt: skip
    points_drawn = (
        uow.ledger.allocations_of(program.id, hold["points_transfer_id"]) if hold["points_transfer_id"] else []
    )
    wallet_drawn = (
        uow.wallet.allocations_of(program.id, hold["wallet_transfer_id"]) if hold["wallet_transfer_id"] else []
    )
    # Lock order: the member's points account, then the wallet - as reserve, capture, cashback credits and
    # redemptions take them, so a refund queues behind a checkout of the same member instead of deadlocking.
    account = uow.ledger.lock_accounts(program.id, [member_id], lot_ids=[a.lot_id for a in points_drawn],
                                       purchase_id=purchase.id)[member_id]  # fmt: skip
    view: dict[str, Any] = {"hold_id": str(hold["id"]), "points": 0, "points_to_lots": 0, "points_as_new_lots": 0,
                            "points_transfer_id": None, "wallet": Money(0, program.currency).format(),
                            "wallet_to_lots": Money(0, program.currency).format(),
                            "wallet_as_new_lots": Money(0, program.currency).format(), "wallet_transfer_id": None}  # fmt: skip
    start, end = returned_range(hold["captured_points"] or 0, purchase.total.minor, refunded_before, refund.minor,
                                program.rounding)  # fmt: skip
    if end > start:
        transfer_id = new_id()

        def points_lot(lot: Lot, amount: int) -> NewLot:  # like points earned now, with the lot's partner
            return NewLot(new_id(), amount, now, program.expires_at(now), None, lot.partner)

        back = return_payment(account, points_drawn, start, end, now, transfer_id, points_lot)
        # Not linked to the purchase (purchase_id): tier status points count a purchase's reverse transfers as
        # take-backs of what it earned, and these points were paid, not earned. corrects_id names the payment.
        transfer = Transfer(
            transfer_id, TransferKind.REVERSE, occurred_at,
            move(system_account_id(program.id, AccountKind.REDEMPTION), account.account_id, back.amount),
            member_id=member_id, corrects_id=hold["points_transfer_id"],
            explanation=base | {"points_returned": back.amount, "to_lots": back.to_lots,
                                "as_new_lots": back.as_new_lots},
        )  # fmt: skip
        uow.ledger.record(program.id, transfer, [(account, back.draw)], now)
        view |= {"points": back.amount, "points_to_lots": back.to_lots, "points_as_new_lots": back.as_new_lots,
                 "points_transfer_id": str(transfer_id)}  # fmt: skip
    wallet = uow.wallet.lock(program.id, member_id, program.currency, purchase_id=purchase.id,
                             lot_ids=[a.lot_id for a in wallet_drawn])  # fmt: skip
    start, end = returned_range(hold["captured_wallet_minor"] or 0, purchase.total.minor, refunded_before,
                                refund.minor, program.rounding)  # fmt: skip
    if end > start and wallet is not None:
        transfer_id = new_id()

        def wallet_lot(lot: Lot, amount: int) -> NewLot:  # like cashback credited now
            return NewLot(new_id(), amount, now, program.cashback_expires_at(now), None)

        back = return_payment(wallet.account, wallet_drawn, start, end, now, transfer_id, wallet_lot)
        returned = _money_of(back, program.currency)
        transfer = Transfer(
            transfer_id, TransferKind.REVERSE, occurred_at,
            move(system_account_id(program.id, AccountKind.WALLET_SPENT, program.currency), wallet.account_id,
                 back.amount, program.currency),
            member_id=member_id, corrects_id=hold["wallet_transfer_id"],
            explanation=base | {"wallet_returned": returned["wallet"], "to_lots": returned["wallet_to_lots"],
                                "as_new_lots": returned["wallet_as_new_lots"]},
        )  # fmt: skip
        uow.wallet.record(program.id, transfer, wallet, back.draw, now)
        view |= returned | {"wallet_transfer_id": str(transfer_id)}
    if view["points_transfer_id"] or view["wallet_transfer_id"]:
        uow.emit(program.id, Event(PAYMENT_RETURNED, {"member_id": str(member_id), "purchase_id": str(purchase.id),
                                                      "refund_id": str(refund_id), "currency": program.currency,
                                                      **view}))  # fmt: skip
    return view, account, wallet


def _money_of(back: PaymentReturn, currency: str) -> dict[str, str]:
    return {"wallet": Money(back.amount, currency).format(), "wallet_to_lots": Money(back.to_lots, currency).format(),
            "wallet_as_new_lots": Money(back.as_new_lots, currency).format()}  # fmt: skip


def payment_returned_by(uow: UnitOfWork, program: Program, hold: dict[str, Any] | None,
                        refund_id: UUID) -> dict[str, Any]:  # fmt: skip
    """What a recorded refund gave back of a checkout payment (for the replay of a refund): from the reverse
    transfers that correct the payment and name the refund."""
    points = wallet = 0
    if hold is not None:
        corrected = [x for x in (hold["points_transfer_id"], hold["wallet_transfer_id"]) if x is not None]
        for row in uow.wallet.returns_of(program.id, hold["member_id"], corrected):
            if row["explanation"].get("refund_id") == str(refund_id) and row["amount"] > 0:
                if row["unit"] == program.currency:
                    wallet += row["amount"]
                else:
                    points += row["amount"]
    return {"points_returned": points, "wallet_returned": Money(wallet, program.currency).format()}


def wallet_of(uow: UnitOfWork, program: Program, member_id: UUID) -> WalletAccount:
    """The member's wallet as stored (an empty one if nothing was ever credited); not locked."""
    found = uow.wallet.load(program.id, member_id, program.currency)
    if found is None:
        uow.members.get(program.id, member_id)  # 404 for an unknown member rather than an empty wallet
        return WalletAccount.empty(member_id, member_account_id(member_id, program.currency), program.currency)
    return found  # type: ignore[no-any-return]


def balance_view(balance: WalletBalance) -> dict[str, Any]:
    def money(minor: int) -> str:
        return Money(minor, balance.currency).format()

    return {"currency": balance.currency, "balance": money(balance.total), "available": money(balance.available),
            "pending": money(balance.pending), "held": money(balance.held), "usable": money(balance.usable),
            "next_expiry_at": iso(balance.next_expiry_at),
            "next_expiry_amount": money(balance.next_expiry_minor) if balance.next_expiry_at else None}  # fmt: skip


def get_wallet(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime) -> dict[str, Any]:
    """A member's wallet now: balance, available, pending (return window), held by checkout holds, usable."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        wallet = wallet_of(uow, program, member_id)
        held: Held = uow.wallet.held(program_id, member_id, now)
    return {"member_id": str(member_id), **balance_view(wallet.balance_at(now, held.wallet_minor))}


def wallet_history(uow: UnitOfWork, program_id: UUID, member_id: UUID, limit: int = 50,
                   before: datetime | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The wallet's transfers, newest first: cashback credits, refunds taking it back, checkout payments."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        rows = uow.wallet.history(program_id, member_id, program.currency, min(max(limit, 1), 500), before)
    return [{"transfer_id": str(r["id"]), "kind": r["kind"], "amount": Money(r["amount"], program.currency).format(),
             "currency": program.currency, "occurred_at": iso(r["occurred_at"]), "created_at": iso(r["created_at"]),
             "purchase_id": str(r["purchase_id"]) if r["purchase_id"] else None, "explanation": r["explanation"]}
            for r in rows]  # fmt: skip
