"""Checkout for tills and shops (preview, holds: reserve, capture, release) and members' cashback wallets."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import READ, WRITE, Context
from treue.api.routes.common import canonical, uuid_of
from treue.api.schemas.checkout import (
    CheckoutPreview,
    HoldCapture,
    HoldCreate,
    HoldOut,
    HoldRelease,
    WalletEntryOut,
    WalletOut,
)
from treue.api.schemas.common import PROBLEMS
from treue.services import checkout as cases
from treue.services import wallet as wallets
from treue.services.purchases import LineInput, RecordPurchase

router = APIRouter(responses=PROBLEMS)


@router.post("/checkout/preview", tags=["checkout"])
def preview(body: CheckoutPreview, ctx: Context = Depends(WRITE)) -> dict[str, Any]:
    """What the cart earns (rule by rule), the rewards the member can afford, the points and wallet money usable
    now and the most points payable as money for this cart. Writes nothing."""
    command = RecordPurchase(
        external_order_id="", total=body.total, currency=body.currency, occurred_at=body.occurred_at or ctx.now(),
        member_id=uuid_of(body.member_id, "member_id"), card_number=body.card_number, external_ref=body.external_ref,
        partner=body.partner, store=body.store, cashier=body.cashier, channel=body.channel,
        lines=[LineInput(x.sku, x.quantity, x.unit_price, x.category, x.name) for x in body.lines],
    )  # fmt: skip
    return cases.preview_checkout(ctx.uow(read_only=True), ctx.program_id, command, ctx.now())


@router.post("/holds", status_code=201, response_model=HoldOut, tags=["checkout"])
def reserve(body: HoldCreate, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Keep points and/or wallet money for a cart until the hold expires (two-phase: then capture or release)."""
    command = cases.ReserveHold(
        member_id=uuid_of(body.member_id, "member_id"), card_number=body.card_number, external_ref=body.external_ref,
        points=body.points, wallet_amount=body.wallet_amount, currency=body.currency, cart_total=body.cart_total,
        expires_in_minutes=body.expires_in_minutes, reference=body.reference, partner=body.partner,
        store=body.store, cashier=body.cashier,
    )  # fmt: skip
    return idempotency.run(ctx, canonical(body), lambda uow: cases.reserve(uow, ctx.program_id, command, ctx.now()))


@router.get("/holds/{hold_id}", response_model=HoldOut, tags=["checkout"])
def get(hold_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    return cases.get_hold(ctx.uow(read_only=True), ctx.program_id, hold_id, ctx.now())


@router.post("/holds/{hold_id}/capture", response_model=HoldOut, tags=["checkout"])
def capture(hold_id: UUID, body: HoldCapture, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Pay with the hold and record the completed order as a purchase, in one transaction."""
    order = RecordPurchase(
        external_order_id=body.external_order_id, total=body.total, currency=body.currency,
        occurred_at=body.occurred_at or ctx.now(), partner=body.partner, store=body.store, cashier=body.cashier,
        channel=body.channel, lines=[LineInput(x.sku, x.quantity, x.unit_price, x.category, x.name) for x in body.lines],
    )  # fmt: skip
    command = cases.CaptureHold(order, points=body.points, wallet_amount=body.wallet_amount)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.capture(
        uow, ctx.program_id, hold_id, command, ctx.now()), status=200)  # fmt: skip


@router.post("/holds/{hold_id}/release", response_model=HoldOut, tags=["checkout"])
def release(hold_id: UUID, body: HoldRelease | None = Body(None), ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Give the hold's points and wallet money back (cart abandoned). An expired hold is released already.
    The body (optional) names the till's store and cashier."""
    store, cashier = (body.store, body.cashier) if body else (None, None)
    return idempotency.run(ctx, canonical(body), lambda uow: cases.release(
        uow, ctx.program_id, hold_id, ctx.now(), store, cashier), status=200)  # fmt: skip


@router.get("/members/{member_id}/holds", response_model=list[HoldOut], tags=["checkout"])
def holds(member_id: UUID, limit: int = 50, ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    return cases.list_holds(ctx.uow(read_only=True), ctx.program_id, member_id, ctx.now(), limit)


@router.get("/members/{member_id}/wallet", response_model=WalletOut, tags=["wallet"])
def wallet(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The member's cashback wallet: balance, available, pending (return window), held at checkout, usable."""
    return wallets.get_wallet(ctx.uow(read_only=True), ctx.program_id, member_id, ctx.now())


@router.get("/members/{member_id}/wallet/history", response_model=list[WalletEntryOut], tags=["wallet"])
def wallet_history(member_id: UUID, limit: int = 50, before: datetime | None = None,
                   ctx: Context = Depends(READ)) -> list[dict[str, Any]]:  # fmt: skip
    """The wallet's transfers, newest first: cashback, refunds taking it back, checkout payments."""
    return wallets.wallet_history(ctx.uow(read_only=True), ctx.program_id, member_id, limit, before)
