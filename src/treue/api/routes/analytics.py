"""Predictive CLV and churn over HTTP: the programme report (admin keys: it reads every member's history) and a
member's stored scores (any programme key, like the member's other facts)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from treue.api.auth import ADMIN, READ, Context
from treue.api.schemas.analytics import ClvReportOut, MemberClvOut
from treue.api.schemas.common import PROBLEMS
from treue.domain.durations import local_date, zone
from treue.services import analytics as cases

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
