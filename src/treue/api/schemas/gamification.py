"""Requests and responses of missions, streaks, badges, instant wins and leaderboards (issue 7).

Definitions are checked by the domain (treue.domain.gamification); a refusal is a 422 problem with code
`gamification_invalid` and the `location` of the offending value (CEL filters are checked like rule conditions).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, StrictStr

from treue.api.schemas.common import Input, Output

Code = Field(pattern="^[a-z0-9][a-z0-9_-]{0,63}$", examples=["may-3x"])
Texts = dict[str, str]
DateOrInstant = Field(None, examples=["2026-05-01"], description="a local date (ends: inclusive) or ISO 8601 instant")


class RewardIn(Input):
    points: int | None = Field(None, ge=0, le=10**9)
    coupon: str | None = Field(None, description="a coupon code issued to the member (services.grants)")
    badge: str | None = Field(None, description="a badge code")


class GoalIn(Input):
    type: Literal["count", "sum"] = "count"
    target: StrictInt | StrictStr = Field(examples=[3, "100.00"], description='events, or an amount ("100.00")')
    event: str | None = Field(None, examples=["purchase"], description="purchase or a custom event; none: rules only")
    filter: str | None = Field(None, examples=["purchase.total >= 2000"], description="CEL over the event")
    unit: Texts | None = Field(None, examples=[{"de": "Einkäufen", "en": "purchases"}])


class WindowIn(Input):
    type: Literal["week", "month", "days", "campaign"] = "month"
    days: int | None = Field(None, ge=1, le=3660, description="for type days: N days from the opt-in")


class MissionFields(Input):
    description: Texts | None = None
    starts: str | None = DateOrInstant
    ends: str | None = DateOrInstant
    audience: str | None = Field(None, examples=["member.tier == 'gold'"], description="CEL over member")
    reward: RewardIn | None = None
    active: bool | None = None


class MissionCreate(MissionFields):
    code: str = Code
    name: Texts = Field(examples=[{"de": "3 Einkäufe im Mai", "en": "3 purchases in May"}])
    goal: GoalIn
    window: WindowIn | None = None
    opt_in: bool = False
    repeatable: bool = False
    reward: RewardIn


class MissionUpdate(MissionFields):
    name: Texts | None = None


class MissionOut(Output):
    id: str
    code: str
    name: Texts
    active: bool


class MissionWindowOut(Output):
    key: str
    start: str
    end: str


class MemberMissionOut(Output):
    code: str
    name: str
    current: int
    target: int
    window: MissionWindowOut | None
    label: str
    labels: Texts
    opt_in_required: bool
    completed: bool


class MilestoneIn(Input):
    length: int = Field(ge=1, le=10_000)
    reward: RewardIn


class StreakCreate(Input):
    code: str = Code
    name: Texts
    description: Texts | None = None
    period: Literal["day", "week", "month"] = "day"
    event: str = Field(examples=["purchase"])
    filter: str | None = None
    freeze: bool = Field(False, description="one missed period is bridged once per streak")
    milestones: list[MilestoneIn] = []
    active: bool | None = None


class StreakUpdate(Input):
    active: bool


class StreakOut(Output):
    id: str
    code: str
    period: str
    active: bool


class MemberStreakOut(Output):
    code: str
    length: int
    best: int
    at_risk: bool


class BadgeCreate(Input):
    code: str = Code
    name: Texts
    description: Texts | None = None
    image_url: str | None = Field(None, max_length=2000, examples=["https://cdn.example/badges/first-review.svg"])
    rare_below_percent: StrictStr | StrictInt | None = Field(
        None, examples=["5"], description="rare when fewer members hold it"
    )
    active: bool | None = None


class BadgeUpdate(Input):
    name: Texts | None = None
    description: Texts | None = None
    image_url: str | None = Field(None, max_length=2000)
    rare_below_percent: StrictStr | StrictInt | None = None
    active: bool | None = None


class BadgeOut(Output):
    id: str
    code: str
    name: Texts


class BadgeGrant(Input):
    badge: str = Field(examples=["vip-night"])
    reason: str | None = Field(None, max_length=500)


class MemberBadgeOut(BadgeOut):
    awarded_at: str


class PrizeIn(Input):
    code: str = Code
    probability: StrictStr | StrictInt = Field(examples=["2.5"], description="percent, at most 4 decimals")
    points: int | None = Field(None, ge=1, le=10**9)
    coupon: str | None = None
    badge: str | None = None
    total: int | None = Field(None, ge=0, description="at most this many of the prize")
    daily_cap: int | None = Field(None, ge=0, description="at most this many per local day")


class InstantWinCreate(Input):
    code: str = Code
    name: Texts
    event: str = Field(examples=["purchase"])
    filter: str | None = None
    starts: str | None = DateOrInstant
    ends: str | None = DateOrInstant
    points_budget: int | None = Field(None, ge=1)
    prizes: list[PrizeIn]
    active: bool | None = None


class InstantWinUpdate(Input):
    name: Texts | None = None
    filter: str | None = None
    starts: str | None = None
    ends: str | None = None
    points_budget: int | None = Field(None, ge=1)
    prizes: list[PrizeIn] | None = None
    active: bool | None = None


class InstantWinOut(Output):
    id: str
    code: str
    odds_version: int
    active: bool


class DrawOut(Output):
    id: str
    number: int
    odds_version: int
    outcome: str


class LeaderboardConsentIn(Input):
    consented: bool = True
    nickname: str | None = Field(None, max_length=30, description="shown instead of first name and initial")


class LeaderboardConsentOut(Output):
    consented: bool
    display_name: str


class LeaderboardEntry(Output):
    rank: int
    display_name: str


class LeaderboardOut(Output):
    entries: list[LeaderboardEntry]
