"""Tills: identify a member, a card's QR code and barcodes (PNG, SVG, a printable card), offline batch upload and
its report (issue 5)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from jinja2 import Environment, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from treue.api.auth import READ, WRITE, Context
from treue.api.errors import ApiProblem
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.tills import IdentifiedOut, TillBatchOut
from treue.domain.tills import Symbology
from treue.services import tills as cases
from treue.services.keys import Scope

router = APIRouter(tags=["tills"], responses=PROBLEMS)

JSONL_TYPES = ("application/x-ndjson", "application/jsonl")
SymbologyParam = Literal["qr", "code128", "ean13"]


@router.get("/till/identify", response_model=list[IdentifiedOut])
def identify(
    scan: str | None = Query(None, max_length=300, description="anything scanned or typed: card number, QR or "
                             "barcode payload (incl. EAN-13), phone number, email"),
    card_number: str | None = Query(None, max_length=40), phone: str | None = Query(None, max_length=40),
    email: str | None = Query(None, max_length=254), ctx: Context = Depends(READ),
) -> list[dict[str, Any]]:  # fmt: skip
    """The member(s) a till's input names, with card, name, balance and tier. Give one of `scan`, `card_number`,
    `phone`, `email`; a card finds one member, a phone number or email may find several. Nothing given: `[]`."""
    return cases.identify(ctx.uow(read_only=True), ctx.program_id, ctx.now(), scan=scan, card_number=card_number,
                          phone=phone, email=email)  # fmt: skip


# -- card images -----------------------------------------------------------------------------------------------
_IMAGE_DOC = ("QR code (default), Code 128, or EAN-13 (only for card numbers of 12 digits, or 13 with a valid "
              "check digit; otherwise 422 card_not_ean13). Every code carries the card number's digits.")  # fmt: skip


@router.get("/members/{member_id}/card.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}})  # fmt: skip
def card_svg(member_id: UUID, symbology: SymbologyParam = Query("qr", description=_IMAGE_DOC),
             ctx: Context = Depends(READ)) -> Response:  # fmt: skip
    """The member's card as a QR code or barcode, SVG."""
    image = cases.card_image(ctx.uow(read_only=True), ctx.program_id, member_id, symbology, "svg")
    return Response(image, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=300"})


@router.get("/members/{member_id}/card.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def card_png(member_id: UUID, symbology: SymbologyParam = Query("qr", description=_IMAGE_DOC),
             ctx: Context = Depends(READ)) -> Response:  # fmt: skip
    """The member's card as a QR code or barcode, PNG."""
    image = cases.card_image(ctx.uow(read_only=True), ctx.program_id, member_id, symbology, "png")
    return Response(image, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


LABELS = {
    "de": {"title": "Kundenkarte", "number": "Kartennummer", "print": "Drucken",
           "hint": "An der Kasse vorzeigen: QR-Code oder Strichcode scannen lassen."},
    "en": {"title": "Loyalty card", "number": "Card number", "print": "Print",
           "hint": "Show at the till: scan the QR code or the barcode."},
}  # fmt: skip

CARD_PAGE = """<!doctype html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ labels.title }} · {{ card.program }}</title>
<style>
  @page { size: 85.6mm 53.98mm; margin: 0; }
  * { box-sizing: border-box; }
  body { font-family: system-ui, sans-serif; margin: 2rem; color: #111; }
  .card { width: 85.6mm; height: 53.98mm; border: 0.3mm solid #999; border-radius: 3.2mm; padding: 3mm;
          display: grid; grid-template-columns: 24mm 1fr; grid-template-rows: auto 1fr auto; gap: 1mm 3mm;
          page-break-inside: avoid; break-inside: avoid; overflow: hidden; }
  .program { grid-column: 1 / 3; font-weight: 700; font-size: 11pt; margin: 0; }
  .qr { grid-row: 2 / 4; width: 24mm; height: 24mm; }
  .qr svg, .barcode svg { width: 100%; height: 100%; }
  .who { font-size: 9pt; margin: 0; }
  .number { font-family: ui-monospace, monospace; font-size: 9.5pt; letter-spacing: 0.3mm; margin: 0; }
  .barcode { height: 16mm; }
  .hint { color: #555; font-size: 10pt; }
  @media print {
    body { margin: 0; }
    .card { border: none; }
    .screen { display: none; }
  }
</style>
</head>
<body>
<main>
  <section class="card" aria-label="{{ labels.title }}">
    <h1 class="program">{{ card.program }}</h1>
    <figure class="qr" role="img" aria-label="QR {{ card.card_number }}">{{ qr }}</figure>
    <div>
      {% if card.name %}<p class="who">{{ card.name }}</p>{% endif %}
      <p class="number"><span class="screen">{{ labels.number }}: </span><span data-card="{{ card.card_number }}">{{ card.grouped }}</span></p>
    </div>
    <figure class="barcode" role="img" aria-label="{{ symbology }} {{ card.card_number }}">{{ barcode }}</figure>
  </section>
  <p class="hint screen">{{ labels.hint }}</p>
  <button class="screen" type="button" onclick="window.print()">{{ labels.print }}</button>
</main>
</body>
</html>
"""
_page = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string(CARD_PAGE)


@router.get("/members/{member_id}/card.html", response_class=HTMLResponse)
def card_html(member_id: UUID, lang: Literal["de", "en"] | None = Query(None, description="default: the member's"),
              ctx: Context = Depends(READ)) -> HTMLResponse:  # fmt: skip
    """A printable card (ID-1 size: programme name, member name, card number, QR code and barcode; print CSS).
    The barcode is EAN-13 where the card number allows it, else Code 128."""
    card = cases.card_view(ctx.uow(read_only=True), ctx.program_id, member_id)
    language = lang or (card["locale"] if card["locale"] in LABELS else "de")
    symbology = Symbology.EAN13 if card["ean13"] else Symbology.CODE128
    # Markup: SVG generated by qrcode/python-barcode from the card number's digits, nothing user-controlled.
    qr = Markup(cases.inline_svg(cases.draw(card["payload"], Symbology.QR, "svg")))
    bars = Markup(cases.inline_svg(cases.draw(card["payload"], symbology, "svg")))
    html = _page.render(card=card, labels=LABELS[language], lang=language, qr=qr, barcode=bars,
                        symbology=symbology.value)  # fmt: skip
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "Content-Language": language})


