"""The cashback wallet: a member's money account in the programme currency, in the same ledger as points.

Every cashback credit is a lot of money (minor units) with `available_at` (pending for the return window, like
points) and an optional `expires_at`; spending draws from available lots soonest-expiring first. The arithmetic
of lots is the one of points (`treue.domain.points.PointsAccount` counts integer units of any kind), so the
wallet inherits its invariant: the lots' remainders sum to max(balance, 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from treue.domain.errors import CurrencyMismatch, InsufficientPoints, InsufficientWallet
from treue.domain.lots import Draw, NewLot
from treue.domain.money import Money, Rounding
from treue.domain.points import PointsAccount, TakeBack
from treue.domain.programs import Program, ReturnPolicy
from treue.domain.purchases import points_to_take_back
from treue.domain.rules.effects import Cashback, Hook


@dataclass(frozen=True, slots=True)
class WalletBalance:
    currency: str
    total: int  # the ledger balance (available + pending + expired not yet written off)
    available: int
    pending: int
    held: int  # kept by active checkout holds
    next_expiry_at: datetime | None
    next_expiry_minor: int

    @property
    def usable(self) -> int:
        """What a checkout may still reserve or spend."""
        return max(self.available - self.held, 0)


@dataclass(slots=True)
class WalletAccount:
    """A member's wallet with its open lots. An account that does not exist yet is an empty wallet."""

    currency: str
    account: PointsAccount

    @classmethod
    def empty(cls, member_id: UUID, account_id: UUID, currency: str) -> WalletAccount:
        return cls(currency, PointsAccount(account_id, member_id, 0, False))

    @property
    def account_id(self) -> UUID:
        return self.account.account_id

    @property
    def balance(self) -> int:
        return self.account.balance

    def available(self, now: datetime) -> int:
        return self.account.available(now)

    def balance_at(self, now: datetime, held: int = 0) -> WalletBalance:
        b = self.account.balance_at(now)
        return WalletBalance(self.currency, b.total, b.available, b.pending, held, b.next_expiry_at,
                             b.next_expiry_points)  # fmt: skip

    def credit(self, lot: NewLot, source_transfer_id: UUID) -> Draw:
        return self.account.credit([lot], source_transfer_id)

    def spend(self, amount: Money, now: datetime) -> Draw:
        self._same(amount)
        try:
            return self.account.spend(amount.minor, now)
        except InsufficientPoints:
            have = Money(self.account.available(now), self.currency)
            raise InsufficientWallet(f"{amount} to pay from the wallet, {have} available",
                                     needed=amount.format(), available=have.format()) from None  # fmt: skip

    def take_back(self, amount: Money, now: datetime, purchase_lots: set[UUID], policy: ReturnPolicy) -> TakeBack:
        """A refund's share of the cashback: from the purchase's own credit first, then as the policy says."""
        self._same(amount)
        return self.account.take_back(amount.minor, now, purchase_lots, policy)

    def _same(self, amount: Money) -> None:
        if amount.currency != self.currency:
            raise CurrencyMismatch(f"the wallet holds {self.currency}, not {amount.currency}")


def cashback_of(hooks: Iterable[Hook], currency: str) -> tuple[Money, list[dict[str, str]]]:
    """The cashback an evaluation's hooks credit (rules, tier and club benefits), with one line per source."""
    total = Money(0, currency)
    lines = []
    for hook in hooks:
        if isinstance(hook, Cashback) and hook.amount.minor > 0:
            if hook.amount.currency != currency:
                raise CurrencyMismatch(f"cashback in {hook.amount.currency}, the wallet holds {currency}")
            total += hook.amount
            lines.append({"rule": hook.rule, "percent": hook.percent, "amount": hook.amount.format()})
    return total, lines


def cashback_lot(program: Program, lot_id: UUID, amount: Money, earned_at: datetime,
                 purchase_id: UUID | None) -> NewLot:  # fmt: skip
    """Cashback is pending for the programme's return window (its pending days) and may expire."""
    return NewLot(lot_id, amount.minor, program.available_at(earned_at), program.cashback_expires_at(earned_at),
                  purchase_id)  # fmt: skip


def cashback_to_take_back(credited_minor: int, total_minor: int, refunded_before: int, refund_minor: int,
                          rounding: Rounding) -> int:  # fmt: skip
    """A refund's proportional share of the purchase's cashback, on cumulative amounts like points: refunds that
    add up to the whole purchase take back exactly what was credited."""
    return points_to_take_back(credited_minor, total_minor, refunded_before, refund_minor, rounding)
