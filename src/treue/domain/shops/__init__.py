"""Shop systems (inbound): payloads of Shopify, WooCommerce, Shopware 6 and a generic JSON webhook, parsed into
neutral orders and refunds (`orders.py`), and the platforms' webhook signatures (`signatures.py`).

Pure: no I/O and no clock. One module per platform turns a raw body (and the headers that name its topic) into
an `Inbound`: what the delivery asks the engine to do, or why it asks nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from treue.domain.shops.orders import (
    Customer,
    Inbound,
    MatchBy,
    OrderLine,
    Platform,
    RecordOrder,
    RefundKind,
    RefundOrder,
    ShopOrder,
    ShopRefund,
)

__all__ = ["Customer", "Inbound", "MatchBy", "OrderLine", "Platform", "RecordOrder", "RefundKind", "RefundOrder",
           "ShopOrder", "ShopRefund", "parse"]  # fmt: skip


def parse(platform: Platform, headers: Mapping[str, str], body: bytes) -> Inbound:
    """What a delivery asks for, by platform. `headers` have lower-case names."""
    from treue.domain.shops import generic, shopify, shopware, woocommerce

    parsers = {Platform.SHOPIFY: shopify.parse, Platform.WOOCOMMERCE: woocommerce.parse,
               Platform.SHOPWARE: shopware.parse, Platform.GENERIC: generic.parse}  # fmt: skip
    return parsers[platform](headers, body)
