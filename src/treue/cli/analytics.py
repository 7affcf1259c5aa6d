"""`treue analytics`: KPIs, predictive CLV and churn, finance reports (issue 6)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from treue.cli.common import emit, fail, friendly, now, program_uuid, uow
from treue.services.analytics import clv_report

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
