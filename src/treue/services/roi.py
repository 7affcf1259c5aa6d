"""ROI with a control group: uplift in revenue and purchase frequency of the members a programme or campaign
reached over the members it held out, and the return on what its rewards cost (issue 6).

Who is in a control group is decided by a hash (`treue.domain.control`), so the analysis recomputes the split
instead of storing it. Members count if they were enrolled before the period ended; a member without a purchase in
the period counts with 0. A campaign's audience (CEL over the member) is not applied: both groups are drawn from
all members alike, so the comparison stays fair, but a narrow audience dilutes the uplift per member.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast
from uuid import UUID

from treue.domain.analytics.uplift import Difference, return_on, welch
from treue.domain.control import PROGRAM_UNIT, campaign_unit, exact_percent, in_control, percent_text
from treue.domain.durations import start_of_local_day, zone
from treue.domain.errors import InvalidInput, NotFound
from treue.domain.money import Money
from treue.domain.rules.spec import decimal_text
from treue.services.ports import UnitOfWork
from treue.store.analytics import Analytics

MAX_DAYS = 366 * 3


def measure_roi(uow: UnitOfWork, program_id: UUID, first_day: date, last_day: date, *, campaign: str | None = None,
                margin_percent: str = "100", confidence: float = 0.95) -> dict[str, Any]:  # fmt: skip
    """Treated vs control over the programme-local days `first_day`..`last_day`; `margin_percent` is the gross
    margin on revenue (100: count revenue as margin)."""
    if last_day < first_day:
        raise InvalidInput("the period ends before it starts", field="to")
    if (last_day - first_day).days > MAX_DAYS:
        raise InvalidInput("the period is longer than three years", field="to")
    margin = exact_percent(margin_percent, "margin_percent") / 100
    if not 0 <= margin <= 1:
        raise InvalidInput("margin_percent must be between 0 and 100", field="margin_percent")
    if confidence not in (0.9, 0.95, 0.99):
        raise InvalidInput("confidence must be 0.9, 0.95 or 0.99", field="confidence")
    with uow:
        program = uow.programs.get(program_id)
        tz = zone(program.timezone)
        start, end = start_of_local_day(first_day, tz), start_of_local_day(last_day + timedelta(days=1), tz)
        rule_ids: frozenset[str] | None = None
        if campaign is None:
            unit, share = PROGRAM_UNIT, program.control_bp
            if not share:
                raise InvalidInput("the programme holds out no control group (set control_percent)", field="campaign")
        else:
            found = next((c for c in uow.rules.ruleset(program).campaigns if c.id == campaign), None)
            if found is None:
                raise NotFound(f"no campaign {campaign!r}")
            unit, share, rule_ids = campaign_unit(found.id), found.control_bp, frozenset(r.id for r in found.rules)
            if not share:
                raise InvalidInput(f"campaign {campaign!r} holds out no control group (set control_percent)",
                                   field="campaign")  # fmt: skip
        analytics = Analytics(cast(Any, uow).conn)  # read-only queries on the unit of work's connection
        members = analytics.members_enrolled_before(program_id, end)
        bought = analytics.purchases_per_member(program_id, start, end)
        control = {m for m in members if in_control(unit, str(m), share)}
        points = 0
        for member_id, explanation in analytics.earn_explanations(program_id, start, end):
            if member_id not in control:
                points += _reward_points(explanation, rule_ids)
    treated = [m for m in members if m not in control]
    if not treated or not control:
        raise InvalidInput("both the treated and the control group need members enrolled before the period ends")
    revenue = welch([bought.get(m, (0, 0))[1] for m in treated], [bought.get(m, (0, 0))[1] for m in control],
                    confidence)  # fmt: skip
    frequency = welch([bought.get(m, (0, 0))[0] for m in treated], [bought.get(m, (0, 0))[0] for m in control],
                      confidence)  # fmt: skip
    cost = program.points_value(points)
    result = return_on(revenue, len(treated), margin, cost.minor)

    def money(minor: float | None) -> str | None:
        return None if minor is None else Money(round(minor), program.currency).format()

    return {
        "program_id": str(program_id), "campaign": campaign, "currency": program.currency,
        "period": {"from": first_day.isoformat(), "to": last_day.isoformat(), "timezone": program.timezone},
        "control_percent": percent_text(share), "confidence": confidence,
        "members": {"treated": len(treated), "control": len(control)},
        "revenue_per_member": _difference(revenue, money),
        "purchase_frequency": _difference(frequency, lambda v: None if v is None else f"{v:.4f}"),
        "incremental_revenue": money(result.incremental_revenue),
        "margin_percent": decimal_text(margin * 100),
        "incremental_margin": money(result.incremental_margin),
        "reward_points": points, "reward_cost": cost.format(),
        "roi": _ratio(result.roi), "roi_interval": [_ratio(result.roi_low), _ratio(result.roi_high)],
    }  # fmt: skip


def _reward_points(explanation: Any, rule_ids: frozenset[str] | None) -> int:
    """Points an earn transfer awarded: all of them for the programme, the campaign's rules' share for a campaign."""
    if not isinstance(explanation, dict):
        return 0
    if rule_ids is None:
        return int(explanation.get("points") or 0)
    return sum(int(c.get("points") or 0) for c in explanation.get("rules", ()) if c.get("rule") in rule_ids)


def _difference(found: Difference, show: Any) -> dict[str, Any]:
    relative = found.relative
    return {"treated": show(found.treated_mean), "control": show(found.control_mean),
            "difference": show(found.difference), "interval": [show(found.low), show(found.high)],
            "relative_percent": None if relative is None else f"{relative * 100:.2f}"}  # fmt: skip


def _ratio(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"
