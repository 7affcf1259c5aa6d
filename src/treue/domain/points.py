"""A member's points account: balance, lots, and what earning, spending and taking back do to them.

Invariant kept by every operation here: the lots' remainders sum to max(balance, 0), and the balance
goes below zero only where the programme allows it (a refund under the allow_negative policy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from treue.domain.errors import InsufficientPoints, InvariantViolated
from treue.domain.lots import Allocation, Draw, Lot, NewLot, spending_order
from treue.domain.programs import ReturnPolicy


@dataclass(frozen=True, slots=True)
class Balance:
    total: int  # the ledger balance: available + pending + expired-not-yet-processed (or a deficit)
    available: int
    pending: int
    next_expiry_at: datetime | None
    next_expiry_points: int


@dataclass(frozen=True, slots=True)
class TakeBack:
    draw: Draw
    taken: int
    forgiven: int


@dataclass(slots=True)
class PointsAccount:
    """Aggregate: the member's points account with its open lots (and any lots an operation names)."""

    account_id: UUID
    member_id: UUID
    balance: int
    negative_allowed: bool
    lots: list[Lot] = field(default_factory=list)

    def _lot(self, lot_id: UUID) -> Lot:
        for lot in self.lots:
            if lot.id == lot_id:
                return lot
        raise InvariantViolated(f"lot {lot_id} is not loaded")

    # -- reading -------------------------------------------------------------------------------
    def available(self, now: datetime) -> int:
        return sum(lot.remaining for lot in self.lots if lot.is_available(now))

    def pending(self, now: datetime) -> int:
        return sum(lot.remaining for lot in self.lots if lot.is_pending(now))

    def balance_at(self, now: datetime) -> Balance:
        expiring = sorted(
            (lot for lot in self.lots if lot.remaining > 0 and lot.expires_at and not lot.is_expired(now)),
            key=spending_order,
        )
        next_at = expiring[0].expires_at if expiring else None
        next_points = sum(lot.remaining for lot in expiring if lot.expires_at == next_at)
        return Balance(self.balance, self.available(now), self.pending(now), next_at, next_points)

    # -- credits -------------------------------------------------------------------------------
    def credit(self, new_lots: Sequence[NewLot], source_transfer_id: UUID) -> Draw:
        """Add lots. If the balance is below zero, the new points first pay off that deficit."""
        draw = Draw(new_lots=list(new_lots))
        added: list[Lot] = []
        for spec in new_lots:
            if spec.amount <= 0:
                raise InvariantViolated("a lot must hold a positive number of points")
            lot = Lot(spec.id, spec.amount, spec.amount, spec.available_at, spec.expires_at,
                      source_transfer_id, spec.purchase_id, spec.partner)  # fmt: skip
            self.lots.append(lot)
            added.append(lot)
        self._settle_deficit(added, sum(spec.amount for spec in new_lots), draw)
        return draw

    def give_back(self, allocations: Iterable[Allocation]) -> Draw:
        """Return points to the very lots a spending transfer drew them from (a cancellation)."""
        draw = Draw()
        touched: list[Lot] = []
        total = 0
        for allocation in allocations:
            if allocation.amount <= 0:
                continue
            lot = self._lot(allocation.lot_id)
            draw.take(lot, -allocation.amount)
            if lot.remaining > lot.amount:
                raise InvariantViolated(f"lot {lot.id} would hold more than it was credited with")
            touched.append(lot)
            total += allocation.amount
        self._settle_deficit(touched, total, draw)
        return draw

    def _settle_deficit(self, lots: list[Lot], credited: int, draw: Draw) -> None:
        deficit = max(0, -self.balance)
        self.balance += credited
        for lot in lots:
            if deficit == 0:
                break
            paid = min(deficit, lot.remaining)
            draw.take(lot, paid)
            deficit -= paid

    # -- debits --------------------------------------------------------------------------------
    def spend(self, points: int, now: datetime, held: int = 0) -> Draw:
        """Draw points from available lots, soonest-expiring first (redeem, transfer to another member).
        `held`: points that active checkout holds keep for a cart - not to be spent on anything else."""
        self._positive(points)
        usable = self.available(now) - held
        if usable < points:
            note = f" ({held} held for a checkout)" if held else ""
            extra = {"held": held} if held else {}
            raise InsufficientPoints(f"{points} points needed, {max(usable, 0)} available{note}",
                                     needed=points, available=max(usable, 0), **extra)  # fmt: skip
        draw = Draw()
        self._draw_from((lot for lot in self.lots if lot.is_available(now)), points, draw)
        self.balance -= points
        return draw

    def deduct(self, points: int, now: datetime, held: int = 0) -> Draw:
        """A manual negative adjustment: available lots first, then pending ones; never below zero, and never
        into points that active checkout holds keep (`held`): release the hold first."""
        self._positive(points)
        usable = [lot for lot in self.lots if not lot.is_expired(now)]
        have = sum(lot.remaining for lot in usable) - held
        if have < points:
            note = f" ({held} held for a checkout)" if held else ""
            extra = {"held": held} if held else {}
            raise InsufficientPoints(f"{points} points to deduct, {max(have, 0)} there{note}", needed=points,
                                     available=max(have, 0), **extra)  # fmt: skip
        draw = Draw()
        rest = self._draw_from((lot for lot in usable if lot.is_available(now)), points, draw)
        self._draw_from((lot for lot in usable if lot.is_pending(now)), rest, draw)
        self.balance -= points
        return draw

    def take_back(self, points: int, now: datetime, purchase_lots: set[UUID], policy: ReturnPolicy) -> TakeBack:
        """Take back points a refunded purchase earned, from that purchase's own lots first.

        What cannot be taken back is forgiven (and reported), or under ALLOW_NEGATIVE becomes a deficit;
        it is never silently dropped.
        """
        self._positive(points)
        draw = Draw()
        live = [lot for lot in self.lots if not lot.is_expired(now)]
        own = [lot for lot in live if lot.id in purchase_lots]
        if policy is ReturnPolicy.ONLY_PENDING:
            rest = self._draw_from((lot for lot in own if lot.is_pending(now)), points, draw)
        else:
            rest = self._draw_from(own, points, draw)
            others = [lot for lot in live if lot.id not in purchase_lots]
            rest = self._draw_from((lot for lot in others if lot.is_available(now)), rest, draw)
            rest = self._draw_from((lot for lot in others if lot.is_pending(now)), rest, draw)
            if policy is ReturnPolicy.ALLOW_NEGATIVE:
                # Expired-but-unprocessed points go before the balance goes negative, so that the
                # lots still sum to max(balance, 0).
                rest = self._draw_from((lot for lot in self.lots if lot.is_expired(now)), rest, draw)
                if not self.negative_allowed and rest:
                    raise InvariantViolated("account does not allow a negative balance")
                self.balance -= points
                return TakeBack(draw, points, 0)
        taken = points - rest
        self.balance -= taken
        return TakeBack(draw, taken, rest)

    def expire(self, lot_id: UUID, now: datetime) -> tuple[Draw, int]:
        """Move what is left of an expired lot to breakage."""
        lot = self._lot(lot_id)
        if not lot.is_expired(now) or lot.remaining <= 0:
            return Draw(), 0
        amount = lot.remaining
        draw = Draw()
        draw.take(lot, amount)
        self.balance -= amount
        return draw, amount

    @staticmethod
    def _draw_from(lots: Iterable[Lot], points: int, draw: Draw) -> int:
        rest = points
        for lot in sorted(lots, key=spending_order):
            if rest == 0:
                break
            taken = min(rest, lot.remaining)
            draw.take(lot, taken)
            rest -= taken
        return rest

    @staticmethod
    def _positive(points: int) -> None:
        if points <= 0:
            raise InvariantViolated("points to move must be positive")

    def check(self) -> None:
        """The account's own invariants (used by tests and `treue verify`)."""
        held = sum(lot.remaining for lot in self.lots)
        if held != max(self.balance, 0):
            raise InvariantViolated(f"lots hold {held} points but the balance is {self.balance}")
        if self.balance < 0 and not self.negative_allowed:
            raise InvariantViolated(f"balance {self.balance} below zero where the policy forbids it")
        for lot in self.lots:
            if not 0 <= lot.remaining <= lot.amount:
                raise InvariantViolated(f"lot {lot.id} holds {lot.remaining} of {lot.amount}")
