"""Coalition partners (their terms) and the monthly settlement between them and the programme."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from treue.api import idempotency
from treue.api.auth import ADMIN, Context, allow
from treue.api.errors import ApiProblem
from treue.api.routes.common import canonical, given
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.partners import PartnerCreate, PartnerOut, PartnerUpdate, SettlementCreate, SettlementOut
from treue.services import partners as cases
from treue.services import settlement as settling
from treue.services.keys import Scope

router = APIRouter(responses=PROBLEMS)

# Terms and settlements are the programme's business with each partner: tills and shops do not read them,
# and a partner's key reads its own terms only.
BACK_OFFICE = allow(Scope.ADMIN, Scope.READ_ONLY)
PARTNER_READ = allow(Scope.ADMIN, Scope.READ_ONLY, Scope.PARTNER)


@router.post("/partners", status_code=201, response_model=PartnerOut, tags=["partners"])
def create(body: PartnerCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Register a coalition partner with its terms; its `code` is the `partner` of its purchases and keys."""
    values = given(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.create_partner(
        uow, ctx.program_id, values, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/partners", response_model=list[PartnerOut], tags=["partners"])
def listing(ctx: Context = Depends(BACK_OFFICE)) -> list[dict[str, Any]]:
    return cases.list_partners(ctx.uow(), ctx.program_id)


@router.get("/partners/{partner}", response_model=PartnerOut, tags=["partners"])
def get(partner: str, ctx: Context = Depends(PARTNER_READ)) -> dict[str, Any]:
    if ctx.principal.partner is not None and ctx.principal.partner != partner:
        raise ApiProblem(403, "forbidden", "a partner key reads its own partner only")
    return cases.get_partner(ctx.uow(), ctx.program_id, partner)


@router.patch("/partners/{partner}", response_model=PartnerOut, tags=["partners"])
def update(partner: str, body: PartnerUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Change a partner's name, stores, channels or terms; months already settled keep their terms."""
    return cases.update_partner(ctx.uow(), ctx.program_id, partner, given(body), ctx.now(), actor=ctx.principal.actor)


@router.post("/settlements", response_model=SettlementOut, tags=["settlements"],
             responses={201: {"model": SettlementOut, "description": "settled now"}})  # fmt: skip
def settle(body: SettlementCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Settle a month that has ended (201). Settling it again returns the stored result unchanged (200): a
    settlement is idempotent by its period, so no Idempotency-Key is needed."""
    view, created = settling.settle_period(ctx.uow(), ctx.program_id, body.period, ctx.now(), ctx.principal.actor)
    return JSONResponse(view, status_code=201 if created else 200)


@router.get("/settlements/{period}", response_model=SettlementOut, tags=["settlements"],
            responses={200: {"content": {"text/csv": {}}}})  # fmt: skip
def read(period: str, format: Literal["json", "csv"] = "json", ctx: Context = Depends(BACK_OFFICE)) -> Any:
    """A settled month, as JSON or (`?format=csv`) as CSV for finance."""
    view = settling.get_settlement(ctx.uow(), ctx.program_id, period)
    if format == "csv":
        return Response(settling.settlement_csv(view), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="settlement-{view["period"]}.csv"'})  # fmt: skip
    return view
