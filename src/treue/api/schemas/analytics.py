"""Predictive CLV and churn: what GET /analytics/clv and GET /members/{id}/clv return."""

from __future__ import annotations

from pydantic import BaseModel, Field

from treue.api.schemas.common import Output


class MoneyOut(BaseModel):
    amount: str = Field(examples=["123.45"], description="decimal string in major units, never a float")
    currency: str


class BgNbdOut(Output):
    r: float = Field(description="shape of the purchase-rate Gamma distribution")
    alpha: float = Field(description="rate (scale in weeks) of the purchase-rate Gamma distribution")
    a: float = Field(description="Beta parameter of the dropout probability")
    b: float = Field(description="Beta parameter of the dropout probability")
    log_likelihood: float
    converged: bool


class GammaGammaOut(Output):
    p: float = Field(description="shape of a member's transaction values")
    q: float = Field(description="shape of the Gamma distribution of the members' rate parameter")
    gamma: float = Field(description="rate of that distribution, in major currency units")
    log_likelihood: float
    converged: bool
    mean_spend: MoneyOut | None = Field(description="population mean value of a transaction, p*gamma/(q-1)")


class MembersOut(Output):
    count: int = Field(description="members with a purchase up to the calibration end")
    with_repeat: int = Field(description="of them, members with at least one repeat purchase day")
    expected_purchases_total: float | None
    mean_probability_alive: float | None
    expected_clv_total: MoneyOut | None


class HoldoutGroupOut(Output):
    calibration_repeat_purchases: str = Field(examples=["0", "1", "7+"])
    members: int
    predicted_mean: float
    actual_mean: float
    predicted_total: float
    actual_total: int


class HoldoutOut(Output):
    from_: str = Field(alias="from", description="calibration end (exclusive)")
    to: str = Field(description="holdout end (inclusive)")
    weeks: float
    members: int
    actual_repeat_purchases: int
    predicted_repeat_purchases: float | None
    error_percent: float | None = None
    by_calibration_repeat_purchases: list[HoldoutGroupOut]


class MemberScoreOut(Output):
    member_id: str
    repeat_purchases: int = Field(description="x: purchase days after the first, up to the calibration end")
    recency_weeks: float = Field(description="t_x: weeks from the first to the last purchase day")
    age_weeks: float = Field(description="T: weeks from the first purchase day to the calibration end")
    mean_repeat_spend: MoneyOut | None
    probability_alive: float
    churn_risk: float = Field(description="1 - probability_alive")
    expected_purchases: float = Field(description="expected purchase days in the next horizon_weeks")
    expected_clv: MoneyOut | None


class WarningOut(Output):
    code: str
    detail: str


class ClvReportOut(Output):
    program_id: str
    calibration_end: str
    timezone: str
    horizon_weeks: int
    discount_rate: float
    computed_at: str
    stored: bool
    currency: str
    bgnbd: BgNbdOut | None
    gamma_gamma: GammaGammaOut | None
    members: MembersOut
    holdout: HoldoutOut | None = None
    top_members: list[MemberScoreOut]
    warnings: list[WarningOut]


class MemberClvOut(Output):
    member_id: str
    computed: bool = Field(description="false until a stored CLV run has scored this member")
    calibration_end: str | None
    computed_at: str | None
    repeat_purchases: int | None
    probability_alive: float | None
    churn_risk: float | None
    expected_purchases: float | None
    horizon_weeks: int | None
    discount_rate: float | None
    expected_clv: MoneyOut | None


# -- KPIs and the liability report (GET /analytics/kpis, GET /analytics/liability) ---------------------------------
Rate = str | None  # a decimal string with four places ("0.3333"); null when its denominator is zero


class PurchaseKpisOut(Output):
    members_active: int = Field(description="members with a purchase in the period")
    purchases: int = Field(description="members' purchases (a purchase refunded in full does not count)")
    purchases_anonymous: int
    revenue: MoneyOut = Field(description="members' purchases net of refunds")
    revenue_anonymous: MoneyOut
    repeat_purchase_rate: Rate = Field(description="share of active members with >= 2 purchases")
    purchase_frequency: Rate = Field(description="purchases per active member")
    average_order_value: MoneyOut | None
    average_order_value_anonymous: MoneyOut | None
    revenue_per_member: MoneyOut | None = Field(description="revenue per active member")


class KpiGroupOut(PurchaseKpisOut):
    key: str | None = Field(description="tier code, channel, partner or enrolment month; null: anonymous")
    members_total: int | None = None
    members_new: int | None = None


class CampaignKpisOut(Output):
    id: str
    name: str
    starts_at: str
    ends_at: str
    points_cost: int = Field(description="points the campaign's rules gave in the period")
    cost: MoneyOut
    budget_points: int | None
    budget_spent: int
    participants: int
    participants_revenue: MoneyOut = Field(description="participants' revenue inside the campaign window")


class RetentionMonthOut(Output):
    month: str
    active: int
    rate: Rate


class CohortOut(Output):
    cohort: str = Field(description="enrolment month (programme-local)")
    members: int
    months: list[RetentionMonthOut]


class KpisOut(PurchaseKpisOut):
    program_id: str
    from_: str = Field(alias="from")
    to: str
    timezone: str
    currency: str
    computed_at: str
    by: str | None
    members_total: int
    members_new: int
    historical_clv: MoneyOut | None = Field(description="members' net revenue to the period's end per member")
    points_issued: int = Field(description="earned in the period, net of points taken back by refunds")
    points_redeemed: int = Field(description="spent in the period, net of cancelled redemptions")
    points_expired: int
    points_moved: dict[str, int]
    redemption_rate: Rate
    members_redeemed: int
    members_redeemed_share: Rate
    breakage_rate: Rate
    expected_breakage: str = Field(description="expired / (expired + redeemed) over all time up to the end")
    points_outstanding: int
    points_liability: MoneyOut
    points_liability_adjusted: MoneyOut
    cashback_liability: MoneyOut
    club_revenue: MoneyOut
    nps: float | None = Field(description="% promoters - % detractors, -100..100; null without answers")
    nps_answers: int
    campaigns: list[CampaignKpisOut]
    cohort_retention: list[CohortOut]
    groups: list[KpiGroupOut] | None = None


class LiabilityMonthOut(Output):
    month: str
    opening: int
    issued: int
    reversed_earned: int
    redeemed: int
    reversed_redeemed: int
    expired: int
    adjusted: int
    transferred: int
    other: int
    closing: int
    opening_value: str
    closing_value: str
    expected_breakage: str
    deferred_revenue: str
    currency: str


class LiabilityOut(Output):
    program_id: str
    from_: str = Field(alias="from")
    to: str
    timezone: str
    currency: str
    computed_at: str
    point_value: str
    months: list[LiabilityMonthOut]
