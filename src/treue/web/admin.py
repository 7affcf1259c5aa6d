"""The admin dashboard (/admin): staff sign-in, overview, members, support actions, rules with a live CEL check.

Every page calls the use cases in treue.services (never SQL) and names the permission it needs.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from treue.api.i18n import title
from treue.domain.durations import end_of_local_day, zone
from treue.domain.errors import DomainError, InvalidInput, NotFound, RuleInvalid
from treue.domain.staff import Permission, can
from treue.services import members as member_cases
from treue.services import points as point_cases
from treue.services import privacy as privacy_cases
from treue.services import rewards as reward_cases
from treue.services import rules as rule_cases
from treue.services import staff as staff_cases
from treue.services import tiers as tier_cases
from treue.services.programs import get_program
from treue.services.purchases import LineInput, RecordPurchase, preview_purchase
from treue.services.staff import StaffSession
from treue.web import i18n, security
from treue.web.i18n import choose_language, translate
from treue.web.render import render
from treue.web.security import LANG_COOKIE, STAFF_COOKIE, require

router = APIRouter(prefix="/admin", include_in_schema=False)
P = Permission
TRIGGERS = ("purchase", "refund", "enrolment", "birthday", "membership_anniversary")


def language(request: Request, session: StaffSession | None = None) -> str:
    return choose_language(request.cookies.get(LANG_COOKIE), session.locale if session else None,
                           request.headers.get("accept-language"))  # fmt: skip


def page(request: Request, session: StaffSession, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request, session)
    program = get_program(security.uow(request, read_only=True), session.program_id)
    return render(request, template, lang, status, staff=session, program=program, csrf=session.csrf_token,
                  allowed=lambda name: can(session.role, Permission(name)), **context)  # fmt: skip


def problem_text(error: DomainError, lang: str) -> str:
    """A refusal for people: the translated title, then the specifics (in English, as the API gives them)."""
    return f"{title(error.code, lang, error.code)}: {error.detail}"


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# -- sign-in and out ------------------------------------------------------------------------------------
@router.get("/sign-in")
def sign_in_form(request: Request, next: str = "/admin") -> Response:
    if security.staff(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    response = render(request, "admin/sign_in.html", language(request), csrf=security.form_token(request),
                      next=_safe_next(next), error=None, email="")  # fmt: skip
    security.keep_form_token(response, request)
    return response


@router.post("/sign-in")
def sign_in(request: Request, email: str = Form(""), password: str = Form(""), next: str = Form("/admin"),
            csrf_token: str | None = Form(None)) -> Response:  # fmt: skip
    security.check_form_token(request, csrf_token)
    lang = language(request)
    try:
        signed = staff_cases.sign_in(security.uow(request), email, password, security.now(request))
    except DomainError as error:
        status = 429 if error.code == "sign_in_locked" else 401
        refused = render(request, "admin/sign_in.html", lang, status, csrf=security.form_token(request),
                          next=_safe_next(next), error=title(error.code, lang, error.detail), email=email)  # fmt: skip
        security.keep_form_token(refused, request)
        return refused
    response = RedirectResponse(_safe_next(next), status_code=303)
    security.set_cookie(response, request, STAFF_COOKIE, signed["cookie"], max_age=staff_cases.SESSION_HOURS * 3600)
    return response


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: str | None = Form(None)) -> Response:
    session = security.staff(request)
    if session is not None:
        security.check_csrf(request, session.csrf_token, csrf_token)
        staff_cases.sign_out(security.uow(request), request.cookies.get(STAFF_COOKIE))
    response = RedirectResponse("/admin/sign-in", status_code=303)
    security.clear_cookie(response, request, STAFF_COOKIE)
    return response


def _safe_next(target: str | None) -> str:
    """Only paths of this UI: an open redirect to another site would help phishing."""
    if not target or not target.startswith("/admin") or target.startswith("//"):
        return "/admin"
    return target


@router.get("/language")
def switch_language(request: Request, lang: str = "de", next: str = "/admin") -> Response:
    target = next if next.startswith(("/admin", "/portal")) and not next.startswith("//") else "/admin"
    response = RedirectResponse(target, status_code=303)
    if lang in ("de", "en"):
        security.set_cookie(response, request, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
    return response


# -- members ---------------------------------------------------------------------------------------------
@router.get("/members")
def members(request: Request, q: str = "", session: StaffSession = Depends(require(P.VIEW_MEMBERS))) -> Response:
    text = q.strip()
    found: list[dict[str, Any]] = []
    error = None
    if text:
        try:
            found = _search(request, session.program_id, text)
        except DomainError as refused:
            error = problem_text(refused, language(request, session))
    template = "admin/_member_results.html" if is_htmx(request) else "admin/members.html"
    return page(request, session, template, q=text, found=found, searched=bool(text), error=error)


def _search(request: Request, program_id: UUID, text: str) -> list[dict[str, Any]]:
    """A card number, an email or a phone number is looked up exactly; anything else searches names."""
    uow = security.uow(request, read_only=True)
    compact = text.replace(" ", "")
    if compact.isdigit() and len(compact) == 19:
        return member_cases.find_members(uow, program_id, card_number=compact)
    if "@" in text:
        return member_cases.find_members(uow, program_id, email=text)
    if compact.startswith("+") or (compact.isdigit() and len(compact) >= 6):
        return member_cases.find_members(uow, program_id, phone=text)
    return member_cases.search_members(uow, program_id, text, 50)


@router.get("/members/{member_id}")
def member_profile(request: Request, member_id: str,
                   session: StaffSession = Depends(require(P.VIEW_MEMBERS))) -> Response:  # fmt: skip
    return _profile(request, session, member_id)


def _profile(request: Request, session: StaffSession, member_id: str, status: int = 200, **extra: Any) -> Response:
    try:
        member_uuid = UUID(member_id)
        uow = security.uow(request, read_only=True)
        at = security.now(request)
        member = member_cases.get_member(uow, session.program_id, member_uuid)
        balance = point_cases.get_balance(uow, session.program_id, member_uuid, at)
        lots = [lot for lot in point_cases.get_lots(uow, session.program_id, member_uuid, at) if lot["points"] > 0]
        history = point_cases.get_history(uow, session.program_id, member_uuid, 50)
        tier = tier_cases.member_tier(uow, session.program_id, member_uuid, at)
        ladder = tier_cases.get_ladder(uow, session.program_id)
        redemptions = reward_cases.list_redemptions(uow, session.program_id, member_uuid)
        rewards = {r["id"]: r for r in reward_cases.list_rewards(uow, session.program_id)}
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)
    return page(request, session, "admin/member.html", status, member=member, balance=balance, lots=lots,
                history=history, adjust_error=extra.get("adjust_error"), adjusted=extra.get("adjusted"),
                tier=tier, ladder=ladder, redemptions=list(reversed(redemptions)), rewards=rewards,
                support_error=extra.get("support_error"), support_done=extra.get("support_done"),
                erase_confirm=extra.get("erase_confirm"))  # fmt: skip


# -- support actions: cancel a redemption, assign a tier, export the member's data (each audited) --------------
@router.post("/members/{member_id}/redemptions/{redemption_id}/cancel")
def cancel_redemption(request: Request, member_id: str, redemption_id: str, reason: str = Form(""),
                      csrf_token: str | None = Form(None),
                      session: StaffSession = Depends(require(P.ADJUST_POINTS))) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = language(request, session)
    try:
        member_uuid = UUID(member_id)
        mine = reward_cases.list_redemptions(security.uow(request, read_only=True), session.program_id, member_uuid)
        if redemption_id not in {r["id"] for r in mine}:
            raise NotFound("no such redemption of this member", resource="redemption")
        if not reason.strip():
            raise InvalidInput("a reason is needed (it is kept in the audit log)")
        done = reward_cases.cancel_redemption(security.uow(request), session.program_id, UUID(redemption_id),
                                              security.now(request), actor=f"staff:{session.email}",
                                              reason=reason.strip())  # fmt: skip
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        return _profile(request, session, member_id, 422, support_error=problem_text(error, lang))
    message = translate(lang, "Redemption cancelled; %(points)s points are back.") % {
        "points": i18n.number(done["points_returned"], lang)
    }
    return _profile(request, session, member_id, support_done=message)


@router.post("/members/{member_id}/tier")
def assign_tier(request: Request, member_id: str, code: str = Form(""), until: str = Form(""),
                reason: str = Form(""), csrf_token: str | None = Form(None),
                session: StaffSession = Depends(require(P.ADJUST_POINTS))) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = language(request, session)
    try:
        member_uuid = UUID(member_id)
    except ValueError:
        return page(request, session, "admin/not_found.html", status=404)
    try:
        if not reason.strip():
            raise InvalidInput("a reason is needed (it is kept in the audit log)")
        program = get_program(security.uow(request, read_only=True), session.program_id)
        ends = None
        if until.strip():
            try:
                ends = end_of_local_day(date.fromisoformat(until.strip()), zone(program["timezone"]))
            except ValueError:
                raise InvalidInput(f"until '{until}' is not a date (YYYY-MM-DD)") from None
        tier_cases.assign_tier(security.uow(request), session.program_id, member_uuid, code.strip(), ends,
                               reason.strip(), security.now(request), actor=f"staff:{session.email}")  # fmt: skip
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        return _profile(request, session, member_id, 422, support_error=problem_text(error, lang))
    return _profile(request, session, member_id, support_done=translate(lang, "Tier assigned."))


@router.post("/members/{member_id}/tier/remove")
def unassign_tier(request: Request, member_id: str, reason: str = Form(""), csrf_token: str | None = Form(None),
                  session: StaffSession = Depends(require(P.ADJUST_POINTS))) -> Response:  # fmt: skip
    """End a manual tier assignment: the earned tier is in force again."""
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = language(request, session)
    try:
        member_uuid = UUID(member_id)
        if not reason.strip():
            raise InvalidInput("a reason is needed (it is kept in the audit log)")
        tier_cases.unassign_tier(security.uow(request), session.program_id, member_uuid, reason.strip(),
                                 security.now(request), actor=f"staff:{session.email}")  # fmt: skip
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        return _profile(request, session, member_id, 422, support_error=problem_text(error, lang))
    return _profile(request, session, member_id, support_done=translate(lang, "The manual assignment is removed."))


@router.get("/members/{member_id}/export.json")
def export_member(request: Request, member_id: str,
                  session: StaffSession = Depends(require(P.ADJUST_POINTS))) -> Response:  # fmt: skip
    """Everything stored about a member, as one JSON file (GDPR art. 15/20; services/privacy.py). Audited."""
    try:
        document = privacy_cases.export_member(security.uow(request), session.program_id, UUID(member_id),
                                               security.now(request), actor=f"staff:{session.email}")  # fmt: skip
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="member-{member_id}.json"', "Cache-Control": "no-store"})  # fmt: skip


@router.post("/members/{member_id}/erase")
def erase_member(request: Request, member_id: str, reason: str = Form(""), confirmed: str = Form(""),
                 csrf_token: str | None = Form(None),
                 session: StaffSession = Depends(require(P.ERASE_MEMBERS))) -> Response:  # fmt: skip
    """GDPR erasure in two steps: the form asks for a reason, a confirmation page repeats what cannot be undone;
    only the confirmed post erases (services/privacy.py)."""
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = language(request, session)
    if not reason.strip():
        return _profile(request, session, member_id, 422, support_error=problem_text(
            InvalidInput("a reason is needed (it is kept in the audit log)"), lang))  # fmt: skip
    if confirmed != "yes":
        return _profile(request, session, member_id, erase_confirm=reason.strip())
    try:
        done = privacy_cases.erase_member(security.uow(request), session.program_id, UUID(member_id), reason,
                                          security.now(request), actor=f"staff:{session.email}")  # fmt: skip
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        return _profile(request, session, member_id, 422, support_error=problem_text(error, lang))
    if done["status"] == "already_erased":
        return _profile(request, session, member_id, support_done=translate(lang, "The member was erased already."))
    message = translate(lang, "Member erased; %(points)s points written off.") % {
        "points": i18n.number(done["points_forfeited"], lang)
    }
    return _profile(request, session, member_id, support_done=message)


@router.post("/members/{member_id}/adjust")
def adjust(request: Request, member_id: str, points: str = Form(""), reason: str = Form(""),
           csrf_token: str | None = Form(None),
           session: StaffSession = Depends(require(P.ADJUST_POINTS))) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = language(request, session)
    try:
        member_uuid = UUID(member_id)
    except ValueError:
        return page(request, session, "admin/not_found.html", status=404)
    try:
        amount = int(points.strip().replace("+", ""))
    except ValueError:
        return _profile(request, session, member_id, 422,
                        adjust_error=problem_text(InvalidInput("points must be a whole number"), lang))  # fmt: skip
    try:
        done = point_cases.adjust_points(security.uow(request), session.program_id, member_uuid, amount, reason,
                                         security.now(request), actor=f"staff:{session.email}")  # fmt: skip
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        return _profile(request, session, member_id, 422, adjust_error=problem_text(error, lang))
    return _profile(request, session, member_id, adjusted=done)


# -- cashier-style look-up by card ------------------------------------------------------------------------
@router.get("/lookup")
def lookup(request: Request, card: str = "", session: StaffSession = Depends(require(P.LOOKUP_CARD))) -> Response:
    """A till's question: whose card is this and what can they spend? Name and balance only."""
    found = None
    error = None
    if card.strip():
        try:
            uow = security.uow(request, read_only=True)
            hits = member_cases.find_members(uow, session.program_id, card_number=card.replace(" ", ""))
            if hits:
                member = hits[0]
                balance = point_cases.get_balance(uow, session.program_id, UUID(member["id"]), security.now(request))
                found = {"member": member, "balance": balance}
            else:
                error = translate(language(request, session), "No member has this card number.")
        except DomainError as refused:
            error = problem_text(refused, language(request, session))
    return page(request, session, "admin/lookup.html", card=card, found=found, error=error)


