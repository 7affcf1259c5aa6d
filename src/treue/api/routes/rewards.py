"""Reward catalogue, redemptions and coupons."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, WRITE, Context
from treue.api.errors import ApiProblem
from treue.api.fraud_origin import origin_of
from treue.api.routes.common import canonical, given, uuid_of
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.rewards import (
    CouponConsume,
    RedemptionCancel,
    RedemptionCreate,
    RedemptionOut,
    RewardCreate,
    RewardOut,
    RewardUpdate,
)
from treue.services import rewards as cases
from treue.services.members import resolve_member

router = APIRouter(responses=PROBLEMS)


@router.post("/rewards", status_code=201, response_model=RewardOut, tags=["rewards"])
def create(body: RewardCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    values = given(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.create_reward(
        uow, ctx.program_id, values, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/rewards", response_model=list[RewardOut], tags=["rewards"])
def catalogue(active: bool = False, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cases.list_rewards(ctx.uow(), ctx.program_id, active)


@router.get("/rewards/{reward_id}", response_model=RewardOut, tags=["rewards"])
def get(reward_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    return cases.get_reward(ctx.uow(), ctx.program_id, reward_id)


@router.patch("/rewards/{reward_id}", response_model=RewardOut, tags=["rewards"])
def update(reward_id: UUID, body: RewardUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    return cases.update_reward(ctx.uow(), ctx.program_id, reward_id, given(body), ctx.now(), actor=ctx.principal.actor)


@router.post("/redemptions", status_code=201, response_model=RedemptionOut, tags=["redemptions"])
def redeem(body: RedemptionCreate, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Redeem a reward for a member: points leave soonest-expiring first; a coupon code is issued."""
    reward_id = uuid_of(body.reward_id, "reward_id")
    member = uuid_of(body.member_id, "member_id")
    assert reward_id is not None
    partner = body.partner
    if ctx.principal.partner is not None:  # a partner's key redeems at that partner only
        if partner not in (None, ctx.principal.partner):
            raise ApiProblem(403, "forbidden", "a partner key redeems at its own partner only")
        partner = ctx.principal.partner

    def handler(uow: Any) -> dict[str, Any]:
        with uow:
            member_id = resolve_member(uow, ctx.program_id, member_id=member, card_number=body.card_number,
                                       external_ref=body.external_ref)  # fmt: skip
            origin = origin_of(ctx.request, body.device_id)  # velocity caps (issue 10)
            result = cases.redeem_reward(uow, ctx.program_id, member_id, reward_id, ctx.now(), partner, origin)
            uow.commit()
        return result

    return idempotency.run(ctx, canonical(body), handler)


@router.post("/redemptions/{redemption_id}/cancel", response_model=RedemptionOut, tags=["redemptions"])
def cancel(redemption_id: UUID, body: RedemptionCancel | None = None, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Cancel a redemption: points go back to the lots they came from, the reward back to stock."""
    reason = body.reason if body else None
    return idempotency.run(ctx, canonical(body), lambda uow: cases.cancel_redemption(
        uow, ctx.program_id, redemption_id, ctx.now(), actor=ctx.principal.actor, reason=reason), status=200)  # fmt: skip


@router.get("/coupons/{code}", tags=["coupons"])
def validate(code: str, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """Is this coupon valid now, and what does it give? (`valid` with a `reason` when not.)"""
    return cases.validate_coupon(ctx.uow(), ctx.program_id, code, ctx.now())


@router.post("/coupons/{code}/consume", tags=["coupons"])
def consume(code: str, body: CouponConsume | None = None, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Use a coupon at checkout; a second use is refused with `coupon_invalid`."""
    order_id = body.order_id if body else None
    return idempotency.run(ctx, canonical(body), lambda uow: cases.consume_coupon(
        uow, ctx.program_id, code, ctx.now(), order_id, actor=ctx.principal.actor), status=200)  # fmt: skip
