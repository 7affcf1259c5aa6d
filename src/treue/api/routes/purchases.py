"""Purchases and refunds."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from treue.api import idempotency
from treue.api.auth import READ, WRITE, Context
from treue.api.errors import ApiProblem
from treue.api.fraud_origin import origin_of
from treue.api.routes.common import canonical, uuid_of
from treue.api.schemas.cards import PaymentIn
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.purchases import PurchaseCreate, PurchaseOut, RefundCreate, RefundOut
from treue.api.schemas.rules import PreviewCreate, PreviewOut
from treue.services import purchases as cases
from treue.services.keys import Scope

router = APIRouter(prefix="/purchases", tags=["purchases"], responses=PROBLEMS)


def _partner(ctx: Context, partner: str) -> str:
    if ctx.principal.scope is Scope.PARTNER:
        if partner not in ("default", ctx.principal.partner):
            raise ApiProblem(403, "forbidden", "a partner key records purchases for its own partner only")
        return ctx.principal.partner or partner
    return partner


def _payment(body: PaymentIn | None) -> cases.PaymentInput | None:
    """The purchase's payment token (issue 11); a card number was refused while the body was read."""
    return cases.PaymentInput(body.token, body.brand, body.fingerprint) if body is not None else None


@router.post("/preview", response_model=PreviewOut)
def preview(body: PreviewCreate, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """What a cart would earn, line by line and rule by rule (with the rules that did not apply and why),
    without writing anything. The same evaluator and inputs as recording the purchase."""
    command = cases.RecordPurchase(
        external_order_id=body.external_order_id or "", total=body.total, currency=body.currency,
        occurred_at=body.occurred_at or ctx.now(), member_id=uuid_of(body.member_id, "member_id"),
        card_number=body.card_number, external_ref=body.external_ref, partner=_partner(ctx, body.partner),
        store=body.store, channel=body.channel,
        lines=[cases.LineInput(x.sku, x.quantity, x.unit_price, x.category, x.name) for x in body.lines],
        payment=_payment(body.payment),
    )  # fmt: skip
    return cases.preview_purchase(ctx.uow(read_only=True), ctx.program_id, command, ctx.now())


@router.post("", status_code=201, response_model=PurchaseOut)
def record(body: PurchaseCreate, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Record a purchase and earn points for it. Unique per (partner, external_order_id)."""
    partner = _partner(ctx, body.partner)
    command = cases.RecordPurchase(
        external_order_id=body.external_order_id, total=body.total, currency=body.currency,
        occurred_at=body.occurred_at, member_id=uuid_of(body.member_id, "member_id"), card_number=body.card_number,
        external_ref=body.external_ref, partner=partner, store=body.store, cashier=body.cashier, channel=body.channel,
        lines=[cases.LineInput(x.sku, x.quantity, x.unit_price, x.category, x.name) for x in body.lines],
        payment=_payment(body.payment), origin=origin_of(ctx.request, body.device_id),  # velocity caps (issue 10)
    )  # fmt: skip
    return idempotency.run(
        ctx, canonical(body), lambda uow: cases.record_purchase(uow, ctx.program_id, command, ctx.now())
    )


@router.get("", response_model=PurchaseOut)
def find(external_order_id: str, partner: str = "default", ctx: Context = Depends(READ)) -> dict[str, Any]:
    """Find a purchase by the shop's order id."""
    found = cases.find_purchase(ctx.uow(), ctx.program_id, partner, external_order_id)
    if found is None:
        raise ApiProblem(404, "not_found", "no purchase with that order id")
    return found


@router.get("/{purchase_id}", response_model=PurchaseOut)
def get(purchase_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    return cases.get_purchase(ctx.uow(), ctx.program_id, purchase_id)


@router.post("/{purchase_id}/refunds", status_code=201, response_model=RefundOut)
def refund(purchase_id: UUID, body: RefundCreate, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Refund all or part of a purchase (by amount or by lines); points are taken back in proportion."""
    command = cases.RefundPurchase(amount=body.amount, lines=[(x.sku, x.quantity) for x in body.lines],
                                   currency=body.currency, external_refund_id=body.external_refund_id,
                                   occurred_at=body.occurred_at)  # fmt: skip
    return idempotency.run(ctx, canonical(body), lambda uow: cases.refund_purchase(
        uow, ctx.program_id, purchase_id, command, ctx.now()))  # fmt: skip
