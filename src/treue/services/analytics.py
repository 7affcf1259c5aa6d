"""Predictive CLV and churn: fit BG/NBD and Gamma-Gamma to the programme's purchase days up to a calibration end,
score every member, optionally compare with a holdout period, and keep the scores as member facts.

The data is summarised in SQL (`treue.store.analytics`); the models are `treue.domain.analytics.clv`.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any, cast
from uuid import UUID

import numpy as np

from treue.domain.analytics import clv
from treue.domain.durations import end_of_local_day, local_date, zone
from treue.domain.errors import InvalidInput
from treue.domain.money import Money, Rounding, currency_exponent
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.store.analytics import Analytics, MemberHistory

MAX_HORIZON_WEEKS = 520
MAX_TOP = 1000
_DECIMAL_ROUNDING = {Rounding.FLOOR: ROUND_FLOOR, Rounding.CEIL: ROUND_CEILING, Rounding.HALF_UP: ROUND_HALF_UP,
                     Rounding.HALF_EVEN: ROUND_HALF_EVEN}  # fmt: skip


def _analytics(uow: UnitOfWork) -> Analytics:
    # Read-only analytics queries are not part of the unit of work's protocol; they run on its connection.
    return Analytics(cast(Any, uow).conn)


def validate_options(calibration_end: date, holdout_end: date | None, horizon_weeks: int, discount_rate: float,
                     top: int, today: date) -> None:  # fmt: skip
    if calibration_end > today:
        raise InvalidInput(f"calibration_end {calibration_end} is in the future (today is {today})")
    if holdout_end is not None and not calibration_end < holdout_end <= today:
        raise InvalidInput(f"holdout_end must be after calibration_end ({calibration_end}) and not after today "
                           f"({today})")  # fmt: skip
    if not 1 <= horizon_weeks <= MAX_HORIZON_WEEKS:
        raise InvalidInput(f"horizon_weeks must be between 1 and {MAX_HORIZON_WEEKS}")
    if not (math.isfinite(discount_rate) and 0 <= discount_rate <= 1):
        raise InvalidInput("discount_rate is an annual rate between 0 and 1 (0.1 = 10 % a year)")
    if not 0 <= top <= MAX_TOP:
        raise InvalidInput(f"members (how many to list) must be between 0 and {MAX_TOP}")


def clv_report(uow: UnitOfWork, program_id: UUID, calibration_end: date, now: datetime, *,
               holdout_end: date | None = None, horizon_weeks: int = 52, discount_rate: float = 0.1, top: int = 10,
               store: bool = False) -> dict[str, Any]:  # fmt: skip
    """Fit the models on purchases up to the end of `calibration_end` (programme-local day), score each member
    over the next `horizon_weeks`, and with `holdout_end` compare predicted and actual repeat purchases in
    (calibration_end, holdout_end]. With `store`, the scores replace the programme's member facts (`member_clv`)."""
    with uow:
        program = uow.programs.get(program_id)
        tz = zone(program.timezone)
        validate_options(calibration_end, holdout_end, horizon_weeks, discount_rate, top, local_date(now, tz))
        analytics = _analytics(uow)
        cut = end_of_local_day(calibration_end, tz)
        histories = analytics.histories(program_id, program.currency, tz, cut)
        actual_by_member = (analytics.purchase_days(program_id, program.currency, tz, cut,
                                                    end_of_local_day(holdout_end, tz)) if holdout_end else {})  # fmt: skip
        scored = _score(histories, calibration_end, horizon_weeks, discount_rate, currency_exponent(program.currency))
        report = _report(scored, program.currency, program.rounding, top)
        report |= {"program_id": str(program_id), "calibration_end": calibration_end.isoformat(),
                   "timezone": program.timezone, "horizon_weeks": horizon_weeks, "discount_rate": discount_rate,
                   "computed_at": now.isoformat(), "stored": store}  # fmt: skip
        if holdout_end is not None:
            report["holdout"] = _holdout(scored, actual_by_member, calibration_end, holdout_end)
        if store:
            analytics.replace_member_clv(program_id, _facts(scored, program.currency, program.rounding,
                                                            calibration_end, now, horizon_weeks, discount_rate))  # fmt: skip
            uow.commit()
    return report


