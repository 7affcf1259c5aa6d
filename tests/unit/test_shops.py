"""Shop payload parsing and webhook signatures (pure: no database)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from treue.domain.errors import ShopPayloadInvalid
from treue.domain.shops import Platform, RecordOrder, RefundKind, RefundOrder, parse
from treue.domain.shops.signatures import sign, verify

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shops"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def changed(name: str, change: Any) -> bytes:
    data = json.loads(raw(name))
    change(data)
    return json.dumps(data).encode()


def test_signatures_match_each_platforms_documented_scheme():
    body, secret = b'{"id": 1}', "hush-hush"
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    assert sign(Platform.SHOPIFY, secret, body) == base64.b64encode(digest).decode()
    assert sign(Platform.WOOCOMMERCE, secret, body) == base64.b64encode(digest).decode()
    assert sign(Platform.SHOPWARE, secret, body) == digest.hex()
    assert sign(Platform.GENERIC, secret, body) == digest.hex()
    assert verify(Platform.SHOPIFY, secret, {"x-shopify-hmac-sha256": base64.b64encode(digest).decode()}, body)
    assert verify(Platform.SHOPWARE, secret, {"shopware-shop-signature": digest.hex().upper()}, body)
    assert verify(Platform.GENERIC, secret, {"x-treue-signature": "sha256=" + digest.hex()}, body)
    assert not verify(Platform.SHOPIFY, secret, {"x-shopify-hmac-sha256": base64.b64encode(digest).decode()},
                      body + b" ")  # fmt: skip
    assert not verify(Platform.SHOPIFY, secret, {}, body)
    assert not verify(Platform.WOOCOMMERCE, "other", {"x-wc-webhook-signature": sign(Platform.WOOCOMMERCE, secret,
                                                                                       body)}, body)  # fmt: skip
    assert not verify(Platform.SHOPWARE, "", {"shopware-shop-signature": ""}, body)


def test_shopify_order_amounts_lines_and_customer():
    inbound = parse(Platform.SHOPIFY, {"x-shopify-topic": "orders/paid", "x-shopify-webhook-id": "w"},
                    raw("shopify_orders_paid.json"))  # fmt: skip
    assert inbound.delivery_id == "w" and isinstance(inbound.actions[0], RecordOrder)
    order = inbound.actions[0].order
    assert (order.goods_minor, order.shipping_minor, order.discount_minor) == (22810, 490, 1990)
    assert order.earning_total(False).minor == 22810 and order.earning_total(True).minor == 23300
    assert [line.sku for line in order.purchase_lines(True)] == ["IPOD2008BLACK", "CASE-LTHR", "shipping"]
    assert order.customer.id == "115310627314723954" and order.customer.email == "john@example.com"
    assert order.occurred_at.isoformat() == "2026-03-01T16:15:47+00:00"


def test_shopify_refunds_by_line_items_and_by_amount():
    (lines,) = parse(
        Platform.SHOPIFY, {"x-shopify-topic": "refunds/create"}, raw("shopify_refunds_create.json")
    ).actions
    assert (
        isinstance(lines, RefundOrder) and lines.refund.goods_minor == 2450 and lines.refund.kind is RefundKind.AMOUNT
    )
    (amount,) = parse(Platform.SHOPIFY, {"x-shopify-topic": "refunds/create"},
                      raw("shopify_refunds_create_amount.json")).actions  # fmt: skip
    assert isinstance(amount, RefundOrder)
    assert (amount.refund.goods_minor, amount.refund.shipping_minor) == (5000, 490)
    assert amount.refund.amount_minor(False) == 5000 and amount.refund.amount_minor(True) == 5490


def test_shopify_topics_that_do_not_earn_are_ignored_with_a_reason():
    pending = changed("shopify_orders_paid.json", lambda d: d.update(financial_status="pending"))
    assert "not paid" in (parse(Platform.SHOPIFY, {"x-shopify-topic": "orders/create"}, pending).ignored or "")
    assert parse(Platform.SHOPIFY, {"x-shopify-topic": "products/update"}, b"{}").ignored


def test_woocommerce_status_mapping():
    def actions(status: str) -> list[str]:
        body = changed("woocommerce_order_updated_partial_refund.json", lambda d: d.update(status=status))
        inbound = parse(Platform.WOOCOMMERCE, {"x-wc-webhook-topic": "order.updated"}, body)
        return [type(a).__name__ + (f":{a.refund.kind.value}:{a.if_unknown}" if isinstance(a, RefundOrder) else "")
                for a in inbound.actions]  # fmt: skip

    assert actions("processing") == actions("completed") == ["RecordOrder", "RefundOrder:amount:conflict"]
    assert actions("refunded") == ["RecordOrder", "RefundOrder:amount:conflict", "RefundOrder:all:conflict"]
    assert actions("cancelled") == ["RefundOrder:amount:skip", "RefundOrder:all:skip"]
    assert actions("pending") == actions("on-hold") == []


def test_woocommerce_amounts_net_and_gross():
    (record,) = parse(Platform.WOOCOMMERCE, {"x-wc-webhook-topic": "order.created"},
                      raw("woocommerce_order_created.json")).actions  # fmt: skip
    assert isinstance(record, RecordOrder)
    assert (record.order.goods_minor, record.order.shipping_minor) == (5399, 490)
    assert record.order.customer.id == "26"
    gross = changed("woocommerce_order_created.json", lambda d: d.update(prices_include_tax=True, customer_id=0))
    (record,) = parse(Platform.WOOCOMMERCE, {"x-wc-webhook-topic": "order.created"}, gross).actions
    assert isinstance(record, RecordOrder)
    assert (record.order.goods_minor, record.order.shipping_minor) == (5399 + 684 + 342, 490 + 93)
    assert record.order.customer.id is None  # customer 0 is a guest
    # An uneven unit price is rounded up to a cent so the lines never add up to less than the total.
    uneven = changed("woocommerce_order_created.json", lambda d: d["line_items"][0].update(quantity=3))
    (record,) = parse(Platform.WOOCOMMERCE, {"x-wc-webhook-topic": "order.created"}, uneven).actions
    assert isinstance(record, RecordOrder) and record.order.lines[0].unit_price_minor == 1334


def test_shopware_reads_json_numbers_exactly():
    body = raw("shopware_transaction_paid.json")
    assert b"83.97" in body  # a JSON number, not a string
    (record,) = parse(Platform.SHOPWARE, {}, body).actions
    assert isinstance(record, RecordOrder)
    assert (record.order.goods_minor, record.order.shipping_minor, record.order.discount_minor) == (8397, 489, 600)
    assert record.order.lines[0].unit_price_minor == 2999
    (keep,) = parse(Platform.SHOPWARE, {}, raw("shopware_transaction_refunded_partially.json")).actions
    assert isinstance(keep, RefundOrder) and keep.refund.kind is RefundKind.KEEP and keep.refund.goods_minor == 5398
    three_decimals = changed("shopware_transaction_paid.json",
                             lambda d: d["data"]["payload"]["order"].update(positionPrice=0.1 + 0.2))  # fmt: skip
    with pytest.raises(ShopPayloadInvalid, match="positionPrice"):
        parse(Platform.SHOPWARE, {}, three_decimals)


def test_generic_schema():
    (record,) = parse(Platform.GENERIC, {}, raw("generic_purchase.json")).actions
    assert isinstance(record, RecordOrder) and record.order.goods_minor == 4500
    (back,) = parse(Platform.GENERIC, {}, raw("generic_refund.json")).actions
    assert isinstance(back, RefundOrder) and back.refund.goods_minor == 1500
    everything = changed("generic_refund.json", lambda d: d.pop("amount"))
    (back,) = parse(Platform.GENERIC, {}, everything).actions
    assert isinstance(back, RefundOrder) and back.refund.kind is RefundKind.ALL


@pytest.mark.parametrize(("platform", "body", "reason"), [
    (Platform.GENERIC, b"[]", "not a JSON object"),
    (Platform.GENERIC, b"\xff", "not JSON"),
    (Platform.GENERIC, b'{"type": "gift", "currency": "EUR", "order_id": "1"}', "neither"),
    (Platform.GENERIC, b'{"type": "purchase", "currency": "EURO", "order_id": "1"}', "currency"),
    (Platform.GENERIC, b'{"type": "purchase", "currency": "EUR", "order_id": "1", "occurred_at": "2026-03-01T10:00:00",'
                       b' "total": "1.00"}', "UTC offset"),
    (Platform.GENERIC, b'{"type": "purchase", "currency": "EUR", "order_id": "1", "occurred_at": "2026-03-01T10:00Z",'
                       b' "total": "1.001"}', "decimals"),
    (Platform.SHOPWARE, b'{"data": {"event": "state_enter.order_transaction.state.paid"}}', "payload"),
])  # fmt: skip
def test_malformed_payloads_name_the_reason(platform: Platform, body: bytes, reason: str):
    with pytest.raises(ShopPayloadInvalid, match=reason):
        parse(platform, {}, body)
