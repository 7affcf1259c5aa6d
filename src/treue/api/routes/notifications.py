"""Notifications, consents and the member inbox (issue 8).

Settings and templates are the programme's (admin key); consents are given where the member is (till, shop, app);
the inbox is read by any programme key. The confirmation (double opt-in) and one-click unsubscribe links in emails
take no API key: their unguessable token names the programme and the member (under /inbound, like the shop
webhooks that authenticate by signature).
"""

from __future__ import annotations

import html
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from treue.api import idempotency
from treue.api.auth import ADMIN, READ, WRITE, Context
from treue.api.routes.common import canonical
from treue.api.schemas.common import PROBLEMS
from treue.api.schemas.notifications import (
    BounceIn,
    ConsentIn,
    ConsentsOut,
    InboxOut,
    MessageOut,
    PreviewIn,
    ReadOut,
    ResendIn,
    SettingsIn,
    SettingsOut,
    TemplateIn,
    TemplateKey,
    TemplateOut,
)
from treue.domain.errors import NotificationTokenInvalid
from treue.services import notifications as cases

router = APIRouter(tags=["notifications"], responses=PROBLEMS)


@router.get("/notifications/settings", response_model=SettingsOut)
def get_settings(ctx: Context = Depends(READ)) -> dict[str, Any]:
    """Triggers (on/off, channels, purpose, mode, days), quiet hours and the weekly marketing cap."""
    return cases.get_settings(ctx.uow(), ctx.program_id)


