"""KPIs and the liability report on a hand-computed worked example, built through the services, on SQLite and
PostgreSQL; bad input refused over the service and the API.

The programme (EUR, Europe/Berlin = UTC+1 in winter, 1 point per EUR, 1 point = 1 ct, points expire a month after
they are earned). January 2026 is the period.

member  enrolled     purchases (channel)                                   other
A       2025-12-10   Dec 15 50.00 store; Jan 10 100.00 store;              gold by hand; club 9.90 on Jan 5;
                     Jan 20 40.00 online (+5 campaign points)              Dec 15's 50 points expire Jan 15;
                                                                           redeems 30 on Jan 22, cancelled Jan 23
B       2026-01-05   Jan 12 60.00 app (10 % cashback), 20.00 refunded       redeems 30 points on Jan 18
C       2026-01-06   Jan 31 23:30 local 25.00 store (in January);
                     Feb 1 00:30 local 30.00 store (February)
D       2026-01-20   -                                                     +15 points adjusted on Feb 10
E       2026-02-03   -  (after the period)
anonymous            Jan 14 15.00 store; Jan 16 45.00 online
NPS answers in January: A 10, B 9, C 3, D 7 (and "x", 11, the string "9", 9.5 and a February 0, which do not
count).

January by hand:
- members_total 4 (A-D), members_new 3 (B, C, D), members_active 3 (A, B, C)
- purchases 4: 100 + 40 + (60 - 20) + 25 = 205.00 -> AOV 51.25, per active member 68.33 (floor), frequency
  4/3 = 1.3333, repeat rate 1/3 = 0.3333; anonymous 2 purchases, 60.00 -> AOV 30.00
- historical CLV: (50 + 205) / 4 = 63.75
- points earned 100 + 45 + 60 + 25 = 230, 20 taken back by the refund -> issued 210; redeemed 30; expired 50
  (A's 30 spent and given back cancel out: 60 spent, 30 given back)
  redemption rate 30/210 = 0.1429, breakage rate 50/210 = 0.2381, members who redeemed (A, B) 2/4 = 0.5000
- outstanding at the end of January: 50 + 210 - 30 - 50 = 180 points = 1.80; expected breakage
  50 / (50 + 30) = 0.6250 -> adjusted 180 * 30/80 ct = 67.5 ct -> 0.67 (floor)
- cashback: 6.00 credited, 2.00 reversed by the refund -> 4.00; club revenue 9.90
- NPS: 2 promoters, 1 detractor of 4 answers -> 25
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from tests.integration.api_helpers import Api, Caller, assert_problem
from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import campaign, event, fixed, rule
from treue.domain.errors import InvalidInput
from treue.services import club
from treue.services.expiry import expire_points
from treue.services.keys import create_api_key
from treue.services.kpis import kpis, liability_csv, liability_report
from treue.services.points import adjust_points
from treue.services.programs import create_program
from treue.services.purchases import RefundPurchase, refund_purchase
from treue.services.rewards import cancel_redemption, create_reward, redeem_reward
from treue.services.segments import create_segment, import_members
from treue.services.tiers import assign_tier, set_ladder
from treue.store import tables as t
from treue.store.unit_of_work import SqlUnitOfWorkFactory

SETUP = datetime(2025, 12, 1, 9, tzinfo=UTC)
JAN_1, JAN_31 = date(2026, 1, 1), date(2026, 1, 31)


def at(month: int, day: int, hour: int = 10, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def worked_example(uow: SqlUnitOfWorkFactory) -> dict[str, Any]:
    pid = UUID(create_program(uow(), "KPI", "EUR", "Europe/Berlin",
                              {"expiry_policy": "rolling", "expiry_months": 1}, SETUP)["id"])  # fmt: skip
    set_ladder(uow(), pid, {"basis": "spend", "tiers": [
        {"code": "basis", "name": {"de": "Basis"}, "threshold": "0", "window": "12M"},
        {"code": "gold", "name": {"de": "Gold"}, "threshold": "100000.00", "window": "12M"}]}, SETUP)  # fmt: skip
    rule(uow, pid, SETUP, "app-cashback", {"type": "cashback_percent", "percent": "10"},
         condition='purchase.channel == "app"')  # fmt: skip
    campaign(uow, pid, SETUP, "jan", {"id": "jan-bonus", "trigger": "purchase", "effects": [fixed(5)]},
             starts="2026-01-15", ends="2026-01-25", budget=1000)  # fmt: skip
    reward = create_reward(uow(), pid, {"name": {"de": "Tasse"}, "type": "merchandise", "cost_points": 30}, SETUP)
    club.create_plan(uow(), pid, {"code": "plus", "name": {"de": "Plus"}, "price": "9.90", "interval": "month",
                                  "trial_days": 0}, SETUP)  # fmt: skip

    a = enrol(uow, pid, at(12, 10, year=2025))
    buy(uow, pid, a, "50.00", at(12, 15, year=2025))
    b = enrol(uow, pid, at(1, 5))
    c = enrol(uow, pid, at(1, 6))
    assign_tier(uow(), pid, a, "gold", None, "VIP", at(1, 2))
    club.join_club(uow(), pid, a, "plus", at(1, 5), club.PaymentInput("pi_1", "9.90", "EUR"))
    buy(uow, pid, a, "100.00", at(1, 10))
    event(uow, pid, a, "survey.answered", at(1, 11), nps=10)
    bought = buy(uow, pid, b, "60.00", at(1, 12), channel="app")
    event(uow, pid, b, "survey.answered", at(1, 13), nps=9)
    event(uow, pid, c, "survey.answered", at(1, 14), nps=3)
    event(uow, pid, c, "survey.answered", at(1, 14, 11), nps="x")
    event(uow, pid, c, "survey.answered", at(1, 14, 12), nps=11)
    event(uow, pid, c, "survey.answered", at(1, 14, 13), nps="9")
    event(uow, pid, c, "survey.answered", at(1, 14, 14), nps=9.5)
    buy(uow, pid, None, "15.00", at(1, 14))
    refund_purchase(uow(), pid, UUID(bought["id"]), RefundPurchase(amount="20.00", occurred_at=at(1, 15)), at(1, 15))
    buy(uow, pid, None, "45.00", at(1, 16), channel="online")
    redeem_reward(uow(), pid, b, UUID(reward["id"]), at(1, 18))
    d = enrol(uow, pid, at(1, 20))
    earned = buy(uow, pid, a, "40.00", at(1, 20), channel="online")
    expired = expire_points(uow, at(1, 20, 12), pid)
    taken = redeem_reward(uow(), pid, a, UUID(reward["id"]), at(1, 22))
    cancel_redemption(uow(), pid, UUID(taken["id"]), at(1, 23))
    event(uow, pid, d, "survey.answered", at(1, 21), nps=7)
    buy(uow, pid, c, "25.00", at(1, 31, 22, 30))  # 23:30 on Jan 31 in Berlin
    buy(uow, pid, c, "30.00", at(1, 31, 23, 30))  # 00:30 on Feb 1 in Berlin
    event(uow, pid, c, "survey.answered", at(2, 2), nps=0)
    enrol(uow, pid, at(2, 3))
    adjust_points(uow(), pid, d, 15, "goodwill", at(2, 10))
    return {"program_id": pid, "a": a, "b": b, "c": c, "d": d, "earned": earned, "expired": expired}


@pytest.fixture
def example(uow_factory: SqlUnitOfWorkFactory) -> dict[str, Any]:
    return worked_example(uow_factory)


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def test_the_example_is_what_the_table_says(example):
    assert example["earned"]["points_earned"] == 45  # 40 + 5 from the campaign
    assert example["expired"]["points_expired"] == 50


def test_every_kpi_of_the_worked_example(uow_factory, example):
    report = kpis(uow_factory(read_only=True), example["program_id"], JAN_1, JAN_31, at(3, 1))
    expected = {
        "members_total": 4, "members_new": 3, "members_active": 3,
        "purchases": 4, "purchases_anonymous": 2, "revenue": eur("205.00"), "revenue_anonymous": eur("60.00"),
        "repeat_purchase_rate": "0.3333", "purchase_frequency": "1.3333",
        "average_order_value": eur("51.25"), "average_order_value_anonymous": eur("30.00"),
        "revenue_per_member": eur("68.33"), "historical_clv": eur("63.75"),
        "points_issued": 210, "points_redeemed": 30, "points_expired": 50,
        "points_moved": {"earned": 230, "taken_back_by_refunds": 20, "spent": 60, "given_back": 30, "expired": 50,
                         "adjusted": 0, "other": 0},
        "redemption_rate": "0.1429", "members_redeemed": 2, "members_redeemed_share": "0.5000",
        "breakage_rate": "0.2381", "expected_breakage": "0.6250", "points_outstanding": 180,
        "points_liability": eur("1.80"), "points_liability_adjusted": eur("0.67"),
        "cashback_liability": eur("4.00"), "club_revenue": eur("9.90"), "nps": 25.0, "nps_answers": 4,
    }  # fmt: skip
    assert {key: report[key] for key in expected} == expected
    assert report["campaigns"] == [{
        "id": "jan", "name": report["campaigns"][0]["name"], "starts_at": "2026-01-14T23:00:00+00:00",
        "ends_at": "2026-01-25T23:00:00+00:00", "points_cost": 5, "cost": eur("0.05"), "budget_points": 1000,
        "budget_spent": 5, "participants": 1, "participants_revenue": eur("40.00"),
    }]  # fmt: skip
    assert report["cohort_retention"] == [
        {"cohort": "2025-12", "members": 1, "months": [{"month": "2026-01", "active": 1, "rate": "1.0000"}]},
        {"cohort": "2026-01", "members": 3, "months": [{"month": "2026-01", "active": 2, "rate": "0.6667"}]},
    ]
    assert "groups" not in report


def test_kpis_split_by_tier_channel_partner_and_cohort(uow_factory, example):
    def groups(by: str) -> dict[str | None, dict[str, Any]]:
        found = kpis(uow_factory(read_only=True), example["program_id"], JAN_1, JAN_31, at(3, 1), by=by)
        return {g["key"]: g for g in found["groups"]}

    tier = groups("tier")
    assert set(tier) == {"basis", "gold", None}
    gold, basis = tier["gold"], tier["basis"]
    assert (gold["members_total"], gold["members_new"], gold["members_active"], gold["purchases"]) == (1, 0, 1, 2)
    assert gold["revenue"] == eur("140.00") and gold["repeat_purchase_rate"] == "1.0000"
    assert gold["average_order_value"] == eur("70.00") and gold["purchase_frequency"] == "2.0000"
    assert (basis["members_total"], basis["members_new"], basis["members_active"], basis["purchases"]) == (3, 3, 2, 2)
    assert basis["revenue"] == eur("65.00") and basis["repeat_purchase_rate"] == "0.0000"
    assert basis["average_order_value"] == eur("32.50") and basis["revenue_per_member"] == eur("32.50")
    assert tier[None]["purchases_anonymous"] == 2 and tier[None]["average_order_value_anonymous"] == eur("30.00")

    channel = groups("channel")
    assert {k: (g["members_active"], g["purchases"], g["revenue"]["amount"], g["purchases_anonymous"])
            for k, g in channel.items()} == {"store": (2, 2, "125.00", 1), "online": (1, 1, "40.00", 1),
                                             "app": (1, 1, "40.00", 0)}  # fmt: skip
    assert channel["store"]["average_order_value"] == eur("62.50")
    assert set(groups("partner")) == {"default"}

    cohort = groups("cohort")
    assert {k: (g["members_total"], g["members_new"], g["members_active"], g["revenue"]["amount"])
            for k, g in cohort.items()} == {"2025-12": (1, 0, 1, "140.00"), "2026-01": (3, 3, 2, "65.00"),
                                            None: (0, 0, 0, "0.00")}  # fmt: skip


def test_kpis_split_by_segment_count_a_member_in_each_of_their_segments(uow_factory, example):
    """Static segments 'vip' (A, C) and 'young' (B, C); D is in none. C is in both, so the groups overlap."""
    pid = example["program_id"]
    for code, members in (("vip", ["a", "c"]), ("young", ["b", "c"])):
        create_segment(uow_factory(), pid, {"code": code, "name": {"de": code}, "kind": "static"}, at(2, 1))
        import_members(uow_factory(), pid, code, [str(example[m]) for m in members], at(2, 1))
    found = kpis(uow_factory(read_only=True), pid, JAN_1, JAN_31, at(3, 1), by="segment")
    groups = {g["key"]: g for g in found["groups"]}
    assert {k: (g["members_total"], g["members_new"], g["members_active"], g["purchases"], g["revenue"]["amount"])
            for k, g in groups.items()} == {"vip": (2, 1, 2, 3, "165.00"), "young": (2, 2, 2, 2, "65.00"),
                                            None: (1, 1, 0, 0, "0.00")}  # fmt: skip
    assert groups["vip"]["repeat_purchase_rate"] == "0.5000" and groups["vip"]["average_order_value"] == eur("55.00")
    assert groups[None]["purchases_anonymous"] == 2 and groups[None]["revenue_anonymous"] == eur("60.00")
    # The split changes no total: C counts once in the programme's figures.
    assert (found["members_active"], found["purchases"], found["revenue"]) == (3, 4, eur("205.00"))


def test_liability_report_reconciles_with_the_ledger_and_the_balances(uow_factory, example):
    pid = example["program_id"]
    report = liability_report(uow_factory(read_only=True), pid, date(2025, 12, 1), date(2026, 2, 1), at(3, 1))
    rows = {r["month"]: r for r in report["months"]}
    assert list(rows) == ["2025-12", "2026-01", "2026-02"]
    dec, jan, feb = rows["2025-12"], rows["2026-01"], rows["2026-02"]
    assert (dec["opening"], dec["issued"], dec["closing"], dec["expected_breakage"]) == (0, 50, 50, "0.0000")
    assert dec["deferred_revenue"] == "0.50"
    assert (jan["opening"], jan["issued"], jan["reversed_earned"], jan["redeemed"], jan["reversed_redeemed"],
            jan["expired"], jan["closing"]) == (50, 230, 20, 60, 30, 50, 180)  # fmt: skip
    assert (jan["closing_value"], jan["expected_breakage"], jan["deferred_revenue"]) == ("1.80", "0.6250", "0.67")
    assert (feb["opening"], feb["issued"], feb["adjusted"], feb["closing"]) == (180, 30, 15, 225)
    assert feb["deferred_revenue"] == "0.84"  # 225 * 30/80 ct = 84.375 ct
    for row in report["months"]:
        moved = (row["issued"] - row["reversed_earned"] - row["redeemed"] + row["reversed_redeemed"] - row["expired"]
                 + row["adjusted"] + row["transferred"] + row["other"])  # fmt: skip
        assert row["closing"] == row["opening"] + moved
    for earlier, later in zip(report["months"], report["months"][1:], strict=False):
        assert later["opening"] == earlier["closing"]
    with uow_factory(read_only=True) as uow:
        accounts = t.accounts.c
        balances = uow.conn.execute(select(func.sum(accounts.balance)).where(
            accounts.program_id == pid, accounts.kind == "member", accounts.unit == "PTS")).scalar()  # fmt: skip
    assert feb["closing"] == balances == 225

    parsed = list(csv.DictReader(io.StringIO(liability_csv(report))))
    assert [r["month"] for r in parsed] == ["2025-12", "2026-01", "2026-02"]
    assert parsed[1]["closing"] == "180" and parsed[1]["deferred_revenue"] == "0.67" and parsed[1]["currency"] == "EUR"


def test_bad_input_is_refused_with_a_clear_error(uow_factory, program_id, now):
    for kwargs, message in (({"start": JAN_31, "end": JAN_1}, "before it starts"),
                            ({"start": JAN_1, "end": JAN_31, "by": "colour"}, "unknown split"),
                            ({"start": JAN_1, "end": date(9999, 12, 31)}, "must lie between")):  # fmt: skip
        with pytest.raises(InvalidInput, match=message):
            kpis(uow_factory(read_only=True), program_id, now=now, **kwargs)
    with pytest.raises(InvalidInput, match="before it starts"):
        liability_report(uow_factory(read_only=True), program_id, date(2026, 6, 1), date(2026, 1, 1), now)


def test_api_kpis_and_liability_as_json_and_csv_and_refusals(engine, uow_factory, example):
    pid = example["program_id"]
    api = Api(engine, at(3, 1))
    try:
        admin_key = create_api_key(uow_factory(), pid, "admin", "admin", at(3, 1))
        read_key = create_api_key(uow_factory(), pid, "read_only", "reader", at(3, 1))
        admin = Caller(api.client, admin_key["key"], admin_key["id"])
        report = admin.get("/analytics/kpis", params={"from": "2026-01-01", "to": "2026-01-31"})
        assert report["from"] == "2026-01-01" and report["members_active"] == 3
        assert report["repeat_purchase_rate"] == "0.3333" and report["average_order_value"] == eur("51.25")
        assert report["points_liability"] == eur("1.80") and report["nps"] == 25.0 and report["groups"] is None
        split = admin.get("/analytics/kpis", params={"from": "2026-01-01", "to": "2026-01-31", "by": "channel"})
        assert {g["key"]: g["purchases"] for g in split["groups"]} == {"app": 1, "online": 1, "store": 2}

        liability = admin.get("/analytics/liability", params={"from": "2025-12", "to": "2026-02"})
        assert [m["closing"] for m in liability["months"]] == [50, 180, 225] and liability["from"] == "2025-12"
        response = admin.request("GET", "/analytics/liability", params={"from": "2025-12", "to": "2026-02",
                                                                        "format": "csv"})  # fmt: skip
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert [r["closing"] for r in csv.DictReader(io.StringIO(response.text))] == ["50", "180", "225"]

        for path, params, message in (
            ("/analytics/kpis", {"from": "2026-01-31", "to": "2026-01-01"}, "before it starts"),
            ("/analytics/kpis", {"from": "2026-01-01", "to": "2026-01-31", "by": "colour"}, "unknown split"),
            ("/analytics/liability", {"from": "2026-06", "to": "2026-01"}, "before it starts"),
            ("/analytics/liability", {"from": "2026-13", "to": "2026-14"}, "not a month"),
        ):  # fmt: skip
            problem = assert_problem(admin.request("GET", path, params=params))
            assert problem["status"] == 422 and problem["code"] == "invalid_input" and message in problem["detail"]
        # Without dates: this month so far (the clock is at 1 March), and the last twelve months.
        default = admin.get("/analytics/kpis")
        assert (default["from"], default["to"], default["members_total"]) == ("2026-03-01", "2026-03-01", 5)
        january = admin.get("/analytics/kpis", params={"to": "2026-01-31"})
        assert january["from"] == "2026-01-01" and january["revenue"] == eur("205.00")
        year = admin.get("/analytics/liability")
        assert (year["from"], year["to"], len(year["months"])) == ("2025-04", "2026-03", 12)
        assert year["months"][-1]["closing"] == 225
        reader = Caller(api.client, read_key["key"], read_key["id"])
        assert reader.request("GET", "/analytics/kpis", params={"from": "2026-01-01", "to": "2026-01-31"}
                              ).status_code == 403  # fmt: skip
        # Another programme's admin sees its own (empty) programme, never this one.
        other = api.tenant("Other", scopes=("admin",))
        empty = other.admin.get("/analytics/kpis", params={"from": "2026-01-01", "to": "2026-01-31"})
        assert empty["members_total"] == 0 and empty["points_outstanding"] == 0 and empty["nps"] is None
        assert empty["repeat_purchase_rate"] is None and empty["average_order_value"] is None
    finally:
        api.client.close()
