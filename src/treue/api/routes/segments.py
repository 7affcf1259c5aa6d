"""Segments, recommendations, surveys and NPS (issue 8); targeted offers live with the offers (routes/cards.py)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, Context, allow
from treue.api.routes.common import canonical, given, uuid_of
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.segments import (
    ImportOut,
    MemberSegmentsOut,
    NpsOut,
    RecommendationsOut,
    RefreshOut,
    SegmentCreate,
    SegmentImport,
    SegmentMembersOut,
    SegmentOut,
    SegmentRefresh,
    SurveyCreate,
    SurveyOut,
    SurveyResponseIn,
    SurveyResponseOut,
)
from treue.services import recommendations, segments, surveys
from treue.services.keys import Scope
from treue.services.members import resolve_member

router = APIRouter(tags=["segments"], responses=PROBLEMS)
# The merchant's shop, till, app or back office records a member's answer; a coalition partner's key does not.
SURVEY_WRITE = allow(Scope.ADMIN, Scope.SHOP, Scope.POS)


@router.post("/segments", status_code=201, response_model=SegmentOut)
def create_segment(body: SegmentCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """A dynamic segment (a CEL condition over member facts: RFM, tier, churn risk, CLV...; its members are
    computed at once) or a static one (members imported)."""
    data = given(body)
    return idempotency.run(ctx, canonical(body), lambda uow: segments.create_segment(
        uow, ctx.program_id, data, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/segments", response_model=list[SegmentOut])
def list_segments(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """Every segment with its member count as of its last refresh."""
    return segments.list_segments(ctx.uow(), ctx.program_id)


@router.get("/segments/{segment_code}", response_model=SegmentOut)
def get_segment(segment_code: str, ctx: Context = Depends(READ)) -> dict[str, Any]:
    return segments.get_segment(ctx.uow(), ctx.program_id, segment_code)


@router.get("/segments/{segment_code}/members", response_model=SegmentMembersOut)
def segment_members(segment_code: str, limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0),
                    ctx: Context = Depends(READ)) -> dict[str, Any]:  # fmt: skip
    """A page of the segment's members (member id order) and the total."""
    return segments.segment_members(ctx.uow(), ctx.program_id, segment_code, limit=limit, offset=offset)


@router.post("/segments/{segment_code}/refresh", response_model=RefreshOut)
def refresh_segment(segment_code: str, body: SegmentRefresh | None = None,
                    ctx: Context = Depends(ADMIN)) -> JSONResponse:  # fmt: skip
    """Recompute the segment now (only `member_ids`, when given); only the difference is written."""
    ids = [uuid_of(v, "member_ids") for v in body.member_ids] if body and body.member_ids is not None else None
    members = [i for i in ids if i is not None] if ids is not None else None
    return idempotency.run(ctx, canonical(body), lambda uow: segments.refresh_segment(
        uow, ctx.program_id, segment_code, ctx.now(), member_ids=members), status=200)  # fmt: skip


@router.post("/segments/{segment_code}/members", response_model=ImportOut)
def import_members(segment_code: str, body: SegmentImport, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Import a static segment's members (add, replace or remove) by member id, card number or email, as a list
    or as CSV. Identifiers that name nobody are listed in `unknown`."""
    values = list(body.members or []) + (segments.identifiers_from_csv(body.csv) if body.csv else [])
    return idempotency.run(ctx, canonical(body), lambda uow: segments.import_members(
        uow, ctx.program_id, segment_code, values, ctx.now(), mode=body.mode, actor=ctx.principal.actor),
        status=200)  # fmt: skip


@router.get("/members/{member_id}/segments", response_model=MemberSegmentsOut)
def member_segments(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The member's segments and their facts now, as segment conditions see them."""
    return segments.member_segments(ctx.uow(), ctx.program_id, member_id, ctx.now())


@router.get("/members/{member_id}/recommendations", response_model=RecommendationsOut)
def member_recommendations(member_id: UUID, limit: int = Query(5, ge=1, le=50),
                           ctx: Context = Depends(READ)) -> dict[str, Any]:  # fmt: skip
    """Next best rewards (affordable now or soon, popular in the member's segments) and products (bought together
    with what the member bought, without their last purchase's items)."""
    return recommendations.recommendations(ctx.uow(), ctx.program_id, member_id, ctx.now(), limit=limit)


@router.post("/recommendations/refresh", response_model=dict[str, Any])
def refresh_recommendations(ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Recount product co-occurrence from the purchase history now (the `segments` job does it on schedule)."""
    return idempotency.run(ctx, b"", lambda uow: recommendations.recompute_products(uow, ctx.program_id, ctx.now()),
                           status=200)  # fmt: skip


@router.post("/surveys", status_code=201, response_model=SurveyOut)
def create_survey(body: SurveyCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """A survey with an NPS question (0-10) and an optional comment."""
    data = given(body)
    return idempotency.run(ctx, canonical(body), lambda uow: surveys.create_survey(
        uow, ctx.program_id, data, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/surveys", response_model=list[SurveyOut])
def list_surveys(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return surveys.list_surveys(ctx.uow(), ctx.program_id)


@router.post("/surveys/{survey_code}/responses", status_code=201, response_model=SurveyResponseOut)
def answer_survey(survey_code: str, body: SurveyResponseIn, ctx: Context = Depends(SURVEY_WRITE)) -> JSONResponse:
    """A member's answer (by member_id, card_number or external_ref). It is also recorded as the custom event
    `survey.answered` (attributes survey, nps, channel), so rules triggered by it reward the member."""
    member = uuid_of(body.member_id, "member_id")

    def handler(uow: Any) -> dict[str, Any]:
        with uow:
            member_id = resolve_member(uow, ctx.program_id, member_id=member, card_number=body.card_number,
                                       external_ref=body.external_ref)  # fmt: skip
            result = surveys.answer_survey(uow, ctx.program_id, survey_code, member_id, body.score, ctx.now(),
                                           comment=body.comment, channel=body.channel,
                                           occurred_at=body.occurred_at)  # fmt: skip
            uow.commit()
        return result

    return idempotency.run(ctx, canonical(body), handler)


@router.get("/surveys/{survey_code}/nps", response_model=NpsOut)
def survey_nps(survey_code: str, from_: date | None = Query(None, alias="from"), to: date | None = None,
               by: str | None = Query(None, pattern="^(segment|tier|channel)$"),
               ctx: Context = Depends(READ)) -> dict[str, Any]:  # fmt: skip
    """NPS (promoters 9-10 minus detractors 0-6, in % of responses, with the counts) on the local days
    [from, to], optionally per segment, tier or channel."""
    return surveys.survey_nps(ctx.uow(read_only=True), ctx.program_id, survey_code, from_, to, by=by)
