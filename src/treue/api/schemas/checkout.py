"""Requests and responses of checkout (preview, holds) and cashback wallets."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from treue.api.schemas.common import Amount, Input, Output
from treue.api.schemas.purchases import Line


class CheckoutPreview(Input):
    member_id: str | None = None
    card_number: str | None = None
    external_ref: str | None = None
    partner: str = Field("default", min_length=1, max_length=64)
    store: str | None = Field(None, max_length=64)
    cashier: str | None = Field(None, max_length=64, description="the till's cashier id")
    channel: Literal["store", "online", "app"] = "store"
    occurred_at: datetime | None = Field(None, description="default: now")
    total: Amount
    currency: str = Field(pattern="^[A-Z]{3}$")
    lines: list[Line] = Field(default_factory=list, max_length=1000)


class HoldCreate(Input):
    member_id: str | None = None
    card_number: str | None = None
    external_ref: str | None = None
    points: int = Field(0, ge=0, description="points to keep for the cart")
    wallet_amount: Amount = Field("0", description='wallet money to keep, e.g. "5.00"')
    currency: str | None = Field(None, pattern="^[A-Z]{3}$", description="default: the programme's currency")
    cart_total: Amount | None = Field(None, description="if given, points and wallet may not pay more than this")
    expires_in_minutes: int | None = Field(None, ge=1, le=10080, description="default: the programme's hold_minutes")
    reference: str | None = Field(None, max_length=200, description="the till's cart or order reference")
    partner: str = Field("default", min_length=1, max_length=64)
    store: str | None = Field(None, max_length=64, description="the store whose till reserves")
    cashier: str | None = Field(None, max_length=64, description="the till's cashier id")


class HoldCapture(Input):
    external_order_id: str = Field(min_length=1, max_length=200)
    occurred_at: datetime | None = Field(None, description="default: now")
    total: Amount = Field(description="the whole cart, before points and wallet money")
    currency: str = Field(pattern="^[A-Z]{3}$")
    partner: str = Field("default", min_length=1, max_length=64)
    store: str | None = Field(None, max_length=64)
    cashier: str | None = Field(None, max_length=64, description="the till's cashier id")
    channel: Literal["store", "online", "app"] = "store"
    lines: list[Line] = Field(default_factory=list, max_length=1000)
    points: int | None = Field(None, ge=0, description="pay with fewer points than held; default: all held")
    wallet_amount: Amount | None = Field(None, description="pay with less wallet money than held; default: all")


class HoldRelease(Input):
    store: str | None = Field(None, max_length=64, description="the store whose till releases")
    cashier: str | None = Field(None, max_length=64, description="the till's cashier id")


class HoldOut(Output):
    id: str
    member_id: str
    state: Literal["active", "expired", "captured", "released"]
    points: int
    points_value: str
    wallet_amount: str
    currency: str
    expires_at: str
    store: str | None = None
    cashier: str | None = None
    finished_store: str | None = Field(None, description="the store whose till captured or released the hold")
    finished_cashier: str | None = None


class WalletOut(Output):
    member_id: str
    currency: str
    balance: str
    available: str
    pending: str
    held: str
    usable: str


class WalletEntryOut(Output):
    transfer_id: str
    kind: str
    amount: str
    currency: str
    occurred_at: str
