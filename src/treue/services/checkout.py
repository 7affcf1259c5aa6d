"""Checkout use cases (issue 4) for tills and shops: preview, reserve (a hold), capture, release.

Two-phase payment with points and wallet money: `reserve` places a hold that keeps them for a cart until it
expires; `capture` (on order completion) pays with them and records the purchase in the same transaction;
`release` gives them back (cart abandoned). An expired hold releases itself: usable amounts only count holds
whose expiry lies ahead. Each step records the till's store and cashier: the hold keeps who reserved it and who
captured or released it, the purchase who sold it, and the payment transfers' explanations name both. Every use case that reserves or pays takes the member's points account row lock first
(as redeeming does), then the wallet's: reserves of one member queue there and can never over-reserve.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.errors import CurrencyMismatch, HoldNotActive, InvalidInput
from treue.domain.events import Event
from treue.domain.holds import (
    Hold,
    HoldState,
    HoldStatus,
    check_payment_within_total,
    check_redemption,
    check_reservable,
    hold_expiry,
    max_points_payable,
    points_value,
)
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.money import Money
from treue.domain.programs import Program
from treue.domain.rewards import Reward
from treue.ids import new_id
from treue.services.fraud import refuse_redemption
from treue.services.members import resolve_member
from treue.services.ports import UnitOfWork
from treue.services.purchases import RecordPurchase, preview_purchase, record_purchase
from treue.services.views import iso
from treue.services.wallet import balance_view, wallet_of

HOLD_PLACED = "checkout.hold_placed"
HOLD_CAPTURED = "checkout.hold_captured"
HOLD_RELEASED = "checkout.hold_released"


@dataclass
class ReserveHold:
    member_id: UUID | None = None
    card_number: str | None = None
    external_ref: str | None = None
    points: int = 0
    wallet_amount: str | int = 0  # major units as a decimal string
    currency: str | None = None  # defaults to the programme's
    cart_total: str | int | None = None  # if given, points and wallet may not pay more than it
    expires_in_minutes: int | None = None  # defaults to the programme's hold_minutes
    reference: str | None = None  # the till's cart or order reference
    partner: str = "default"
    store: str | None = None  # the till's store and cashier (issue 5)
    cashier: str | None = None


@dataclass
class CaptureHold:
    purchase: RecordPurchase  # the completed order; its member is the hold's
    points: int | None = None  # pay with fewer points than held (the rest is released); default: all
    wallet_amount: str | int | None = None  # likewise for wallet money


def _usable(uow: UnitOfWork, program: Program, member_id: UUID, now: datetime, lock: bool) -> dict[str, Any]:
    """The member's points and wallet, and what active holds keep of them."""
    if lock:
        points = uow.ledger.lock_accounts(program.id, [member_id])[member_id]
        wallet = uow.wallet.lock(program.id, member_id, program.currency)
        if wallet is None:
            wallet = wallet_of(uow, program, member_id)
    else:
        points = uow.ledger.load_account(program.id, member_id)
        wallet = wallet_of(uow, program, member_id)
    held = uow.wallet.held(program.id, member_id, now)
    return {"points": points, "wallet": wallet, "held": held,
            "usable_points": max(points.available(now) - held.points, 0),
            "usable_wallet": Money(max(wallet.available(now) - held.wallet_minor, 0), program.currency)}  # fmt: skip


