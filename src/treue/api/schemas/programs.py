from __future__ import annotations

from typing import Literal

from pydantic import Field

from treue.api.schemas.common import Amount, Input, Locale, Output

Rounding = Literal["floor", "half_up", "half_even", "ceil"]
Expiry = Literal["none", "rolling", "fixed_day"]
Returns = Literal["only_pending", "within_balance", "allow_negative"]


class ProgramSettings(Input):
    point_value: Amount | None = Field(None, description='money per `point_value_points` points, e.g. "0.01"')
    point_value_points: int | None = Field(None, gt=0)
    rounding: Rounding | None = None
    earn_basis: Literal["per_amount", "per_item"] | None = None
    earn_points: int | None = Field(None, ge=0, description="points per amount (or per item)")
    earn_per_amount: Amount | None = Field(None, description='the amount that earns `earn_points`, e.g. "1.00"')
    pending_days: int | None = Field(None, ge=0, le=3650)
    expiry_policy: Expiry | None = None
    expiry_months: int | None = Field(None, ge=0, le=600)
    expiry_day: str | None = Field(None, pattern=r"^\d\d-\d\d$", description="MM-DD for fixed_day expiry")
    expiry_years: int | None = Field(None, ge=0, le=50)
    return_policy: Returns | None = None
    default_locale: Locale | None = None
    earn_on_money_only: bool | None = Field(None, description="a captured checkout earns only on the money paid")
    min_redemption_points: int | None = Field(None, ge=0, description="fewest points per checkout payment")
    hold_minutes: int | None = Field(None, ge=1, le=10080, description="default lifetime of a checkout hold")
    cashback_expiry_months: int | None = Field(None, ge=0, le=600, description="0: cashback never expires")
    control_percent: Amount | None = Field(None, description='share of members held out as a control group ("10")')


class ProgramCreate(ProgramSettings):
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(pattern="^[A-Z]{3}$")
    timezone: str = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])


class ProgramUpdate(ProgramSettings):
    name: str | None = Field(None, min_length=1, max_length=200)
    timezone: str | None = Field(None, min_length=1, max_length=64)


class ProgramOut(Output):
    id: str
    name: str
    currency: str
    timezone: str
    rounding: str
    pending_days: int
    return_policy: str


class KeyCreate(Input):
    scope: Literal["admin", "pos", "shop", "read_only", "partner"]
    name: str = Field("", max_length=200)
    partner: str | None = Field(None, max_length=64)


class KeyRotate(Input):
    grace_hours: int = Field(24, ge=0, le=720, description="how long the replaced secret keeps working; 0: not at all")


class KeyOut(Output):
    id: str
    scope: str
    name: str
