"""Webhook signatures: each platform signs the raw body with HMAC-SHA256 and the shared secret.

- Shopify:     X-Shopify-Hmac-Sha256   = base64(HMAC-SHA256(secret, body))
- WooCommerce: X-WC-Webhook-Signature  = base64(HMAC-SHA256(secret, body))
- Shopware 6:  shopware-shop-signature = hex(HMAC-SHA256(app secret, body))
- generic:     X-Treue-Signature       = hex(HMAC-SHA256(secret, body)), optionally prefixed "sha256="

The signature is computed over the bytes as received: re-serialising parsed JSON would change them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from treue.domain.shops.orders import Platform

HEADERS = {
    Platform.SHOPIFY: "x-shopify-hmac-sha256",
    Platform.WOOCOMMERCE: "x-wc-webhook-signature",
    Platform.SHOPWARE: "shopware-shop-signature",
    Platform.GENERIC: "x-treue-signature",
}
_BASE64 = {Platform.SHOPIFY, Platform.WOOCOMMERCE}


def sign(platform: Platform, secret: str, body: bytes) -> str:
    """The header value the platform sends for this body (what tests and the generic webhook's senders use)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode() if platform in _BASE64 else digest.hex()


def verify(platform: Platform, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Is the body signed with this secret? `headers` have lower-case names. Constant-time comparison."""
    given = headers.get(HEADERS[platform], "").strip()
    if platform is Platform.GENERIC and given.lower().startswith("sha256="):
        given = given[7:]
    if platform is Platform.SHOPWARE or platform is Platform.GENERIC:
        given = given.lower()
    if not given or not secret:
        return False
    return hmac.compare_digest(given.encode(), sign(platform, secret, body).encode())
