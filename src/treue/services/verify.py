"""`treue verify`: every ledger invariant of DESIGN.md, checked over the whole database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from treue.services.ports import UnitOfWork


@dataclass(frozen=True)
class Violation:
    invariant: str
    program_id: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: programme {self.program_id}, {self.subject}: {self.detail}"


INVARIANTS = {
    "transfer_unbalanced": "postings of every transfer sum to zero per unit",
    "transfer_single_sided": "every transfer has at least two postings",
    "balance_mismatch": "every cached member balance equals the sum of its postings",
    "negative_balance": "no member balance below zero where the policy forbids it",
    "lot_allocation_mismatch": "every lot's remainder equals its amount less its allocations",
    "lots_balance_mismatch": "the lots' remainders sum to the member's points balance (or zero if below)",
    "refund_total_mismatch": "a purchase's refunded amount equals the sum of its refunds",
    "wallet_lot_allocation_mismatch": "every wallet lot's remainder equals its amount less its allocations",
    "wallet_lots_balance_mismatch": "the wallet lots' remainders sum to the member's wallet balance (or zero if below)",
    "hold_exceeds_balance": "active checkout holds never keep more than the member's points or wallet balance",
    "captured_hold_mismatch": "a captured hold's points and wallet money equal what its payment transfers moved",
}


def verify(uow: UnitOfWork, program_id: UUID | None = None, now: datetime | None = None) -> list[Violation]:
    """Every invariant; `now` decides which checkout holds are active (the store's clock if not given)."""
    with uow:
        rows = uow.checks.run(program_id, now)
    return [Violation(name, str(pid), subject, detail) for name, pid, subject, detail in rows]