def preview_checkout(uow: UnitOfWork, program_id: UUID, cmd: RecordPurchase, now: datetime) -> dict[str, Any]:
    """What a cart earns (the purchase preview, rule by rule), the rewards the member can afford, the points and
    wallet money usable, and the most points payable as money for this cart. Writes nothing."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        earn = preview_purchase(uow, program_id, cmd, now)
        view: dict[str, Any] = {"earn": earn, "store": cmd.store, "cashier": cmd.cashier,
                                "earn_on_money_only": program.earn_on_money_only,
                                "point_value": {"amount": Money(program.point_value_minor, program.currency).format(),
                                                "per_points": program.point_value_points},
                                "min_redemption_points": program.min_redemption_points}  # fmt: skip
        if earn["member_id"] is None:
            return view | {"member_id": None, "points": None, "wallet": None, "rewards": []}
        member_id = UUID(earn["member_id"])
        got = _usable(uow, program, member_id, now, lock=False)
        rewards = uow.rewards.all(program_id, active_only=True)
    total = Money.parse(cmd.total, cmd.currency)
    usable_points, usable_wallet = got["usable_points"], got["usable_wallet"]
    best = max_points_payable(program, usable_points, total.minor)
    wallet_payable = min(usable_wallet.minor, total.minor)
    balance = got["points"].balance_at(now)
    view |= {
        "member_id": str(member_id),
        "points": {"balance": balance.total, "available": balance.available, "pending": balance.pending,
                   "held": got["held"].points, "usable": usable_points,
                   "max_payable": best, "max_payable_value": points_value(program, best).format()},
        "wallet": balance_view(got["wallet"].balance_at(now, got["held"].wallet_minor))
        | {"max_payable": Money(wallet_payable, program.currency).format()},
        "rewards": [_reward_view(r, program) for r in rewards if _affordable(r, usable_points, now)],
    }  # fmt: skip
    return view


def _affordable(reward: Reward, points: int, now: datetime) -> bool:
    return reward.cost_points <= points and (reward.valid_from is None or reward.valid_from <= now) and (
        reward.valid_until is None or reward.valid_until > now) and (reward.stock is None or reward.stock > 0)  # fmt: skip


def _reward_view(reward: Reward, program: Program) -> dict[str, Any]:
    return {"id": str(reward.id), "name": reward.localized_name(program.default_locale), "type": reward.type.value,
            "cost_points": reward.cost_points}  # fmt: skip


def reserve(uow: UnitOfWork, program_id: UUID, cmd: ReserveHold, now: datetime) -> dict[str, Any]:
    """Place a hold on points and/or wallet money for a cart, within what is usable now."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        currency = cmd.currency or program.currency
        if currency != program.currency:
            raise CurrencyMismatch(f"the programme runs in {program.currency}, the hold is in {currency}")
        wallet_minor = Money.parse(cmd.wallet_amount, currency).minor
        if cmd.points < 0 or wallet_minor < 0:
            raise InvalidInput("points and wallet amount to reserve cannot be negative")
        check_redemption(program, cmd.points)
        if cmd.cart_total is not None:
            check_payment_within_total(program, cmd.points, wallet_minor, Money.parse(cmd.cart_total, currency).minor)
        expires_at = hold_expiry(program, now, cmd.expires_in_minutes)
        member_id = resolve_member(uow, program_id, member_id=cmd.member_id, card_number=cmd.card_number,
                                   external_ref=cmd.external_ref)  # fmt: skip
        hold = Hold(new_id(), member_id, currency, cmd.points, wallet_minor, expires_at)
        got = _usable(uow, program, member_id, now, lock=True)  # the member's lock: reserves queue here
        check_reservable(cmd.points, wallet_minor, got["usable_points"], got["usable_wallet"])
        if cmd.points > 0:  # paying with points is redeeming them: the programme's redeem caps apply (issue 10)
            refuse_redemption(uow, program, member_id, cmd.points, now)
        row = {"program_id": program_id, "id": hold.id, "member_id": member_id, "partner": cmd.partner or "default",
               "reference": cmd.reference, "currency": currency, "points": hold.points, "wallet_minor": wallet_minor,
               "status": HoldStatus.HELD.value, "expires_at": expires_at, "created_at": now,
               "store": cmd.store, "cashier": cmd.cashier}  # fmt: skip
        uow.wallet.add_hold(row)
        view = hold_view(row, program, now)
        uow.emit(program_id, Event(HOLD_PLACED, {"hold_id": view["id"], "member_id": str(member_id),
                                                 "points": hold.points, "wallet_amount": view["wallet_amount"],
                                                 "currency": currency, "expires_at": view["expires_at"],
                                                 **_till(cmd.store, cmd.cashier)}))  # fmt: skip
        uow.commit()
    return view


