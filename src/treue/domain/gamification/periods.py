"""Calendar periods and mission windows in the programme's timezone.

A period is numbered so that consecutive periods have consecutive numbers (a streak needs nothing else):
a day by its proleptic ordinal, a week (Monday to Sunday, ISO) by the ordinal of its Monday divided by 7, a
month by year * 12 + month - 1. Instants are UTC-aware; a period's bounds are the local midnights that start
it and the next one, so a month in Europe/Berlin that contains the change to summer time is 1 hour shorter
than 31 days, and an event at 23:30 local time on the last day of a month belongs to that month.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from treue.domain.durations import add_local_days, add_months, require_aware, start_of_local_day


class Unit(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_index(unit: Unit, day: date) -> int:
    """The number of the period (of `unit`) that contains the local date `day`."""
    if unit is Unit.DAY:
        return day.toordinal()
    if unit is Unit.WEEK:
        return (day.toordinal() - day.weekday()) // 7  # Mondays are 7 apart: consecutive weeks, consecutive numbers
    return day.year * 12 + day.month - 1


def period_first_day(unit: Unit, index: int) -> date:
    """The first local date of a period."""
    if unit is Unit.DAY:
        return date.fromordinal(index)
    if unit is Unit.WEEK:
        return _monday(index)
    return date(index // 12, index % 12 + 1, 1)


def _monday(index: int) -> date:
    # ordinal 1 (0001-01-01) is a Monday, so Monday ordinals are 1 mod 7; (o - weekday) // 7 maps them to index
    return date.fromordinal(index * 7 + 1)


def period_bounds(unit: Unit, index: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a period."""
    first = period_first_day(unit, index)
    if unit is Unit.DAY:
        after = first + timedelta(days=1)
    elif unit is Unit.WEEK:
        after = first + timedelta(days=7)
    else:
        after = add_months(first, 1)
    return start_of_local_day(first, tz), start_of_local_day(after, tz)


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    return require_aware(instant, "instant").astimezone(tz).date()


def index_at(unit: Unit, instant: datetime, tz: ZoneInfo) -> int:
    return period_index(unit, local_day(instant, tz))


class WindowKind(enum.StrEnum):
    WEEK = "week"  # the calendar week (Monday to Sunday) of the event
    MONTH = "month"  # the calendar month of the event
    DAYS = "days"  # N days from the member's opt-in (then the next N days, for a repeatable mission)
    CAMPAIGN = "campaign"  # the mission's fixed dates


@dataclass(frozen=True, slots=True)
class Window:
    """One window of a mission: its key (unique per mission and member) and its UTC bounds [start, end)."""

    key: str
    start: datetime
    end: datetime

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def local_start(self, tz: ZoneInfo) -> datetime:
        return self.start.astimezone(tz)

    def local_last_day(self, tz: ZoneInfo) -> date:
        """The last local day of the window (its end is exclusive)."""
        return (self.end - timedelta(microseconds=1)).astimezone(tz).date()


def window_at(kind: WindowKind, instant: datetime, tz: ZoneInfo, *, days: int | None = None,
              starts_at: datetime | None = None, ends_at: datetime | None = None,
              opted_in_at: datetime | None = None) -> Window | None:  # fmt: skip
    """The window that contains `instant`, or None when there is none (before the mission starts, after it
    ends, before the opt-in). `starts_at`/`ends_at` bound every kind of window: a monthly mission that starts
    on the 10th has a first window from the 10th to the end of that month."""
    at = require_aware(instant, "instant").astimezone(UTC)
    if starts_at is not None and at < starts_at:
        return None
    if ends_at is not None and at >= ends_at:
        return None
    if kind is WindowKind.CAMPAIGN:
        if starts_at is None or ends_at is None:
            return None
        return Window("campaign", starts_at, ends_at)
    if kind is WindowKind.DAYS:
        if opted_in_at is None or days is None or at < opted_in_at:
            return None
        # the k-th run of N local days from the opt-in (same local wall time; DST does not shift it)
        k = max((local_day(at, tz) - local_day(opted_in_at, tz)).days // days, 0)
        start = add_local_days(opted_in_at, k * days, tz)
        if at < start:  # the same local date, earlier than the opt-in's wall time: the previous run
            k -= 1
            start = add_local_days(opted_in_at, k * days, tz)
        window = Window(f"days-{k}", start, add_local_days(opted_in_at, (k + 1) * days, tz))
        return _bounded(window, starts_at, ends_at)
    unit = Unit.WEEK if kind is WindowKind.WEEK else Unit.MONTH
    index = index_at(unit, at, tz)
    start, end = period_bounds(unit, index, tz)
    return _bounded(Window(period_key(unit, index), start, end), starts_at, ends_at)


def _bounded(window: Window, starts_at: datetime | None, ends_at: datetime | None) -> Window:
    start = max(window.start, starts_at) if starts_at is not None else window.start
    end = min(window.end, ends_at) if ends_at is not None else window.end
    return Window(window.key, start, end)


def period_key(unit: Unit, index: int) -> str:
    """A readable key: "2026-05-31", "2026-W22" (ISO week), "2026-05"."""
    if unit is Unit.DAY:
        return date.fromordinal(index).isoformat()
    if unit is Unit.WEEK:
        year, week, _ = _monday(index).isocalendar()
        return f"{year}-W{week:02d}"
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