def member_clv(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> dict[str, Any]:
    """The member's stored churn risk and CLV (all null until a stored run has scored the member)."""
    with uow:
        uow.members.get(program_id, member_id)  # NotFound for another programme's member
        row = _analytics(uow).member_clv(program_id, member_id)
    if row is None:
        return {"member_id": str(member_id), "computed": False, "calibration_end": None, "computed_at": None,
                "repeat_purchases": None, "probability_alive": None, "churn_risk": None, "expected_purchases": None,
                "horizon_weeks": None, "discount_rate": None, "expected_clv": None}  # fmt: skip
    money = row["expected_clv_minor"]
    return {"member_id": str(member_id), "computed": True, "calibration_end": row["calibration_end"].isoformat(),
            "computed_at": row["computed_at"].isoformat(), "repeat_purchases": row["repeat_purchases"],
            "recency_weeks": row["recency_weeks"], "age_weeks": row["age_weeks"],
            "probability_alive": row["probability_alive"], "churn_risk": 1.0 - row["probability_alive"],
            "expected_purchases": row["expected_purchases"], "horizon_weeks": row["horizon_weeks"],
            "discount_rate": row["discount_rate"],
            "expected_clv": None if money is None else _money(int(money), row["currency"])}  # fmt: skip


# -- scoring ------------------------------------------------------------------------------------------------------
class _Scored:
    """The per-member arrays (same order as the histories) and the fitted models."""

    def __init__(self, histories: list[MemberHistory], calibration_end: date, exponent: int) -> None:
        n = len(histories)
        self.member_ids = [h.member_id for h in histories]
        first = np.array([h.first_day for h in histories], dtype="datetime64[D]").reshape(n)
        last = np.array([h.last_day for h in histories], dtype="datetime64[D]").reshape(n)
        end = np.datetime64(calibration_end, "D")
        self.x = np.array([h.days - 1 for h in histories], dtype=np.float64).reshape(n)
        self.t_x = (last - first).astype(np.float64) / 7.0
        self.T = (end - first).astype(np.float64) / 7.0
        repeat_minor = np.array([h.total_minor - h.first_day_minor for h in histories], dtype=np.float64).reshape(n)
        # Mean repeat transaction value in major units (the spend model's gamma is then in major units too).
        self.m = np.divide(repeat_minor, self.x, out=np.zeros(n), where=self.x > 0) / 10**exponent
        self.exponent = exponent
        self.bgnbd: clv.BgNbd | None = None
        self.gamma_gamma: clv.GammaGamma | None = None
        self.alive = np.ones(n)
        self.expected = np.full(n, np.nan)
        self.value = np.full(n, np.nan)  # expected CLV in major units; NaN where it cannot be priced
        self.valid = np.ones(n, dtype=bool)  # scored without numerical trouble
        self.warnings: list[dict[str, str]] = []


def _score(histories: list[MemberHistory], calibration_end: date, horizon_weeks: int, discount_rate: float,
           exponent: int) -> _Scored:  # fmt: skip
    s = _Scored(histories, calibration_end, exponent)
    try:
        s.bgnbd = clv.fit_bgnbd(s.x, s.t_x, s.T)
    except clv.NotEnoughData as why:
        s.warnings.append({"code": "bgnbd_not_fitted", "detail": str(why)})
        return s
    repeat = (s.x > 0) & (s.m > 0)
    try:
        s.gamma_gamma = clv.fit_gamma_gamma(s.x[repeat], s.m[repeat])
    except clv.NotEnoughData as why:
        s.warnings.append({"code": "gamma_gamma_not_fitted", "detail": str(why)})
    s.alive = clv.probability_alive(s.bgnbd, s.x, s.t_x, s.T)
    s.expected = clv.expected_purchases(s.bgnbd, float(horizon_weeks), s.x, s.t_x, s.T)
    invalid = ~(np.isfinite(s.alive) & np.isfinite(s.expected))
    if invalid.any():  # extreme parameters can overflow the hypergeometric series: say so, never store NaN
        s.alive[invalid], s.expected[invalid] = 0.0, 0.0
        s.valid = ~invalid
        s.warnings.append({"code": "not_scored", "detail": f"{int(invalid.sum())} members could not be scored "
                                                           "(numerical overflow); they are left out"})  # fmt: skip
    for model, name in ((s.bgnbd, "bgnbd"), (s.gamma_gamma, "gamma_gamma")):
        if model is not None and not model.converged:
            s.warnings.append({"code": f"{name}_not_converged", "detail": "the optimiser stopped before converging"})
    if s.gamma_gamma is not None and s.gamma_gamma.q > 1:
        s.value = clv.expected_clv(s.bgnbd, s.gamma_gamma, s.x, s.t_x, s.T, s.m, horizon_weeks, discount_rate)
        s.value[~s.valid] = np.nan
    elif s.gamma_gamma is not None:
        s.warnings.append({"code": "clv_not_priced",
                           "detail": "the spend model has q <= 1 (infinite mean spend): expected CLV is not given"})  # fmt: skip
    return s


def _minor(major: float, exponent: int, rounding: Rounding) -> int | None:
    """A float amount in major units as integer minor units, rounded by the programme's policy."""
    if not math.isfinite(major):
        return None
    scaled = Decimal(repr(major)).scaleb(exponent)
    return max(0, int(scaled.to_integral_value(rounding=_DECIMAL_ROUNDING[rounding])))


def _money(minor: int, currency: str) -> dict[str, str]:
    return {"amount": Money(minor, currency).format(), "currency": currency}


def _report(s: _Scored, currency: str, rounding: Rounding, top: int) -> dict[str, Any]:
    n = s.x.size
    values = [_minor(float(v), s.exponent, rounding) for v in s.value]
    priced = [v for v in values if v is not None]
    spend_model = None
    if s.gamma_gamma is not None:
        mean = _minor(s.gamma_gamma.mean_spend, s.exponent, rounding)
        spend_model = s.gamma_gamma.as_dict() | {"mean_spend": None if mean is None else _money(mean, currency)}
    report: dict[str, Any] = {
        "currency": currency,
        "bgnbd": s.bgnbd.as_dict() if s.bgnbd else None,
        "gamma_gamma": spend_model,
        "members": {"count": n, "with_repeat": int((s.x > 0).sum()),
                    "expected_purchases_total": float(np.sum(s.expected)) if s.bgnbd else None,
                    "mean_probability_alive": float(s.alive.mean()) if n and s.bgnbd else None,
                    "expected_clv_total": _money(sum(priced), currency) if priced else None},
        "warnings": s.warnings,
    }  # fmt: skip
    if s.bgnbd is None:
        report["top_members"] = []
        return report
    # Most valuable first (expected CLV, else expected purchases); ties by member id for a stable answer.
    order = sorted(
        np.flatnonzero(s.valid).tolist(), key=lambda i: (-(values[i] or 0), -float(s.expected[i]), str(s.member_ids[i]))
    )
    report["top_members"] = [_member(s, i, values[i], currency, rounding) for i in order[:top]]
    return report


def _member(s: _Scored, i: int, value: int | None, currency: str, rounding: Rounding) -> dict[str, Any]:
    spend = _minor(float(s.m[i]), s.exponent, rounding) if s.x[i] > 0 else None
    return {"member_id": str(s.member_ids[i]), "repeat_purchases": int(s.x[i]),
            "recency_weeks": float(s.t_x[i]), "age_weeks": float(s.T[i]),
            "mean_repeat_spend": None if spend is None else _money(spend, currency),
            "probability_alive": float(s.alive[i]), "churn_risk": 1.0 - float(s.alive[i]),
            "expected_purchases": float(s.expected[i]),
            "expected_clv": None if value is None else _money(value, currency)}  # fmt: skip


def _holdout(s: _Scored, actual_by_member: dict[UUID, int], calibration_end: date,
             holdout_end: date) -> dict[str, Any]:  # fmt: skip
    """Predicted (BG/NBD conditional expectation) vs actual purchase days in (calibration_end, holdout_end] of the
    members known at the calibration end. Every holdout purchase day is a repeat purchase for them."""
    weeks = (holdout_end - calibration_end).days / 7
    actual = np.array([actual_by_member.get(member, 0) for member in s.member_ids], dtype=np.float64)
    result: dict[str, Any] = {"from": calibration_end.isoformat(), "to": holdout_end.isoformat(), "weeks": weeks,
                              "members": int(s.x.size), "actual_repeat_purchases": int(actual.sum())}  # fmt: skip
    if s.bgnbd is None:
        return result | {"predicted_repeat_purchases": None, "by_calibration_repeat_purchases": []}
    predicted = clv.expected_purchases(s.bgnbd, weeks, s.x, s.t_x, s.T)
    total = float(predicted.sum())
    return result | {
        "predicted_repeat_purchases": total,
        "error_percent": float(100.0 * (total - actual.sum()) / actual.sum()) if actual.sum() else None,
        "by_calibration_repeat_purchases": clv.holdout_by_frequency(s.x, predicted, actual),
    }


def _facts(s: _Scored, currency: str, rounding: Rounding, calibration_end: date, now: datetime, horizon_weeks: int,
           discount_rate: float) -> list[dict[str, Any]]:  # fmt: skip
    if s.bgnbd is None:
        return []  # nothing was scored: the previous results are removed rather than left looking current
    return [{"member_id": s.member_ids[i], "calibration_end": calibration_end, "computed_at": now,
             "repeat_purchases": int(s.x[i]), "recency_weeks": float(s.t_x[i]), "age_weeks": float(s.T[i]),
             "probability_alive": min(1.0, max(0.0, float(s.alive[i]))),
             "expected_purchases": max(0.0, float(s.expected[i])), "horizon_weeks": horizon_weeks,
             "discount_rate": discount_rate, "expected_clv_minor": _minor(float(s.value[i]), s.exponent, rounding),
             "currency": currency} for i in np.flatnonzero(s.valid).tolist()]  # fmt: skip


def refresh_member_clv(uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None,
                       horizon_weeks: int = 52, discount_rate: float = 0.1) -> dict[str, Any]:  # fmt: skip
    """The `clv` job: score every member of each programme (or one) with the history up to today and store the
    results as member facts. One transaction per programme."""
    with uow_factory(read_only=True) as uow:
        programs = [uow.programs.get(program_id)] if program_id else [p for p, _ in uow.programs.list()]
    scored = {}
    for program in programs:
        today = local_date(now, zone(program.timezone))
        report = clv_report(uow_factory(), program.id, today, now, horizon_weeks=horizon_weeks,
                            discount_rate=discount_rate, top=0, store=True)  # fmt: skip
        scored[str(program.id)] = report["members"]["count"] if report["bgnbd"] else 0
    return {"programs": len(programs), "members_scored": sum(scored.values())}