# -- rules ---------------------------------------------------------------------------------------------------
@router.get("/rules")
def rules(request: Request, session: StaffSession = Depends(require(P.VIEW_RULES))) -> Response:
    found = rule_cases.list_rules(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/rules.html", rules=found)


@router.get("/rules/new")
def new_rule(request: Request, session: StaffSession = Depends(require(P.VIEW_RULES))) -> Response:
    draft = {"id": "", "name": "", "trigger": "purchase", "condition": "",
             "effects": [{"type": "fixed_points", "points": 10}]}  # fmt: skip
    return _editor(request, session, draft, new=True)


@router.get("/rules/{rule_id}")
def edit_rule(request: Request, rule_id: str, session: StaffSession = Depends(require(P.VIEW_RULES))) -> Response:
    try:
        rule = rule_cases.get_rule(security.uow(request, read_only=True), session.program_id, rule_id)
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    return _editor(request, session, {"id": rule["id"], **rule["definition"]}, new=False, rule=rule)


def _editor(request: Request, session: StaffSession, definition: dict[str, Any], new: bool, status: int = 200,
            **extra: Any) -> Response:  # fmt: skip
    effects = json.dumps(definition.get("effects", []), indent=2, ensure_ascii=False)
    return page(request, session, "admin/rule_editor.html", status, definition=definition, new=new, effects=effects,
                triggers=TRIGGERS, check=None, saved=extra.get("saved"), save_error=extra.get("save_error"),
                rule=extra.get("rule"))  # fmt: skip


def _definition(rule_id: str, name: str, trigger: str, condition: str, effects: str) -> dict[str, Any]:
    try:
        parsed = json.loads(effects or "[]")
    except json.JSONDecodeError as error:
        raise RuleInvalid(f"effects: not JSON: {error.msg} (line {error.lineno}, column {error.colno})",
                          location="effects", line=error.lineno, column=error.colno) from None  # fmt: skip
    definition: dict[str, Any] = {"id": rule_id.strip(), "name": name.strip() or rule_id.strip(),
                                  "trigger": trigger.strip(), "effects": parsed}  # fmt: skip
    if condition.strip():
        definition["condition"] = condition
    return definition


@router.post("/rules/validate")
def validate_rule(request: Request, rule_id: str = Form(""), name: str = Form(""), trigger: str = Form("purchase"),
                  condition: str = Form(""), effects: str = Form("[]"), csrf_token: str | None = Form(None),
                  session: StaffSession = Depends(require(P.VIEW_RULES))) -> Response:  # fmt: skip
    """Called by HTMX as the condition is typed: the verdict, and where the expression goes wrong."""
    security.check_csrf(request, session.csrf_token, csrf_token)
    check = _check(request, session, rule_id, name, trigger, condition, effects)
    return page(request, session, "admin/_rule_check.html", check=check, condition=condition)


def _check(request: Request, session: StaffSession, rule_id: str, name: str, trigger: str, condition: str,
           effects: str) -> dict[str, Any]:  # fmt: skip
    lang = language(request, session)
    try:
        definition = _definition(rule_id or "draft", name, trigger, condition, effects)
        result = rule_cases.validate_rule(security.uow(request, read_only=True), session.program_id, definition,
                                          security.now(request))  # fmt: skip
    except DomainError as error:
        extra = error.extra
        return {"valid": False, "message": problem_text(error, lang), "location": extra.get("location"),
                "line": extra.get("line"), "column": extra.get("column")}  # fmt: skip
    return {"valid": True, "reads": result["reads"]}


@router.post("/rules/save")
def save_rule(request: Request, rule_id: str = Form(""), name: str = Form(""), trigger: str = Form("purchase"),
              condition: str = Form(""), effects: str = Form("[]"), new: str = Form("1"),
              csrf_token: str | None = Form(None),
              session: StaffSession = Depends(require(P.EDIT_RULES))) -> Response:  # fmt: skip
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = language(request, session)
    actor = f"staff:{session.email}"
    draft = {"id": rule_id, "name": name, "trigger": trigger, "condition": condition, "effects": []}
    try:
        definition = _definition(rule_id, name, trigger, condition, effects)
        draft = definition
        if new == "1":
            rule_cases.create_rule(security.uow(request), session.program_id, definition, security.now(request),
                                   actor=actor)  # fmt: skip
        else:
            changes = {k: v for k, v in definition.items() if k != "id"}
            changes.setdefault("condition", None)  # an emptied condition field removes the condition
            rule_cases.edit_rule(security.uow(request), session.program_id, rule_id, changes, security.now(request),
                                 actor=actor)  # fmt: skip
    except DomainError as error:
        return _editor(request, session, draft, new=new == "1", status=422, save_error=problem_text(error, lang))
    return RedirectResponse(f"/admin/rules/{quote(definition['id'])}?saved=1", status_code=303)


@router.post("/rules/preview")
def preview(request: Request, total: str = Form(""), sku: str = Form("SKU"), category: str = Form(""),
            card_number: str = Form(""), channel: str = Form("store"), csrf_token: str | None = Form(None),
            session: StaffSession = Depends(require(P.PREVIEW_CART))) -> Response:  # fmt: skip
    """ "Test with a sample cart": what the programme's rules would give, without writing anything."""
    security.check_csrf(request, session.csrf_token, csrf_token)
    lang = language(request, session)
    program = get_program(security.uow(request, read_only=True), session.program_id)
    try:
        cart = RecordPurchase(external_order_id="", total=total.strip(), currency=program["currency"],
                              occurred_at=security.now(request), card_number=card_number.strip() or None,
                              channel=channel, lines=[LineInput(sku.strip() or "SKU", 1, total.strip(),
                                                                category.strip() or None)])  # fmt: skip
        result = preview_purchase(security.uow(request, read_only=True), session.program_id, cart,
                                  security.now(request))  # fmt: skip
    except DomainError as error:
        return page(request, session, "admin/_preview.html", result=None, error=problem_text(error, lang))
    return page(request, session, "admin/_preview.html", result=result, error=None)
