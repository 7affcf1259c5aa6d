"""The simulator page (/admin/simulator): a draft rule set (typed, pasted or uploaded; JSON or YAML in the format
`treue rules export` writes and `treue simulate --draft` reads) replayed over a period of recorded purchases and
events beside today's programme, with tables and bar charts (draft vs current).

The run is synchronous and bounded like the API's (`LIMIT` purchases and events; larger periods: `treue simulate`);
HTMX posts the form and shows a "running" state until the report replaces the result area. Charts are drawn by
static/simulator.js from a JSON block (no inline script, CSP `script-src 'self'`), also after an HTMX swap.
"""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from treue.domain.durations import zone
from treue.domain.errors import DomainError
from treue.domain.staff import Permission
from treue.services import rules as rule_cases
from treue.services import simulation as simulation_cases
from treue.services.programs import get_program
from treue.services.staff import StaffSession
from treue.web import security
from treue.web.admin import is_htmx, language, page, problem_text
from treue.web.i18n import translate
from treue.web.security import require

router = APIRouter(prefix="/admin", include_in_schema=False)
RUN = Permission.RUN_SIMULATIONS
LIMIT = 200_000  # purchases and events per run, as POST /simulations allows
DEFAULT_DAYS = 30
MAX_DRAFT = 1_000_000  # characters of a draft (typed or uploaded)
TOP = 10
FIGURES = ("points_issued", "points_taken_back", "points_net")


@router.get("/simulator")
def simulator(request: Request, session: StaffSession = Depends(require(RUN))) -> Response:
    """The form, with today's rules as the draft to start from and the last 30 days as the period."""
    program = get_program(security.uow(request, read_only=True), session.program_id)
    today = security.now(request).astimezone(zone(program["timezone"])).date()
    current = rule_cases.export_rules(security.uow(request, read_only=True), session.program_id)
    draft = {"draft": json.dumps(current, indent=2, ensure_ascii=False),
             "from": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), "to": today.isoformat(),
             "top": str(TOP)}  # fmt: skip
    return page(request, session, "admin/simulator.html", draft=draft, errors={}, result=None)


@router.post("/simulator")
async def run(request: Request, session: StaffSession = Depends(require(RUN))) -> Response:
    """Replay the period against the draft and today's rules; writes nothing. A refused draft or period comes back
    with the message next to its field."""
    form = await request.form()
    security.check_csrf(request, session.csrf_token, _text(form.get("csrf_token")))
    lang = language(request, session)
    draft = {key: _text(form.get(key)).strip() for key in ("from", "to", "top")}
    draft["draft"] = _text(form.get("draft"))
    errors: dict[str, str] = {}
    upload = form.get("draft_file")
    source, name = draft["draft"], ""
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_DRAFT + 1)
        try:
            source, name = raw.decode("utf-8-sig"), upload.filename
            draft["draft"] = source  # what was uploaded is shown and can be edited further
        except UnicodeDecodeError:
            errors["draft_file"] = translate(lang, "The file is not UTF-8 text.")
    document = _document(source, name, errors, lang)
    first = _day(draft["from"], "from", errors, lang)
    last = _day(draft["to"], "to", errors, lang)
    top = _top(draft["top"], errors, lang)
    result = None
    if not errors and document is not None and first is not None and last is not None:
        started = time.perf_counter()
        try:
            report = simulation_cases.simulate(security.uow(request, read_only=True), session.program_id, document,
                                               first, last, top=top, limit=LIMIT)  # fmt: skip
        except DomainError as error:
            location = str(error.extra.get("location") or "")
            errors["to" if location in ("to", "from") else "draft"] = problem_text(error, lang)
        else:
            result = {"report": report, "seconds": f"{time.perf_counter() - started:.2f}",
                      "charts": chart_data(report, lang)}  # fmt: skip
    status = 422 if errors and not is_htmx(request) else 200  # htmx 2 swaps no 4xx answer: the errors must show
    template = "admin/simulator_body.html" if is_htmx(request) else "admin/simulator.html"
    return page(request, session, template, status, draft=draft, errors=errors, result=result)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _document(source: str, name: str, errors: dict[str, str], lang: str) -> dict[str, Any] | None:
    """The draft as data: JSON, or YAML (by the file's suffix, or when the text does not start with `{`)."""
    field = "draft_file" if name else "draft"
    if field in errors:
        return None
    if not source.strip():
        errors[field] = translate(lang, "Enter or upload a draft.")
        return None
    if len(source) > MAX_DRAFT:
        errors[field] = translate(lang, "The draft is too long.")
        return None
    yaml_wanted = name.lower().endswith((".yaml", ".yml")) or not source.lstrip().startswith(("{", "["))
    try:
        if yaml_wanted:
            import yaml

            document = yaml.safe_load(source)
        else:
            document = json.loads(source)
    except json.JSONDecodeError as error:
        errors[field] = translate(lang, "Not valid JSON.") + f" ({error.msg}, {error.lineno}:{error.colno})"
        return None
    except Exception as error:  # yaml.YAMLError and its subclasses; PyYAML is imported only for YAML
        errors[field] = translate(lang, "Not valid YAML.") + f" ({str(error).splitlines()[0]})"
        return None
    if not isinstance(document, dict):
        errors[field] = translate(lang, "A draft is a document with rules and campaigns (as the rules export).")
        return None
    return document


