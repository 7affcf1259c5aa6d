"""The neutral shape every shop payload is parsed into, and the exact readers the parsers share.

Amounts stay integers in minor units: platforms send decimal strings (Shopify, WooCommerce) or JSON numbers
(Shopware); the body is decoded with `parse_float=Decimal`, so a number is read exactly as written, never as a
binary float.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from treue.domain.errors import DomainError, ShopPayloadInvalid
from treue.domain.money import Money


class Platform(enum.StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    SHOPWARE = "shopware"
    GENERIC = "generic"


class MatchBy(enum.StrEnum):
    """How an order's customer is matched to a member: by email, or by the shop's customer id equal to the
    member's `external_ref`."""

    EMAIL = "email"
    CUSTOMER_ID = "customer_id"


@dataclass(frozen=True, slots=True)
class Customer:
    id: str | None = None  # the shop's customer id; None for a guest order
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price_minor: int  # before order-level discounts
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ShopOrder:
    """A paid order. `goods_minor` is what the customer paid for the goods after every discount, without
    shipping (and without taxes added on top of net prices): the amount that earns."""

    order_id: str
    occurred_at: datetime
    currency: str
    goods_minor: int
    shipping_minor: int
    discount_minor: int
    lines: tuple[OrderLine, ...]
    customer: Customer

    def earning_total(self, shipping_earns: bool) -> Money:
        return Money(self.goods_minor + (self.shipping_minor if shipping_earns else 0), self.currency)

    def purchase_lines(self, shipping_earns: bool) -> tuple[OrderLine, ...]:
        """The lines, with shipping as a line of its own when it earns (lines never add up to less than the
        total the purchase records)."""
        if shipping_earns and self.shipping_minor > 0:
            return (*self.lines, OrderLine("shipping", 1, self.shipping_minor, "Shipping"))
        return self.lines


class RefundKind(enum.StrEnum):
    AMOUNT = "amount"  # this much (goods, plus shipping where shipping earns)
    ALL = "all"  # everything left to refund
    KEEP = "keep"  # down to what the customer keeps (an edited order's new amount)


@dataclass(frozen=True, slots=True)
class ShopRefund:
    order_id: str
    refund_id: str  # the platform's id: a second delivery of it is a replay
    kind: RefundKind
    currency: str | None = None
    occurred_at: datetime | None = None
    goods_minor: int = 0
    shipping_minor: int = 0

    def amount_minor(self, shipping_earns: bool) -> int:
        return self.goods_minor + (self.shipping_minor if shipping_earns else 0)


@dataclass(frozen=True, slots=True)
class RecordOrder:
    order: ShopOrder


@dataclass(frozen=True, slots=True)
class RefundOrder:
    refund: ShopRefund
    # A refund of an order never recorded: "conflict" (409, the platform retries once the order arrived) or
    # "skip" (202: a state snapshot such as WooCommerce's `cancelled` of an order that never earned).
    if_unknown: str = "conflict"


Action = RecordOrder | RefundOrder


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    delivery_id: str | None
    actions: tuple[Action, ...] = ()
    ignored: str | None = None  # why the delivery asks nothing of the engine (answered 202)


# -- readers shared by the platform parsers -------------------------------------------------------------------
def load(body: bytes) -> dict[str, Any]:
    """The JSON object of a body; numbers with a fraction become Decimal (exact), never float."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ShopPayloadInvalid(f"the body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ShopPayloadInvalid("the body is not a JSON object")
    return data


def obj(data: Mapping[str, Any], key: str, where: str, required: bool = True) -> dict[str, Any]:
    value = data.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ShopPayloadInvalid(f"{where}{key}: an object is required")
    return value


def items(data: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise ShopPayloadInvalid(f"{where}{key}: a list of objects is required")
    return value


def text(data: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ShopPayloadInvalid(f"{where}{key} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ShopPayloadInvalid(f"{where}{key}: a string is required")
    return str(value)


def identifier(data: Mapping[str, Any], key: str, where: str) -> str:
    value = text(data, key, where)
    assert value is not None
    return value


def count(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ShopPayloadInvalid(f"{where}{key}: a positive whole number is required")
    return value


def minor(value: Any, currency: str, where: str, *, strings_only: bool = False) -> int:
    """An amount in minor units from a decimal string, an integer or an exactly decoded JSON number."""
    if value is None:
        raise ShopPayloadInvalid(f"{where} is missing")
    if isinstance(value, Decimal):
        if strings_only:
            raise ShopPayloadInvalid(f'{where}: amounts are decimal strings such as "12.50", not numbers')
        value = format(value, "f")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ShopPayloadInvalid(f"{where}: not an amount")
    try:
        return Money.parse(value, currency).minor
    except DomainError as error:
        raise ShopPayloadInvalid(f"{where}: {error.detail}") from None


def amount(data: Mapping[str, Any], key: str, currency: str, where: str, default: int | None = None,
           *, strings_only: bool = False) -> int:  # fmt: skip
    if data.get(key) is None and default is not None:
        return default
    return minor(data.get(key), currency, f"{where}{key}", strings_only=strings_only)


def currency_of(data: Mapping[str, Any], key: str, where: str) -> str:
    value = text(data, key, where)
    assert value is not None
    if len(value) != 3 or not value.isalpha():
        raise ShopPayloadInvalid(f"{where}{key}: '{value}' is not an ISO 4217 currency code")
    return value.upper()


def timestamp(value: Any, where: str, naive_is_utc: bool = True) -> datetime:
    """An ISO 8601 time; WooCommerce's `*_gmt` fields carry no offset and are UTC."""
    if not isinstance(value, str) or not value:
        raise ShopPayloadInvalid(f"{where}: a date-time is required")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ShopPayloadInvalid(f"{where}: '{value}' is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise ShopPayloadInvalid(f"{where}: the date-time needs a UTC offset")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
