"""Checkout holds: points and wallet money reserved for a cart, two-phase (reserve, then capture or release).

A hold is not a transfer: nothing moves until it is captured. What a member can still spend is the available
balance less the holds that are active, and a hold is active while it is `held` and its expiry lies ahead - so an
abandoned cart gives its points back by itself, with no job. Points turn into money at the programme's point
value, rounded by its policy, with a minimum number of points per redemption.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from treue.domain.errors import (
    BelowMinimumRedemption,
    HoldExceeded,
    HoldNotActive,
    InsufficientPoints,
    InsufficientWallet,
    InvalidInput,
    InvariantViolated,
    PaymentExceedsTotal,
)
from treue.domain.lots import Allocation, Draw, Lot, NewLot, spending_order
from treue.domain.money import Money, Rounding, divide
from treue.domain.points import PointsAccount
from treue.domain.programs import Program

MAX_HOLD_MINUTES = 7 * 24 * 60


class HoldStatus(enum.StrEnum):
    HELD = "held"  # reserved; active until it expires
    CAPTURED = "captured"
    RELEASED = "released"


class HoldState(enum.StrEnum):
    """What a hold is at an instant: its status, with `held` split by time."""

    ACTIVE = "active"
    EXPIRED = "expired"
    CAPTURED = "captured"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class Held:
    """What a member's active holds keep, together."""

    points: int = 0
    wallet_minor: int = 0


@dataclass(frozen=True, slots=True)
class Hold:
    id: UUID
    member_id: UUID
    currency: str
    points: int
    wallet_minor: int
    expires_at: datetime
    status: HoldStatus = HoldStatus.HELD

    def __post_init__(self) -> None:
        if self.points < 0 or self.wallet_minor < 0:
            raise InvalidInput("a hold cannot keep a negative amount")
        if self.points == 0 and self.wallet_minor == 0:
            raise InvalidInput("a hold needs points or wallet money (or both)")

    def state(self, now: datetime) -> HoldState:
        if self.status is HoldStatus.CAPTURED:
            return HoldState.CAPTURED
        if self.status is HoldStatus.RELEASED:
            return HoldState.RELEASED
        return HoldState.ACTIVE if self.expires_at > now else HoldState.EXPIRED

    def is_active(self, now: datetime) -> bool:
        return self.state(now) is HoldState.ACTIVE

    def check_capturable(self, now: datetime) -> None:
        state = self.state(now)
        if state is not HoldState.ACTIVE:
            raise HoldNotActive(f"the hold is {state.value} and cannot be captured", reason=state.value)

    def check_capture(self, points: int, wallet_minor: int) -> None:
        """A capture may use less than the hold keeps (the rest is released), never more."""
        if points < 0 or wallet_minor < 0:
            raise InvalidInput("points and wallet amount to capture cannot be negative")
        if points > self.points:
            raise HoldExceeded(f"{points} points to pay, the hold keeps {self.points}", held=self.points)
        if wallet_minor > self.wallet_minor:
            held = Money(self.wallet_minor, self.currency)
            raise HoldExceeded(f"{Money(wallet_minor, self.currency)} to pay, the hold keeps {held}",
                               held=held.format())  # fmt: skip


def hold_expiry(program: Program, now: datetime, minutes: int | None) -> datetime:
    """When a hold placed now lapses: the till's choice or the programme's default, at most a week."""
    chosen = program.hold_minutes if minutes is None else minutes
    if not 1 <= chosen <= MAX_HOLD_MINUTES:
        raise InvalidInput(f"a hold lasts between 1 and {MAX_HOLD_MINUTES} minutes")
    return now + timedelta(minutes=chosen)


def points_value(program: Program, points: int) -> Money:
    """The money `points` pay at checkout (the programme's point value, rounded by its policy)."""
    return Money(divide(points * program.point_value_minor, program.point_value_points, program.rounding),
                 program.currency)  # fmt: skip


