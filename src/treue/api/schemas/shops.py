"""Shop connections (inbound adapters)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from treue.api.schemas.common import Input, Output

PlatformName = Literal["shopify", "woocommerce", "shopware", "generic"]
MatchByName = Literal["email", "customer_id"]


class ShopCreate(Input):
    code: str = Field(min_length=1, max_length=64, pattern="^[a-z0-9_-]+$", examples=["webshop"])
    platform: PlatformName
    partner: str = Field("default", min_length=1, max_length=64)
    secret: str | None = Field(
        None,
        min_length=8,
        max_length=256,
        description="the platform's webhook secret; omit to have one generated (shown once)",
    )
    match_by: MatchByName = Field("email", description="match members by email, or by the shop's customer id "
                                                       "equal to the member's external_ref")  # fmt: skip
    create_members: bool = Field(False, description="unknown customers and guest orders create members; "
                                                    "otherwise such orders are skipped (202 with a reason)")  # fmt: skip
    shipping_earns: bool = False
    active: bool = True


class ShopUpdate(Input):
    secret: str | None = Field(None, min_length=8, max_length=256)
    match_by: MatchByName | None = None
    create_members: bool | None = None
    shipping_earns: bool | None = None
    active: bool | None = None


class ShopOut(Output):
    id: str
    code: str
    platform: str
    partner: str
    match_by: str
    create_members: bool
    shipping_earns: bool
    active: bool
    inbound_url: str


class ShopCreated(ShopOut):
    secret: str = Field(description="shown this once")


class InboundOut(Output):
    connection: str
    topic: str
    delivery_id: str
    outcome: Literal["processed", "skipped", "ignored"]
    steps: list[dict[str, object]]
    reason: str | None = None
