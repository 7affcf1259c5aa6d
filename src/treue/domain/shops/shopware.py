"""Shopware 6 app webhooks for order state transitions. The body is
`{"data": {"payload": {"order": {...}}, "event": "state_enter.order_transaction.state.paid"},
  "source": {"url": ..., "shopId": ..., "appVersion": ..., "eventId": ...}, "timestamp": ...}`.

- state_enter.order_transaction.state.paid: the purchase;
- state_enter.order_transaction.state.refunded: everything left is refunded;
- state_enter.order_transaction.state.refunded_partially: points are taken back down to the order's current
  amount (the merchant edits the order to what the customer keeps; the state itself carries no amount);
- state_enter.order.state.cancelled: everything left of a recorded order is refunded.

Shopware sends JSON numbers (`"positionPrice": 83.97`): the body is decoded with Decimal, so 83.97 is read
exactly. Earning amount: `positionPrice` (product lines plus the negative promotion lines, as the shop shows
prices: gross, or net for net customers). Shipping: `shippingTotal`. `source.eventId` identifies a delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
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
    obj,
    text,
    timestamp,
)

PAID = "state_enter.order_transaction.state.paid"
REFUNDED = "state_enter.order_transaction.state.refunded"
PARTIALLY = "state_enter.order_transaction.state.refunded_partially"
CANCELLED = "state_enter.order.state.cancelled"
EVENTS = (PAID, REFUNDED, PARTIALLY, CANCELLED)


def parse(headers: Mapping[str, str], body: bytes) -> Inbound:
    data = load(body)
    envelope = obj(data, "data", "")
    event = text(envelope, "event", "data.") or ""
    source = obj(data, "source", "", required=False)
    delivery = text(source, "eventId", "source.", required=False)
    if event not in EVENTS:
        return Inbound(event, delivery, ignored=f"event {event!r} is not used by Treue")
    the_order = order(obj(obj(envelope, "payload", "data."), "order", "data.payload."))
    when = _unix(data.get("timestamp"))
    if event == PAID:
        return Inbound(event, delivery, (RecordOrder(the_order),))
    if event == PARTIALLY:
        keep = ShopRefund(the_order.order_id, f"sw-keep-{the_order.goods_minor}-{the_order.shipping_minor}",
                          RefundKind.KEEP, the_order.currency, when, the_order.goods_minor,
                          the_order.shipping_minor)  # fmt: skip
        return Inbound(event, delivery, (RefundOrder(keep),))
    everything = ShopRefund(the_order.order_id, "sw-" + event.rsplit(".", 1)[1], RefundKind.ALL, the_order.currency,
                            when)  # fmt: skip
    return Inbound(event, delivery, (RefundOrder(everything, "skip" if event == CANCELLED else "conflict"),))


def _unix(value: Any) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def order(data: Mapping[str, Any]) -> ShopOrder:
    where = "data.payload.order."
    currency = currency_of(obj(data, "currency", where), "isoCode", where + "currency.")
    price = obj(data, "price", where, required=False)
    goods_source = data if data.get("positionPrice") is not None else price
    if goods_source.get("positionPrice") is None:
        raise ShopPayloadInvalid(f"{where}positionPrice is missing")
    goods = amount(goods_source, "positionPrice", currency, where)
    shipping_costs = obj(data, "shippingCosts", where, required=False)
    if data.get("shippingTotal") is not None:
        shipping = amount(data, "shippingTotal", currency, where)
    else:
        shipping = amount(shipping_costs, "totalPrice", currency, where + "shippingCosts.", default=0)
    lines, discount = [], 0
    for i, line in enumerate(items(data, "lineItems", where)):
        at = f"{where}lineItems[{i}]."
        total = amount(line, "totalPrice", currency, at)
        if line.get("type") == "promotion" or total < 0:  # promotions are negative lines
            discount += -total
            continue
        payload = obj(line, "payload", at, required=False)
        sku = (text(payload, "productNumber", at + "payload.", required=False)
               or text(line, "referencedId", at, required=False) or identifier(line, "id", at))  # fmt: skip
        lines.append(OrderLine(sku, count(line, "quantity", at), amount(line, "unitPrice", currency, at),
                               text(line, "label", at, required=False)))  # fmt: skip
    buyer = obj(data, "orderCustomer", where, required=False)
    customer = Customer(id=text(buyer, "customerNumber", where + "orderCustomer.", required=False),
                        email=text(buyer, "email", where + "orderCustomer.", required=False),
                        first_name=text(buyer, "firstName", where + "orderCustomer.", required=False),
                        last_name=text(buyer, "lastName", where + "orderCustomer.", required=False))  # fmt: skip
    return ShopOrder(order_id=identifier(data, "orderNumber", where),
                     occurred_at=timestamp(data.get("orderDateTime"), where + "orderDateTime"), currency=currency,
                     goods_minor=goods, shipping_minor=shipping, discount_minor=discount, lines=tuple(lines),
                     customer=customer)  # fmt: skip
