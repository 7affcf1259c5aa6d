"""Programme set-up in the admin (managers and owners): the rewards catalogue with stock, the tier ladder and
campaigns. Lists and forms; a refused form comes back with the message next to its field (checked here first
for the obvious, then by the services, which stay the authority). The services audit every change with the
actor `staff:<email>`.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from treue.domain.errors import DomainError, NotFound
from treue.domain.rewards import RewardType
from treue.domain.staff import Permission
from treue.services import rewards as reward_cases
from treue.services import rules as rule_cases
from treue.services import tiers as tier_cases
from treue.services.staff import StaffSession
from treue.web import security
from treue.web.admin import language, page, problem_text
from treue.web.i18n import translate
from treue.web.security import require

router = APIRouter(prefix="/admin", include_in_schema=False)
# Setting up the programme is what editing rules is: managers and owners (domain/staff.py).
SETUP = Permission.EDIT_RULES
REWARD_TYPES = tuple(t.value for t in RewardType)
BASES = ("spend", "purchases", "status_points")
REVIEWS = ("window_end", "anniversary")
STATUSES = ("draft", "scheduled", "active", "ended")
TIER_ROWS_EXTRA = 2  # empty rows under the ladder's tiers for new ones


def actor(session: StaffSession) -> str:
    return f"staff:{session.email}"


async def form_of(request: Request, session: StaffSession) -> dict[str, str]:
    """The posted form as text fields, after the CSRF check."""
    form = await request.form()
    values = {key: str(value) for key, value in form.items()}
    security.check_csrf(request, session.csrf_token, values.get("csrf_token"))
    return values


def whole(values: dict[str, str], key: str, errors: dict[str, str], lang: str, *, required: bool = False,
          minimum: int | None = None) -> int | None:  # fmt: skip
    """A whole-number field: None when empty (unless required); a message next to the field when not."""
    text = values.get(key, "").strip()
    if not text:
        if required:
            errors[key] = translate(lang, "Required.")
        return None
    try:
        number = int(text)
    except ValueError:
        errors[key] = translate(lang, "A whole number, please.")
        return None
    if minimum is not None and number < minimum:
        errors[key] = translate(lang, "At least %(minimum)s.") % {"minimum": minimum}
    return number


def place(error: DomainError, fields: tuple[str, ...], errors: dict[str, str], lang: str) -> None:
    """A service's refusal next to the field it names (its `location`, or a field name in its text), else on
    top of the form (key "")."""
    location = str(error.extra.get("location") or "")
    text = problem_text(error, lang)
    for name in fields:
        if location == name or location.startswith(f"{name}.") or location.startswith(f"{name}["):
            errors[name] = text
            return
    for name in fields:
        if re.search(rf"\b{re.escape(name)}\b", error.detail or ""):
            errors[name] = text
            return
    errors[""] = text


# -- rewards --------------------------------------------------------------------------------------------------
@router.get("/rewards")
def rewards(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    found = reward_cases.list_rewards(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/rewards.html", rewards=found, saved=request.query_params.get("saved"))


@router.get("/rewards/new")
def new_reward(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    draft = {"id": "", "name_de": "", "name_en": "", "description_de": "", "description_en": "",
             "type": "discount_fixed", "cost_points": "", "stock": "", "per_member_limit": "", "value": "",
             "percent": "", "sku": "", "coupon_valid_days": "", "active": "1"}  # fmt: skip
    return _reward_form(request, session, draft, {})


@router.get("/rewards/{reward_id}")
def edit_reward(request: Request, reward_id: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    try:
        reward = reward_cases.get_reward(security.uow(request, read_only=True), session.program_id, UUID(reward_id))
    except (ValueError, NotFound):
        return page(request, session, "admin/not_found.html", status=404)

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    draft = {"id": reward["id"], "type": reward["type"], "active": "1" if reward["active"] else "",
             **{f"name_{k}": reward["name"].get(k, "") for k in ("de", "en")},
             **{f"description_{k}": reward["description"].get(k, "") for k in ("de", "en")},
             **{k: text(reward[k]) for k in ("cost_points", "stock", "per_member_limit", "value", "percent", "sku",
                                              "coupon_valid_days")}}  # fmt: skip
    return _reward_form(request, session, draft, {})


def _reward_form(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str],
                 status: int = 200) -> Response:  # fmt: skip
    return page(request, session, "admin/reward_form.html", status, draft=draft, errors=errors,
                types=REWARD_TYPES)  # fmt: skip


REWARD_FIELDS = ("name", "description", "type", "cost_points", "stock", "per_member_limit", "value", "percent",
                 "sku", "coupon_valid_days")  # fmt: skip


@router.post("/rewards/save")
async def save_reward(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    errors: dict[str, str] = {}
    draft = {key: values.get(key, "") for key in ("id", "name_de", "name_en", "description_de", "description_en",
                                                   "type", "cost_points", "stock", "per_member_limit", "value",
                                                   "percent", "sku", "coupon_valid_days", "active")}  # fmt: skip
    name = {k: values.get(f"name_{k}", "").strip() for k in ("de", "en") if values.get(f"name_{k}", "").strip()}
    if not name:
        errors["name_de"] = translate(lang, "A name in at least one language, please.")
    if draft["type"] not in REWARD_TYPES:
        errors["type"] = translate(lang, "Choose a type.")
    numbers = {"cost_points": whole(values, "cost_points", errors, lang, required=True, minimum=1),
               "stock": whole(values, "stock", errors, lang, minimum=0),
               "per_member_limit": whole(values, "per_member_limit", errors, lang, minimum=1),
               "percent": whole(values, "percent", errors, lang, minimum=1),
               "coupon_valid_days": whole(values, "coupon_valid_days", errors, lang, minimum=1)}  # fmt: skip
    if errors:
        return _reward_form(request, session, draft, errors, 422)
    fields: dict[str, Any] = {
        "name": name, "type": draft["type"], "active": bool(values.get("active")),
        "description": {k: values[f"description_{k}"].strip() for k in ("de", "en")
                        if values.get(f"description_{k}", "").strip()},
        "value": values.get("value", "").strip() or None, "sku": values.get("sku", "").strip() or None, **numbers,
    }  # fmt: skip
    try:
        if draft["id"]:
            reward_cases.update_reward(security.uow(request), session.program_id, UUID(draft["id"]), fields,
                                       security.now(request), actor=actor(session))  # fmt: skip
        else:
            reward_cases.create_reward(security.uow(request), session.program_id, fields, security.now(request),
                                       actor=actor(session))  # fmt: skip
    except ValueError:
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        place(error, REWARD_FIELDS, errors, lang)
        if "name" in errors:
            errors["name_de"] = errors.pop("name")
        if "description" in errors:
            errors["description_de"] = errors.pop("description")
        return _reward_form(request, session, draft, errors, 422)
    return RedirectResponse("/admin/rewards?saved=1", status_code=303)


# -- the tier ladder --------------------------------------------------------------------------------------------
@router.get("/tiers")
def tiers(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    ladder = tier_cases.get_ladder(security.uow(request, read_only=True), session.program_id)
    rows = [{"code": t["code"], "name_de": t["name"].get("de", ""), "name_en": t["name"].get("en", ""),
             "threshold": str(t["threshold"]), "window": t["window"],
             "benefits": json.dumps(t["benefits"], ensure_ascii=False) if t["benefits"] else ""}
            for t in ladder["tiers"]]  # fmt: skip
    draft = {"basis": ladder["basis"] or "spend", "review": ladder["review"] or "window_end",
             "grace_days": str(ladder["grace_days"]), "notice_days": str(ladder["notice_days"])}  # fmt: skip
    return _ladder_form(request, session, draft, rows, {}, saved=request.query_params.get("saved"))


def _ladder_form(request: Request, session: StaffSession, draft: dict[str, str], rows: list[dict[str, str]],
                 errors: dict[str, str], status: int = 200, saved: str | None = None) -> Response:  # fmt: skip
    blank = {"code": "", "name_de": "", "name_en": "", "threshold": "", "window": "12M", "benefits": ""}
    rows = [*[r for r in rows if r["code"]], *[dict(blank) for _ in range(TIER_ROWS_EXTRA)]]
    return page(request, session, "admin/tiers.html", status, draft=draft, rows=rows, errors=errors, bases=BASES,
                reviews=REVIEWS, saved=saved)  # fmt: skip


@router.post("/tiers")
async def save_tiers(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    errors: dict[str, str] = {}
    draft = {k: values.get(k, "") for k in ("basis", "review", "grace_days", "notice_days")}
    rows: list[dict[str, str]] = []
    index = 0
    while f"code_{index}" in values:
        rows.append({k: values.get(f"{k}_{index}", "").strip() for k in ("code", "name_de", "name_en", "threshold",
                                                                          "window", "benefits")})  # fmt: skip
        index += 1
    data: dict[str, Any] = {"basis": draft["basis"], "review": draft["review"],
                            "grace_days": whole(values, "grace_days", errors, lang, minimum=0) or 0,
                            "notice_days": whole(values, "notice_days", errors, lang, minimum=0) or 0, "tiers": []}  # fmt: skip
    for number, row in enumerate(rows):
        if not row["code"]:
            continue
        name = {k: row[f"name_{k}"] for k in ("de", "en") if row[f"name_{k}"]}
        tier: dict[str, Any] = {"code": row["code"], "name": name, "window": row["window"] or "lifetime",
                                "threshold": row["threshold"] or "0"}  # fmt: skip
        if draft["basis"] != "spend":
            try:
                tier["threshold"] = int(tier["threshold"])
            except ValueError:
                errors[f"threshold_{number}"] = translate(lang, "A whole number, please.")
        if row["benefits"]:
            try:
                tier["benefits"] = json.loads(row["benefits"])
            except json.JSONDecodeError:
                errors[f"benefits_{number}"] = translate(lang, "Not valid JSON.")
        if not name:
            errors[f"name_de_{number}"] = translate(lang, "A name in at least one language, please.")
        data["tiers"].append(tier)
    if not data["tiers"]:
        errors[""] = translate(lang, "A ladder needs at least one tier.")
    if not errors:
        try:
            tier_cases.set_ladder(security.uow(request), session.program_id, data, security.now(request),
                                  actor=actor(session))  # fmt: skip
        except DomainError as error:
            _place_tier_error(error, rows, errors, lang)
    if errors:
        return _ladder_form(request, session, draft, rows, errors, 422)
    return RedirectResponse("/admin/tiers?saved=1", status_code=303)


def _place_tier_error(error: DomainError, rows: list[dict[str, str]], errors: dict[str, str], lang: str) -> None:
    """`tier gold: threshold ...` goes next to that row's field; the rest on top."""
    text = problem_text(error, lang)
    detail = error.detail or ""
    for number, row in enumerate(rows):
        if row["code"] and detail.startswith(f"tier {row['code']}:"):
            for field in ("threshold", "window", "benefits", "name"):
                if field in detail:
                    errors[f"{'name_de' if field == 'name' else field}_{number}"] = text
                    return
            errors[f"code_{number}"] = text
            return
    errors[""] = text


