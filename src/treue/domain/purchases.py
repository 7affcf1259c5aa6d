"""Purchases and refunds: what was bought, and how much of its points a refund takes back."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from treue.domain.cards import Payment
from treue.domain.errors import CurrencyMismatch, InvalidInput, RefundExceedsPurchase
from treue.domain.money import Money, Rounding, divide


class Channel(enum.StrEnum):
    STORE = "store"
    ONLINE = "online"
    APP = "app"


@dataclass(frozen=True, slots=True)
class PurchaseLine:
    sku: str
    quantity: int
    unit_price_minor: int
    category: str | None = None
    name: str | None = None

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True, slots=True)
class Purchase:
    id: UUID
    member_id: UUID | None
    partner: str
    store: str | None
    channel: Channel
    external_order_id: str
    occurred_at: datetime
    total: Money
    lines: tuple[PurchaseLine, ...] = ()
    cashier: str | None = None  # who worked the till (issue 5)
    payment: Payment | None = None  # paid with a payment token, and the card link it matched (issue 11)

    def __post_init__(self) -> None:
        if not self.external_order_id.strip():
            raise InvalidInput("a purchase needs an external order id")
        if self.total.minor < 0:
            raise InvalidInput("a purchase total cannot be negative")
        for line in self.lines:
            if line.quantity <= 0 or line.unit_price_minor < 0:
                raise InvalidInput(f"line {line.sku!r}: quantity must be > 0 and price >= 0")
        if self.lines and sum(line.amount_minor for line in self.lines) < self.total.minor:
            # Lines may exceed the total (an order discount), never fall short of it.
            raise InvalidInput("the lines add up to less than the purchase total")

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


def refund_amount_of_lines(purchase: Purchase, lines: list[tuple[str, int]]) -> int:
    """Minor units refunded for (sku, quantity) pairs, priced as bought (net of an order discount)."""
    by_sku = {line.sku: line for line in purchase.lines}
    gross = 0
    for sku, quantity in lines:
        line = by_sku.get(sku)
        if line is None:
            raise InvalidInput(f"the purchase has no line with sku {sku!r}")
        if quantity <= 0 or quantity > line.quantity:
            raise RefundExceedsPurchase(f"cannot refund {quantity} of {line.quantity} x {sku!r}")
        gross += quantity * line.unit_price_minor
    line_total = sum(line.amount_minor for line in purchase.lines)
    return divide(gross * purchase.total.minor, line_total, Rounding.HALF_UP) if line_total else 0


def check_refund(purchase: Purchase, already_refunded_minor: int, amount: Money) -> None:
    if amount.currency != purchase.total.currency:
        raise CurrencyMismatch(f"refund in {amount.currency}, purchase in {purchase.total.currency}")
    if amount.minor <= 0:
        raise InvalidInput("a refund amount must be positive")
    if already_refunded_minor + amount.minor > purchase.total.minor:
        left = Money(purchase.total.minor - already_refunded_minor, amount.currency)
        raise RefundExceedsPurchase(
            f"refund of {amount} exceeds what is left to refund ({left})", refundable=left.format()
        )


def points_to_take_back(earned: int, total_minor: int, refunded_before: int, refund: int, rounding: Rounding) -> int:
    """Points a refund takes back, in proportion to the amount refunded.

    Computed on cumulative amounts, so that partial refunds adding up to the whole purchase take back
    exactly what it earned - rounding never leaks a point either way.
    """
    if total_minor == 0:
        return earned if refunded_before == 0 else 0
    before = divide(earned * refunded_before, total_minor, rounding)
    after = divide(earned * (refunded_before + refund), total_minor, rounding)
    return after - before
