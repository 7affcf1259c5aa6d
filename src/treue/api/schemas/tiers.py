"""Requests and responses of tiers: the ladder, a member's tier and progress, manual assignment."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from treue.api.schemas.common import Amount, Input, Output

Basis = Literal["spend", "purchases", "status_points"]
Review = Literal["window_end", "anniversary"]


class TierBenefitsIn(Input):
    earn_multiplier: str | int | None = Field(None, examples=["1.5"], description="decimal string, 1 to 10")
    cashback_percent: str | int | None = Field(None, examples=["10"], description="decimal string, 0 to 100")
    perks: list[str] | None = Field(None, examples=[["free_shipping"]], description="flags shops read")
    birthday_bonus_points: int | None = Field(None, ge=0)


class TierIn(Input):
    code: str = Field(pattern="^[a-z0-9_-]{1,32}$", examples=["gold"], description="what member.tier holds in rules")
    name: dict[str, str] = Field(examples=[{"de": "Gold", "en": "Gold"}])
    threshold: Amount = Field(
        description='of the basis within the window: spend as a decimal string ("500.00"), counts and points as '
        "integers; 0 for the first tier"
    )
    window: str = Field("lifetime", examples=["12M"], description="12M (rolling months), calendar_year or lifetime")
    benefits: TierBenefitsIn | None = None


class LadderIn(Input):
    basis: Basis
    review: Review = Field("window_end", description="window_end (counted from reaching the tier) or anniversary")
    grace_days: int = Field(0, ge=0, le=366, description="after the review date, days to qualify again")
    notice_days: int = Field(0, ge=0, le=366, description="tier.will_downgrade this many days before the review")
    tiers: list[TierIn] = Field(min_length=1, max_length=20, description="lowest first")


class LadderOut(Output):
    basis: str | None
    tiers: list[dict[str, Any]]


class AssignTier(Input):
    tier: str = Field(examples=["gold"])
    until: datetime | None = Field(None, description="the assignment's expiry; omit for until removed")
    reason: str | None = Field(None, max_length=500)


class MemberTierOut(Output):
    member_id: str
    tier: dict[str, Any] | None
    basis: str | None
