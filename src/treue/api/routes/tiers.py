"""API routes of tiers: the programme's ladder, a member's tier with progress, manual assignment (VIP)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, Context
from treue.api.routes.common import canonical
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.tiers import AssignTier, LadderIn, LadderOut, MemberTierOut
from treue.services import tiers as cases

router = APIRouter(responses=PROBLEMS, tags=["tiers"])


@router.get("/tiers", response_model=LadderOut)
def get_ladder(ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The programme's tier ladder (empty `tiers` when it has none)."""
    return cases.get_ladder(ctx.uow(), ctx.program_id)


@router.put("/tiers", response_model=LadderOut)
def set_ladder(body: LadderIn, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Replace the ladder: basis, review, grace and notice days, the tiers lowest first. Members keep their tier;
    a tier that members hold cannot be dropped (409 tier_in_use)."""
    return cases.set_ladder(ctx.uow(), ctx.program_id, body.model_dump(exclude_none=True), ctx.now(),
                            actor=ctx.principal.actor)  # fmt: skip


@router.get("/members/{member_id}/tier", response_model=MemberTierOut)
def member_tier(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The member's tier in force, the basis and window, the amount still needed for the next tier, the date the
    tier is secured until, what the next review would lower it to, the perks, and the recent tier history."""
    return cases.member_tier(ctx.uow(), ctx.program_id, member_id, ctx.now())


@router.post("/members/{member_id}/tier/assignment", response_model=MemberTierOut)
def assign(member_id: UUID, body: AssignTier, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Assign a tier by hand (a VIP), optionally until an instant; the earned tier takes over afterwards. Audited."""
    return idempotency.run(ctx, canonical(body), lambda uow: cases.assign_tier(
        uow, ctx.program_id, member_id, body.tier, body.until, body.reason, ctx.now(), actor=ctx.principal.actor),
        status=200)  # fmt: skip


@router.delete("/members/{member_id}/tier/assignment", response_model=MemberTierOut)
def unassign(member_id: UUID, reason: str | None = None, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Remove a manual assignment: the earned tier is in force again. Audited."""
    return cases.unassign_tier(ctx.uow(), ctx.program_id, member_id, reason, ctx.now(), actor=ctx.principal.actor)
