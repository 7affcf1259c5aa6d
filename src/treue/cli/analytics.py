"""`treue analytics`: KPIs, predictive CLV and churn, finance reports (issue 6)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow
from treue.services.analytics import clv_report
from treue.services.kpis import kpis as kpi_report
from treue.services.kpis import liability_csv, liability_report, parse_month
from treue.services.roi import measure_roi

analytics = typer.Typer(help="Analytics: KPIs, predictive CLV and churn, finance reports.", no_args_is_help=True)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"invalid_input: {option} '{value}' is not a date (YYYY-MM-DD)")
        raise AssertionError from None  # unreachable; fail() exits


@analytics.command("clv")
@friendly
def clv(
    program: Annotated[str, typer.Option("--program", "-p", help="programme id")],
    calibration_end: Annotated[str, typer.Option("--calibration-end", help="last day fitted (programme-local)")],
    holdout_end: Annotated[str | None, typer.Option("--holdout-end", help="compare predictions up to this day")] = None,
    horizon_weeks: Annotated[int, typer.Option("--horizon-weeks", help="CLV and purchase horizon in weeks")] = 52,
    discount_rate: Annotated[float, typer.Option("--discount-rate", help="annual discount rate, 0.1 = 10 %")] = 0.1,
    members: Annotated[int, typer.Option("--members", help="how many top members to list")] = 10,
    store: Annotated[bool, typer.Option("--store/--no-store", help="keep the scores as member facts")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Fit BG/NBD and Gamma-Gamma to the purchase days up to --calibration-end; score every member (probability
    alive, expected purchases, expected CLV) and, with --holdout-end, compare predicted and actual purchases."""
    end = _day(calibration_end, "--calibration-end")
    assert end is not None
    report = clv_report(uow()(), program_uuid(program), end, now(), holdout_end=_day(holdout_end, "--holdout-end"),
                        horizon_weeks=horizon_weeks, discount_rate=discount_rate, top=members, store=store)  # fmt: skip
    if as_json:
        emit(report)
        return
    typer.echo(f"{report['members']['count']} members with purchases up to {report['calibration_end']}, "
               f"{report['members']['with_repeat']} with repeat purchases")  # fmt: skip
    for warning in report["warnings"]:
        typer.echo(f"warning {warning['code']}: {warning['detail']}")
    if report["bgnbd"]:
        bg = report["bgnbd"]
        typer.echo(f"BG/NBD: r={bg['r']:.4g} alpha={bg['alpha']:.4g} a={bg['a']:.4g} b={bg['b']:.4g} "
                   f"LL={bg['log_likelihood']:.2f}")  # fmt: skip
    if report["gamma_gamma"]:
        gg = report["gamma_gamma"]
        typer.echo(f"Gamma-Gamma: p={gg['p']:.4g} q={gg['q']:.4g} gamma={gg['gamma']:.4g} "
                   f"LL={gg['log_likelihood']:.2f}")  # fmt: skip
    if "holdout" in report and report["holdout"]["predicted_repeat_purchases"] is not None:
        h = report["holdout"]
        typer.echo(f"holdout {h['from']} .. {h['to']}: predicted {h['predicted_repeat_purchases']:.1f}, "
                   f"actual {h['actual_repeat_purchases']} repeat purchases")  # fmt: skip
    for m in report["top_members"]:
        value = m["expected_clv"]
        typer.echo(f"  {m['member_id']}  P(alive) {m['probability_alive']:.2f}  expected purchases "
                   f"{m['expected_purchases']:.2f}  CLV {value['amount'] + ' ' + value['currency'] if value else '-'}")  # fmt: skip
    if store:
        typer.echo("scores stored as member facts")


def _money(value: dict[str, str] | None) -> str:
    return "-" if value is None else f"{value['amount']} {value['currency']}"


