"""Fraud review: held transactions to approve or reject, anomaly alerts (issue 10).

One page, `/admin/fraud`, for staff with `fraud.review`: the earns held over a velocity cap (member, points, the
caps they broke) with approve and reject, and the open alerts of the `fraud_scan` job with acknowledge. The
buttons are forms (CSRF token inside) that HTMX posts in place, swapping the row for its decided state; without
JavaScript they post and come back to the page. Every decision goes through `services.fraud` (audited, evented).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from treue.domain.errors import DomainError, NotFound
from treue.domain.staff import Permission
from treue.services import fraud as cases
from treue.services.staff import StaffSession
from treue.web import security
from treue.web.admin import is_htmx, language, page, problem_text
from treue.web.security import require
from treue.web.setup import actor, form_of

router = APIRouter(prefix="/admin", include_in_schema=False)
REVIEW = Permission.REVIEW_FRAUD
SHOWN = 200


@router.get("/fraud")
def fraud_page(request: Request, session: StaffSession = Depends(require(REVIEW))) -> Response:
    return _page(request, session)


def _page(request: Request, session: StaffSession, status: int = 200, **extra: Any) -> Response:
    reading = security.uow(request, read_only=True)
    held = cases.list_holds(reading, session.program_id, "pending", SHOWN)
    decided = [h for h in cases.list_holds(security.uow(request, read_only=True), session.program_id, None, 20)
               if h["status"] != "pending"]  # fmt: skip
    alerts = cases.list_alerts(security.uow(request, read_only=True), session.program_id, "open", SHOWN)
    settings = cases.get_settings(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/fraud.html", status, held=held, decided=decided, alerts=alerts,
                settings=settings, **extra)  # fmt: skip


@router.post("/fraud/held/{hold_id}/{decision}")
async def decide(request: Request, hold_id: str, decision: str,
                 session: StaffSession = Depends(require(REVIEW))) -> Response:  # fmt: skip
    values = await form_of(request, session)
    if decision not in cases.DECISIONS:
        return page(request, session, "admin/not_found.html", status=404)
    reason = values.get("reason", "").strip()[:1000] or None
    try:
        done = cases.decide_hold(security.uow(request), session.program_id, UUID(hold_id), decision,
                                 security.now(request), actor=actor(session), note=reason)  # fmt: skip
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        return _answer(request, session, "admin/fraud_hold_row.html", 409, error=problem_text(error, language(
            request, session)), hold=_hold(request, session, hold_id))  # fmt: skip
    return _answer(request, session, "admin/fraud_hold_row.html", 200, hold=_hold(request, session, done["id"]))


@router.post("/fraud/alerts/{alert_id}/acknowledge")
async def acknowledge(request: Request, alert_id: str, session: StaffSession = Depends(require(REVIEW))) -> Response:
    values = await form_of(request, session)
    note = values.get("note", "").strip()[:1000] or None
    try:
        done = cases.acknowledge_alert(security.uow(request), session.program_id, UUID(alert_id),
                                       security.now(request), actor=actor(session), note=note)  # fmt: skip
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)
    return _answer(request, session, "admin/fraud_alert_row.html", 200, alert=done)


def _hold(request: Request, session: StaffSession, hold_id: str) -> dict[str, Any] | None:
    found = cases.list_holds(security.uow(request, read_only=True), session.program_id, None, 500)
    return next((h for h in found if h["id"] == hold_id), None)


def _answer(request: Request, session: StaffSession, row: str, status: int, **context: Any) -> Response:
    """The decided row for HTMX (swapped in place); a plain form post comes back to the page."""
    if is_htmx(request):  # HTMX swaps only 2xx answers: a refusal comes as the row with its message
        return page(request, session, row, 200, **context)
    if status >= 400:
        return _page(request, session, status, error=context.get("error"))
    return RedirectResponse("/admin/fraud", status_code=303)
