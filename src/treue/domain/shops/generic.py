"""The generic JSON purchase webhook, for any shop without an adapter (docs/shops.md documents the schema).

    {"type": "purchase", "id": "evt-1", "order_id": "1001", "occurred_at": "2026-03-02T10:00:00Z",
     "currency": "EUR", "total": "45.00", "shipping": "4.90", "discount": "5.00",
     "customer": {"id": "c-7", "email": "ada@example.com", "first_name": "Ada", "last_name": "L."},
     "lines": [{"sku": "TEA-1", "name": "Tea", "quantity": 2, "unit_price": "25.00"}]}

    {"type": "refund", "id": "evt-2", "order_id": "1001", "refund_id": "r-1", "currency": "EUR",
     "amount": "10.00", "shipping": "0.00", "occurred_at": "2026-03-05T09:00:00Z"}

`total` is what the goods cost after discounts, without shipping. Amounts are decimal strings (never JSON
numbers). A refund without `amount` refunds everything left. `id` (or the X-Treue-Delivery-Id header)
identifies the delivery: a second delivery with the same id is answered with the first result.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    obj,
    text,
    timestamp,
)


def parse(headers: Mapping[str, str], body: bytes) -> Inbound:
    data = load(body)
    kind = text(data, "type", "")
    delivery = headers.get("x-treue-delivery-id") or text(data, "id", "", required=False)
    currency = currency_of(data, "currency", "")
    order_id = identifier(data, "order_id", "")
    if kind == "purchase":
        lines = []
        for i, line in enumerate(items(data, "lines", "")):
            where = f"lines[{i}]."
            lines.append(OrderLine(identifier(line, "sku", where), count(line, "quantity", where),
                                   amount(line, "unit_price", currency, where, strings_only=True),
                                   text(line, "name", where, required=False)))  # fmt: skip
        buyer = obj(data, "customer", "", required=False)
        customer = Customer(text(buyer, "id", "customer.", required=False),
                            text(buyer, "email", "customer.", required=False),
                            text(buyer, "first_name", "customer.", required=False),
                            text(buyer, "last_name", "customer.", required=False))  # fmt: skip
        placed = ShopOrder(order_id, timestamp(data.get("occurred_at"), "occurred_at", naive_is_utc=False), currency,
                           amount(data, "total", currency, "", strings_only=True),
                           amount(data, "shipping", currency, "", 0, strings_only=True),
                           amount(data, "discount", currency, "", 0, strings_only=True), tuple(lines),
                           customer)  # fmt: skip
        return Inbound("purchase", delivery, (RecordOrder(placed),))
    if kind == "refund":
        refund_id = identifier(data, "refund_id", "")
        when = data.get("occurred_at")
        occurred = timestamp(when, "occurred_at", naive_is_utc=False) if when is not None else None
        if data.get("amount") is None:
            back = ShopRefund(order_id, refund_id, RefundKind.ALL, currency, occurred)
        else:
            back = ShopRefund(order_id, refund_id, RefundKind.AMOUNT, currency, occurred,
                              amount(data, "amount", currency, "", strings_only=True),
                              amount(data, "shipping", currency, "", 0, strings_only=True))  # fmt: skip
        return Inbound("refund", delivery, (RefundOrder(back),))
    raise ShopPayloadInvalid(f"type: {kind!r} is neither 'purchase' nor 'refund'")
