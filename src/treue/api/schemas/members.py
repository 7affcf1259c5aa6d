from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field

from treue.api.schemas.common import Input, Locale, Output


class _Profile(Input):
    external_ref: str | None = Field(None, max_length=200)
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32)
    birthday: date | None = None
    locale: Locale | None = None
    consent_source: str | None = Field(None, max_length=64)


class MemberCreate(_Profile):
    attributes: dict[str, Any] = Field(default_factory=dict)
    consents: dict[str, bool] = Field(default_factory=dict, description="marketing consent per channel")
    referral_code: str | None = Field(None, max_length=32, description="the code (or link code) of a referring member")
    device_id: str | None = Field(None, max_length=200, description="fraud screen: the app's device id")
    ip: str | None = Field(None, max_length=64, description="fraud screen: the client's IP address")
    payment_fingerprint: str | None = Field(
        None, max_length=200, description="fraud screen: the payment provider's card fingerprint"
    )


class MemberUpdate(_Profile):
    """Only the fields sent are changed (PATCH)."""

    attributes: dict[str, Any] | None = None
    consents: dict[str, bool] | None = None


class MemberOut(Output):
    id: str
    card_number: str
    external_ref: str | None
    email: str | None
    locale: str
    status: str
    referral: dict[str, Any] | None = Field(
        None, description="enrolled with a referral code: the referral, pending or rejected with its reason"
    )


class BalanceOut(Output):
    member_id: str
    points: int
    available: int
    pending: int
    value: str
    currency: str
    next_expiry: dict[str, Any] | None


class Adjustment(Input):
    points: int = Field(description="positive credits, negative deducts")
    reason: str = Field(min_length=1, max_length=500)


class PointsTransfer(Input):
    to_member_id: str
    points: int = Field(gt=0)
    note: str | None = Field(None, max_length=500)
