"""The member profile's engagement section in the admin: missions, streaks, badges, referrals, consents and the
messages sent to the member, with the support action "send again". Loaded into the profile by HTMX (a link
without JavaScript), so the profile itself stays one quick page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from treue.domain.errors import DomainError, InvalidInput, NotFound
from treue.domain.staff import Permission
from treue.services import gamification as gamification_cases
from treue.services import members as member_cases
from treue.services import notifications as notification_cases
from treue.services import referrals as referral_cases
from treue.services.staff import StaffSession
from treue.web import security
from treue.web.admin import is_htmx, language, page, problem_text
from treue.web.i18n import translate
from treue.web.security import require

router = APIRouter(prefix="/admin", include_in_schema=False)
MESSAGES = 20  # the newest messages on the profile; the full log is in the API


def engagement(request: Request, session: StaffSession, member_id: UUID) -> dict[str, Any]:
    program_id, at = session.program_id, security.now(request)
    member = member_cases.get_member(security.uow(request, read_only=True), program_id, member_id)
    lang = language(request, session)
    return {
        "member": member,
        "missions": gamification_cases.member_missions(security.uow(request, read_only=True), program_id, member_id,
                                                       at, locale=lang),
        "streaks": gamification_cases.member_streaks(security.uow(request, read_only=True), program_id, member_id, at),
        "badges": gamification_cases.member_badges(security.uow(request, read_only=True), program_id, member_id),
        # The member's code is made on first ask (as the portal does), so this read may write it.
        "referrals": referral_cases.member_referrals(security.uow(request), program_id, member_id, at),
        "consents": notification_cases.get_consents(security.uow(request, read_only=True), program_id, member_id),
        "messages": notification_cases.list_messages(security.uow(request, read_only=True), program_id,
                                                     member_id=member_id, limit=MESSAGES),
        "resendable": notification_cases.RESENDABLE,
    }  # fmt: skip


@router.get("/members/{member_id}/engagement")
def member_engagement(request: Request, member_id: str, done: str | None = None, error: str | None = None,
                      session: StaffSession = Depends(require(Permission.VIEW_MEMBERS))) -> Response:  # fmt: skip
    try:
        context = engagement(request, session, UUID(member_id))
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)
    template = "admin/_member_engagement.html" if is_htmx(request) else "admin/member_engagement.html"
    return page(request, session, template, done=done, error=error, **context)


@router.post("/members/{member_id}/messages/{message_id}/resend")
def resend_message(request: Request, member_id: str, message_id: str, reason: str = Form(""),
                   csrf_token: str | None = Form(None),
                   session: StaffSession = Depends(require(Permission.ADJUST_POINTS))) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = language(request, session)
    try:
        member_uuid, message_uuid = UUID(member_id), UUID(message_id)
        mine = notification_cases.list_messages(security.uow(request, read_only=True), session.program_id,
                                                member_id=member_uuid, limit=500)  # fmt: skip
        if message_id not in {m["id"] for m in mine}:
            raise NotFound("no such message of this member", resource="notification_message")
        if not reason.strip():
            raise InvalidInput("a reason is needed (it is kept in the audit log)")
        notification_cases.resend_message(security.uow(request), session.program_id, message_uuid,
                                          security.now(request), actor=f"staff:{session.email}",
                                          reason=reason.strip())  # fmt: skip
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        target = f"/admin/members/{member_id}/engagement?error={quote(problem_text(error, lang))}"
        return RedirectResponse(target, status_code=303)
    done = translate(lang, "The message is queued to be sent again.")
    return RedirectResponse(f"/admin/members/{member_id}/engagement?done={quote(done)}", status_code=303)
