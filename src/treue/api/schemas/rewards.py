from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from treue.api.schemas.common import Amount, Input, Output

RewardKind = Literal["discount_fixed", "discount_percent", "free_product", "gift_card", "experience", "merchandise"]


class RewardFields(Input):
    description: dict[str, str] | None = None
    stock: int | None = Field(None, ge=0, description="omit for unlimited")
    per_member_limit: int | None = Field(None, gt=0)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    active: bool | None = None
    value: Amount | None = None
    percent: int | None = Field(None, gt=0, le=100)
    sku: str | None = Field(None, max_length=200)
    coupon_valid_days: int | None = Field(None, gt=0)


class RewardCreate(RewardFields):
    name: dict[str, str] = Field(examples=[{"de": "Kissen", "en": "Cushion"}])
    type: RewardKind
    cost_points: int = Field(gt=0)


class RewardUpdate(RewardFields):
    name: dict[str, str] | None = None
    type: RewardKind | None = None
    cost_points: int | None = Field(None, gt=0)


class RewardOut(Output):
    id: str
    name: dict[str, str]
    type: str
    cost_points: int
    stock: int | None


class RedemptionCreate(Input):
    reward_id: str
    member_id: str | None = None
    card_number: str | None = None
    external_ref: str | None = None
    partner: str | None = Field(None, max_length=64, description="where the points are spent; a partner key's own")
    device_id: str | None = Field(None, max_length=200, description="the member's device (app), for velocity caps")


class RedemptionCancel(Input):
    reason: str | None = Field(None, max_length=500)


class CouponConsume(Input):
    order_id: str | None = Field(None, max_length=200)


class RedemptionOut(Output):
    id: str
    status: str
