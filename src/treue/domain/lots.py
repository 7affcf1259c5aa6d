"""Lots: every credit of points is a lot with an availability and an expiry.

Pending and available are computed from time, so no job "activates" points. Spending draws from
available lots soonest-expiring first; each draw is an allocation that a refund or cancellation can
give back to exactly that lot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


@dataclass(slots=True)
class Lot:
    id: UUID
    amount: int
    remaining: int
    available_at: datetime
    expires_at: datetime | None
    source_transfer_id: UUID
    purchase_id: UUID | None = None
    partner: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def is_available(self, now: datetime) -> bool:
        return self.available_at <= now and not self.is_expired(now)

    def is_pending(self, now: datetime) -> bool:
        return self.available_at > now and not self.is_expired(now)


def spending_order(lot: Lot) -> tuple[datetime, datetime, str]:
    """Soonest-expiring first; lots that never expire last; then oldest first; id breaks ties."""
    return (lot.expires_at or _FAR_FUTURE, lot.available_at, str(lot.id))


@dataclass(frozen=True, slots=True)
class Allocation:
    """`amount` points drawn from (positive) or given back to (negative) a lot by one transfer."""

    lot_id: UUID
    amount: int


@dataclass(frozen=True, slots=True)
class NewLot:
    id: UUID
    amount: int
    available_at: datetime
    expires_at: datetime | None
    purchase_id: UUID | None = None
    partner: str | None = None


@dataclass(slots=True)
class Draw:
    """What a debit or credit does to lots: the allocations and any lots it creates."""

    allocations: dict[UUID, int] = field(default_factory=dict)
    new_lots: list[NewLot] = field(default_factory=list)

    def take(self, lot: Lot, amount: int) -> None:
        if amount:
            lot.remaining -= amount
            self.allocations[lot.id] = self.allocations.get(lot.id, 0) + amount

    def allocation_rows(self) -> list[Allocation]:
        return [Allocation(lot_id, amount) for lot_id, amount in self.allocations.items() if amount]
