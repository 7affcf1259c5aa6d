"""Referrals (settings, codes, statistics) and the moderation of social events (issue 7)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, WRITE, Context
from treue.api.routes.common import canonical
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.referrals import (
    CodeOut,
    MemberReferrals,
    ModerationIn,
    ModerationOut,
    ReferralOut,
    ReferralSettingsIn,
    ReferralSettingsOut,
    ReferralStats,
)
from treue.services import events as event_cases
from treue.services import referrals as cases

router = APIRouter(tags=["referrals"], responses=PROBLEMS)


@router.get("/referrals/settings", response_model=ReferralSettingsOut)
def get_settings(ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The programme's referral scheme (`configured: false` until it is set)."""
    return cases.get_settings(ctx.uow(), ctx.program_id)


@router.put("/referrals/settings", response_model=ReferralSettingsOut)
def put_settings(body: ReferralSettingsIn, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Set the scheme: the completion condition (CEL over the referee's purchase or event, money in minor units),
    the window, the return window, the referrer limit and velocity limits. Rewards are rules triggered by
    `referral.completed` (`event.attributes.role` is "referrer" or "referee")."""
    values = body.model_dump(exclude_unset=True)
    return cases.put_settings(ctx.uow(), ctx.program_id, values, ctx.now(), actor=ctx.principal.actor)


@router.get("/referrals/stats", response_model=ReferralStats)
def stats(ctx: Context = Depends(READ)) -> dict[str, Any]:
    """Sent, pending, completed, expired, reversed, rejected by reason, and the reward cost in points."""
    return cases.program_stats(ctx.uow(), ctx.program_id)


@router.get("/referrals", response_model=list[ReferralOut])
def list_referrals(status: str | None = None, limit: int = Query(100, ge=1, le=1000),
                   ctx: Context = Depends(READ)) -> list[dict[str, Any]]:  # fmt: skip
    return cases.list_referrals(ctx.uow(), ctx.program_id, status, limit)


@router.get("/referrals/{referral_id}", response_model=ReferralOut)
def get_referral(referral_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    return cases.get_referral(ctx.uow(), ctx.program_id, referral_id)


@router.get("/members/{member_id}/referrals", response_model=MemberReferrals, tags=["members"])
def member_referrals(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The member's referral code and link (made on first ask), and how the referrals they sent went."""
    return cases.member_referrals(ctx.uow(), ctx.program_id, member_id, ctx.now())


@router.post("/members/{member_id}/referral-code", status_code=201, response_model=CodeOut, tags=["members"])
def rotate_code(member_id: UUID, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """A new code for the member; the old one is refused from now on (`code_expired`)."""
    return idempotency.run(ctx, b"", lambda uow: cases.rotate_code(
        uow, ctx.program_id, member_id, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/moderations", tags=["events"])
def pending_moderations(limit: int = Query(100, ge=1, le=500), ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """Events recorded with `moderation: "pending"` that wait for a decision, oldest first."""
    return event_cases.list_moderations(ctx.uow(), ctx.program_id, limit)


@router.post("/events/{event_id}/moderation", response_model=ModerationOut, tags=["events"])
def moderate(event_id: UUID, body: ModerationIn, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Approve (the event's held points become available) or reject (they are voided, unused coupons it granted
    are cancelled). A decision is final: a second one is 409 `moderation_decided`."""
    return idempotency.run(ctx, canonical(body), lambda uow: event_cases.moderate_event(
        uow, ctx.program_id, event_id, body.decision, ctx.now(), actor=ctx.principal.actor, note=body.note),
        status=200)  # fmt: skip
