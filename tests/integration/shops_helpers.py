"""Helpers for the shop adapter tests: fixtures from tests/fixtures/shops and signed deliveries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.integration.api_helpers import Api, assert_problem
from treue.domain.shops import Platform
from treue.domain.shops.signatures import HEADERS, sign

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shops"
TOPIC = {"shopify": "x-shopify-topic", "woocommerce": "x-wc-webhook-topic"}


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def edited(name: str, change: Any) -> bytes:
    """A fixture with a change applied to its parsed JSON (`change(data)` edits in place)."""
    data = json.loads(raw(name))
    change(data)
    return json.dumps(data).encode()


def deliver(api: Api, shop: dict[str, Any], body: bytes, *, topic: str | None = None, delivery: str | None = None,
            secret: str | None = None, signature: str | None = None, platform: str | None = None) -> httpx.Response:  # fmt: skip
    """POST a body to the shop's inbound URL, signed as its platform signs (or with the given signature)."""
    name = platform or shop["platform"]
    headers = {"Content-Type": "application/json"}
    if signature is None and (secret or shop.get("secret")):
        signature = sign(Platform(name), secret or shop["secret"], body)
    if signature is not None:
        headers[HEADERS[Platform(name)]] = signature
    if topic is not None:
        headers[TOPIC[name]] = topic
    if delivery is not None:
        headers[{"shopify": "x-shopify-webhook-id", "woocommerce": "x-wc-webhook-delivery-id",
                 "generic": "x-treue-delivery-id"}[name]] = delivery  # fmt: skip
    response = api.client.post(shop["inbound_url"], content=body, headers=headers)
    if response.status_code >= 400:
        assert_problem(response)
    return response
