"""Bulk export of members, transactions and balances (issue 5): CSV or JSON Lines, streamed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from treue.api.auth import Context, allow
from treue.api.schemas.common import PROBLEMS
from treue.services import exports as cases
from treue.services.keys import Scope

router = APIRouter(prefix="/exports", tags=["exports"], responses=PROBLEMS)

EXPORT = allow(Scope.ADMIN, Scope.READ_ONLY)  # finance and back office: not tills, shops or partners
Format = Literal["csv", "jsonl"]
_CONTENT: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}, "application/jsonl": {}}}}
_FROM = Query(None, alias="from", description="recorded at or after (ISO 8601 with offset)")
_TO = Query(None, alias="to", description="recorded before (ISO 8601 with offset)")


def _stream(ctx: Context, kind: str, fmt: str, start: datetime | None, end: datetime | None) -> StreamingResponse:
    export = cases.start_export(ctx.uow, ctx.program_id, kind, fmt, start, end)  # refusals come before streaming
    return StreamingResponse(export.chunks, media_type=export.media_type, headers={
        "Content-Disposition": f'attachment; filename="{export.filename}"', "X-Export-Total": str(export.total),
        "Cache-Control": "no-store"})  # fmt: skip


@router.get("/members", response_class=StreamingResponse, responses=_CONTENT)
def members(format: Format = "csv", start: datetime | None = _FROM, end: datetime | None = _TO,
            ctx: Context = Depends(EXPORT)) -> StreamingResponse:  # fmt: skip
    """Every member (enrolled in [from, to) if given), one row each, in enrolment order."""
    return _stream(ctx, "members", format, start, end)


@router.get("/transactions", response_class=StreamingResponse, responses=_CONTENT)
def transactions(format: Format = "csv", start: datetime | None = _FROM, end: datetime | None = _TO,
                 ctx: Context = Depends(EXPORT)) -> StreamingResponse:  # fmt: skip
    """The ledger's transfers booked in [from, to): CSV one row per posting (signed amount per account, the
    transfer's columns repeated); JSON Lines one object per transfer with its postings and explanation.
    `X-Export-Total` counts the transfers."""
    return _stream(ctx, "transactions", format, start, end)


@router.get("/balances", response_class=StreamingResponse, responses=_CONTENT)
def balances(format: Format = "csv", ctx: Context = Depends(EXPORT)) -> StreamingResponse:
    """Every account's balance now: members' points and wallets, then the programme's own accounts (summed from
    postings). Per unit the rows sum to zero."""
    return _stream(ctx, "balances", format, None, None)
