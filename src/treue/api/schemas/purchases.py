from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from treue.api.schemas.cards import PaymentIn
from treue.api.schemas.common import Amount, Input, Output


class Line(Input):
    sku: str = Field(min_length=1, max_length=200)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: Amount
    category: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=500)


class PurchaseCreate(Input):
    member_id: str | None = None
    card_number: str | None = None
    external_ref: str | None = None
    partner: str = Field("default", min_length=1, max_length=64)
    store: str | None = Field(None, max_length=64)
    cashier: str | None = Field(None, max_length=64, description="the till's cashier id")
    channel: Literal["store", "online", "app"] = "store"
    external_order_id: str = Field(min_length=1, max_length=200)
    occurred_at: datetime
    total: Amount
    currency: str = Field(pattern="^[A-Z]{3}$")
    lines: list[Line] = Field(default_factory=list, max_length=1000)
    payment: PaymentIn | None = Field(None, description="a payment token (issue 11): the linking member's purchase")
    device_id: str | None = Field(None, max_length=200, description="the member's device (app), for velocity caps")


class RefundLine(Input):
    sku: str
    quantity: int = Field(gt=0)


class RefundCreate(Input):
    amount: Amount | None = Field(None, description="omit (and omit lines) to refund everything left")
    currency: str | None = Field(None, pattern="^[A-Z]{3}$")
    lines: list[RefundLine] = Field(default_factory=list)
    external_refund_id: str | None = Field(None, max_length=200)
    occurred_at: datetime | None = None


class PurchaseOut(Output):
    id: str
    member_id: str | None
    external_order_id: str
    total: str
    currency: str
    points_earned: int


class RefundOut(Output):
    id: str
    purchase_id: str
    amount: str
    points_taken_back: int
    points_forgiven: int
