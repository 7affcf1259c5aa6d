"""The pure parts of the KPIs and the liability report: rates, the movement classes and their sums, month
boundaries in the programme's timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from treue.domain.errors import InvalidInput
from treue.services.kpis import Movements, expected_breakage, month_starts, movements, parse_month, rate
from treue.store.kpis import Flow


def test_rates_are_decimal_strings_with_four_places_half_even_and_null_without_a_denominator():
    assert rate(1, 3) == "0.3333" and rate(2, 3) == "0.6667" and rate(4, 3) == "1.3333"
    assert rate(1, 20000) == "0.0000" and rate(3, 20000) == "0.0002"  # 0.00005 and 0.00015: half to even
    assert rate(0, 5) == "0.0000" and rate(5, 5) == "1.0000"
    assert rate(1, 0) is None


def test_every_transfer_kind_moves_the_balance_in_its_own_column():
    flows = [Flow(0, "earn", None, 230), Flow(0, "reverse", "earn", -20), Flow(0, "redeem", None, -25),
             Flow(0, "pay", None, -5), Flow(0, "reverse", "redeem", 7), Flow(0, "expire", None, -50),
             Flow(0, "adjust", None, -3), Flow(0, "transfer", None, 0), Flow(0, "settle", None, 4),
             Flow(-1, "earn", None, 50), Flow(1, "earn", None, 30)]  # fmt: skip
    before, (first, second) = movements(flows, 2)
    assert (first.issued, first.reversed_earned, first.redeemed, first.reversed_redeemed, first.expired,
            first.adjusted, first.other) == (230, 20, 30, 7, 50, -3, 4)  # fmt: skip
    assert first.issued_net == 210 and first.redeemed_net == 23
    # net is the plain sum of the postings: nothing is lost between the columns
    assert first.net == sum(f.amount for f in flows if f.bucket == 0) == 138
    assert before.net == 50 and second.net == 30
    total = Movements()
    total += before
    total += first
    assert total.issued == 280 and total.net == 188


def test_expected_breakage_is_expired_over_expired_plus_redeemed_and_zero_without_history():
    assert expected_breakage(Movements()) == (0, 0)
    assert expected_breakage(Movements(redeemed=40, reversed_redeemed=10, expired=50)) == (50, 80)


def test_month_starts_are_local_midnights_across_daylight_saving():
    bounds = month_starts(date(2026, 2, 14), date(2026, 4, 2), ZoneInfo("Europe/Berlin"))
    assert bounds == [datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 28, 23, tzinfo=UTC),
                      datetime(2026, 3, 31, 22, tzinfo=UTC), datetime(2026, 4, 30, 22, tzinfo=UTC)]  # fmt: skip
    with pytest.raises(InvalidInput, match="at most 600 months"):
        month_starts(date(1970, 1, 1), date(2026, 1, 1), ZoneInfo("Europe/Berlin"))


def test_months_are_read_as_yyyy_mm():
    assert parse_month("2026-03", "from") == date(2026, 3, 1)
    for text in ("2026-13", "2026-3", "26-03", "2026-03-01", "March", "9999-12", "0001-01"):
        with pytest.raises(InvalidInput, match="not a month"):
            parse_month(text, "from")
