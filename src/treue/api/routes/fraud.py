"""Fraud controls: velocity caps, anomaly alerts, held transactions (issue 10)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, Context
from treue.api.routes.common import canonical
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.fraud import (
    AlertAcknowledgeIn,
    AlertOut,
    FraudSettingsIn,
    FraudSettingsOut,
    HoldDecisionIn,
    HoldOut,
)
from treue.services import fraud as cases

router = APIRouter(tags=["fraud"], responses=PROBLEMS)


@router.get("/fraud/settings", response_model=FraudSettingsOut)
def get_settings(ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """The programme's velocity caps and alert thresholds (`configured: false`: none set, no caps apply)."""
    return cases.get_settings(ctx.uow(), ctx.program_id)


@router.put("/fraud/settings", response_model=FraudSettingsOut)
def put_settings(body: FraudSettingsIn, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Replace the caps and thresholds. An earn over an `earn` cap is held until approved or rejected; a
    redemption over a `redeem` cap is refused with 429 `velocity_cap_exceeded`. Thresholds left out keep their
    defaults. Other processes see the change within 5 seconds."""
    return cases.save_settings(ctx.uow(), ctx.program_id, body.values(), ctx.now(), actor=ctx.principal.actor)


@router.get("/fraud/held", response_model=list[HoldOut])
def held(status: Literal["pending", "approved", "rejected"] | None = "pending",
         limit: int = Query(100, ge=1, le=500), ctx: Context = Depends(ADMIN)) -> list[dict[str, Any]]:  # fmt: skip
    """Earns held over a velocity cap (newest first), with the member, the points and the caps they broke."""
    return cases.list_holds(ctx.uow(), ctx.program_id, status, limit)


def _decide(hold_id: UUID, decision: str, body: HoldDecisionIn | None, ctx: Context) -> JSONResponse:
    reason = body.reason if body else None
    return idempotency.run(ctx, canonical(body), lambda uow: cases.decide_hold(
        uow, ctx.program_id, hold_id, decision, ctx.now(), actor=ctx.principal.actor, note=reason), status=200)  # fmt: skip


@router.post("/fraud/held/{held_id}/approve", response_model=dict[str, Any])
def approve(held_id: UUID, body: HoldDecisionIn | None = None, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Release the held points: each lot becomes available when the rules meant it to (or now). Final."""
    return _decide(held_id, "approve", body, ctx)


@router.post("/fraud/held/{held_id}/reject", response_model=dict[str, Any])
def reject(held_id: UUID, body: HoldDecisionIn | None = None, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Reverse what is left of the held points (a reverse transfer; the ledger stays balanced). Final."""
    return _decide(held_id, "reject", body, ctx)


@router.get("/fraud/alerts", response_model=list[AlertOut])
def alerts(status: Literal["open", "acknowledged"] | None = "open", limit: int = Query(100, ge=1, le=500),
           ctx: Context = Depends(ADMIN)) -> list[dict[str, Any]]:  # fmt: skip
    """Anomalies the `fraud_scan` job found, newest first: one per kind, subject and day."""
    return cases.list_alerts(ctx.uow(), ctx.program_id, status, limit)


@router.post("/fraud/alerts/{alert_id}/acknowledge", response_model=AlertOut)
def acknowledge(alert_id: UUID, body: AlertAcknowledgeIn | None = None, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Mark an alert as seen (audited)."""
    note = body.note if body else None
    return idempotency.run(ctx, canonical(body), lambda uow: cases.acknowledge_alert(
        uow, ctx.program_id, alert_id, ctx.now(), actor=ctx.principal.actor, note=note), status=200)  # fmt: skip
