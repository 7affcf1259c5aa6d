"""Set-up of engagement in the admin (managers and owners): missions and streaks, badges, segments, offers and the
notification templates with a live preview. Lists and forms as in web/setup.py: a refused form comes back with the
message next to its field (the services stay the authority and audit every change with the actor `staff:<email>`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from treue.domain.durations import zone
from treue.domain.errors import DomainError, NotFound
from treue.domain.segments import segment_condition
from treue.domain.staff import Permission
from treue.services import gamification as game_cases
from treue.services import notifications as note_cases
from treue.services import offers as offer_cases
from treue.services import rules as rule_cases
from treue.services import segments as segment_cases
from treue.services.programs import get_program
from treue.services.staff import StaffSession
from treue.web import security
from treue.web.admin import language, page, problem_text
from treue.web.i18n import translate
from treue.web.security import require
from treue.web.setup import actor, form_of, whole

router = APIRouter(prefix="/admin", include_in_schema=False)
SETUP = Permission.EDIT_RULES  # setting the programme up is what editing rules is (domain/staff.py)
LOCALES = ("de", "en")
GOALS = ("count", "sum")
WINDOWS = ("week", "month", "days", "campaign")
SEGMENT_KINDS = ("dynamic", "static")
OFFER_KINDS = ("card_linked", "targeted")
MEMBERS_PAGE = 50
OFFER_EFFECTS_EXAMPLE = '[{"type": "cashback_percent", "percent": "5"}]'
CHECK_EFFECTS = [{"type": "fixed_points", "points": 1}]  # a filter is checked as the condition of a stand-in rule


def _texts(values: Mapping[str, str], key: str) -> dict[str, str]:
    """`name_de`, `name_en` of a form as `{"de": ..., "en": ...}`, empty ones left out."""
    return {k: values.get(f"{key}_{k}", "").strip() for k in LOCALES if values.get(f"{key}_{k}", "").strip()}


def _place(error: DomainError, where: Mapping[str, str], errors: dict[str, str], lang: str) -> None:
    """A service's refusal next to the form field its `location` (or `field`, or the object it names) points at;
    `where` maps locations to fields, the longest match wins. Anything else goes on top of the form."""
    text = problem_text(error, lang)
    location = str(error.extra.get("location") or error.extra.get("field") or "")
    for prefix in sorted(where, key=len, reverse=True):
        if prefix and (location == prefix or location.startswith((f"{prefix}.", f"{prefix}["))):
            errors[where[prefix]] = text
            return
    for key in ("badge", "mission", "segment", "partner", "offer"):  # not-found and exists errors name the object
        if (key in error.extra or error.extra.get("resource") == key) and f"@{key}" in where:
            errors[where[f"@{key}"]] = text
            return
    errors[""] = text


def _local_text(instant: str | None, tz: Any, *, end: bool) -> str:
    """A stored window bound for the form: the local date when it falls on midnight (an end is exclusive, so the
    day before), else the ISO instant."""
    if not instant:
        return ""
    local = datetime.fromisoformat(instant).astimezone(tz)
    if local.time() != time(0, 0):
        return instant
    day = local.date() - timedelta(days=1) if end else local.date()
    return day.isoformat()


def _status(active: bool, starts: str | None, ends: str | None, now: datetime) -> str:
    if not active:
        return "inactive"
    if starts and now < datetime.fromisoformat(starts):
        return "upcoming"
    if ends and now >= datetime.fromisoformat(ends):
        return "ended"
    return "running"


# -- missions (and streaks) -----------------------------------------------------------------------------------
MISSION_FIELDS = ("code", "name_de", "name_en", "description_de", "description_en", "kind", "target", "event",
                  "filter", "window", "days", "starts", "ends", "opt_in", "repeatable", "audience", "reward_points",
                  "reward_coupon", "reward_badge", "active")  # fmt: skip
FIXED_MISSION_FIELDS = ("kind", "target", "event", "filter", "window", "days", "opt_in", "repeatable")
MISSION_PLACES = {"code": "code", "name": "name_de", "description": "description_de", "goal": "target",
                  "goal.type": "kind", "goal.target": "target", "goal.event": "event", "goal.filter": "filter",
                  "goal.unit": "target", "window": "window", "window.type": "window", "window.days": "days",
                  "starts": "starts", "ends": "ends", "opt_in": "opt_in", "repeatable": "repeatable",
                  "audience": "audience", "reward": "reward_points", "reward.points": "reward_points",
                  "reward.coupon": "reward_coupon", "reward.badge": "reward_badge", "@badge": "reward_badge",
                  "@mission": "code"}  # fmt: skip


@router.get("/missions")
def missions(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    uow = security.uow(request, read_only=True)
    now = security.now(request)
    found = [m | {"status": _status(m["active"], m["starts"], m["ends"], now)}
             for m in game_cases.list_missions(uow, session.program_id)]  # fmt: skip
    streaks = game_cases.list_streaks(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/engage_missions.html", missions=found, streaks=streaks,
                saved=request.query_params.get("saved"))  # fmt: skip


@router.get("/missions/new")
def new_mission(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    draft = dict.fromkeys(MISSION_FIELDS, "") | {"kind": "count", "event": "purchase", "window": "month",
                                                 "active": "1", "target": "3"}  # fmt: skip
    return _mission_form(request, session, draft, {}, new=True)


@router.get("/missions/{code}")
def edit_mission(request: Request, code: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    try:
        mission = game_cases.get_mission(security.uow(request, read_only=True), session.program_id, code)
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    draft = _mission_draft(mission, zone(_timezone(request, session)))
    return _mission_form(request, session, draft, {}, new=False, saved=request.query_params.get("saved"))


def _mission_draft(mission: dict[str, Any], tz: Any) -> dict[str, str]:
    """A stored mission as the form's text fields."""
    goal, reward = mission["goal"], mission["reward"]
    return {
        "code": mission["code"], "kind": goal["type"], "target": str(goal["target"]), "event": goal["event"] or "",
        "filter": goal["filter"] or "", "window": mission["window"]["type"],
        "days": str(mission["window"]["days"] or ""),
        "starts": _local_text(mission["starts"], tz, end=False), "ends": _local_text(mission["ends"], tz, end=True),
        "opt_in": "1" if mission["opt_in"] else "", "repeatable": "1" if mission["repeatable"] else "",
        "audience": mission["audience"] or "", "reward_points": str(reward["points"] or ""),
        "reward_coupon": reward["coupon"] or "", "reward_badge": reward["badge"] or "",
        "active": "1" if mission["active"] else "",
        **{f"name_{k}": mission["name"].get(k, "") for k in LOCALES},
        **{f"description_{k}": mission["description"].get(k, "") for k in LOCALES},
    }  # fmt: skip


