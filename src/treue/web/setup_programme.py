"""Set-up in the admin (issue 9): the programme's settings, paid-club plans and coalition partners.

Forms as in web/setup.py: the obvious is checked here (whole numbers, amounts, choices) with the message next to
its field; the services stay the authority and audit every change with the actor `staff:<email>`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from treue.domain.club import BillingInterval
from treue.domain.errors import DomainError, NotFound
from treue.domain.money import Money, Rounding
from treue.domain.partners import Billing
from treue.domain.programs import EarnBasis, ExpiryPolicy, ReturnPolicy
from treue.services import club as club_cases
from treue.services import partners as partner_cases
from treue.services import programs as program_cases
from treue.services import rewards as reward_cases
from treue.services.staff import StaffSession
from treue.web import security
from treue.web.admin import language, page
from treue.web.i18n import translate
from treue.web.security import require
from treue.web.setup import SETUP, actor, form_of, place, whole

router = APIRouter(prefix="/admin", include_in_schema=False)
CHOICES: dict[str, tuple[str, ...]] = {
    "rounding": tuple(r.value for r in Rounding), "earn_basis": tuple(b.value for b in EarnBasis),
    "expiry_policy": tuple(p.value for p in ExpiryPolicy), "return_policy": tuple(p.value for p in ReturnPolicy),
    "default_locale": ("de", "en"), "interval": tuple(i.value for i in BillingInterval),
    "billing": tuple(b.value for b in Billing),
}  # fmt: skip


def _choice(values: dict[str, str], key: str, errors: dict[str, str], lang: str) -> str:
    value = values.get(key, "").strip()
    if value not in CHOICES[key]:
        errors[key] = translate(lang, "Choose one of the options.")
    return value


def _amount(values: dict[str, str], key: str, currency: str, errors: dict[str, str], lang: str, *,
            required: bool = False) -> str | None:  # fmt: skip
    """A money field as the services take it (a decimal string), checked here so the message sits next to it."""
    text = values.get(key, "").strip().replace(",", ".")
    if not text:
        if required:
            errors[key] = translate(lang, "Required.")
        return None
    try:
        money = Money.parse(text, currency)
    except DomainError:
        errors[key] = translate(lang, "An amount such as 12.50, please.")
        return None
    if money.minor < 0:
        errors[key] = translate(lang, "At least %(minimum)s.") % {"minimum": 0}
        return None
    return text


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


# -- programme settings (the fields PATCH /program takes) ---------------------------------------------------------
PROGRAM_FIELDS = ("name", "timezone", "default_locale", "point_value", "point_value_points", "rounding",
                  "earn_basis", "earn_points", "earn_per_amount", "pending_days", "expiry_policy", "expiry_months",
                  "expiry_day", "expiry_years", "return_policy", "earn_on_money_only", "min_redemption_points",
                  "hold_minutes", "cashback_expiry_months", "control_percent")  # fmt: skip


def _program_draft(view: dict[str, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        return "" if value is None else str(value)

    return {
        "name": view["name"], "timezone": view["timezone"], "default_locale": view["default_locale"],
        "point_value": view["point_value"]["amount"], "point_value_points": text(view["point_value"]["per_points"]),
        "rounding": view["rounding"], "earn_basis": view["earning"]["basis"],
        "earn_points": text(view["earning"]["points"]), "earn_per_amount": view["earning"]["per_amount"],
        "pending_days": text(view["pending_days"]), "expiry_policy": view["expiry"]["policy"],
        "expiry_months": text(view["expiry"]["months"]), "expiry_day": text(view["expiry"]["day"]),
        "expiry_years": text(view["expiry"]["years"]), "return_policy": view["return_policy"],
        "earn_on_money_only": "1" if view["checkout"]["earn_on_money_only"] else "",
        "min_redemption_points": text(view["checkout"]["min_redemption_points"]),
        "hold_minutes": text(view["checkout"]["hold_minutes"]),
        "cashback_expiry_months": text(view["cashback_expiry_months"]),
        "control_percent": text(view["control_percent"]),
    }  # fmt: skip


@router.get("/programme")
def programme(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    view = program_cases.get_program(security.uow(request, read_only=True), session.program_id)
    return _programme_form(request, session, _program_draft(view), {}, saved=request.query_params.get("saved"))


def _programme_form(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str],
                    status: int = 200, saved: str | None = None) -> Response:  # fmt: skip
    return page(request, session, "admin/programme.html", status, draft=draft, errors=errors, choices=CHOICES,
                saved=saved)  # fmt: skip


@router.post("/programme")
async def save_programme(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    current = program_cases.get_program(security.uow(request, read_only=True), session.program_id)
    draft = {key: values.get(key, "").strip() for key in PROGRAM_FIELDS}
    draft["earn_on_money_only"] = "1" if values.get("earn_on_money_only") else ""
    errors: dict[str, str] = {}
    for key in ("name", "timezone"):
        if not draft[key]:
            errors[key] = translate(lang, "Required.")
    if len(draft["name"]) > 200:
        errors["name"] = translate(lang, "At most 200 characters.")
    changes: dict[str, Any] = {"name": draft["name"], "timezone": draft["timezone"],
                               "earn_on_money_only": bool(draft["earn_on_money_only"])}  # fmt: skip
    for key in ("default_locale", "rounding", "earn_basis", "expiry_policy", "return_policy"):
        changes[key] = _choice(values, key, errors, lang)
    for key, minimum in (("point_value_points", 1), ("earn_points", 0), ("pending_days", 0), ("expiry_months", 0),
                         ("expiry_years", 0), ("min_redemption_points", 0), ("hold_minutes", 1),
                         ("cashback_expiry_months", 0)):  # fmt: skip
        number = whole(values, key, errors, lang, minimum=minimum, required=key not in ("expiry_months",
                                                                                          "expiry_years"))  # fmt: skip
        if number is not None:
            changes[key] = number
    for key in ("point_value", "earn_per_amount"):
        changes[key] = _amount(values, key, current["currency"], errors, lang, required=True)
    if draft["expiry_day"]:
        changes["expiry_day"] = draft["expiry_day"]
    if draft["control_percent"]:
        changes["control_percent"] = draft["control_percent"].replace(",", ".")
    if not errors:
        try:
            program_cases.update_program(security.uow(request), session.program_id, changes, security.now(request),
                                         actor=actor(session))  # fmt: skip
        except DomainError as error:
            place(error, PROGRAM_FIELDS, errors, lang)
    if errors:
        return _programme_form(request, session, draft, errors, 422)
    return RedirectResponse("/admin/programme?saved=1", status_code=303)


# -- club plans ---------------------------------------------------------------------------------------------------
PLAN_FIELDS = ("code", "name_de", "name_en", "description_de", "description_en", "price", "interval", "trial_days",
               "grace_days", "earn_multiplier", "cashback_percent", "perks", "birthday_bonus_points",
               "bonus_points", "voucher_reward_id", "active")  # fmt: skip


@router.get("/club-plans")
def club_plans(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    plans = club_cases.list_plans(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/club_plans.html", plans=plans, saved=request.query_params.get("saved"))


@router.get("/club-plans/new")
def new_club_plan(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    draft = dict.fromkeys(PLAN_FIELDS, "") | {"interval": "month", "trial_days": "0", "grace_days": "7",
                                              "earn_multiplier": "1", "cashback_percent": "0", "active": "1",
                                              "birthday_bonus_points": "0", "bonus_points": "0"}  # fmt: skip
    return _plan_form(request, session, draft, {}, new=True)


def _plan_of(request: Request, session: StaffSession, code: str) -> dict[str, Any] | None:
    plans = club_cases.list_plans(security.uow(request, read_only=True), session.program_id)
    return next((p for p in plans if p["code"] == code), None)


@router.get("/club-plans/{code}")
def edit_club_plan(request: Request, code: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    plan = _plan_of(request, session, code)
    if plan is None:
        return page(request, session, "admin/not_found.html", status=404)
    benefits = plan["benefits"]
    draft = {"code": plan["code"], "price": plan["price"], "interval": plan["interval"],
             **{f"name_{k}": plan["name"].get(k, "") for k in ("de", "en")},
             **{f"description_{k}": (plan["description"] or {}).get(k, "") for k in ("de", "en")},
             "trial_days": str(plan["trial_days"]), "grace_days": str(plan["grace_days"]),
             "earn_multiplier": benefits["earn_multiplier"], "cashback_percent": benefits["cashback_percent"],
             "perks": ", ".join(benefits["perks"]), "birthday_bonus_points": str(benefits["birthday_bonus_points"]),
             "bonus_points": str(plan["bonus_points"]), "voucher_reward_id": plan["voucher_reward_id"] or "",
             "active": "1" if plan["active"] else ""}  # fmt: skip
    return _plan_form(request, session, draft, {}, new=False)


def _plan_form(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str], *,
               new: bool, status: int = 200) -> Response:  # fmt: skip
    rewards = reward_cases.list_rewards(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/club_plan_form.html", status, draft=draft, errors=errors, new=new,
                intervals=CHOICES["interval"], rewards=rewards)  # fmt: skip


@router.post("/club-plans/save")
async def save_club_plan(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    new = values.get("new") == "1"
    draft = {key: values.get(key, "").strip() for key in PLAN_FIELDS}
    draft["active"] = "1" if values.get("active") else ""
    errors: dict[str, str] = {}
    name = {k: draft[f"name_{k}"] for k in ("de", "en") if draft[f"name_{k}"]}
    if not name:
        errors["name_de"] = translate(lang, "A name in at least one language, please.")
    numbers = {key: whole(values, key, errors, lang, required=True, minimum=0)
               for key in ("trial_days", "grace_days", "birthday_bonus_points", "bonus_points")}  # fmt: skip
    fields: dict[str, Any] = {
        "name": name, "description": {k: draft[f"description_{k}"] for k in ("de", "en") if draft[f"description_{k}"]},
        "trial_days": numbers["trial_days"], "grace_days": numbers["grace_days"],
        "bonus_points": numbers["bonus_points"], "voucher_reward_id": draft["voucher_reward_id"] or None,
        "active": bool(draft["active"]),
        "benefits": {"earn_multiplier": draft["earn_multiplier"] or "1", "cashback_percent": draft["cashback_percent"] or "0",
                     "perks": _names(draft["perks"]), "birthday_bonus_points": numbers["birthday_bonus_points"] or 0},
    }  # fmt: skip
    if new:
        if not draft["code"]:
            errors["code"] = translate(lang, "Required.")
        currency = program_cases.get_program(security.uow(request, read_only=True), session.program_id)["currency"]
        fields |= {"code": draft["code"], "price": _amount(values, "price", currency, errors, lang, required=True),
                   "interval": _choice(values, "interval", errors, lang)}  # fmt: skip
    if not new and _plan_of(request, session, draft["code"]) is None:
        return page(request, session, "admin/not_found.html", status=404)
    if errors:
        return _plan_form(request, session, draft, errors, new=new, status=422)
    try:
        if new:
            club_cases.create_plan(security.uow(request), session.program_id, fields, security.now(request),
                                   actor=actor(session))  # fmt: skip
        else:
            club_cases.update_plan(security.uow(request), session.program_id, draft["code"], fields,
                                   security.now(request), actor=actor(session))  # fmt: skip
    except NotFound:  # the plan exists (checked above): the chosen voucher reward does not
        errors["voucher_reward_id"] = translate(lang, "Choose one of the options.")
        return _plan_form(request, session, draft, errors, new=new, status=422)
    except DomainError as error:
        place(error, ("code", "name", "description", "price", "interval", "trial_days", "grace_days",
                      "earn_multiplier", "cashback_percent", "perks", "birthday_bonus_points", "bonus_points",
                      "voucher_reward_id"), errors, lang)  # fmt: skip
        for key in ("name", "description"):
            if key in errors:
                errors[f"{key}_de"] = errors.pop(key)
        if "perk" in (error.detail or "") and "" in errors:
            errors["perks"] = errors.pop("")
        if "code" in (error.detail or "") and "" in errors and new:
            errors["code"] = errors.pop("")
        return _plan_form(request, session, draft, errors, new=new, status=422)
    return RedirectResponse("/admin/club-plans?saved=1", status_code=303)


# -- partners -----------------------------------------------------------------------------------------------------
PARTNER_FIELDS = ("code", "name", "issue_price", "issue_points", "redeem_price", "redeem_points", "billing",
                  "stores", "channels")  # fmt: skip


@router.get("/partners")
def partners(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    found = partner_cases.list_partners(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/partners.html", partners=found, saved=request.query_params.get("saved"))


@router.get("/partners/new")
def new_partner(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    draft = dict.fromkeys(PARTNER_FIELDS, "") | {"issue_price": "0.00", "issue_points": "1", "redeem_price": "0.00",
                                                 "redeem_points": "1", "billing": "postpaid"}  # fmt: skip
    return _partner_form(request, session, draft, {}, new=True)


@router.get("/partners/{code}")
def edit_partner(request: Request, code: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    try:
        found = partner_cases.get_partner(security.uow(request, read_only=True), session.program_id, code)
    except DomainError:
        return page(request, session, "admin/not_found.html", status=404)
    draft = {"code": found["code"], "name": found["name"], "issue_price": found["issue_price"],
             "issue_points": str(found["issue_points"]), "redeem_price": found["redeem_price"],
             "redeem_points": str(found["redeem_points"]), "billing": found["billing"],
             "stores": ", ".join(found["stores"]), "channels": ", ".join(found["channels"])}  # fmt: skip
    return _partner_form(request, session, draft, {}, new=False)


def _partner_form(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str], *,
                  new: bool, status: int = 200) -> Response:  # fmt: skip
    return page(request, session, "admin/partner_form.html", status, draft=draft, errors=errors, new=new,
                billings=CHOICES["billing"])  # fmt: skip


@router.post("/partners/save")
async def save_partner(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    new = values.get("new") == "1"
    draft = {key: values.get(key, "").strip() for key in PARTNER_FIELDS}
    errors: dict[str, str] = {}
    currency = program_cases.get_program(security.uow(request, read_only=True), session.program_id)["currency"]
    if not draft["code"]:
        errors["code"] = translate(lang, "Required.")
    if not draft["name"]:
        errors["name"] = translate(lang, "Required.")
    fields: dict[str, Any] = {
        "name": draft["name"], "billing": _choice(values, "billing", errors, lang),
        "issue_price": _amount(values, "issue_price", currency, errors, lang, required=True),
        "issue_points": whole(values, "issue_points", errors, lang, required=True, minimum=1),
        "redeem_price": _amount(values, "redeem_price", currency, errors, lang, required=True),
        "redeem_points": whole(values, "redeem_points", errors, lang, required=True, minimum=1),
        "stores": _names(draft["stores"]), "channels": _names(draft["channels"]),
    }  # fmt: skip
    if errors:
        return _partner_form(request, session, draft, errors, new=new, status=422)
    try:
        if new:
            partner_cases.create_partner(security.uow(request), session.program_id, {"code": draft["code"], **fields},
                                         security.now(request), actor=actor(session))  # fmt: skip
        else:
            partner_cases.update_partner(security.uow(request), session.program_id, draft["code"], fields,
                                         security.now(request), actor=actor(session))  # fmt: skip
    except DomainError as error:
        if error.code == "partner_not_found" and not new:
            return page(request, session, "admin/not_found.html", status=404)
        place(error, PARTNER_FIELDS, errors, lang)
        if "" in errors and (error.code == "partner_exists" or "partner code" in (error.detail or "")
                             or "'default'" in (error.detail or "")):  # fmt: skip
            errors["code"] = errors.pop("")
        return _partner_form(request, session, draft, errors, new=new, status=422)
    return RedirectResponse(f"/admin/partners?saved={quote(draft['code'])}", status_code=303)