# -- offline batches -------------------------------------------------------------------------------------------
_BATCH_BODY = {
    "required": True,
    "description": "JSON Lines: one purchase, refund or coupon redemption per line, each with its own `key` "
                   "(idempotency key) and `occurred_at` (see docs/tills.md)",
    "content": {media: {"schema": {"type": "string"}} for media in JSONL_TYPES},
}  # fmt: skip


@router.post("/till/batches", status_code=201, response_model=TillBatchOut,
             openapi_extra={"requestBody": _BATCH_BODY})  # fmt: skip
async def upload(request: Request, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Apply an offline till's batch: each line in its own transaction, purchases first, then refunds and coupon
    redemptions, each group in file order. A refused line is reported with its stable code; the others are
    applied. Each line replays its key's first result, so uploading a file again changes nothing. With an
    `Idempotency-Key`, a retried upload returns the first batch. At most 5 MiB and 10,000 lines."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSONL_TYPES:
        raise ApiProblem(415, "unsupported_media_type", f"send the batch as {' or '.join(JSONL_TYPES)}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cases.MAX_BATCH_BYTES:
        raise ApiProblem(413, "till_batch_too_large", f"a batch may have {cases.MAX_BATCH_BYTES} bytes at most")
    content = bytearray()
    async for chunk in request.stream():
        content += chunk
        if len(content) > cases.MAX_BATCH_BYTES:
            raise ApiProblem(413, "till_batch_too_large", f"a batch may have {cases.MAX_BATCH_BYTES} bytes at most")
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ApiProblem(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters")
    partner = ctx.principal.partner if ctx.principal.scope is Scope.PARTNER else None
    summary = await run_in_threadpool(cases.upload_batch, ctx.uow, ctx.program_id, bytes(content), ctx.now(),
                                      actor=ctx.principal.actor, upload_key=key, partner=partner)  # fmt: skip
    replayed = summary.pop("replayed_upload", False)
    return JSONResponse(summary, status_code=200 if replayed else 201,
                        headers={"Idempotent-Replayed": "true"} if replayed else None)  # fmt: skip


@router.get("/till/batches", response_model=list[TillBatchOut])
def batches(limit: int = Query(50, ge=1, le=200), ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """The programme's offline batches, newest first."""
    return cases.list_batches(ctx.uow(read_only=True), ctx.program_id, limit)


@router.get("/till/batches/{batch_id}", response_model=TillBatchOut)
def batch(batch_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """A batch's summary: lines, applied, replayed, conflicts (by code)."""
    return cases.get_batch(ctx.uow(read_only=True), ctx.program_id, batch_id)


@router.get("/till/batches/{batch_id}/report", response_class=StreamingResponse,
            responses={200: {"content": {"application/jsonl": {}, "text/csv": {}}}})  # fmt: skip
def batch_report(batch_id: UUID, format: Literal["jsonl", "csv"] = "jsonl",
                 ctx: Context = Depends(READ)) -> StreamingResponse:  # fmt: skip
    """The batch's per-line report (file order): outcome, stable error code, what was recorded. Downloadable."""
    chunks = cases.report(ctx.uow, ctx.program_id, batch_id, format)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/jsonl"
    name = f"till-batch-{batch_id}.{format}"
    return StreamingResponse(
        chunks, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
