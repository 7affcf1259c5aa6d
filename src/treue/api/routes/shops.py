"""Shop connections, and the inbound webhooks of Shopify, WooCommerce, Shopware 6 and the generic webhook.

The inbound endpoints take no API key: the platform's signature of the raw body, checked with the secret of
the connection named in the URL, is the credential (401 without it, and nothing is stored).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, Context
from treue.api.errors import ApiProblem
from treue.api.routes.common import canonical, given
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.shops import InboundOut, ShopCreate, ShopCreated, ShopOut, ShopUpdate
from treue.services import shops as cases

router = APIRouter(responses=PROBLEMS)
MAX_BODY = 5 * 1024 * 1024  # a Shopify order with hundreds of lines is well below this


@router.post("/shops", status_code=201, response_model=ShopCreated, tags=["shops"])
def connect(body: ShopCreate, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Connect a shop. The answer carries the secret once and the `inbound_url` to register at the platform."""
    command = cases.ConnectShop(**body.model_dump())
    return idempotency.run(ctx, canonical(body), lambda uow: cases.connect_shop(uow, ctx.program_id, command, ctx.now(),
                                                                                 actor=ctx.principal.actor))  # fmt: skip


@router.get("/shops", response_model=list[ShopOut], tags=["shops"])
def connections(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cases.list_shops(ctx.uow(), ctx.program_id)


@router.get("/shops/{shop_code}", response_model=ShopOut, tags=["shops"])
def connection(shop_code: str, ctx: Context = Depends(READ)) -> dict[str, Any]:
    return cases.get_shop(ctx.uow(), ctx.program_id, shop_code)


@router.patch("/shops/{shop_code}", response_model=ShopOut, tags=["shops"])
def change(shop_code: str, body: ShopUpdate, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Change options, pause (`active: false`) or set a new secret (not shown back)."""
    return cases.update_shop(ctx.uow(), ctx.program_id, shop_code, given(body), ctx.now(), actor=ctx.principal.actor)


@router.get("/shops/{shop_code}/deliveries", tags=["shops"])
def deliveries(shop_code: str, limit: int = 50, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """The connection's accepted deliveries, newest first, with what each did."""
    return cases.shop_deliveries(ctx.uow(), ctx.program_id, shop_code, limit)


_RAW_JSON = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


@router.post("/inbound/{platform}/{connection_id}", response_model=InboundOut, tags=["shops"],
             openapi_extra=_RAW_JSON, responses={202: {"model": InboundOut}})  # fmt: skip
async def inbound(platform: str, connection_id: str, request: Request) -> JSONResponse:
    """A shop platform's webhook (shopify, woocommerce, shopware, generic), authenticated by its signature.

    200: applied (or a duplicate/replay, answered as first); 202: accepted, nothing recorded (`reason`);
    401 signature_invalid; 409 shop_order_unknown (a refund before its order: retried by the platform);
    422 shop_payload_invalid (with the field)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiProblem(413, "payload_too_large", f"an inbound webhook body is at most {MAX_BODY} bytes")
    headers = {name.lower(): value for name, value in request.headers.items()}
    status, answer = await run_in_threadpool(cases.receive_webhook, request.app.state.uow, platform, connection_id,
                                             headers, body, request.app.state.clock())  # fmt: skip
    return idempotency.FastJSONResponse(answer, status_code=status)