def _day(text: str, key: str, errors: dict[str, str], lang: str) -> date | None:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        errors[key] = translate(lang, "A date (YYYY-MM-DD), please.")
        return None
    if not date(1970, 1, 1) <= day <= date(9998, 12, 31):
        errors[key] = translate(lang, "A date (YYYY-MM-DD), please.")
        return None
    return day


def _top(text: str, errors: dict[str, str], lang: str) -> int:
    if not text:
        return TOP
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= 1000:
        errors["top"] = translate(lang, "A whole number from 1 to 1000, please.")
    return number


def chart_data(report: dict[str, Any], lang: str) -> dict[str, Any]:
    """What static/simulator.js draws: bar charts of today's programme beside the draft. Money stays the
    report's decimal strings (Chart.js reads numeric strings), never floats made here."""
    now, new = report["current"], report["draft"]
    current, proposed = translate(lang, "Today's programme"), translate(lang, "Draft")
    rules = list(dict.fromkeys([r["rule"] for r in new["top_rules"]] + [r["rule"] for r in now["top_rules"]]))
    by_rule = [{r["rule"]: r["points"] for r in side["top_rules"]} for side in (now, new)]
    tiers = list(dict.fromkeys([*now["members_per_tier"], *new["members_per_tier"]]))
    return {
        "locale": lang,
        "points": {"labels": [translate(lang, "Points issued"), translate(lang, "Points taken back"),
                              translate(lang, "Net points")],
                   "series": [{"label": current, "data": [now[k] for k in FIGURES]},
                              {"label": proposed, "data": [new[k] for k in FIGURES]}]},
        "money": {"labels": [translate(lang, "Projected liability"), translate(lang, "Cost per 100 revenue")],
                  "series": [{"label": side_label, "data": [side["projected_liability"],
                                                            side["cost_per_100_revenue"] or "0"]}
                             for side_label, side in ((current, now), (proposed, new))]},
        "rules": {"labels": rules, "series": [{"label": current, "data": [by_rule[0].get(r, 0) for r in rules]},
                                              {"label": proposed, "data": [by_rule[1].get(r, 0) for r in rules]}]},
        "tiers": {"labels": tiers,
                  "series": [{"label": current, "data": [now["members_per_tier"].get(t, 0) for t in tiers]},
                             {"label": proposed, "data": [new["members_per_tier"].get(t, 0) for t in tiers]}]},
    }  # fmt: skip
