"""Which programme-local day a quarter-hour of UTC falls on, for the KPI roll-ups.

The database groups rows by quarter-hours of UTC (an integer, the same on SQLite and PostgreSQL and needing no
timezone database); Python then gives each quarter-hour its local day. That is exact because every local midnight
of today's zones falls on a quarter-hour of UTC. A zone's old local mean time did not (Amsterdam ran 19 min 32 s
ahead until 1937): a quarter-hour straddling a local midnight is refused rather than guessed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SLOT_SECONDS = 900
# Slots count from 1900-01-01 UTC so that SQLite's integer division (which truncates) floors as PostgreSQL does.
SLOT_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
SLOT_EPOCH_OFFSET = int((datetime(1970, 1, 1, tzinfo=UTC) - SLOT_EPOCH).total_seconds())


class SlotStraddlesMidnight(ValueError):
    """A quarter-hour holds the end of one local day and the start of the next."""


def slot_start(slot: int) -> datetime:
    return SLOT_EPOCH + timedelta(seconds=slot * SLOT_SECONDS)


def slot_day(slot: int, tz: ZoneInfo) -> date:
    """The local day the quarter-hour `slot` lies in."""
    start = slot_start(slot)
    day = start.astimezone(tz).date()
    last = (start + timedelta(seconds=SLOT_SECONDS) - timedelta(microseconds=1)).astimezone(tz).date()
    if last != day:
        raise SlotStraddlesMidnight(f"the quarter-hour from {start.isoformat()} spans local midnight in {tz.key}")
    return day