def capture(uow: UnitOfWork, program_id: UUID, hold_id: UUID, cmd: CaptureHold, now: datetime) -> dict[str, Any]:
    """Pay with the hold's points and wallet money and record the purchase, in one transaction.

    If the programme earns on money only, the purchase is recorded with the amount paid with money as its total
    (the lines stay as bought, so the difference reads like an order discount), so rules and cashback see only
    that; otherwise with the whole cart."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        found = uow.wallet.get_hold(program_id, hold_id)
        member_id = found["member_id"]
        if cmd.purchase.currency != found["currency"]:
            raise CurrencyMismatch(f"the hold is in {found['currency']}, the purchase in {cmd.purchase.currency}")
        other = cmd.purchase.member_id not in (None, member_id)
        if other or cmd.purchase.card_number or cmd.purchase.external_ref:
            raise InvalidInput("the purchase of a capture belongs to the hold's member: leave the member out")
        got = _usable(uow, program, member_id, now, lock=True)  # member lock first, then the hold row
        row = uow.wallet.get_hold(program_id, hold_id, lock=True)
        hold = _hold(row)
        hold.check_capturable(now)
        points = hold.points if cmd.points is None else cmd.points
        wallet = Money(hold.wallet_minor, hold.currency) if cmd.wallet_amount is None else Money.parse(
            cmd.wallet_amount, hold.currency)  # fmt: skip
        hold.check_capture(points, wallet.minor)
        # Paying may not eat into what the member's other active holds keep (points may have expired meanwhile).
        check_reservable(points, wallet.minor, got["usable_points"] + hold.points,
                         Money(got["usable_wallet"].minor + hold.wallet_minor, hold.currency))  # fmt: skip
        check_redemption(program, points)
        total = Money.parse(cmd.purchase.total, cmd.purchase.currency)
        value = check_payment_within_total(program, points, wallet.minor, total.minor)
        order = cmd.purchase.external_order_id
        till = _till(cmd.purchase.store, cmd.purchase.cashier)
        points_transfer = wallet_transfer = None
        if points > 0:
            account = got["points"]
            draw = account.spend(points, now)
            points_transfer = new_id()
            transfer = Transfer(
                points_transfer, TransferKind.PAY, now,
                move(account.account_id, system_account_id(program_id, AccountKind.REDEMPTION), points),
                member_id=member_id,
                explanation={"reason": "checkout", "hold_id": str(hold_id), "order": order, "points": points,
                             "value": value.format(), "currency": value.currency, **till},
            )  # fmt: skip
            uow.ledger.record(program_id, transfer, [(account, draw)], now)
        if wallet.minor > 0:
            purse = got["wallet"]
            draw = purse.spend(wallet, now)
            wallet_transfer = new_id()
            transfer = Transfer(
                wallet_transfer, TransferKind.PAY, now,
                move(purse.account_id, system_account_id(program_id, AccountKind.WALLET_SPENT, wallet.currency),
                     wallet.minor, wallet.currency),
                member_id=member_id,
                explanation={"reason": "checkout", "hold_id": str(hold_id), "order": order,
                             "amount": wallet.format(), "currency": wallet.currency, **till},
            )  # fmt: skip
            uow.wallet.record(program_id, transfer, purse, draw, now)
        money_paid = Money(total.minor - value.minor - wallet.minor, total.currency)
        recorded = replace(cmd.purchase, member_id=member_id)
        if program.earn_on_money_only:
            recorded = replace(recorded, total=money_paid.format())
        purchase = record_purchase(uow, program_id, recorded, now)  # joins this transaction
        values = {"status": HoldStatus.CAPTURED.value, "captured_at": now, "captured_points": points,
                  "captured_wallet_minor": wallet.minor, "purchase_id": UUID(purchase["id"]),
                  "points_transfer_id": points_transfer, "wallet_transfer_id": wallet_transfer,
                  "finished_store": cmd.purchase.store, "finished_cashier": cmd.purchase.cashier}  # fmt: skip
        if not uow.wallet.finish_hold(program_id, hold_id, values):  # pragma: no cover - the row lock prevents it
            raise HoldNotActive("the hold was finished by another request", reason="captured")
        view = hold_view(row | values, program, now)
        view["purchase"] = purchase
        view["paid"] = {"points": points, "points_value": value.format(), "wallet": wallet.format(),
                        "money": money_paid.format(), "currency": total.currency}  # fmt: skip
        uow.emit(program_id, Event(HOLD_CAPTURED, {"hold_id": str(hold_id), "member_id": str(member_id),
                                                   "purchase_id": purchase["id"], **view["paid"], **till}))  # fmt: skip
        uow.commit()
    return view


def release(uow: UnitOfWork, program_id: UUID, hold_id: UUID, now: datetime, store: str | None = None,
            cashier: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Give a hold's points and wallet money back (cart abandoned). Releasing a released hold changes nothing;
    a captured one cannot be released (refund the purchase instead). `store` and `cashier`: the till that
    released it."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        row = uow.wallet.get_hold(program_id, hold_id, lock=True)
        state = _hold(row).state(now)
        if state is HoldState.CAPTURED:
            raise HoldNotActive("the hold was captured; refund the purchase instead", reason="captured")
        if state is HoldState.RELEASED:
            return hold_view(row, program, now)
        values = {"status": HoldStatus.RELEASED.value, "released_at": now, "finished_store": store,
                  "finished_cashier": cashier}  # fmt: skip
        uow.wallet.finish_hold(program_id, hold_id, values)
        uow.emit(program_id, Event(HOLD_RELEASED, {"hold_id": str(hold_id), "member_id": str(row["member_id"]),
                                                   "expired": state is HoldState.EXPIRED,
                                                   **_till(store, cashier)}))  # fmt: skip
        uow.commit()
    return hold_view(row | values, program, now)


def get_hold(uow: UnitOfWork, program_id: UUID, hold_id: UUID, now: datetime) -> dict[str, Any]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        return hold_view(uow.wallet.get_hold(program_id, hold_id), program, now)


def list_holds(
    uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime, limit: int = 50
) -> list[dict[str, Any]]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        rows = uow.wallet.holds_of(program_id, member_id, min(max(limit, 1), 500))
    return [hold_view(r, program, now) for r in rows]


def _till(store: str | None, cashier: str | None) -> dict[str, str]:
    """The till's store and cashier for an explanation or event (only those given)."""
    return {k: v for k, v in (("store", store), ("cashier", cashier)) if v is not None}