@router.put("/notifications/settings", response_model=SettingsOut)
def put_settings(body: SettingsIn, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Change what is given; the rest stays."""
    return cases.update_settings(ctx.uow(), ctx.program_id, body.model_dump(exclude_unset=True), ctx.now(),
                                 actor=ctx.principal.actor)  # fmt: skip


@router.get("/notifications/templates", response_model=list[dict[str, Any]])
def list_templates(ctx: Context = Depends(READ)) -> list[dict[str, Any]]:
    """Every trigger with its wording per channel and locale, its variables and whether it is customised."""
    return cases.list_templates(ctx.uow(), ctx.program_id)


@router.put("/notifications/templates", response_model=TemplateOut)
def put_template(body: TemplateIn, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Save a trigger's wording for one channel and locale (Jinja2, sandboxed; HTML autoescaped). It must render
    with the trigger's sample data: 422 template_invalid (syntax, unknown variable) or template_unsafe."""
    return cases.save_template(ctx.uow(), ctx.program_id, body.trigger, body.channel, body.locale,
                               {"subject": body.subject, "text": body.text, "html": body.html}, ctx.now(),
                               actor=ctx.principal.actor)  # fmt: skip


@router.post("/notifications/templates/reset", response_model=TemplateOut)
def reset_template(body: TemplateKey, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Back to the shipped default for one trigger, channel and locale."""
    return idempotency.run(ctx, canonical(body), lambda uow: cases.reset_template(
        uow, ctx.program_id, body.trigger, body.channel, body.locale, ctx.now(), actor=ctx.principal.actor),
        status=200)  # fmt: skip


@router.post("/notifications/templates/preview", response_model=TemplateOut)
def preview(body: PreviewIn, ctx: Context = Depends(ADMIN)) -> dict[str, Any]:
    """Render the saved template, or a draft, with sample data (overridden by `data`). Writes nothing."""
    draft = body.template.model_dump() if body.template else None
    return cases.preview(ctx.uow(), ctx.program_id, body.trigger, body.channel, body.locale, draft, body.data)


@router.get("/members/{member_id}/notifications/consents", response_model=ConsentsOut)
def get_consents(member_id: UUID, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """Marketing consent per channel; for email also whether the address is confirmed (double opt-in)."""
    return cases.get_consents(ctx.uow(), ctx.program_id, member_id)


@router.post("/members/{member_id}/notifications/consents", response_model=ConsentsOut)
def set_consent(member_id: UUID, body: ConsentIn, ctx: Context = Depends(WRITE)) -> JSONResponse:
    """Give or withdraw marketing consent for one channel. Giving it for email sends the confirmation mail."""
    return idempotency.run(ctx, canonical(body), lambda uow: cases.set_consent(
        uow, ctx.program_id, member_id, body.channel, body.granted, body.source, ctx.now(),
        actor=ctx.principal.actor), status=200)  # fmt: skip


@router.get("/members/{member_id}/inbox", response_model=InboxOut)
def inbox(member_id: UUID, unread: bool = False, limit: int = 50, ctx: Context = Depends(READ)) -> dict[str, Any]:
    """The member's in-app messages, newest first, with the unread count."""
    return cases.inbox(ctx.uow(), ctx.program_id, member_id, unread, limit)


@router.post("/members/{member_id}/inbox/{message_id}/read", response_model=ReadOut)
def mark_read(member_id: UUID, message_id: UUID, ctx: Context = Depends(WRITE)) -> JSONResponse:
    return idempotency.run(ctx, b"", lambda uow: cases.mark_read(uow, ctx.program_id, member_id, message_id,
                                                                 ctx.now()), status=200)  # fmt: skip


@router.get("/notifications/messages", response_model=list[MessageOut])
def messages(member_id: UUID | None = None, status: str | None = None, channel: str | None = None,
             trigger: str | None = None, limit: int = 50, ctx: Context = Depends(ADMIN)) -> list[dict[str, Any]]:  # fmt: skip
    """The message log (queued, sent, failed, bounced, suppressed with its reason), newest first."""
    return cases.list_messages(ctx.uow(), ctx.program_id, member_id=member_id, status=status, chan=channel,
                               code=trigger, limit=limit)  # fmt: skip


@router.post("/notifications/messages/{message_id}/bounce", response_model=MessageOut)
def bounce(message_id: UUID, body: BounceIn, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Report a bounce from the mail provider; a permanent one ends the address's double opt-in."""
    return idempotency.run(ctx, canonical(body), lambda uow: cases.report_bounce(
        uow, ctx.program_id, message_id, body.reason, body.permanent, ctx.now(), actor=ctx.principal.actor),
        status=200)  # fmt: skip


@router.post("/notifications/messages/{message_id}/resend", response_model=MessageOut)
def resend(message_id: UUID, body: ResendIn, ctx: Context = Depends(ADMIN)) -> JSONResponse:
    """Send an email or push again (a support action, audited): a new message with the same text to the member's
    address now; the original stays in the log."""
    return idempotency.run(ctx, canonical(body), lambda uow: cases.resend_message(
        uow, ctx.program_id, message_id, ctx.now(), actor=ctx.principal.actor, reason=body.reason), status=201)  # fmt: skip


# -- links in emails (no API key: the token) ------------------------------------------------------------------
PAGES = {
    "confirmed": {"de": "Danke! Ihre E-Mail-Adresse ist bestätigt.", "en": "Thank you! Your email address is confirmed."},
    "ask": {"de": "Keine Angebote und Neuigkeiten mehr per E-Mail erhalten?",
            "en": "Stop receiving offers and news by email?"},
    "button": {"de": "Abmelden", "en": "Unsubscribe"},
    "unsubscribed": {"de": "Sie erhalten keine Werbung mehr per E-Mail.",
                     "en": "You will no longer receive marketing email."},
    "invalid": {"de": "Dieser Link ist ungültig oder abgelaufen.", "en": "This link is not valid or has expired."},
}  # fmt: skip


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f'<!doctype html>\n<html><head><meta charset="utf-8"><meta name="viewport" '
                        f'content="width=device-width"><title>{html.escape(title)}</title></head>\n'
                        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>\n", status)  # fmt: skip


def _lang(request: Request) -> str:
    return "de" if request.headers.get("accept-language", "de").lower().startswith("de") else "en"


@router.get("/inbound/notifications/confirm/{token}", response_class=HTMLResponse,
            responses={404: {"description": "unknown or expired link"}})  # fmt: skip
async def confirm(token: str, request: Request) -> HTMLResponse:
    """Double opt-in: the member follows the link from the confirmation mail."""
    try:
        done = await run_in_threadpool(cases.confirm, request.app.state.uow(), token, request.app.state.clock())
    except NotificationTokenInvalid:
        return _page(PAGES["invalid"][_lang(request)], "", 404)
    return _page(done["program"], f"<p>{PAGES['confirmed'][done['locale']]}</p>")


@router.get("/inbound/notifications/unsubscribe/{token}", response_class=HTMLResponse,
            responses={404: {"description": "unknown link"}})  # fmt: skip
async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    """The unsubscribe link shows a button (a GET changes nothing: mail scanners follow links)."""
    try:
        found = await run_in_threadpool(cases.check_token, request.app.state.uow(), token, "unsubscribe",
                                        request.app.state.clock())  # fmt: skip
    except NotificationTokenInvalid:
        return _page(PAGES["invalid"][_lang(request)], "", 404)
    lang = found["locale"]
    form = (f'<p>{PAGES["ask"][lang]}</p><form method="post"><input type="hidden" name="List-Unsubscribe" '
            f'value="One-Click"><button type="submit">{PAGES["button"][lang]}</button></form>')  # fmt: skip
    return _page(PAGES["button"][lang], form)


@router.post("/inbound/notifications/unsubscribe/{token}", response_class=HTMLResponse,
             responses={404: {"description": "unknown link"}})  # fmt: skip
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click`), or the page's button."""
    try:
        done = await run_in_threadpool(cases.unsubscribe, request.app.state.uow(), token, request.app.state.clock())
    except NotificationTokenInvalid:
        return _page(PAGES["invalid"][_lang(request)], "", 404)
    return _page(done["program"], f"<p>{PAGES['unsubscribed'][done['locale']]}</p>")
