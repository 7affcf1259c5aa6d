"""Double-entry ledger: accounts, transfers and postings in integer units.

A transfer is one business fact. Its postings sum to zero per unit; it is never changed or
deleted, and a correction is a new transfer that names the one it corrects.
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.errors import InvariantViolated

POINTS = "PTS"  # the unit of points; money units are ISO 4217 codes


class TransferKind(enum.StrEnum):
    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"
    REVERSE = "reverse"  # a correction: refund take-back, cancelled redemption
    ADJUST = "adjust"
    TRANSFER = "transfer"
    SETTLE = "settle"
    CASHBACK = "cashback"  # money credited to a member's wallet (issue 4)
    PAY = "pay"  # points or wallet money spent at checkout (a captured hold)


class AccountKind(enum.StrEnum):
    MEMBER = "member"
    ISSUANCE = "issuance"  # where earned points come from
    REDEMPTION = "redemption"  # where redeemed points go
    BREAKAGE = "breakage"  # where expired points go
    ADJUSTMENT = "adjustment"  # counterpart of manual corrections
    WALLET = "wallet"  # a member's cashback wallet: money in the programme currency (issue 4)
    CASHBACK = "cashback"  # where cashback money comes from (the merchant's cost of cashback)
    WALLET_SPENT = "wallet_spent"  # where wallet money paid at checkout goes


SYSTEM_ACCOUNT_KINDS = (
    AccountKind.ISSUANCE,
    AccountKind.REDEMPTION,
    AccountKind.BREAKAGE,
    AccountKind.ADJUSTMENT,
)

# The programme's money accounts of the wallet, opened per currency when the first wallet is (expiry -> breakage).
WALLET_SYSTEM_ACCOUNT_KINDS = (AccountKind.CASHBACK, AccountKind.WALLET_SPENT, AccountKind.BREAKAGE)


@dataclass(frozen=True, slots=True)
class Posting:
    account_id: UUID
    amount: int
    unit: str = POINTS


@dataclass(frozen=True, slots=True)
class Transfer:
    id: UUID
    kind: TransferKind
    occurred_at: datetime
    postings: tuple[Posting, ...]
    member_id: UUID | None = None
    purchase_id: UUID | None = None
    redemption_id: UUID | None = None
    corrects_id: UUID | None = None
    explanation: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_postings(self.postings)


def check_postings(postings: Iterable[Posting]) -> None:
    """Raise if postings are not a balanced double entry (>= 2 non-zero postings summing to zero per unit)."""
    sums: dict[str, int] = defaultdict(int)
    count = 0
    for posting in postings:
        if posting.amount == 0:
            raise InvariantViolated("a posting of zero is not a posting")
        sums[posting.unit] += posting.amount
        count += 1
    if count < 2:
        raise InvariantViolated("a transfer needs at least two postings")
    unbalanced = {unit: total for unit, total in sums.items() if total != 0}
    if unbalanced:
        raise InvariantViolated(f"postings do not sum to zero: {unbalanced}")


def move(source: UUID, target: UUID, amount: int, unit: str = POINTS) -> tuple[Posting, Posting]:
    """Postings that move `amount` (> 0) from `source` to `target`."""
    if amount <= 0:
        raise InvariantViolated("a move needs a positive amount")
    return (Posting(source, -amount, unit), Posting(target, amount, unit))


_NAMESPACE = uuid.UUID("6f1f6a52-2b8e-4c4e-9a51-7d0d6f1e7c21")


def member_account_id(member_id: UUID, unit: str = POINTS) -> UUID:
    """A member's account id is derived from the member, so the earn path needs no lookup to find it."""
    return member_id if unit == POINTS else uuid.uuid5(_NAMESPACE, f"{member_id}:{unit}")


def system_account_id(program_id: UUID, kind: AccountKind, unit: str = POINTS) -> UUID:
    """The programme's own accounts (issuance, breakage...) have ids derived from programme and kind."""
    return uuid.uuid5(_NAMESPACE, f"{program_id}:{kind.value}:{unit}")