@analytics.command("kpis")
@friendly
def kpis(
    program: Annotated[str, typer.Option("--program", "-p", help="programme id")],
    from_: Annotated[str, typer.Option("--from", help="first day of the period (programme-local), YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last day of the period (inclusive), YYYY-MM-DD")],
    by: Annotated[str | None, typer.Option("--by", help="split by tier, segment, channel, partner or cohort")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """The programme's KPIs over a period: members, repeat purchases, order values, points, liabilities, club
    revenue, NPS, campaigns and cohort retention (rates as decimal strings with four places)."""
    start, end = _day(from_, "--from"), _day(to, "--to")
    assert start is not None and end is not None
    report = kpi_report(uow()(), program_uuid(program), start, end, now(), by=by)
    if as_json:
        emit(report)
        return
    _print_kpis(report)


@analytics.command("roi")
@friendly
def roi(
    program: Annotated[str, typer.Option("--program", "-p", help="programme id")],
    from_: Annotated[str, typer.Option("--from", help="first day of the period (programme-local), YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last day of the period (inclusive), YYYY-MM-DD")],
    campaign: Annotated[str | None, typer.Option("--campaign", help="a campaign's control group")] = None,
    margin: Annotated[str, typer.Option("--margin", help="gross margin on revenue in per cent")] = "100",
    confidence: Annotated[float, typer.Option("--confidence", help="0.9, 0.95 or 0.99")] = 0.95,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Uplift over the control group of the programme (or a campaign) and the ROI of its rewards."""
    start, end = _day(from_, "--from"), _day(to, "--to")
    assert start is not None and end is not None
    r = measure_roi(uow()(read_only=True), program_uuid(program), start, end, campaign=campaign,
                    margin_percent=margin, confidence=confidence)  # fmt: skip
    if as_json:
        emit(r)
        return
    rev, freq = r["revenue_per_member"], r["purchase_frequency"]
    low, high = r["roi_interval"]
    typer.echo("\n".join([
        f"ROI {r['campaign'] or 'programme'} {r['period']['from']} .. {r['period']['to']} "
        f"(control {r['control_percent']} %: {r['members']['control']} members, treated {r['members']['treated']})",
        f"revenue per member  {rev['treated']} vs {rev['control']} {r['currency']}: {rev['difference']} "
        f"[{rev['interval'][0]}, {rev['interval'][1]}]",
        f"purchases/member    {freq['treated']} vs {freq['control']}: {freq['difference']}",
        f"incremental revenue {r['incremental_revenue']} {r['currency']}, margin {r['incremental_margin']} "
        f"({r['margin_percent']} %)",
        f"reward cost         {r['reward_cost']} {r['currency']} ({r['reward_points']} points)",
        f"ROI                 {r['roi']} [{low}, {high}]",
    ]))  # fmt: skip


def _print_kpis(r: dict[str, Any]) -> None:
    lines = [
        f"KPIs {r['from']} .. {r['to']} ({r['timezone']})",
        f"members: {r['members_total']} total, {r['members_new']} new, {r['members_active']} active",
        f"purchases: {r['purchases']} (anonymous {r['purchases_anonymous']}), revenue {_money(r['revenue'])}",
        f"repeat purchase rate {r['repeat_purchase_rate']}, frequency {r['purchase_frequency']}, "
        f"average order value {_money(r['average_order_value'])} "
        f"(anonymous {_money(r['average_order_value_anonymous'])})",
        f"revenue per active member {_money(r['revenue_per_member'])}, historical CLV {_money(r['historical_clv'])}",
        f"points: issued {r['points_issued']}, redeemed {r['points_redeemed']}, expired {r['points_expired']}; "
        f"redemption rate {r['redemption_rate']}, breakage rate {r['breakage_rate']}",
        f"points liability {_money(r['points_liability'])} ({r['points_outstanding']} points), adjusted "
        f"{_money(r['points_liability_adjusted'])} (expected breakage {r['expected_breakage']})",
        f"cashback liability {_money(r['cashback_liability'])}, club revenue {_money(r['club_revenue'])}, "
        f"NPS {'-' if r['nps'] is None else r['nps']} ({r['nps_answers']} answers)",
    ]
    lines += [f"campaign {c['id']}: {c['points_cost']} points ({_money(c['cost'])}), {c['participants']} "
              f"participants, revenue {_money(c['participants_revenue'])}" for c in r["campaigns"]]  # fmt: skip
    for g in r.get("groups") or []:
        lines.append(f"  {r['by']} {g['key'] or ('(no segment)' if r['by'] == 'segment' else '(anonymous)')}: {g['members_active']} active, {g['purchases']} "
                     f"purchases, revenue {_money(g['revenue'])}, AOV {_money(g['average_order_value'])}")  # fmt: skip
    typer.echo("\n".join(lines))


@analytics.command("liability")
@friendly
def liability(
    program: Annotated[str, typer.Option("--program", "-p", help="programme id")],
    from_: Annotated[str, typer.Option("--from", help="first month, YYYY-MM")],
    to: Annotated[str, typer.Option("--to", help="last month, YYYY-MM")],
    csv_file: Annotated[Path | None, typer.Option("--csv", help="also write the months as CSV to this file")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Points liability per month (opening, issued, reversed, redeemed, expired, adjusted, closing), reconciling
    with the ledger, with the value and the deferred revenue (value x (1 - expected breakage))."""
    report = liability_report(uow()(), program_uuid(program), parse_month(from_, "--from"),
                              parse_month(to, "--to"), now())  # fmt: skip
    if csv_file is not None:
        try:
            csv_file.write_text(liability_csv(report), encoding="utf-8")
        except OSError as error:
            fail(f"cannot write {csv_file}: {error.strerror}")
    if as_json:
        emit(report)
        return
    typer.echo(f"{'month':7} {'opening':>10} {'issued':>9} {'reversed':>9} {'redeemed':>9} {'returned':>9} "
               f"{'expired':>9} {'adjusted':>9} {'other':>7} {'closing':>10} {'deferred':>12}")  # fmt: skip
    for m in report["months"]:
        typer.echo(f"{m['month']:7} {m['opening']:>10} {m['issued']:>9} {m['reversed_earned']:>9} "
                   f"{m['redeemed']:>9} {m['reversed_redeemed']:>9} {m['expired']:>9} {m['adjusted']:>9} "
                   f"{m['transferred'] + m['other']:>7} {m['closing']:>10} "
                   f"{m['deferred_revenue'] + ' ' + m['currency']:>12}")  # fmt: skip
