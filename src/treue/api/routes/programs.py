"""Programmes and API keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, Context, operator
from treue.api.routes.common import canonical, given
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.programs import KeyCreate, KeyOut, KeyRotate, ProgramCreate, ProgramOut, ProgramUpdate
from treue.services import keys as key_cases
from treue.services import programs as cases
from treue.services.audit import list_audit
from treue.services.keys import Principal

router = APIRouter(responses=PROBLEMS)


@router.post("/programs", status_code=201, response_model=ProgramOut, tags=["programmes"])
def create_program(body: ProgramCreate, request: Request, who: Principal = Depends(operator)) -> JSONResponse:
    """Create a programme (operator key). Its system accounts are opened with it."""
    settings = body.model_dump(exclude_unset=True, exclude={"name", "currency", "timezone"})
    uow, now = request.app.state.uow, request.app.state.clock()
    view = cases.create_program(uow(), body.name, body.currency, body.timezone, settings, now, actor=who.actor)
    return JSONResponse(view, status_code=201)


@router.get("/programs", response_model=list[ProgramOut], tags=["programmes"])
def list_programs(request: Request, who: Principal = Depends(operator)) -> list[dict[str, Any]]:
    return cases.list_programs(request.app.state.uow())


@router.post("/programs/{program_id}/keys", status_code=201, response_model=KeyOut, tags=["keys"])
def create_program_key(program_id: UUID, body: KeyCreate, request: Request,
                       who: Principal = Depends(operator)) -> JSONResponse:  # fmt: skip
    """Create an API key for a programme (operator key). The secret is in the response, once."""
    view = key_cases.create_api_key(request.app.state.uow(), program_id, body.scope, body.name,
                                    request.app.state.clock(), body.partner)  # fmt: skip
    return JSONResponse(view, status_code=201)


@router.get("/program", response_model=ProgramOut, tags=["programmes"])
def get_own_program(ctx: Context = Depends(READ)) -> dict[str, Any]:
    return cases.get_program(ctx.uow(), ctx.program_id)


@router.patch("/program", response_model=ProgramOut, tags=["programmes"])
def update_own_program(body: ProgramUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    return cases.update_program(ctx.uow(), ctx.program_id, given(body), ctx.now(), actor=ctx.principal.actor)


@router.get("/keys", response_model=list[KeyOut], tags=["keys"])
def list_keys(ctx: Context = Depends(ADMIN)) -> list[dict[str, Any]]:
    return key_cases.list_api_keys(ctx.uow(), ctx.program_id)


@router.post("/keys", status_code=201, response_model=KeyOut, tags=["keys"])
def create_key(body: KeyCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    return idempotency.run(ctx, canonical(body), lambda uow: key_cases.create_api_key(
        uow, ctx.program_id, body.scope, body.name, ctx.now(), body.partner, actor=ctx.principal.actor))  # fmt: skip


@router.delete("/keys/{key_id}", status_code=204, tags=["keys"])
def revoke_key(key_id: UUID, ctx: Context = Depends(ADMIN)) -> None:
    key_cases.revoke_api_key(ctx.uow(), key_id, ctx.program_id, ctx.now(), actor=ctx.principal.actor)


@router.post("/keys/{key_id}/rotate", response_model=KeyOut, tags=["keys"])
def rotate_key(key_id: UUID, body: KeyRotate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Issue a new secret for a key of this programme (same id, scope and name), shown once. The old secret keeps
    working for `grace_hours` (default 24; 0: refused at once), so integrations switch without downtime."""
    return idempotency.run(ctx, canonical(body), lambda uow: key_cases.rotate_api_key(
        uow, key_id, ctx.program_id, ctx.now(), timedelta(hours=body.grace_hours), actor=ctx.principal.actor),
        status=200)  # fmt: skip


@router.get("/audit", tags=["audit"])
def audit_log(limit: int = 100, ctx: Context = Depends(ADMIN)) -> list[dict[str, Any]]:
    return list_audit(ctx.uow(), ctx.program_id, min(max(limit, 1), 500))
