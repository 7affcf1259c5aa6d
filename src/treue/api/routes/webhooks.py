"""Outbound webhooks: endpoints (admin), their delivery log, and manual redelivery."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, Context
from treue.api.errors import ApiProblem
from treue.api.routes.common import canonical, given, uuid_of
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.webhooks import DeliveryOut, Redeliver, WebhookCreate, WebhookOut, WebhookSummary, WebhookUpdate
from treue.services import webhooks as cases

router = APIRouter(responses=PROBLEMS, tags=["webhooks"])


@router.post("/webhooks", status_code=201, response_model=WebhookOut)
def create(body: WebhookCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Register an endpoint for event types (`points.*`, `*`); the answer holds its signing secret."""
    values = given(body)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.create_endpoint(
        uow, ctx.program_id, values, ctx.now(), actor=ctx.principal.actor))  # fmt: skip


@router.get("/webhooks", response_model=list[WebhookSummary])
def endpoints(ctx: Context = Depends(ADMIN)) -> list[dict[str, Any]]:
    return cases.list_endpoints(ctx.uow(), ctx.program_id)


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
def get(webhook_id: UUID, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """One endpoint with its secret and how many deliveries are pending, succeeded and failed."""
    return cases.get_endpoint(ctx.uow(), ctx.program_id, webhook_id)


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut)
def update(webhook_id: UUID, body: WebhookUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Change url, filters, description; enable (clears the failure count) or disable; rotate the secret."""
    return cases.update_endpoint(ctx.uow(), ctx.program_id, webhook_id, given(body), ctx.now(),
                                 actor=ctx.principal.actor)  # fmt: skip


@router.get("/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def deliveries(webhook_id: UUID, status: str | None = None, limit: int = 50,
               ctx: Context = Depends(ADMIN)) -> list[dict[str, Any]]:  # fmt: skip
    """The delivery log, newest first: every attempt with its status code, error and duration."""
    return cases.list_deliveries(ctx.uow(), ctx.program_id, webhook_id, status, limit)


@router.post("/webhooks/{webhook_id}/redeliveries", status_code=200)
def redeliver(webhook_id: UUID, body: Redeliver, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Send again: one delivery (`delivery_id`), or every failed one created since `failed_since`."""
    delivery_id = uuid_of(body.delivery_id, "delivery_id")
    if body.failed_since is not None and body.failed_since.tzinfo is None:
        raise ApiProblem(422, "validation_error", "failed_since needs a timezone")
    return idempotency.run(ctx, canonical(body), lambda uow: cases.redeliver(
        uow, ctx.program_id, webhook_id, ctx.now(), delivery_id=delivery_id, failed_since=body.failed_since,
        actor=ctx.principal.actor), status=200)  # fmt: skip
