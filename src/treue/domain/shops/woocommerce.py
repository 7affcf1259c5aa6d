"""WooCommerce order webhooks (`order.created`, `order.updated`): each delivery is a snapshot of the order, so
it is mapped by its status and applied idempotently.

- processing, completed: the purchase (once), and each entry of `refunds` not yet taken back;
- refunded: the same, then everything left is refunded (an order first seen already refunded is recorded and
  refunded in one go: it nets to nothing, and a late `processing` snapshot is then a duplicate);
- cancelled: refunds everything left of a recorded order; a cancelled order never recorded is skipped;
- any other status (pending, on-hold, failed...): nothing.

Earning amount: the line items' `total` (after coupons; plus `total_tax` where prices include tax).
Shipping: `shipping_total` (plus `shipping_tax` where prices include tax). A refund entry's `total` is what
WooCommerce paid back (it may include tax and shipping): it is taken back up to what is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treue.domain.shops.orders import (
    Action,
    Customer,
    Inbound,
    OrderLine,
    RecordOrder,
    RefundKind,
    RefundOrder,
    ShopOrder,
    ShopRefund,
    amount,
    ceil_div,
    count,
    currency_of,
    identifier,
    items,
    load,
    obj,
    text,
    timestamp,
)

EARNING = ("processing", "completed")
TOPICS = ("order.created", "order.updated")


def parse(headers: Mapping[str, str], body: bytes) -> Inbound:
    topic = headers.get("x-wc-webhook-topic", "")
    delivery = headers.get("x-wc-webhook-delivery-id") or None
    if topic not in TOPICS:
        return Inbound(topic or "(none)", delivery, ignored=f"topic {topic!r} is not used by Treue")
    data = load(body)
    status = text(data, "status", "")
    the_order = order(data)
    refunds = tuple(RefundOrder(r, "skip" if status == "cancelled" else "conflict") for r in refunds_of(data))
    everything = ShopRefund(the_order.order_id, f"wc-{status}", RefundKind.ALL, the_order.currency)
    actions: tuple[Action, ...]
    if status in EARNING:
        actions = (RecordOrder(the_order), *refunds)
    elif status == "refunded":
        actions = (RecordOrder(the_order), *refunds, RefundOrder(everything))
    elif status == "cancelled":
        actions = (*refunds, RefundOrder(everything, "skip"))
    else:
        return Inbound(topic, delivery, ignored=f"order status {status!r} neither earns nor refunds")
    # Deliveries of one order state are replays of each other; the id identifies them when the header is absent.
    return Inbound(topic, delivery, actions)


def order(data: Mapping[str, Any]) -> ShopOrder:
    currency = currency_of(data, "currency", "")
    gross = data.get("prices_include_tax") is True
    lines, goods = [], 0
    for i, line in enumerate(items(data, "line_items", "")):
        where = f"line_items[{i}]."
        quantity = count(line, "quantity", where)
        before = amount(line, "subtotal", currency, where) + (amount(line, "subtotal_tax", currency, where, 0)
                                                               if gross else 0)  # fmt: skip
        goods += amount(line, "total", currency, where) + (amount(line, "total_tax", currency, where, 0)
                                                            if gross else 0)  # fmt: skip
        sku = (
            text(line, "sku", where, required=False) or f"product-{line.get('variation_id') or line.get('product_id')}"
        )
        # The unit price before coupons; rounded up to a whole cent when the subtotal does not divide evenly.
        lines.append(OrderLine(sku, quantity, ceil_div(before, quantity), text(line, "name", where, required=False)))
    shipping = amount(data, "shipping_total", currency, "", default=0)
    if gross:
        shipping += amount(data, "shipping_tax", currency, "", default=0)
    billing = obj(data, "billing", "", required=False)
    customer_id = data.get("customer_id")
    customer = Customer(
        id=str(customer_id) if isinstance(customer_id, int) and not isinstance(customer_id, bool) and customer_id > 0
        else None,  # 0: a guest
        email=text(billing, "email", "billing.", required=False),
        first_name=text(billing, "first_name", "billing.", required=False),
        last_name=text(billing, "last_name", "billing.", required=False),
    )  # fmt: skip
    when = data.get("date_paid_gmt") or data.get("date_created_gmt")
    return ShopOrder(order_id=identifier(data, "id", ""), occurred_at=timestamp(when, "date_created_gmt"),
                     currency=currency, goods_minor=goods, shipping_minor=shipping,
                     discount_minor=amount(data, "discount_total", currency, "", default=0), lines=tuple(lines),
                     customer=customer)  # fmt: skip


def refunds_of(data: Mapping[str, Any]) -> list[ShopRefund]:
    currency = currency_of(data, "currency", "")
    order_id = identifier(data, "id", "")
    found = []
    for i, entry in enumerate(items(data, "refunds", "")):
        where = f"refunds[{i}]."
        paid_back = abs(amount(entry, "total", currency, where))
        found.append(ShopRefund(order_id, f"wc-refund-{identifier(entry, 'id', where)}", RefundKind.AMOUNT, currency,
                                goods_minor=paid_back))  # fmt: skip
    return found
