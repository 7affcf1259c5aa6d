"""The admin overview (/admin): the period's figures, and for the programme's own staff the KPIs with charts
(services/kpis.py: members, active members, revenue, NPS, liability, tier distribution, cohort retention; the
monthly liability report for points issued, redeemed and expired over time), with CSV exports.

Charts are drawn in the browser by Chart.js (vendored, static/chart.umd.js) from a JSON data block: the page
has no inline script (CSP `script-src 'self'`), static/charts.js reads `<script type="application/json">`.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from treue.domain.durations import add_months, end_of_local_day, start_of_local_day, zone
from treue.domain.errors import DomainError
from treue.domain.staff import Permission
from treue.services import kpis as kpi_cases
from treue.services import staff as staff_cases
from treue.services.programs import get_program
from treue.services.staff import StaffSession
from treue.web import security
from treue.web.admin import language, page, problem_text
from treue.web.i18n import translate
from treue.web.security import require

router = APIRouter(prefix="/admin", include_in_schema=False)
P = Permission
PERIODS = (7, 30, 90, 365)
CHART_MONTHS = 12  # the monthly charts show at least this many months, ending with the period's month


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


def period(days: int, start: str, end: str, now: datetime, timezone: str) -> tuple[date, date, datetime, datetime]:
    """Local days first..last and the instants [since, until) they cover: either the last `days` days up to
    now, or the dates picked (both needed; the end no later than today)."""
    tz = zone(timezone)
    today = now.astimezone(tz).date()
    first, last = _day(start), _day(end)
    if first is not None and last is not None and first <= last:
        last = min(last, today)
        first = min(first, last)
        return first, last, start_of_local_day(first, tz), min(end_of_local_day(last, tz), now)
    days = days if days in PERIODS else 30
    since = now - timedelta(days=days)
    return since.astimezone(tz).date(), today, since, now


def analytics(request: Request, session: StaffSession, first: date, last: date) -> dict[str, Any]:
    """The KPIs of the period, the tier split, and the liability report of the months around it."""
    uow = security.uow(request, read_only=True)
    now = security.now(request)
    figures = kpi_cases.kpis(uow, session.program_id, first, last, now)
    tiers = kpi_cases.kpis(uow, session.program_id, first, last, now, by="tier")["groups"]
    months_from = min(first.replace(day=1), add_months(last.replace(day=1), 1 - CHART_MONTHS))
    liability = kpi_cases.liability_report(uow, session.program_id, months_from, last, now)
    return {"kpis": figures, "tiers": tiers, "liability": liability}


def chart_data(found: dict[str, Any], lang: str) -> dict[str, Any]:
    """What static/charts.js draws: labels and series, with translated legends (numbers stay numbers)."""
    months = found["liability"]["months"]
    labels = [m["month"] for m in months]
    return {
        "locale": lang,
        "points": {"type": "bar", "labels": labels, "series": [
            {"label": translate(lang, "Points issued"), "data": [m["issued"] - m["reversed_earned"] for m in months]},
            {"label": translate(lang, "Points redeemed"), "data": [m["redeemed"] - m["reversed_redeemed"] for m in months]},
            {"label": translate(lang, "Points expired"), "data": [m["expired"] for m in months]}]},
        "liability": {"type": "line", "labels": labels, "series": [
            {"label": translate(lang, "Outstanding points (month end)"), "data": [m["closing"] for m in months]}]},
        "tiers": {"type": "doughnut", "labels": [g["key"] or translate(lang, "No tier") for g in found["tiers"]],
                  "series": [{"label": translate(lang, "Members"), "data": [g["members_total"] for g in found["tiers"]]}]},
    }  # fmt: skip


def heat(rate: str | None) -> int:
    """A retention rate as a shade step 0..5 for the heat map's cells (the number is printed too)."""
    return 0 if not rate else min(5, int(float(rate) * 5 + 0.999))


@router.get("")
def overview(request: Request, days: int = Query(30), start: str = "", end: str = "",
             session: StaffSession = Depends(require(P.VIEW_OVERVIEW))) -> Response:  # fmt: skip
    program = get_program(security.uow(request, read_only=True), session.program_id)
    first, last, since, until = period(days, start, end, security.now(request), program["timezone"])
    figures = staff_cases.overview(security.uow(request, read_only=True), session.program_id, since, until,
                                   session.partner)  # fmt: skip
    found, charts, error = None, None, None
    if session.partner is None:  # the KPIs read every member's history: not a partner's to see
        try:
            found = analytics(request, session, first, last)
            charts = chart_data(found, language(request, session))
        except DomainError as refused:
            error = problem_text(refused, language(request, session))
    custom = bool(_day(start) and _day(end))
    return page(request, session, "admin/overview.html", figures=figures, days=days if not custom else 0,
                periods=PERIODS, first=first, last=last, custom=custom, found=found, charts=charts, error=error,
                heat=heat)  # fmt: skip


# -- exports ----------------------------------------------------------------------------------------------------
def _csv(rows: list[dict[str, Any]], name: str) -> Response:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})  # fmt: skip


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for key, inner in value.items() for item in _flat(f"{prefix}.{key}" if prefix else key, inner)]
    return [(prefix, value)]


@router.get("/export/{report}.csv")
def export(request: Request, report: str, days: int = Query(30), start: str = "", end: str = "",
           session: StaffSession = Depends(require(P.VIEW_OVERVIEW))) -> Response:  # fmt: skip
    """The overview's figures as CSV: `kpis` (one line per figure), `liability` (per month), `retention`
    (per cohort and month), `tiers` (members per tier)."""
    if session.partner is not None or report not in ("kpis", "liability", "retention", "tiers"):
        return page(request, session, "admin/not_found.html", status=404)
    program = get_program(security.uow(request, read_only=True), session.program_id)
    first, last, _, _ = period(days, start, end, security.now(request), program["timezone"])
    found = analytics(request, session, first, last)
    name = f"treue-{report}-{first.isoformat()}-{last.isoformat()}.csv"
    if report == "liability":
        return Response(kpi_cases.liability_csv(found["liability"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
    if report == "retention":
        rows = [{"cohort": c["cohort"], "members": c["members"], "month": m["month"], "active": m["active"],
                 "rate": m["rate"]} for c in found["kpis"]["cohort_retention"] for m in c["months"]]  # fmt: skip
        return _csv(rows, name)
    if report == "tiers":
        return _csv([{"tier": g["key"] or "", "members": g["members_total"], "members_new": g["members_new"],
                      "members_active": g["members_active"]} for g in found["tiers"]], name)  # fmt: skip
    skip = ("campaigns", "cohort_retention", "rates", "groups")
    rows = [{"figure": key, "value": "" if value is None else value}
            for key, value in _flat("", {k: v for k, v in found["kpis"].items() if k not in skip})]  # fmt: skip
    return _csv(rows, name)
