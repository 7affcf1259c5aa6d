"""Requests and responses of the paid premium club."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from treue.api.schemas.common import Amount, Input, Output

Interval = Literal["month", "year"]
Code = Field(pattern="^[a-z0-9_-]{1,64}$", examples=["plus"])


class PlanBenefitsIn(Input):
    earn_multiplier: str | int | None = Field(None, examples=["1.5"], description="decimal string, 1 to 10")
    cashback_percent: str | int | None = Field(None, examples=["2"], description="decimal string, 0 to 100")
    perks: list[str] | None = Field(None, examples=[["free_shipping", "early_access"]])
    birthday_bonus_points: int | None = Field(None, ge=0)


class PlanFields(Input):
    description: dict[str, str] | None = None
    trial_days: int | None = Field(None, ge=0, le=366)
    grace_days: int | None = Field(None, ge=0, le=90, description="past due for this long, then expired (7)")
    benefits: PlanBenefitsIn | None = None
    bonus_points: int | None = Field(None, ge=0, description="points credited once per paid period")
    voucher_reward_id: str | None = Field(None, description="a catalogue reward issued as a coupon per paid period")
    active: bool | None = None


class PlanCreate(PlanFields):
    code: str = Code
    name: dict[str, str] = Field(examples=[{"de": "Treue Plus", "en": "Loyalty Plus"}])
    price: Amount
    currency: str | None = Field(None, description="the programme's currency (the default)")
    interval: Interval = "month"


class PlanUpdate(PlanFields):
    name: dict[str, str] | None = None


class PlanOut(Output):
    id: str
    code: str
    name: dict[str, str]
    price: str
    currency: str
    interval: str
    trial_days: int
    grace_days: int
    active: bool


class PaymentIn(Input):
    provider_reference: str = Field(min_length=1, max_length=200, description="unique per payment; idempotent")
    amount: Amount
    currency: str = Field(min_length=3, max_length=3)
    status: Literal["succeeded", "failed"] = "succeeded"
    period_start: datetime | None = Field(None, description="the period paid (default: the next one due)")
    paid_at: datetime | None = None


class PaymentCreate(PaymentIn):
    plan: str | None = Field(None, description="the plan code, if the provider knows it (checked)")
    subscription_id: str | None = Field(None, description="checked against the member's subscription")


class JoinClub(Input):
    plan: str
    member_id: str | None = None
    card_number: str | None = None
    external_ref: str | None = None
    payment: PaymentIn | None = Field(None, description="the first period's payment (required without a trial)")


class CancelClub(Input):
    at_period_end: bool = Field(True, description="keep what was paid (or the trial); false: end now")
    reason: str | None = Field(None, max_length=500)


class PeriodOut(Output):
    index: int
    start: str | None
    end: str | None


class SubscriptionOut(Output):
    id: str
    member_id: str
    plan: str
    status: str
    benefits_apply: bool
    current_period: PeriodOut


class PaymentOut(Output):
    id: str
    subscription_id: str
    provider_reference: str
    status: str
    amount: str
    currency: str
    period: PeriodOut


class MemberClubOut(Output):
    member_id: str
    subscription: SubscriptionOut | None
    benefits: dict[str, object] | None