def _timezone(request: Request, session: StaffSession) -> str:
    return str(get_program(security.uow(request, read_only=True), session.program_id)["timezone"])


def _mission_form(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str], *,
                  new: bool, status: int = 200, saved: str | None = None) -> Response:  # fmt: skip
    badges = game_cases.list_badges(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/engage_mission_form.html", status, draft=draft, errors=errors, new=new,
                goals=GOALS, windows=WINDOWS, badges=badges, saved=saved, check=None)  # fmt: skip


@router.post("/missions/check")
async def check_mission_filter(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    """Called by HTMX as the filter is typed: the rules service checks it as the condition of a stand-in rule on
    the mission's event (the same CEL context a mission's filter sees)."""
    values = await form_of(request, session)
    source = values.get("filter", "")
    check = _check_filter(request, session, values.get("event", "").strip() or "purchase", source)
    return page(request, session, "admin/engage_check.html", check=check, condition=source)


def _check_filter(request: Request, session: StaffSession, event: str, source: str) -> dict[str, Any] | None:
    if not source.strip():
        return None
    definition = {"id": "mission-filter-check", "trigger": event, "condition": source, "effects": CHECK_EFFECTS}
    try:
        result = rule_cases.validate_rule(security.uow(request, read_only=True), session.program_id, definition,
                                          security.now(request))  # fmt: skip
    except DomainError as error:
        extra = error.extra
        return {"valid": False, "message": problem_text(error, language(request, session)),
                "line": extra.get("line"), "column": extra.get("column"),
                "at_condition": extra.get("location") == "condition"}  # fmt: skip
    return {"valid": True, "reads": result["reads"]}


@router.post("/missions/save")
async def save_mission(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    new = values.get("new") == "1"
    draft = {key: values.get(key, "").strip() for key in MISSION_FIELDS}
    if not new:  # the goal and window fields are not sent (fixed once created): show them as stored
        try:
            stored = game_cases.get_mission(security.uow(request, read_only=True), session.program_id, draft["code"])
        except NotFound:
            return page(request, session, "admin/not_found.html", status=404)
        fixed = _mission_draft(stored, zone(_timezone(request, session)))
        draft = {k: fixed[k] if k in FIXED_MISSION_FIELDS else v for k, v in draft.items()}
    errors: dict[str, str] = {}
    name = _texts(values, "name")
    if not name:
        errors["name_de"] = translate(lang, "A name in at least one language, please.")
    if new and not draft["code"]:
        errors["code"] = translate(lang, "Required.")
    reward: dict[str, Any] = {"points": whole(values, "reward_points", errors, lang, minimum=0) or 0}
    for key in ("coupon", "badge"):
        if draft[f"reward_{key}"]:
            reward[key] = draft[f"reward_{key}"]
    if not (reward["points"] or draft["reward_coupon"] or draft["reward_badge"]) and "reward_points" not in errors:
        errors["reward_points"] = translate(lang, "Give points, a coupon or a badge.")
    document: dict[str, Any] = {
        "name": name, "description": _texts(values, "description") or None, "starts": draft["starts"] or None,
        "ends": draft["ends"] or None, "audience": draft["audience"] or None, "reward": reward,
        "active": bool(draft["active"]),
    }  # fmt: skip
    if new:
        target: Any = draft["target"]
        if draft["kind"] != "sum":
            target = whole(values, "target", errors, lang, required=True, minimum=1)
        elif not target:
            errors["target"] = translate(lang, "Required.")
        days = whole(values, "days", errors, lang, minimum=1) if draft["window"] == "days" else None
        document |= {
            "code": draft["code"], "opt_in": bool(draft["opt_in"]), "repeatable": bool(draft["repeatable"]),
            "goal": {"type": draft["kind"], "target": target, "event": draft["event"] or None,
                     "filter": draft["filter"] or None},
            "window": {"type": draft["window"], "days": days},
        }  # fmt: skip
    if errors:
        return _mission_form(request, session, draft, errors, new=new, status=422)
    try:
        if new:
            game_cases.create_mission(security.uow(request), session.program_id, document, security.now(request),
                                      actor=actor(session))  # fmt: skip
        else:
            game_cases.update_mission(security.uow(request), session.program_id, draft["code"], document,
                                      security.now(request), actor=actor(session))  # fmt: skip
    except DomainError as error:
        _place(error, MISSION_PLACES, errors, lang)
        return _mission_form(request, session, draft, errors, new=new, status=422)
    return RedirectResponse(f"/admin/missions/{quote(draft['code'])}?saved=1", status_code=303)


@router.post("/streaks/{code}/active")
async def toggle_streak(request: Request, code: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    try:
        game_cases.set_streak_active(security.uow(request), session.program_id, code, values.get("active") == "1",
                                     security.now(request), actor=actor(session))  # fmt: skip
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    return RedirectResponse("/admin/missions?saved=1", status_code=303)


# -- badges ---------------------------------------------------------------------------------------------------
BADGE_FIELDS = ("code", "name_de", "name_en", "description_de", "description_en", "image_url", "rare_below_percent",
                "active")  # fmt: skip
BADGE_PLACES = {"code": "code", "name": "name_de", "description": "description_de", "image_url": "image_url",
                "rare_below_percent": "rare_below_percent", "@badge": "code"}  # fmt: skip


@router.get("/badges")
def badges(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    found = game_cases.list_badges(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/engage_badges.html", badges=found, saved=request.query_params.get("saved"))


@router.get("/badges/new")
def new_badge(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    return _badge_form(request, session, dict.fromkeys(BADGE_FIELDS, "") | {"active": "1"}, {}, new=True)


@router.get("/badges/{code}")
def edit_badge(request: Request, code: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    found = next((b for b in game_cases.list_badges(security.uow(request, read_only=True), session.program_id)
                  if b["code"] == code), None)  # fmt: skip
    if found is None:
        return page(request, session, "admin/not_found.html", status=404)
    draft = {"code": found["code"], "image_url": found["image_url"] or "",
             "rare_below_percent": found["rare_below_percent"] or "", "active": "1" if found["active"] else "",
             **{f"name_{k}": found["name"].get(k, "") for k in LOCALES},
             **{f"description_{k}": found["description"].get(k, "") for k in LOCALES}}  # fmt: skip
    return _badge_form(request, session, draft, {}, new=False, badge=found)


def _badge_form(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str], *,
                new: bool, status: int = 200, badge: dict[str, Any] | None = None) -> Response:  # fmt: skip
    return page(request, session, "admin/engage_badge_form.html", status, draft=draft, errors=errors, new=new,
                badge=badge)  # fmt: skip


@router.post("/badges/save")
async def save_badge(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    new = values.get("new") == "1"
    draft = {key: values.get(key, "").strip() for key in BADGE_FIELDS}
    errors: dict[str, str] = {}
    name = _texts(values, "name")
    if not name:
        errors["name_de"] = translate(lang, "A name in at least one language, please.")
    if new and not draft["code"]:
        errors["code"] = translate(lang, "Required.")
    if errors:
        return _badge_form(request, session, draft, errors, new=new, status=422)
    document: dict[str, Any] = {"name": name, "description": _texts(values, "description"),
                                "image_url": draft["image_url"] or None,
                                "rare_below_percent": draft["rare_below_percent"] or None,
                                "active": bool(draft["active"])}  # fmt: skip
    try:
        if new:
            game_cases.create_badge(security.uow(request), session.program_id, {"code": draft["code"], **document},
                                    security.now(request), actor=actor(session))  # fmt: skip
        else:
            game_cases.update_badge(security.uow(request), session.program_id, draft["code"], document,
                                    security.now(request), actor=actor(session))  # fmt: skip
    except DomainError as error:
        if not new and error.status == 404:
            return page(request, session, "admin/not_found.html", status=404)
        _place(error, BADGE_PLACES, errors, lang)
        return _badge_form(request, session, draft, errors, new=new, status=422)
    return RedirectResponse("/admin/badges?saved=1", status_code=303)


# -- segments -------------------------------------------------------------------------------------------------
SEGMENT_FIELDS = ("code", "kind", "name_de", "name_en", "description_de", "description_en", "condition")
SEGMENT_PLACES = {"code": "code", "kind": "kind", "name": "name_de", "description": "description_de",
                  "condition": "condition", "@segment": "code"}  # fmt: skip


@router.get("/segments")
def segments(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    found = segment_cases.list_segments(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/engage_segments.html", segments=found,
                saved=request.query_params.get("saved"))  # fmt: skip


@router.get("/segments/new")
def new_segment(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    draft = dict.fromkeys(SEGMENT_FIELDS, "") | {"kind": "dynamic"}
    return page(request, session, "admin/engage_segment_form.html", draft=draft, errors={}, kinds=SEGMENT_KINDS,
                check=None)  # fmt: skip


@router.post("/segments/check")
async def check_segment(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    """Called by HTMX as the condition is typed: whether it compiles over the member facts a segment reads."""
    values = await form_of(request, session)
    source = values.get("condition", "")
    check: dict[str, Any] | None = None
    if source.strip():
        try:
            segment_condition(source)
            check = {"valid": True, "reads": {}}
        except DomainError as error:
            check = {"valid": False, "message": problem_text(error, language(request, session))}
    return page(request, session, "admin/engage_check.html", check=check, condition=source)


@router.post("/segments/save")
async def save_segment(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    draft = {key: values.get(key, "").strip() for key in SEGMENT_FIELDS}
    errors: dict[str, str] = {}
    name = _texts(values, "name")
    if not name:
        errors["name_de"] = translate(lang, "A name in at least one language, please.")
    if not draft["code"]:
        errors["code"] = translate(lang, "Required.")
    if draft["kind"] == "dynamic" and not draft["condition"]:
        errors["condition"] = translate(lang, "A dynamic segment needs a condition.")
    if not errors:
        data: dict[str, Any] = {"code": draft["code"], "kind": draft["kind"], "name": name,
                                "description": _texts(values, "description") or None}  # fmt: skip
        if draft["kind"] == "dynamic":
            data["condition"] = draft["condition"]
        try:
            segment_cases.create_segment(security.uow(request), session.program_id, data, security.now(request),
                                         actor=actor(session))  # fmt: skip
        except DomainError as error:
            _place(error, SEGMENT_PLACES, errors, lang)
    if errors:
        return page(request, session, "admin/engage_segment_form.html", 422, draft=draft, errors=errors,
                    kinds=SEGMENT_KINDS, check=None)  # fmt: skip
    return RedirectResponse(f"/admin/segments/{quote(draft['code'])}?saved=1", status_code=303)


@router.get("/segments/{code}")
def segment(request: Request, code: str, offset: int = 0, session: StaffSession = Depends(require(SETUP))) -> Response:
    return _segment_page(request, session, code, max(offset, 0))


def _segment_page(request: Request, session: StaffSession, code: str, offset: int = 0, status: int = 200,
                  **extra: Any) -> Response:  # fmt: skip
    try:
        found = segment_cases.get_segment(security.uow(request, read_only=True), session.program_id, code)
        members = segment_cases.segment_members(security.uow(request, read_only=True), session.program_id, code,
                                                limit=MEMBERS_PAGE, offset=offset)  # fmt: skip
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    return page(request, session, "admin/engage_segment.html", status, segment=found, members=members,
                page_size=MEMBERS_PAGE, saved=request.query_params.get("saved"), **extra)  # fmt: skip


@router.post("/segments/{code}/refresh")
async def refresh_segment(request: Request, code: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    await form_of(request, session)
    try:
        result = segment_cases.refresh_segment(security.uow(request), session.program_id, code,
                                               security.now(request))  # fmt: skip
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    return _segment_page(request, session, code, refreshed=result)


@router.post("/segments/{code}/import")
async def import_segment(request: Request, code: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    identifiers = segment_cases.identifiers_from_csv(values.get("identifiers", ""))
    try:
        result = segment_cases.import_members(security.uow(request), session.program_id, code, identifiers,
                                              security.now(request), mode=values.get("mode", "add"),
                                              actor=actor(session))  # fmt: skip
    except NotFound:
        return page(request, session, "admin/not_found.html", status=404)
    except DomainError as error:
        return _segment_page(request, session, code, status=422, import_error=problem_text(error, lang))
    return _segment_page(request, session, code, imported=result)


# -- offers ---------------------------------------------------------------------------------------------------
OFFER_FIELDS = ("code", "kind", "name_de", "name_en", "description_de", "description_en", "starts", "ends",
                "effects", "partners", "segment", "limit_per_member", "activation_required", "audience",
                "condition", "min_purchase", "budget")  # fmt: skip
OFFER_PLACES = {"code": "code", "kind": "kind", "name": "name_de", "description": "description_de",
                "starts": "starts", "ends": "ends", "effects": "effects", "rules": "effects", "partners": "partners",
                "segment": "segment", "partner": "partners", "limit_per_member": "limit_per_member",
                "audience": "audience", "condition": "condition", "min_purchase": "min_purchase", "budget": "budget",
                "@segment": "segment", "@partner": "partners", "@offer": "code"}  # fmt: skip


@router.get("/offers")
def offers(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    found = offer_cases.list_offers(security.uow(request, read_only=True), session.program_id, security.now(request))
    return page(request, session, "admin/engage_offers.html", offers=found, saved=request.query_params.get("saved"))


@router.get("/offers/new")
def new_offer(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    draft = dict.fromkeys(OFFER_FIELDS, "") | {"kind": "targeted", "effects": OFFER_EFFECTS_EXAMPLE,
                                               "activation_required": "1"}  # fmt: skip
    return _offer_form(request, session, draft, {})


def _offer_form(request: Request, session: StaffSession, draft: dict[str, str], errors: dict[str, str],
                status: int = 200) -> Response:  # fmt: skip
    found = segment_cases.list_segments(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/engage_offer_form.html", status, draft=draft, errors=errors,
                kinds=OFFER_KINDS, segments=found)  # fmt: skip


@router.get("/offers/{code}")
def offer(request: Request, code: str, session: StaffSession = Depends(require(SETUP))) -> Response:
    uow = security.uow(request, read_only=True)
    now = security.now(request)
    found = next((o for o in offer_cases.list_offers(uow, session.program_id, now) if o["code"] == code), None)
    if found is None:
        return page(request, session, "admin/not_found.html", status=404)
    stats = offer_cases.offer_stats(security.uow(request, read_only=True), session.program_id, code, now)
    return page(request, session, "admin/engage_offer.html", offer=found, stats=stats,
                saved=request.query_params.get("saved"))  # fmt: skip


@router.post("/offers/save")
async def save_offer(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    draft = {key: values.get(key, "").strip() for key in OFFER_FIELDS}
    errors: dict[str, str] = {}
    name = _texts(values, "name")
    if not name:
        errors["name_de"] = translate(lang, "A name in at least one language, please.")
    for key in ("code", "starts", "ends"):
        if not draft[key]:
            errors[key] = translate(lang, "Required.")
    effects: Any = None
    try:
        effects = json.loads(draft["effects"] or "[]")
    except json.JSONDecodeError as error:
        errors["effects"] = translate(lang, "Not valid JSON.") + f" ({error.msg}, {error.lineno}:{error.colno})"
    limit = whole(values, "limit_per_member", errors, lang, minimum=1)
    budget = whole(values, "budget", errors, lang, minimum=1)
    if errors:
        return _offer_form(request, session, draft, errors, 422)
    data: dict[str, Any] = {
        "code": draft["code"], "kind": draft["kind"], "name": name, "starts": draft["starts"], "ends": draft["ends"],
        "effects": effects, "activation_required": bool(draft["activation_required"]),
        "partners": [p.strip() for p in draft["partners"].split(",") if p.strip()],
    }  # fmt: skip
    optional = {"description": _texts(values, "description") or None, "segment": draft["segment"] or None,
                "limit_per_member": limit, "budget": budget, "audience": draft["audience"] or None,
                "condition": draft["condition"] or None, "min_purchase": draft["min_purchase"] or None}  # fmt: skip
    data |= {k: v for k, v in optional.items() if v is not None}
    try:
        offer_cases.create_offer(security.uow(request), session.program_id, data, security.now(request),
                                 actor=actor(session))  # fmt: skip
    except DomainError as error:
        _place(error, OFFER_PLACES, errors, lang)
        return _offer_form(request, session, draft, errors, 422)
    return RedirectResponse(f"/admin/offers/{quote(draft['code'])}?saved=1", status_code=303)


# -- notification templates -------------------------------------------------------------------------------------
@router.get("/templates")
def templates(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    found = note_cases.list_templates(security.uow(request, read_only=True), session.program_id)
    return page(request, session, "admin/engage_templates.html", triggers=found,
                saved=request.query_params.get("saved"))  # fmt: skip


def _template_of(request: Request, session: StaffSession, trigger: str, channel: str,
                 locale: str) -> tuple[dict[str, Any], dict[str, Any]] | None:  # fmt: skip
    for item in note_cases.list_templates(security.uow(request, read_only=True), session.program_id):
        if item["trigger"] == trigger:
            for template in item["templates"]:
                if (template["channel"], template["locale"]) == (channel, locale):
                    return item, template
    return None


@router.get("/templates/{trigger}/{channel}/{locale}")
def edit_template(request: Request, trigger: str, channel: str, locale: str,
                  session: StaffSession = Depends(require(SETUP))) -> Response:  # fmt: skip
    found = _template_of(request, session, trigger, channel, locale)
    if found is None:
        return page(request, session, "admin/not_found.html", status=404)
    item, template = found
    draft = {"subject": template["subject"], "text": template["text"], "html": template["html"] or ""}
    preview = _preview(request, session, trigger, channel, locale, draft)
    return _template_form(request, session, item, template, draft, {}, preview,
                          saved=request.query_params.get("saved"))  # fmt: skip


def _template_form(request: Request, session: StaffSession, item: dict[str, Any], template: dict[str, Any],
                   draft: dict[str, str], errors: dict[str, str], preview: dict[str, Any], status: int = 200,
                   saved: str | None = None) -> Response:  # fmt: skip
    return page(request, session, "admin/engage_template_form.html", status, item=item, wording=template,
                draft=draft, errors=errors, preview=preview, saved=saved)  # fmt: skip


def _preview(request: Request, session: StaffSession, trigger: str, channel: str, locale: str,
             draft: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """The draft rendered with the trigger's sample data (nothing saved), or why it does not render."""
    try:
        rendered = note_cases.preview(security.uow(request, read_only=True), session.program_id, trigger, channel,
                                      locale, {"subject": draft["subject"], "text": draft["text"],
                                               "html": draft.get("html") or None})  # fmt: skip
    except DomainError as error:
        return {"error": problem_text(error, language(request, session))}
    return {"error": None, **rendered}


@router.post("/templates/preview")
async def preview_template(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    """Called by HTMX as the template is typed: the draft rendered with sample data."""
    values = await form_of(request, session)
    draft = {k: values.get(k, "") for k in ("subject", "text", "html")}
    preview = _preview(request, session, values.get("trigger", ""), values.get("channel", ""),
                       values.get("locale", ""), draft)  # fmt: skip
    return page(request, session, "admin/engage_template_preview.html", preview=preview,
                channel=values.get("channel", ""))  # fmt: skip


@router.post("/templates/save")
async def save_template(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    lang = language(request, session)
    trigger, channel, locale = (values.get(k, "") for k in ("trigger", "channel", "locale"))
    found = _template_of(request, session, trigger, channel, locale)
    if found is None:
        return page(request, session, "admin/not_found.html", status=404)
    item, template = found
    draft = {k: values.get(k, "") for k in ("subject", "text", "html")}
    errors: dict[str, str] = {}
    for key in ("subject", "text"):
        if not draft[key].strip():
            errors[key] = translate(lang, "Required.")
    if not errors:
        try:
            note_cases.save_template(security.uow(request), session.program_id, trigger, channel, locale,
                                     {"subject": draft["subject"], "text": draft["text"],
                                      "html": draft["html"] or None}, security.now(request),
                                     actor=actor(session))  # fmt: skip
        except DomainError as error:
            errors["text"] = problem_text(error, lang)
    if errors:
        preview = _preview(request, session, trigger, channel, locale, draft)
        return _template_form(request, session, item, template, draft, errors, preview, 422)
    return RedirectResponse(f"/admin/templates/{quote(trigger)}/{quote(channel)}/{quote(locale)}?saved=1",
                            status_code=303)  # fmt: skip


@router.post("/templates/reset")
async def reset_template(request: Request, session: StaffSession = Depends(require(SETUP))) -> Response:
    values = await form_of(request, session)
    trigger, channel, locale = (values.get(k, "") for k in ("trigger", "channel", "locale"))
    try:
        note_cases.reset_template(security.uow(request), session.program_id, trigger, channel, locale,
                                  security.now(request), actor=actor(session))  # fmt: skip
    except DomainError:
        return page(request, session, "admin/not_found.html", status=404)
    return RedirectResponse(f"/admin/templates/{quote(trigger)}/{quote(channel)}/{quote(locale)}?saved=reset",
                            status_code=303)  # fmt: skip
