"""Settlement arithmetic and periods, without a database."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from treue.domain.errors import InvalidInput, PeriodInvalid
from treue.domain.money import Rounding
from treue.domain.partners import Billing, Partner, Price, check_code, parse_billing
from treue.domain.settlement import Flows, parse_period, settle, to_csv

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_period_is_a_month_in_the_programme_timezone():
    start, end = parse_period("2026-11").bounds(BERLIN)
    assert (start, end) == (datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC))
    # March has the change to summer time: 31 days minus one hour.
    start, end = parse_period("2026-03").bounds(BERLIN)
    assert (start.hour, end.hour, (end - start).total_seconds()) == (23, 22, 31 * 86400 - 3600)
    start, end = parse_period("2026-12").bounds(BERLIN)
    assert end == datetime(2026, 12, 31, 23, tzinfo=UTC)
    assert str(parse_period(" 2026-01 ")) == "2026-01"


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", "", "1999-12", "2026-11-01"])
def test_malformed_periods_are_refused(text):
    with pytest.raises(PeriodInvalid):
        parse_period(text)


def test_prices_are_integer_money_per_points_rounded_by_policy():
    price = Price(1, 4)  # 1 ct per 4 points
    assert price.of(150, Rounding.FLOOR) == 37
    assert price.of(150, Rounding.HALF_UP) == 38
    assert price.of(-150, Rounding.HALF_UP) == -38  # half away from zero, also for a month of cancellations
    assert Price(80, 100).of(0, Rounding.CEIL) == 0
    for bad in ((-1, 1), (1, 0), (1, -5)):
        with pytest.raises(InvalidInput):
            Price(*bad)


def test_partner_codes_and_billing():
    assert check_code("baeckerei-mueller") == "baeckerei-mueller"
    for bad in ("default", "", "Upper", "has space", "x" * 65):
        with pytest.raises(InvalidInput):
            check_code(bad)
    assert parse_billing("prepaid") is Billing.PREPAID
    with pytest.raises(InvalidInput):
        parse_billing("monthly")


def partner(code, issue, redeem):
    return Partner(code, code.title(), Price(*issue), Price(*redeem))


def test_lines_per_partner_with_cross_partner_flows_and_the_net():
    partners = [
        partner("a", (100, 100), (80, 100)),
        partner("b", (120, 100), (90, 100)),
        partner("idle", (1, 1), (1, 1)),
    ]
    flows = Flows(issued={"a": 550, "b": 300, "default": 60, "stray": 5}, taken_back={"b": 100},
                  expired={"a": 7}, spent={("b", "a"): 400, ("a", "default"): 100, ("b", "b"): 0})  # fmt: skip
    lines = {line.partner: line for line in settle(partners, flows, Rounding.FLOOR)}
    assert list(lines) == ["default", "a", "b", "idle", "stray"]
    a, b = lines["a"], lines["b"]
    assert (a.owed_by_partner_minor, a.owed_to_partner_minor, a.net_minor) == (550, 80, -470)
    assert (a.points_redeemed_at, a.points_funded_redeemed, a.points_expired) == (100, 400, 7)
    assert a.redeemed_by_funder == {"default": 100} and a.funded_redeemed_at == {"b": 400}
    assert (b.owed_by_partner_minor, b.owed_to_partner_minor, b.net_minor) == (240, 360, 120)
    assert b.redeemed_by_funder == {"a": 400}  # zero flows are left out
    assert lines["idle"].net_minor == 0 and lines["idle"].registered
    # Codes nobody registered get their points but no money: no terms were agreed.
    stray = lines["stray"]
    assert (stray.registered, stray.points_issued, stray.owed_by_partner_minor, stray.billing) == (False, 5, 0, None)
    assert lines["default"].funded_redeemed_at == {"a": 100}


def test_csv_has_amounts_as_decimal_strings():
    line = {"partner": "b", "registered": True, "billing": "prepaid", "points_issued": 300, "points_taken_back": 100,
            "points_redeemed_at": 400, "points_funded_redeemed": 0, "points_expired": 0,
            "owed_by_partner_minor": 240, "owed_to_partner_minor": 360, "net_minor": 120,
            "redeemed_by_funder": {"z": 1, "a": 399}, "funded_redeemed_at": {}}  # fmt: skip
    rows = list(csv.reader(io.StringIO(to_csv("2026-11", "JPY", [line]))))
    assert rows[1] == ["2026-11", "b", "true", "prepaid", "300", "100", "400", "0", "0", "240", "360", "120", "JPY",
                       "a:399;z:1", ""]  # fmt: skip
