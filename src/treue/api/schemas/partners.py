"""Coalition partners and settlements."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from treue.api.schemas.common import Amount, Input, Output

BillingKind = Literal["prepaid", "postpaid"]
Names = list[str]


class PartnerFields(Input):
    stores: Names | None = Field(None, max_length=500, description="store ids where the partner's tills stand")
    channels: Names | None = Field(None, max_length=20, examples=[["store", "web"]])
    issue_price: Amount | None = Field(None, description="what the partner pays per `issue_points` points it issues")
    issue_points: int | None = Field(None, gt=0, le=1_000_000)
    redeem_price: Amount | None = Field(None, description="what the partner is paid per `redeem_points` redeemed at it")
    redeem_points: int | None = Field(None, gt=0, le=1_000_000)
    billing: BillingKind | None = None


class PartnerCreate(PartnerFields):
    code: str = Field(max_length=64, examples=["baeckerei-mueller"], description="the `partner` of purchases and keys")
    name: str = Field(min_length=1, max_length=200)


class PartnerUpdate(PartnerFields):
    name: str | None = Field(None, min_length=1, max_length=200)


class PartnerOut(Output):
    code: str
    name: str
    stores: list[str]
    channels: list[str]
    currency: str
    issue_price: str
    issue_points: int
    redeem_price: str
    redeem_points: int
    billing: str


class SettlementCreate(Input):
    period: str = Field(max_length=16, examples=["2026-11"], description="a month in the programme's timezone")


class SettlementLineOut(Output):
    partner: str
    registered: bool
    points_issued: int
    points_taken_back: int
    points_redeemed_at: int
    points_funded_redeemed: int
    points_expired: int
    owed_by_partner: str
    owed_to_partner: str
    net: str
    redeemed_by_funder: dict[str, int]
    funded_redeemed_at: dict[str, int]


class SettlementOut(Output):
    period: str
    currency: str
    period_start: str
    period_end: str
    settled_at: str
    lines: list[SettlementLineOut]
