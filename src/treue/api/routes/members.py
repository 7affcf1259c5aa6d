"""Members: enrolment, look-up, balance, history, adjustments and transfers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, WRITE, Context
from treue.api.routes.common import canonical, given, uuid_of
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.members import Adjustment, BalanceOut, MemberCreate, MemberOut, MemberUpdate, PointsTransfer
from treue.services import members as cases
from treue.services import points
from treue.services.rewards import list_redemptions

router = APIRouter(prefix="/members", tags=["members"], responses=PROBLEMS)


@router.post("", status_code=201, response_model=MemberOut)
def enrol(body: MemberCreate, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Enrol a member; the response carries the new loyalty card number."""
    command = cases.EnrolMember(**body.model_dump())
    return idempotency.run(
        ctx, canonical(body), lambda uow: cases.enrol_member(uow, ctx.program_id, command, ctx.now())
    )


@router.get("", response_model=list[MemberOut])
def find(
    card_number: str | None = None, email: str | None = None, phone: str | None = None,
    external_ref: str | None = None, q: str | None = Query(None, description="search names, email, card"),
    limit: int = Query(50, ge=1, le=200), ctx: Context = Depends(READ),
) -> list[dict[str, Any]]:  # fmt: skip
    """Find members by card number, email, phone or external reference (exact), or search with `q`."""
    if any((card_number, email, phone, external_ref)):
        return cases.find_members(ctx.uow(), ctx.program_id, card_number=card_number, email=email, phone=phone,
                                  external_ref=external_ref)  # fmt: skip
    return cases.search_members(ctx.uow(), ctx.program_id, q, limit)


@router.get("/{member_id}", response_model=MemberOut)
def get(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    return cases.get_member(ctx.uow(), ctx.program_id, member_id)


@router.patch("/{member_id}", response_model=MemberOut)
def update(member_id: UUID, body: MemberUpdate, ctx: Context = Depends(WRITE)) -> dict[str, Any]:
    return cases.update_member(ctx.uow(), ctx.program_id, member_id, given(body), ctx.now(), actor=ctx.principal.actor)


@router.get("/{member_id}/balance", response_model=BalanceOut)
def balance(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """Points: total, available now, pending, and the next expiry (date and amount)."""
    return points.get_balance(ctx.uow(), ctx.program_id, member_id, ctx.now())


@router.get("/{member_id}/lots")
def lots(member_id: UUID, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """The member's open lots: what is pending, available and when each expires."""
    return points.get_lots(ctx.uow(), ctx.program_id, member_id, ctx.now())


@router.get("/{member_id}/history")
def history(member_id: UUID, limit: int = Query(50, ge=1, le=500), before: datetime | None = None,
            ctx: Context = Depends(READ)) -> list[dict[str, Any]]:  # fmt: skip
    """Every points movement, newest first, each with its explanation. Page with `before` = last recorded_at."""
    return points.get_history(ctx.uow(), ctx.program_id, member_id, limit, before)


@router.get("/{member_id}/redemptions")
def redemptions(member_id: UUID, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return list_redemptions(ctx.uow(), ctx.program_id, member_id)


@router.post("/{member_id}/adjustments", status_code=201)
def adjust(member_id: UUID, body: Adjustment, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Correct a balance by hand, with a reason (audited)."""
    return idempotency.run(ctx, canonical(body), lambda uow: points.adjust_points(
        uow, ctx.program_id, member_id, body.points, body.reason, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.post("/{member_id}/transfers", status_code=201)
def transfer(member_id: UUID, body: PointsTransfer, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Give available points to another member of the programme."""
    target = uuid_of(body.to_member_id, "to_member_id")
    assert target is not None
    return idempotency.run(ctx, canonical(body), lambda uow: points.transfer_points(
        uow, ctx.program_id, member_id, target, body.points, ctx.now(), body.note, actor=ctx.principal.actor))  # fmt: skip
