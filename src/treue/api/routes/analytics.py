"""Analytics over HTTP: KPIs and the monthly liability report (admin keys: they read every member's history),
predictive CLV and churn, and a member's stored scores (any programme key, like the member's other facts)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from treue.api.auth import ADMIN, READ, Context
from treue.api.schemas.analytics import ClvReportOut, KpisOut, LiabilityOut, MemberClvOut
from treue.api.schemas.common import PROBLEMS
from treue.domain.durations import add_months, local_date, zone
from treue.services import analytics as cases
from treue.services import kpis as kpi_cases
from treue.services import roi as roi_cases

router = APIRouter(responses=PROBLEMS, tags=["analytics"])


@router.get("/analytics/clv", response_model=ClvReportOut, response_model_by_alias=True)
def clv(
    calibration_end: date | None = Query(None, description="last day of the fitting period (programme-local); "
                                                           "default today"),
    holdout_end: date | None = Query(None, description="compare predictions with (calibration_end, holdout_end]"),
    horizon_weeks: int = Query(52, ge=1, le=cases.MAX_HORIZON_WEEKS, description="CLV and purchase horizon"),
    discount_rate: float = Query(0.1, ge=0, le=1, description="annual discount rate (0.1 = 10 %)"),
    members: int = Query(10, ge=0, le=cases.MAX_TOP, description="how many top members to list"),
    ctx: Context = Depends(ADMIN),
) -> dict[str, Any]:  # fmt: skip
    """Fit BG/NBD (purchase frequency and dropout) and Gamma-Gamma (spend) to the purchase history up to
    `calibration_end`; return the parameters, the members' totals, the most valuable members and, with
    `holdout_end`, predicted vs actual repeat purchases. Computes on request and stores nothing (the member
    facts are stored by `treue analytics clv` and the `clv` job)."""
    uow = ctx.uow(read_only=True)
    now = ctx.now()
    if calibration_end is None:
        with uow:
            calibration_end = local_date(now, zone(uow.programs.get(ctx.program_id).timezone))
    return cases.clv_report(uow, ctx.program_id, calibration_end, now, holdout_end=holdout_end,
                            horizon_weeks=horizon_weeks, discount_rate=discount_rate, top=members)  # fmt: skip


@router.get("/members/{member_id}/clv", response_model=MemberClvOut)
def member_clv(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The member's latest stored churn risk (1 - probability alive), expected purchases and expected CLV."""
    return cases.member_clv(ctx.uow(read_only=True), ctx.program_id, member_id)


@router.get("/analytics/kpis", response_model=KpisOut, response_model_by_alias=True)
def kpis(
    from_: date | None = Query(None, alias="from", description="first day of the period (programme-local); "
                                                                 "default the first day of `to`'s month"),
    to: date | None = Query(None, description="last day of the period (programme-local, inclusive); default today"),
    by: str | None = Query(None, description="split by tier, channel, partner or cohort (enrolment month)"),
    ctx: Context = Depends(ADMIN),
) -> dict[str, Any]:  # fmt: skip
    """The programme's KPIs over [from, to]: members, repeat purchases, order values, points issued, redeemed and
    expired, liabilities, club revenue, NPS, campaigns and cohort retention; with `by`, also per group. Rates are
    decimal strings with four places, money decimal strings with the currency."""
    uow, now = ctx.uow(read_only=True), ctx.now()
    if to is None:
        to = _today(ctx)
    return kpi_cases.kpis(uow, ctx.program_id, from_ or to.replace(day=1), to, now, by=by)


@router.get("/analytics/roi")
def roi(
    from_: date | None = Query(None, alias="from", description="first day of the period (programme-local); "
                                                                 "default the first day of `to`'s month"),
    to: date | None = Query(None, description="last day of the period (programme-local, inclusive); default today"),
    campaign: str | None = Query(None, max_length=64, description="a campaign's control group; default the programme's"),
    margin_percent: str = Query("100", max_length=12, description="gross margin on revenue, e.g. 30"),
    confidence: float = Query(0.95, description="0.9, 0.95 or 0.99"),
    ctx: Context = Depends(ADMIN),
) -> dict[str, Any]:  # fmt: skip
    """Uplift of the members the programme (or a campaign) reached over its control group: revenue per member and
    purchase frequency with a Welch confidence interval, incremental revenue and margin, the rewards' cost, and
    ROI = incremental margin / cost (with the bounds from the revenue interval)."""
    if to is None:
        to = _today(ctx)
    return roi_cases.measure_roi(ctx.uow(read_only=True), ctx.program_id, from_ or to.replace(day=1), to,
                                 campaign=campaign,
                                 margin_percent=margin_percent, confidence=confidence)  # fmt: skip


def _today(ctx: Context) -> date:
    with ctx.uow(read_only=True) as uow:
        return local_date(ctx.now(), zone(uow.programs.get(ctx.program_id).timezone))


@router.get("/analytics/liability", response_model=LiabilityOut, response_model_by_alias=True,
            responses={200: {"content": {"text/csv": {}}}})  # fmt: skip
def liability(
    from_: str | None = Query(
        None,
        alias="from",
        pattern=r"^\d{4}-\d{2}$",
        description="first month, YYYY-MM; default eleven months before `to`",
    ),
    to: str | None = Query(None, pattern=r"^\d{4}-\d{2}$", description="last month, YYYY-MM; default this month"),
    format: Literal["json", "csv"] = Query("json", description="json, or csv for a spreadsheet"),
    ctx: Context = Depends(ADMIN),
) -> Any:
    """Points liability per month: opening, issued, reversed, redeemed, expired, adjusted and closing points of
    the member balances, reconciling with the ledger; their value and the deferred revenue (value x (1 - expected
    breakage))."""
    last = kpi_cases.parse_month(to, "to") if to else _today(ctx).replace(day=1)
    first = kpi_cases.parse_month(from_, "from") if from_ else add_months(last, -11)
    report = kpi_cases.liability_report(ctx.uow(read_only=True), ctx.program_id, first, last, ctx.now())
    if format == "csv":
        return PlainTextResponse(kpi_cases.liability_csv(report), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="liability-{first:%Y-%m}-{last:%Y-%m}.csv"'})  # fmt: skip
    return report