# -- campaigns ---------------------------------------------------------------------------------------------------
CAMPAIGN_FIELDS = ("id", "name", "starts", "ends", "status", "audience", "budget", "rules")
RULES_EXAMPLE = [{"id": "", "trigger": "purchase", "effects": [{"type": "multiplier", "factor": "2"}]}]


@router.get("/campaigns")
def campaigns(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    found = rule_cases.list_campaigns(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/campaigns.html", campaigns=found, saved=request.query_params.get("saved"))


@router.get("/campaigns/new")
def new_campaign(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    draft = {"id": "", "name": "", "starts": "", "ends": "", "status": "draft", "audience": "", "budget": "",
             "rules": json.dumps(RULES_EXAMPLE, indent=2)}  # fmt: skip
    return _campaign_form(request, session, draft, {}, new=True)


@router.get("/campaigns/{campaign_id}")
def edit_campaign(request: Request, campaign_id: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    try:
        found = rule_cases.get_campaign(security.uow(request, read_only=True), session.program_id, campaign_id)
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    draft = {"id": found["id"], "name": found["name"], "starts": found["starts"] or "", "ends": found["ends"] or "",
             "status": found["status"], "audience": found["audience"] or "",
             "budget": str(found["budget"]["points"]) if found["budget"] else "", "rules": ""}  # fmt: skip
    return _campaign_form(request, session, draft, {}, new=False, campaign=found)


def _campaign_form(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str], *,
                   new: bool, status: int = 200, campaign: dict[str, Any] | None = None) -> Response:  # fmt: skip
    return page(request, session, "admin/campaign_form.html", status, draft=draft, errors=errors, new=new,
                statuses=STATUSES, campaign=campaign, saved=request.query_params.get("saved"))  # fmt: skip


@router.post("/campaigns/save")
async def save_campaign(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    new = values.get("new") == "1"
    draft = {k: values.get(k, "").strip() if k != "rules" else values.get(k, "") for k in CAMPAIGN_FIELDS}
    errors: dict[str, str] = {}
    budget = whole(values, "budget", errors, lang, minimum=1)
    for key in ("id", "name", "starts", "ends"):
        if not draft[key]:
            errors[key] = translate(lang, "Required.")
    definition: dict[str, Any] = {"id": draft["id"], "name": draft["name"], "starts": draft["starts"],
                                  "ends": draft["ends"], "status": draft["status"],
                                  "audience": draft["audience"] or None, "budget": budget}  # fmt: skip
    if new:
        try:
            definition["rules"] = json.loads(draft["rules"] or "[]")
        except json.JSONDecodeError as error:
            errors["rules"] = translate(lang, "Not valid JSON.") + f" ({error.msg}, {error.lineno}:{error.colno})"
    if errors:
        return _campaign_form(request, session, draft, errors, new=new, status=422)
    try:
        if new:
            created = {k: v for k, v in definition.items() if v is not None}
            rule_cases.create_campaign(security.uow(request), session.program_id, created, security.now(request),
                                       actor=actor(session))  # fmt: skip
        else:
            changes = {k: v for k, v in definition.items() if k != "id"}
            rule_cases.update_campaign(security.uow(request), session.program_id, draft["id"], changes,
                                       security.now(request), actor=actor(session))  # fmt: skip
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        place(error, CAMPAIGN_FIELDS, errors, lang)
        return _campaign_form(request, session, draft, errors, new=new, status=422)
    return RedirectResponse(f"/admin/campaigns/{quote(draft['id'])}?saved=1", status_code=303)
