"""Quarter-hours of UTC to programme-local days (the KPI roll-ups' grouping)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.domain.analytics.rollups import SLOT_EPOCH, SLOT_SECONDS, SlotStraddlesMidnight, slot_day, slot_start


def slot_of(instant: datetime) -> int:
    return int((instant - SLOT_EPOCH).total_seconds()) // SLOT_SECONDS


@pytest.mark.parametrize(("zone", "instant", "day"), [
    ("Europe/Berlin", datetime(2026, 1, 31, 22, 59, 59, tzinfo=UTC), date(2026, 1, 31)),  # 23:59:59 local
    ("Europe/Berlin", datetime(2026, 1, 31, 23, 0, tzinfo=UTC), date(2026, 2, 1)),
    ("Europe/Berlin", datetime(2026, 7, 31, 22, 0, tzinfo=UTC), date(2026, 8, 1)),  # summer time: UTC+2
    ("Europe/Berlin", datetime(2026, 3, 29, 0, 30, tzinfo=UTC), date(2026, 3, 29)),  # the night clocks go forward
    ("Asia/Kolkata", datetime(2026, 1, 31, 18, 29, tzinfo=UTC), date(2026, 1, 31)),  # UTC+5:30
    ("Asia/Kolkata", datetime(2026, 1, 31, 18, 30, tzinfo=UTC), date(2026, 2, 1)),
    ("Asia/Kathmandu", datetime(2026, 1, 31, 18, 15, tzinfo=UTC), date(2026, 2, 1)),  # UTC+5:45
    ("Asia/Kathmandu", datetime(2026, 1, 31, 18, 14, tzinfo=UTC), date(2026, 1, 31)),
    ("America/St_Johns", datetime(2026, 1, 1, 3, 30, tzinfo=UTC), date(2026, 1, 1)),  # UTC-3:30
    ("UTC", datetime(1900, 1, 1, tzinfo=UTC), date(1900, 1, 1)),
])  # fmt: skip
def test_a_quarter_hour_lies_on_the_local_day_of_every_instant_in_it(zone, instant, day):
    assert slot_day(slot_of(instant), ZoneInfo(zone)) == day


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]),
)
def test_the_slot_of_an_instant_gives_its_local_day(instant, zone):  # fmt: skip
    tz = ZoneInfo(zone)
    slot = slot_of(instant)
    assert slot_start(slot) <= instant < slot_start(slot) + timedelta(seconds=SLOT_SECONDS)
    assert slot_day(slot, tz) == instant.astimezone(tz).date()


def test_a_quarter_hour_across_a_local_midnight_of_old_local_mean_time_is_refused():
    # Amsterdam's summer time of 1920 was 1 h 19 min 32 s ahead of UTC: its midnight fell at 22:40:28 UTC.
    with pytest.raises(SlotStraddlesMidnight, match="Europe/Amsterdam"):
        slot_day(slot_of(datetime(1920, 6, 1, 22, 30, tzinfo=UTC)), ZoneInfo("Europe/Amsterdam"))
    assert slot_day(slot_of(datetime(1920, 6, 1, 22, 15, tzinfo=UTC)), ZoneInfo("Europe/Amsterdam")) == date(1920, 6, 1)