def max_points_payable(program: Program, usable: int, payable_minor: int) -> int:
    """The most points (up to `usable`) whose money value does not exceed `payable_minor`; 0 when that is below
    the minimum redemption or points are worth nothing."""
    if usable <= 0 or payable_minor <= 0 or program.point_value_minor == 0:
        return 0
    best = min(usable, payable_minor * program.point_value_points // program.point_value_minor)
    # Rounding up (ceil, half-up) can make the value of `best` points one minor unit too much: step back.
    while best > 0 and points_value(program, best).minor > payable_minor:
        best -= 1
    return best if best >= max(program.min_redemption_points, 1) else 0


def check_redemption(program: Program, points: int) -> None:
    if 0 < points < program.min_redemption_points:
        raise BelowMinimumRedemption(
            f"at least {program.min_redemption_points} points per payment, {points} asked",
            minimum=program.min_redemption_points,
        )  # fmt: skip


def check_payment_within_total(program: Program, points: int, wallet_minor: int, total_minor: int) -> Money:
    """Points and wallet money together must not pay more than the cart; returns the points' money value."""
    value = points_value(program, points)
    if value.minor + wallet_minor > total_minor:
        paid, total = Money(value.minor + wallet_minor, program.currency), Money(total_minor, program.currency)
        raise PaymentExceedsTotal(f"points and wallet would pay {paid}, the cart costs {total}", total=total.format())
    return value


def check_reservable(points: int, wallet_minor: int, usable_points: int, usable_wallet: Money) -> None:
    """Never over-reserve: each amount within what is usable (available less the active holds)."""
    if points > usable_points:
        raise InsufficientPoints(f"{points} points to reserve, {usable_points} usable",
                                 needed=points, available=usable_points)  # fmt: skip
    if wallet_minor > usable_wallet.minor:
        raise InsufficientWallet(f"{Money(wallet_minor, usable_wallet.currency)} to reserve, {usable_wallet} usable",
                                 needed=Money(wallet_minor, usable_wallet.currency).format(),
                                 available=usable_wallet.format())  # fmt: skip


# -- refunds of a captured checkout ---------------------------------------------------------------------------
def returned_range(paid: int, total_minor: int, refunded_before: int, refund_minor: int,
                   rounding: Rounding) -> tuple[int, int]:  # fmt: skip
    """The slice [start, end) of what a checkout paid (points or wallet minor units) that a refund gives back.

    The basis is the share of the order refunded: refunded amount over the purchase's recorded total (the whole
    cart, or the part paid with money under `earn_on_money_only`; lines are priced as a share of that total
    either way). Cumulative, like `points_to_take_back`: partial refunds that add up to the whole purchase
    give back exactly what was paid, never a unit more or less."""
    if total_minor == 0:
        return (0, paid) if refunded_before == 0 else (paid, paid)
    start = divide(paid * refunded_before, total_minor, rounding)
    return start, divide(paid * (refunded_before + refund_minor), total_minor, rounding)


@dataclass(slots=True)
class PaymentReturn:
    """What giving back a slice of a checkout payment does to the account: one draw for one transfer."""

    draw: Draw
    to_lots: int  # given back to the very lots it was paid from
    as_new_lots: int  # its lots had expired meanwhile: credited as new lots

    @property
    def amount(self) -> int:
        return self.to_lots + self.as_new_lots


def return_payment(account: PointsAccount, drawn: Sequence[Allocation], start: int, end: int, now: datetime,
                   transfer_id: UUID, new_lot: Callable[[Lot, int], NewLot]) -> PaymentReturn:  # fmt: skip
    """Give back the slice [start, end) of a payment that drew `drawn` from the account's lots (all loaded).

    The payment's allocations are laid end to end in undo order (the last drawn first: spending took the
    soonest-expiring lots first, so the latest-expiring come back first) and the slice is cut from that line,
    so consecutive partial refunds never give a lot back twice. A lot that has not expired gets its units back,
    as a cancelled redemption does; for an expired lot, whose remainder the expiry job writes off, `new_lot`
    makes a fresh lot instead (giving back into it would only have the units written off again)."""
    per_lot: dict[UUID, int] = {}
    for allocation in drawn:
        if allocation.amount > 0:
            per_lot[allocation.lot_id] = per_lot.get(allocation.lot_id, 0) + allocation.amount
    lots = sorted((_loaded(account, lot_id) for lot_id in per_lot), key=spending_order, reverse=True)
    if not 0 <= start <= end <= sum(per_lot.values()):
        raise InvariantViolated(f"cannot give back units {start} to {end} of a payment of {sum(per_lot.values())}")
    back: list[Allocation] = []
    fresh: list[NewLot] = []
    position = 0
    for lot in lots:
        low, high = max(start, position), min(end, position + per_lot[lot.id])
        position += per_lot[lot.id]
        if high <= low:
            continue
        if lot.is_expired(now):
            fresh.append(new_lot(lot, high - low))
        else:
            back.append(Allocation(lot.id, high - low))
    draw = account.give_back(back)
    if fresh:
        credited = account.credit(fresh, transfer_id)
        for lot_id, amount in credited.allocations.items():
            draw.allocations[lot_id] = draw.allocations.get(lot_id, 0) + amount
        draw.new_lots.extend(credited.new_lots)
    return PaymentReturn(draw, sum(a.amount for a in back), sum(lot.amount for lot in fresh))


def _loaded(account: PointsAccount, lot_id: UUID) -> Lot:
    for lot in account.lots:
        if lot.id == lot_id:
            return lot
    raise InvariantViolated(f"lot {lot_id} of the payment is not loaded")
