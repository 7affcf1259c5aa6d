"""Portal: download my data, delete my account (issue 10).

The download is the same JSON document staff and the API export (services/privacy.py), audited as the member's
own request. Deleting the account is the GDPR erasure: a form with a confirmation box and the session's CSRF
token; afterwards the portal session is gone (the erasure removes every session of the member) and the cookie
is cleared.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from treue.services import privacy as privacy_cases
from treue.services.portal import MemberSession
from treue.services.programs import get_program
from treue.web import security
from treue.web.i18n import translate
from treue.web.portal import _lang, _member_page, language
from treue.web.render import render
from treue.web.security import MEMBER_COOKIE, signed_in_member

router = APIRouter(prefix="/portal", include_in_schema=False)
MEMBER_REASON = "the member deleted the account in the portal"


@router.get("/my-data")
def my_data(request: Request, session: MemberSession = Depends(signed_in_member)) -> Response:
    return _member_page(request, session, "portal/my_data.html", error=None)


@router.get("/my-data/export.json")
def download(request: Request, session: MemberSession = Depends(signed_in_member)) -> Response:
    """Everything stored about me, as a JSON attachment (GDPR art. 15/20)."""
    document = privacy_cases.export_member(security.uow(request), session.program_id, session.member_id,
                                           security.now(request), actor=f"member:{session.member_id}")  # fmt: skip
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="my-data.json"', "Cache-Control": "no-store"})  # fmt: skip


@router.post("/my-data/delete")
def delete_account(request: Request, confirm: str = Form(""), csrf_token: str | None = Form(None),
                   session: MemberSession = Depends(signed_in_member)) -> Response:  # fmt: skip
    """Erase my account for good, then sign out. Without the confirmation box ticked nothing happens."""
    security.check_csrf(request, session.csrf_token, csrf_token)
    if confirm != "yes":
        lang = _lang(request, session)
        return _member_page(request, session, "portal/my_data.html", 422,
                            error=translate(lang, "Tick the box to confirm that your account is to be deleted."))  # fmt: skip
    lang = _lang(request, session)  # read before the profile (and its locale) is gone
    program = get_program(security.uow(request, read_only=True), session.program_id)
    privacy_cases.erase_member(security.uow(request), session.program_id, session.member_id, MEMBER_REASON,
                               security.now(request), actor=f"member:{session.member_id}", source="member")  # fmt: skip
    response = render(request, "portal/my_data_deleted.html", language(request, lang), program=program)
    security.clear_cookie(response, request, MEMBER_COOKIE)
    return response
