"""Shopify webhooks: `orders/paid` (and `orders/create` of an order already paid) record a purchase,
`refunds/create` a refund. The topic is in X-Shopify-Topic, the delivery's id in X-Shopify-Webhook-Id.

Earning amount: `subtotal_price` (line items after all discounts, without shipping, duties and tips; taxes are
in it only where the shop's prices include them). Shipping: the shipping lines' `discounted_price`.
A refund takes back its refund line items' `subtotal` (after discounts); a refund without line items (an
amount typed by the merchant) its successful refund transactions less the shipping refunded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treue.domain.errors import ShopPayloadInvalid
from treue.domain.shops.orders import (
    Customer,
    Inbound,
    OrderLine,
    RecordOrder,
    RefundKind,
    RefundOrder,
    ShopOrder,
    ShopRefund,
    amount,
    count,
    currency_of,
    identifier,
    items,
    load,
    minor,
    obj,
    text,
    timestamp,
)

PAID = ("paid", "partially_refunded", "refunded")  # financial states of an order that was paid


def parse(headers: Mapping[str, str], body: bytes) -> Inbound:
    topic = headers.get("x-shopify-topic", "")
    delivery = headers.get("x-shopify-webhook-id") or None
    data = load(body)
    if topic in ("orders/paid", "orders/create"):
        status = data.get("financial_status")
        if topic == "orders/create" and status not in PAID:
            return Inbound(topic, delivery, ignored=f"the order is not paid yet (financial_status {status!r}): "
                                                    "it earns with orders/paid")  # fmt: skip
        return Inbound(topic, delivery, (RecordOrder(order(data)),))
    if topic == "refunds/create":
        return Inbound(topic, delivery, (RefundOrder(refund(data)),))
    return Inbound(topic or "(none)", delivery, ignored=f"topic {topic!r} is not used by Treue")


def _money(data: Mapping[str, Any], key: str, currency: str, where: str) -> int:
    """A `*_set` amount in the shop's currency where given, else the plain field."""
    shop_money = data.get(f"{key}_set", {}) or {}
    if isinstance(shop_money, dict) and isinstance(shop_money.get("shop_money"), dict):
        return minor(shop_money["shop_money"].get("amount"), currency, f"{where}{key}_set.shop_money.amount")
    return amount(data, key, currency, where)


def order(data: Mapping[str, Any]) -> ShopOrder:
    currency = currency_of(data, "currency", "")
    lines = []
    for i, line in enumerate(items(data, "line_items", "")):
        where = f"line_items[{i}]."
        sku = text(line, "sku", where, required=False) or f"variant-{line.get('variant_id') or line.get('id')}"
        lines.append(OrderLine(sku, count(line, "quantity", where), amount(line, "price", currency, where),
                               text(line, "title", where, required=False)))  # fmt: skip
    shipping = 0
    for i, ship in enumerate(items(data, "shipping_lines", "")):
        key = "discounted_price" if ship.get("discounted_price") is not None else "price"
        shipping += amount(ship, key, currency, f"shipping_lines[{i}].")
    buyer = obj(data, "customer", "", required=False)
    customer = Customer(
        id=text(buyer, "id", "customer.", required=False),
        email=text(buyer, "email", "customer.", required=False) or text(data, "email", "", required=False)
        or text(data, "contact_email", "", required=False),
        first_name=text(buyer, "first_name", "customer.", required=False),
        last_name=text(buyer, "last_name", "customer.", required=False),
    )  # fmt: skip
    return ShopOrder(
        order_id=identifier(data, "id", ""), occurred_at=timestamp(data.get("processed_at") or data.get("created_at"),
                                                                   "processed_at"),
        currency=currency, goods_minor=_money(data, "subtotal_price", currency, ""), shipping_minor=shipping,
        discount_minor=amount(data, "total_discounts", currency, "", default=0), lines=tuple(lines),
        customer=customer,
    )  # fmt: skip


def refund(data: Mapping[str, Any]) -> ShopRefund:
    refund_id, order_id = identifier(data, "id", ""), identifier(data, "order_id", "")
    transactions = items(data, "transactions", "")
    currency = None
    for t in transactions:
        currency = currency or (text(t, "currency", "transactions[].", required=False))
    line_items = items(data, "refund_line_items", "")
    if currency is None:  # a refund of items only: the line items' money sets name it
        for line in line_items:
            money = (line.get("subtotal_set") or {}).get("shop_money") or {}
            currency = currency or money.get("currency_code")
    if not isinstance(currency, str):
        raise ShopPayloadInvalid("the refund names no currency (transactions[].currency or subtotal_set)")
    currency = currency.upper()
    shipping = 0
    for i, adjustment in enumerate(items(data, "order_adjustments", "")):
        if adjustment.get("kind") == "shipping_refund":
            shipping += abs(amount(adjustment, "amount", currency, f"order_adjustments[{i}]."))
    if line_items:
        goods = sum(_money(line, "subtotal", currency, f"refund_line_items[{i}].") for i, line in enumerate(line_items))
    else:
        paid_back = sum(amount(t, "amount", currency, f"transactions[{i}].") for i, t in enumerate(transactions)
                        if t.get("kind") == "refund" and t.get("status") == "success")  # fmt: skip
        goods = max(paid_back - shipping, 0)
    when = data.get("processed_at") or data.get("created_at")
    return ShopRefund(order_id=order_id, refund_id=f"shopify-refund-{refund_id}", kind=RefundKind.AMOUNT,
                      currency=currency, occurred_at=timestamp(when, "processed_at") if when else None,
                      goods_minor=goods, shipping_minor=shipping)  # fmt: skip
