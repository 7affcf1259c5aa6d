"""API routes of the paid premium club: plans, joining, payments reported by the payment provider, cancelling.

A member has at most one running subscription, so a subscription is reached through its member.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, Context, allow
from treue.api.routes.common import canonical, given, uuid_of
from treue.api.schemas.club import (
    CancelClub,
    JoinClub,
    MemberClubOut,
    PaymentCreate,
    PaymentIn,
    PaymentOut,
    PlanCreate,
    PlanOut,
    PlanUpdate,
    SubscriptionOut,
)
from treue.api.schemas.common import PROBLEMS
from treue.services import club as cases
from treue.services.keys import Scope
from treue.services.members import resolve_member

router = APIRouter(responses=PROBLEMS, tags=["club"])
# The merchant's shop, till or back office; a coalition partner's key does not run the programme's club.
CLUB_WRITE = allow(Scope.ADMIN, Scope.SHOP, Scope.POS)


def _payment(body: PaymentIn | PaymentCreate) -> cases.PaymentInput:
    extra: dict[str, Any] = {}
    if isinstance(body, PaymentCreate):
        extra = {"plan": body.plan, "subscription_id": uuid_of(body.subscription_id, "subscription_id")}
    return cases.PaymentInput(body.provider_reference, body.amount, body.currency, body.status, body.period_start,
                              paid_at=body.paid_at, **extra)  # fmt: skip


@router.post("/club/plans", status_code=201, response_model=PlanOut)
def create_plan(body: PlanCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """A club plan: price per month or year, trial and grace days, benefits and recurring perks."""
    values = given(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.create_plan(
        uow, ctx.program_id, values, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/club/plans", response_model=list[PlanOut])
def list_plans(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cases.list_plans(ctx.uow(), ctx.program_id)


@router.patch("/club/plans/{code}", response_model=PlanOut)
def update_plan(code: str, body: PlanUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Change names, benefits, perks, trial, grace or availability (price and interval are fixed)."""
    return cases.update_plan(ctx.uow(), ctx.program_id, code, given(body), ctx.now(), actor=ctx.principal.actor)


@router.post("/club/subscriptions", status_code=201, response_model=SubscriptionOut)
def join(body: JoinClub, ctx: Context = Depends(CLUB_WRITE)) -> JSONResponse:
    """A member joins the club: trialing if the plan has a trial (first subscription only), otherwise active
    with the first period's payment."""
    member = uuid_of(body.member_id, "member_id")
    payment = _payment(body.payment) if body.payment else None

    def handler(uow: Any) -> dict[str, Any]:
        with uow:
            member_id = resolve_member(uow, ctx.program_id, member_id=member, card_number=body.card_number,
                                       external_ref=body.external_ref)  # fmt: skip
            result = cases.join_club(uow, ctx.program_id, member_id, body.plan, ctx.now(), payment,
                                     actor=ctx.principal.actor)  # fmt: skip
            uow.commit()
        return result

    return idempotency.run(ctx, canonical(body), handler)


@router.get("/members/{member_id}/club", response_model=MemberClubOut)
def member_club(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The member's subscription (state, period, payments, perks) and the club benefits in force now."""
    return cases.member_club(ctx.uow(), ctx.program_id, member_id, ctx.now())


@router.post("/members/{member_id}/club/payments", status_code=201, response_model=PaymentOut)
def record_payment(member_id: UUID, body: PaymentCreate, ctx: Context = Depends(CLUB_WRITE)) -> JSONResponse:
    """A payment the payment provider reported (succeeded or failed). Idempotent by provider_reference."""
    payment = _payment(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.record_payment(
        uow, ctx.program_id, member_id, payment, ctx.now()))  # fmt: skip


@router.post("/members/{member_id}/club/cancel", response_model=SubscriptionOut)
def cancel(member_id: UUID, body: CancelClub | None = None, ctx: Context = Depends(CLUB_WRITE)) -> JSONResponse:
    """Cancel at the end of the paid period (default) or immediately."""
    at_period_end = body.at_period_end if body else True
    reason = body.reason if body else None
    return idempotency.run(ctx, canonical(body), lambda uow: cases.cancel_subscription(
        uow, ctx.program_id, member_id, ctx.now(), at_period_end=at_period_end, reason=reason,
        actor=ctx.principal.actor), status=200)  # fmt: skip
