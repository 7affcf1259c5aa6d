"""GDPR export and erasure, retention (issue 10). All of it needs an admin key: it is personal data."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, Context
from treue.api.routes.common import canonical
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.privacy import ErasureIn, ErasureOut, ExportOut, RetentionIn, RetentionOut
from treue.services import privacy

router = APIRouter(tags=["privacy"], responses=PROBLEMS)


@router.get("/members/{member_id}/export", response_model=ExportOut)
def export_member(member_id: UUID, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Everything stored about the member as one JSON document (GDPR art. 15 and 20): profile, consents,
    balances, the ledger with explanations, lots, purchases, coupons, club, cards, referrals, gamification,
    messages, segments, surveys and the audit entries about it. Each export is audited."""
    return privacy.export_member(ctx.uow(), ctx.program_id, member_id, ctx.now(), actor=ctx.principal.actor)


@router.post("/members/{member_id}/erase", response_model=ErasureOut)
def erase_member(member_id: UUID, body: ErasureIn, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Erase the member's personal data for good (GDPR art. 17); the ledger keeps a pseudonym, so balances,
    KPIs and `treue verify` are unchanged. The remaining points are written off. A second call answers
    `already_erased` and changes nothing."""
    return idempotency.run(ctx, canonical(body), lambda uow: privacy.erase_member(
        uow, ctx.program_id, member_id, body.reason, ctx.now(), actor=ctx.principal.actor), status=200)  # fmt: skip


@router.get("/privacy/retention", response_model=RetentionOut)
def get_retention(ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Months of inactivity after which the `retention` job erases members (null: off)."""
    return privacy.get_retention(ctx.uow(), ctx.program_id)


@router.put("/privacy/retention", response_model=RetentionOut)
def set_retention(body: RetentionIn, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Set (or with null switch off) the retention of inactive members. Audited."""
    return privacy.set_retention(ctx.uow(), ctx.program_id, body.retention_months, ctx.now(),
                                 actor=ctx.principal.actor)  # fmt: skip