def _hold(row: dict[str, Any]) -> Hold:
    return Hold(row["id"], row["member_id"], row["currency"], row["points"], row["wallet_minor"], row["expires_at"],
                HoldStatus(row["status"]))  # fmt: skip


def hold_view(row: dict[str, Any], program: Program, now: datetime) -> dict[str, Any]:
    currency = row["currency"]

    def money(minor: int | None) -> str | None:
        return None if minor is None else Money(minor, currency).format()

    def ident(value: Any) -> str | None:
        return None if value is None else str(value)

    return {
        "id": str(row["id"]), "member_id": str(row["member_id"]), "partner": row["partner"],
        "reference": row["reference"], "state": _hold(row).state(now).value, "points": row["points"],
        "points_value": points_value(program, row["points"]).format(), "wallet_amount": money(row["wallet_minor"]),
        "currency": currency, "expires_at": iso(row["expires_at"]), "created_at": iso(row["created_at"]),
        "captured_at": iso(row.get("captured_at")), "released_at": iso(row.get("released_at")),
        "captured_points": row.get("captured_points"), "captured_wallet_amount": money(row.get("captured_wallet_minor")),
        "purchase_id": ident(row.get("purchase_id")), "points_transfer_id": ident(row.get("points_transfer_id")),
        "wallet_transfer_id": ident(row.get("wallet_transfer_id")),
        "store": row.get("store"), "cashier": row.get("cashier"), "finished_store": row.get("finished_store"),
        "finished_cashier": row.get("finished_cashier"),
    }  # fmt: skip
