"""Request and response bodies of referrals and moderation (issue 7)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from treue.api.schemas.common import Input, Output


class ReferralSettingsIn(Input):
    """The programme's referral scheme; fields not sent take their defaults."""

    condition: str | None = Field(None, max_length=2000, examples=["event.name == 'purchase' && purchase.total >= 3000"],
                                  description="CEL over the referee's purchase or event; money in minor units")  # fmt: skip
    window_days: int | None = Field(None, ge=1, le=3650, description="days from enrolment to qualify (default 60)")
    return_days: int | None = Field(None, ge=0, le=3650,
                                    description="a refund this long after the qualifying purchase reverses (30)")  # fmt: skip
    referrer_limit: int | None = Field(None, ge=1, le=10**6, description="referrals per member and period")
    referrer_period: Literal["day", "week", "month", "year", "lifetime"] | None = None
    velocity_limit: int | None = Field(
        None, ge=1, le=10**6, description="referrals per IP address or device (default 5; null: none)"
    )
    velocity_hours: int | None = Field(None, ge=1, le=24 * 365)
    link_base: str | None = Field(None, max_length=200, examples=["https://shop.example"])
    active: bool | None = None


class ReferralSettingsOut(Output):
    configured: bool
    condition: str
    window_days: int
    return_days: int
    referrer_limit: int | None
    referrer_period: str
    velocity_limit: int | None
    velocity_hours: int
    link_base: str | None
    active: bool


class ReferralOut(Output):
    id: str
    referrer_id: str | None
    referee_id: str
    code: str
    status: str
    reason: str | None
    created_at: str
    expires_at: str | None
    rewards: dict[str, Any]


class ReferralStats(Output):
    sent: int
    pending: int
    completed: int
    expired: int
    reversed: int
    rejected: int
    rejected_by_reason: dict[str, int]
    reward_points: int


class MemberReferrals(ReferralStats):
    member_id: str
    code: str
    link: str | None
    referrals: list[dict[str, Any]]
    referred_by: dict[str, Any] | None


class CodeOut(Output):
    member_id: str
    code: str
    link: str | None


class ModerationIn(Input):
    decision: Literal["approve", "reject"]
    note: str | None = Field(None, max_length=500)


class ModerationOut(Output):
    event_id: str
    member_id: str
    status: str
    points: int
