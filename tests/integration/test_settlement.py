"""Partner settlement: a worked example with hand-computed figures for three partners over two months, on SQLite
and PostgreSQL; idempotency, immutability and refusals.

The programme (EUR, Europe/Berlin, 1 point per euro, points expire one month after the day earned, half-up
rounding) has three partners:

    alpha  pays 1.00 per 100 points it issues, is paid 0.80 per 100 points redeemed at it   (postpaid)
    beta   pays 1.20 per 100,                  is paid 0.90 per 100                          (prepaid)
    gamma  pays 0.01 per 4 points,             is paid 0.01 per point                        (postpaid)

November 2026 (Europe/Berlin):
    Nov 3   m1 buys 500.00 at alpha                -> alpha lot 500 (expires end of Dec 3)
    Nov 10  m1 buys 300.00 at beta                 -> beta lot 300 (expires end of Dec 10)
    Nov 12  m2 buys 150.00 at gamma                -> gamma lot 150 (expires end of Dec 12)
    Nov 13  m2 buys 60.00 at the programme         -> default lot 60 (expires end of Dec 13)
    Nov 20  m1 redeems 400 at beta                 -> soonest-expiring first: 400 of alpha's lot
    Nov 25  m2 redeems 100 at alpha                -> 100 of gamma's lot
    Nov 28  m1's beta purchase refunded 100.00     -> 100 points taken back from beta's lot
    Nov 30 23:30 local  m3 buys 50.00 at alpha     -> November (22:30 UTC)
    Dec 1 00:30 local   m3 buys 70.00 at alpha     -> December, although it is still Nov 30 in UTC

    alpha: issued 550 -> owes 5.50; 100 redeemed at it (gamma's) -> is owed 0.80; net -4.70
    beta:  issued 300, 100 taken back -> owes 200 x 1.20/100 = 2.40; 400 redeemed at it (alpha's) -> 3.60; net +1.20
    gamma: issued 150 -> owes 150/4 ct = 37.5 -> 0.38 (half up); nothing redeemed at it; net -0.38
    default (the programme itself): issued 60, no money

December 2026:
    Dec 2   m1's redemption at beta cancelled      -> 400 back to alpha's lot: -400 redeemed at beta
    Dec 15  expiry: m1 alpha 500, m1 beta 200, m2 gamma 50, m2 default 60
    Dec 20  m3 redeems 100 at gamma                -> 50 + 50 of m3's two alpha lots

    alpha: issued 70 -> owes 0.70; net -0.70; its points: -400 at beta, +100 at gamma; expired 500
    beta:  -400 redeemed at it -> -3.60; net -3.60; expired 200
    gamma: 100 redeemed at it (alpha's) -> 1.00; net +1.00; expired 50
    default: expired 60
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from uuid import UUID

import pytest
import sqlalchemy as sa

from tests.integration.helpers import buy, enrol, race
from treue.domain.errors import PartnerUnknown, PeriodInvalid, PeriodOpen, SettlementNotFound
from treue.services.expiry import expire_points
from treue.services.partners import create_partner, update_partner
from treue.services.programs import create_program
from treue.services.purchases import RefundPurchase, refund_purchase
from treue.services.rewards import cancel_redemption, create_reward, redeem_reward
from treue.services.settlement import get_settlement, settle_period, settlement_csv
from treue.services.verify import verify


def utc(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def world(uow_factory):
    uow = uow_factory
    start = utc(11, 1, 9)
    pid = UUID(create_program(uow(), "Coalition", "EUR", "Europe/Berlin",
                              {"expiry_policy": "rolling", "expiry_months": 1, "rounding": "half_up"}, start)["id"])  # fmt: skip
    for code, issue, issue_pts, redeem, redeem_pts, billing in (
        ("alpha", "1.00", 100, "0.80", 100, "postpaid"),
        ("beta", "1.20", 100, "0.90", 100, "prepaid"),
        ("gamma", "0.01", 4, "0.01", 1, "postpaid"),
    ):
        create_partner(uow(), pid, {"code": code, "name": code.title(), "issue_price": issue,
                                    "issue_points": issue_pts, "redeem_price": redeem, "redeem_points": redeem_pts,
                                    "billing": billing, "stores": [f"{code}-1"], "channels": ["store"]}, start)  # fmt: skip
    big = UUID(
        create_reward(uow(), pid, {"name": {"de": "Gross"}, "type": "merchandise", "cost_points": 400}, start)["id"]
    )
    small = UUID(create_reward(uow(), pid, {"name": {"de": "Klein"}, "type": "merchandise", "cost_points": 100},
                               start)["id"])  # fmt: skip
    m1, m2, m3 = (enrol(uow, pid, start) for _ in range(3))

    buy(uow, pid, m1, "500.00", utc(11, 3), partner="alpha")
    beta_order = buy(uow, pid, m1, "300.00", utc(11, 10), partner="beta")
    buy(uow, pid, m2, "150.00", utc(11, 12), partner="gamma")
    buy(uow, pid, m2, "60.00", utc(11, 13))
    first = redeem_reward(uow(), pid, m1, big, utc(11, 20), partner="beta")
    assert first["partner"] == "beta" and first["drawn_from"][0]["points"] == 400
    redeem_reward(uow(), pid, m2, small, utc(11, 25), partner="alpha")
    refund_purchase(uow(), pid, UUID(beta_order["id"]), RefundPurchase(amount="100.00"), utc(11, 28))
    buy(uow, pid, m3, "50.00", utc(11, 30, 22, 30), partner="alpha")  # 23:30 in Berlin: still November
    buy(uow, pid, m3, "70.00", utc(11, 30, 23, 30), partner="alpha")  # 00:30 on Dec 1 in Berlin

    cancel_redemption(uow(), pid, UUID(first["id"]), utc(12, 2))
    assert expire_points(uow, utc(12, 15), pid)["points_expired"] == 500 + 200 + 50 + 60
    redeem_reward(uow(), pid, m3, small, utc(12, 20), partner="gamma")
    return pid


def lines_of(view):
    return {line["partner"]: line for line in view["lines"]}


def test_november_worked_example(uow_factory, world):
    view, created = settle_period(uow_factory(), world, "2026-11", utc(12, 1, 8), actor="finance")
    assert created and view["currency"] == "EUR" and view["settled_by"] == "finance"
    assert view["period_start"] == "2026-10-31T23:00:00Z" and view["period_end"] == "2026-11-30T23:00:00Z"
    lines = lines_of(view)
    assert list(lines) == ["default", "alpha", "beta", "gamma"]
    alpha, beta, gamma, default = lines["alpha"], lines["beta"], lines["gamma"], lines["default"]
    assert (alpha["points_issued"], alpha["points_taken_back"], alpha["points_redeemed_at"],
            alpha["points_funded_redeemed"], alpha["points_expired"]) == (550, 0, 100, 400, 0)  # fmt: skip
    assert (alpha["owed_by_partner"], alpha["owed_to_partner"], alpha["net"]) == ("5.50", "0.80", "-4.70")
    assert alpha["redeemed_by_funder"] == {"gamma": 100} and alpha["funded_redeemed_at"] == {"beta": 400}
    assert (beta["points_issued"], beta["points_taken_back"], beta["points_redeemed_at"]) == (300, 100, 400)
    assert (beta["owed_by_partner"], beta["owed_to_partner"], beta["net"]) == ("2.40", "3.60", "1.20")
    assert beta["billing"] == "prepaid" and beta["redeemed_by_funder"] == {"alpha": 400}
    assert beta["issue_price"] == {"amount": "1.20", "points": 100}
    assert (gamma["points_issued"], gamma["points_redeemed_at"], gamma["points_funded_redeemed"]) == (150, 0, 100)
    assert (gamma["owed_by_partner"], gamma["owed_to_partner"], gamma["net"]) == ("0.38", "0.00", "-0.38")
    assert gamma["funded_redeemed_at"] == {"alpha": 100}
    assert default["registered"] is False and default["points_issued"] == 60 and default["net"] == "0.00"
    assert default["billing"] is None and default["issue_price"] is None


def test_december_worked_example(uow_factory, world):
    view, _ = settle_period(uow_factory(), world, "2026-12", utc(12, 31, 23))
    lines = lines_of(view)
    alpha, beta, gamma, default = lines["alpha"], lines["beta"], lines["gamma"], lines["default"]
    assert (alpha["points_issued"], alpha["points_redeemed_at"], alpha["points_funded_redeemed"],
            alpha["points_expired"]) == (70, 0, -300, 500)  # fmt: skip
    assert alpha["funded_redeemed_at"] == {"beta": -400, "gamma": 100}
    assert (alpha["owed_by_partner"], alpha["owed_to_partner"], alpha["net"]) == ("0.70", "0.00", "-0.70")
    assert (beta["points_issued"], beta["points_redeemed_at"], beta["points_expired"]) == (0, -400, 200)
    assert (beta["owed_to_partner"], beta["net"]) == ("-3.60", "-3.60")
    assert (gamma["points_redeemed_at"], gamma["points_expired"], gamma["redeemed_by_funder"]) == (
        100,
        50,
        {"alpha": 100},
    )
    assert (gamma["owed_to_partner"], gamma["net"]) == ("1.00", "1.00")
    assert default["points_expired"] == 60 and default["points_issued"] == 0
    assert verify(uow_factory(), world) == []


def test_a_settlement_is_stored_once_and_a_closed_period_is_immutable(uow_factory, engine, world):
    first, created = settle_period(uow_factory(), world, "2026-11", utc(12, 1, 8))
    # New terms and later facts do not change a settled month.
    update_partner(uow_factory(), world, "alpha", {"issue_price": "9.99"}, utc(12, 3))
    again, created_again = settle_period(uow_factory(), world, "2026-11", utc(12, 5))
    assert created and not created_again and again == first
    assert get_settlement(uow_factory(), world, "2026-11") == first
    # The database refuses to change or delete it, whatever the code path.
    for statement in (sa.text("UPDATE settlement_lines SET net_minor = 0, owed_to_partner_minor = 0, "
                              "owed_by_partner_minor = 0 WHERE program_id = :pid"),
                      sa.text("DELETE FROM settlements WHERE program_id = :pid")):  # fmt: skip
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement, {"pid": world if engine.dialect.name == "postgresql" else world.hex})
    assert get_settlement(uow_factory(), world, "2026-11") == first


def test_csv_export(uow_factory, world):
    view, _ = settle_period(uow_factory(), world, "2026-11", utc(12, 1, 8))
    rows = list(csv.DictReader(io.StringIO(settlement_csv(view))))
    assert [r["partner"] for r in rows] == ["default", "alpha", "beta", "gamma"]
    beta = rows[2]
    assert (beta["owed_by_partner"], beta["owed_to_partner"], beta["net"], beta["currency"]) == (
        "2.40", "3.60", "1.20", "EUR")  # fmt: skip
    assert beta["redeemed_by_funder"] == "alpha:400" and beta["billing"] == "prepaid"


def test_refusals_change_nothing(uow_factory, world):
    for period, error in (("2026-13", PeriodInvalid), ("11/2026", PeriodInvalid), ("", PeriodInvalid),
                          ("2026-12", PeriodOpen)):  # fmt: skip
        with pytest.raises(error):
            settle_period(uow_factory(), world, period, utc(12, 20))
    with pytest.raises(SettlementNotFound):
        get_settlement(uow_factory(), world, "2026-12")
    member = enrol(uow_factory, world, utc(12, 1))
    buy(uow_factory, world, member, "500.00", utc(12, 1))
    reward = UUID(create_reward(uow_factory(), world, {"name": {"de": "X"}, "type": "merchandise",
                                                       "cost_points": 10}, utc(12, 1))["id"])  # fmt: skip
    with pytest.raises(PartnerUnknown):
        redeem_reward(uow_factory(), world, member, reward, utc(12, 2), partner="nobody")
    with uow_factory() as uow:
        assert uow.ledger.lock_accounts(world, [member])[member].balance == 500


def test_two_runs_at_once_store_one_settlement(uow_factory, world, postgres_only):
    results = race([lambda: settle_period(uow_factory(), world, "2026-11", utc(12, 1, 8))] * 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert all(view == results[0][0] for view, _ in results)
