"""Predictive CLV and churn on SQLite and PostgreSQL: purchase days aggregated in SQL in the programme's
timezone, the models fitted and scored through the service, the API and the `clv` job, the member facts stored."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import insert, select

from tests.integration.api_helpers import Api, assert_problem
from tests.integration.helpers import buy, enrol
from treue.domain.errors import InvalidInput, NotFound
from treue.ids import new_id
from treue.jobs.registry import JOBS
from treue.services.analytics import clv_report, member_clv
from treue.store import tables as t
from treue.store.analytics import Analytics
from treue.store.unit_of_work import SqlUnitOfWorkFactory

CAL_END, HOLDOUT_END = date(2025, 12, 31), date(2026, 2, 28)
EARLY = datetime(2025, 1, 1, tzinfo=UTC)


def population(uow: SqlUnitOfWorkFactory, program_id: UUID, members: int = 80,
               seed: int = 3) -> dict[UUID, list[tuple[datetime, int]]]:  # fmt: skip
    """Members enrolled through the service, their purchases bulk-inserted (the analytics read only the purchase
    rows): each member buys at a member-specific rate from a start day in 2025 until a random dropout."""
    rng = np.random.default_rng(seed)
    bought: dict[UUID, list[tuple[datetime, int]]] = {}
    rows = []
    for _ in range(members):
        member = enrol(uow, program_id, EARLY)
        rate = rng.gamma(2.0, 1 / 40)  # purchases per day, about one in three weeks
        day = float(rng.uniform(0, 250))
        life = float(rng.exponential(250))
        start, purchases = day, []
        while day < 424 and day - start < life:
            at = datetime(2025, 1, 1, 9, tzinfo=UTC) + timedelta(days=int(day), hours=int(rng.integers(0, 10)))
            purchases.append((at, int(rng.integers(1_000, 20_000))))
            day += float(rng.exponential(1 / rate))
        bought[member] = purchases
        rows += [{"program_id": program_id, "id": new_id(), "member_id": member, "partner": "default", "channel": "store",
                  "external_order_id": f"bulk-{new_id()}", "occurred_at": at, "total_minor": minor, "currency": "EUR",
                  "lines": [], "points_earned": 0, "created_at": at} for at, minor in purchases]  # fmt: skip
    with uow() as unit:
        assert unit.conn is not None
        unit.conn.execute(insert(t.purchases), rows)
        unit.commit()
    return bought


def local_days(purchases: list[tuple[datetime, int]], first: date, last: date) -> set[date]:
    # All purchases above are at 09:00-18:59 UTC: the same calendar day in Berlin, summer and winter.
    return {at.date() for at, _ in purchases if first <= at.date() <= last}


def test_same_local_day_counts_once_across_midnight_utc_and_daylight_saving(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, EARLY)
    other = enrol(uow_factory, program_id, EARLY)
    # Winter (UTC+1): 23:30 UTC on Jan 10 is 00:30 on Jan 11 in Berlin, the same local day as noon on Jan 11.
    buy(uow_factory, program_id, member, "10.00", datetime(2025, 1, 10, 23, 30, tzinfo=UTC))
    buy(uow_factory, program_id, member, "5.00", datetime(2025, 1, 11, 12, 0, tzinfo=UTC))
    # Summer (UTC+2): 21:59 UTC is 23:59 local on June 1; 22:30 UTC is already June 2 locally.
    buy(uow_factory, program_id, member, "20.00", datetime(2025, 6, 1, 8, 0, tzinfo=UTC))
    buy(uow_factory, program_id, member, "1.00", datetime(2025, 6, 1, 21, 59, tzinfo=UTC))
    buy(uow_factory, program_id, member, "7.00", datetime(2025, 6, 1, 22, 30, tzinfo=UTC))
    # After the calibration end (end of Dec 31 local = 23:00 UTC): not in the history.
    buy(uow_factory, program_id, member, "99.00", datetime(2025, 12, 31, 23, 30, tzinfo=UTC))
    buy(uow_factory, program_id, other, "3.00", datetime(2025, 12, 31, 22, 30, tzinfo=UTC))  # 23:30 local: in

    with uow_factory(read_only=True) as uow:
        analytics = Analytics(uow.conn)
        tz = ZoneInfo("Europe/Berlin")
        histories = {h.member_id: h for h in analytics.histories(program_id, "EUR", tz,
                                                                 datetime(2025, 12, 31, 23, tzinfo=UTC))}  # fmt: skip
        holdout = analytics.purchase_days(program_id, "EUR", tz, datetime(2025, 12, 31, 23, tzinfo=UTC),
                                          datetime(2026, 1, 31, 23, tzinfo=UTC))  # fmt: skip
    mine = histories[member]
    assert (mine.first_day, mine.last_day) == (date(2025, 1, 11), date(2025, 6, 2))
    assert mine.days == 3  # Jan 11 (two purchases), Jun 1 (two), Jun 2 (one)
    assert (mine.total_minor, mine.first_day_minor) == (4300, 1500)
    assert (histories[other].first_day, histories[other].days) == (date(2025, 12, 31), 1)
    assert holdout == {member: 1}  # the 99.00 purchase on Jan 1 local


def test_report_fits_scores_compares_with_the_holdout_and_stores_member_facts(uow_factory, program_id, now):
    bought = population(uow_factory, program_id)
    report = clv_report(uow_factory(), program_id, CAL_END, now, holdout_end=HOLDOUT_END, top=5, store=True)

    known = {m: local_days(p, date(2000, 1, 1), CAL_END) for m, p in bought.items()}
    known = {m: days for m, days in known.items() if days}
    assert report["members"]["count"] == len(known)
    assert report["members"]["with_repeat"] == sum(1 for days in known.values() if len(days) > 1)
    assert set(report) >= {"bgnbd", "gamma_gamma", "members", "holdout", "top_members"}
    bg, gg = report["bgnbd"], report["gamma_gamma"]
    assert all(np.isfinite(bg[k]) and bg[k] > 0 for k in ("r", "alpha", "a", "b")) and bg["log_likelihood"] < 0
    assert all(np.isfinite(gg[k]) and gg[k] > 0 for k in ("p", "q", "gamma")) and np.isfinite(gg["log_likelihood"])
    assert report["warnings"] == []

    # Holdout: the actual repeat purchase days of the calibration members, counted here independently.
    holdout = report["holdout"]
    actual = sum(len(local_days(bought[m], CAL_END + timedelta(days=1), HOLDOUT_END)) for m in known)
    assert holdout["actual_repeat_purchases"] == actual > 0
    assert holdout["weeks"] == pytest.approx(59 / 7)
    assert 0 < holdout["predicted_repeat_purchases"] < 5 * actual
    groups = holdout["by_calibration_repeat_purchases"]
    assert sum(g["members"] for g in groups) == len(known) and sum(g["actual_total"] for g in groups) == actual
    assert sum(g["predicted_total"] for g in groups) == pytest.approx(holdout["predicted_repeat_purchases"])

    top = report["top_members"]
    assert len(top) == 5
    values = [int(m["expected_clv"]["amount"].replace(".", "")) for m in top]
    assert values == sorted(values, reverse=True) and values[0] > 0
    for m in top:
        assert m["expected_clv"]["currency"] == "EUR" and len(m["expected_clv"]["amount"].split(".")[1]) == 2
        assert 0 <= m["probability_alive"] <= 1 and m["expected_purchases"] >= 0
        days = known[UUID(m["member_id"])]
        assert m["repeat_purchases"] == len(days) - 1
        assert m["age_weeks"] == pytest.approx((CAL_END - min(days)).days / 7)
        assert m["recency_weeks"] == pytest.approx((max(days) - min(days)).days / 7)
    total = report["members"]["expected_clv_total"]
    assert int(total["amount"].replace(".", "")) >= sum(values)

    # Stored: one row per scored member, readable per member.
    with uow_factory(read_only=True) as uow:
        stored = uow.conn.execute(select(t.member_clv).where(t.member_clv.c.program_id == program_id)).all()
    assert len(stored) == len(known)
    best = member_clv(uow_factory(), program_id, UUID(top[0]["member_id"]))
    assert best["computed"] and best["calibration_end"] == "2025-12-31"
    assert best["probability_alive"] == pytest.approx(top[0]["probability_alive"])
    assert best["expected_clv"] == top[0]["expected_clv"]
    assert best["churn_risk"] == pytest.approx(1 - top[0]["probability_alive"])


def test_bad_input_is_refused_and_changes_nothing(uow_factory, program_id, now):
    population(uow_factory, program_id, members=5)
    cases: list[dict[str, Any]] = [
        {"calibration_end": date(2026, 3, 3)},  # after today (now is 2026-03-02)
        {"calibration_end": CAL_END, "holdout_end": CAL_END},
        {"calibration_end": CAL_END, "holdout_end": date(2026, 3, 3)},
        {"calibration_end": CAL_END, "horizon_weeks": 0},
        {"calibration_end": CAL_END, "discount_rate": -0.1},
        {"calibration_end": CAL_END, "discount_rate": float("nan")},
    ]
    for kwargs in cases:
        end = kwargs.pop("calibration_end")
        with pytest.raises(InvalidInput):
            clv_report(uow_factory(), program_id, end, now, store=True, **kwargs)
    with uow_factory(read_only=True) as uow:
        assert uow.conn.execute(select(t.member_clv).where(t.member_clv.c.program_id == program_id)).all() == []
    with pytest.raises(NotFound):
        member_clv(uow_factory(), program_id, new_id())


def test_too_little_history_is_reported_not_fitted(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, EARLY)
    buy(uow_factory, program_id, member, "10.00", datetime(2025, 5, 1, 10, tzinfo=UTC))
    report = clv_report(uow_factory(), program_id, CAL_END, now, holdout_end=HOLDOUT_END, store=True)
    assert report["bgnbd"] is None and report["gamma_gamma"] is None and report["top_members"] == []
    assert [w["code"] for w in report["warnings"]] == ["bgnbd_not_fitted"]
    assert report["members"] == {"count": 1, "with_repeat": 0, "expected_purchases_total": None,
                                 "mean_probability_alive": None, "expected_clv_total": None}  # fmt: skip
    assert report["holdout"]["predicted_repeat_purchases"] is None
    assert member_clv(uow_factory(), program_id, member)["computed"] is False


def test_api_report_member_facts_scopes_and_the_job(engine, now):
    api = Api(engine, now)
    try:
        tenant = api.tenant(scopes=("admin", "read_only"))
        pid = UUID(tenant.program_id)
        bought = population(api.uow, pid, members=60, seed=5)
        member = next(m for m, p in bought.items() if len(local_days(p, date(2000, 1, 1), CAL_END)) > 2)

        # Before any stored run the member's facts are empty, not an error.
        fresh = tenant.read_only.get(f"/members/{member}/clv")
        assert fresh["computed"] is False and fresh["probability_alive"] is None

        report = tenant.admin.get("/analytics/clv", params={"calibration_end": "2025-12-31",
                                                            "holdout_end": "2026-02-28", "members": 3})  # fmt: skip
        assert set(report["bgnbd"]) >= {"r", "alpha", "a", "b", "log_likelihood"}
        assert set(report["gamma_gamma"]) >= {"p", "q", "gamma", "log_likelihood"}
        assert len(report["top_members"]) == 3 and report["holdout"]["from"] == "2025-12-31"
        assert report["stored"] is False
        assert tenant.read_only.get(f"/members/{member}/clv")["computed"] is False  # GET stores nothing

        problem = assert_problem(tenant.admin.request("GET", "/analytics/clv", params={
            "calibration_end": "2025-12-31", "holdout_end": "2025-12-01"}))  # fmt: skip
        assert problem["status"] == 422 and problem["code"] == "invalid_input"
        assert tenant.read_only.request("GET", "/analytics/clv").status_code == 403  # admin keys only

        # The job scores everyone with the history up to today and stores it.
        result = JOBS["clv"](api.uow, now, pid)
        assert result["programs"] == 1 and result["members_scored"] == len(bought)
        facts = tenant.read_only.get(f"/members/{member}/clv")
        assert facts["computed"] is True and facts["calibration_end"] == "2026-03-02"
        assert 0 <= facts["probability_alive"] <= 1 and facts["expected_clv"]["currency"] == "EUR"
        other = api.tenant("Other", scopes=("admin",))
        assert other.admin.request("GET", f"/members/{member}/clv").status_code == 404
    finally:
        api.client.close()
