"""Calendar arithmetic in the programme's timezone: pending windows, expiry dates, local days.

Every function takes the instant it reasons about; none reads the clock.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from treue.domain.errors import InvalidInput


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"'{name}' is not an IANA timezone such as Europe/Berlin") from None


def require_aware(instant: datetime, what: str = "timestamp") -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInput(f"{what} must carry a timezone offset (e.g. 2026-11-23T10:00:00+01:00)")
    return instant.astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """Same day-of-month N months later, clamped to the month's last day (Jan 31 + 1M = Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def start_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def end_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant after `day` ends locally; points "valid until day D" expire at this instant."""
    return start_of_local_day(day + timedelta(days=1), tz)


def add_local_days(instant: datetime, days: int, tz: ZoneInfo) -> datetime:
    """N calendar days later at the same local wall-clock time (a DST change does not shift it by an hour)."""
    local = instant.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(UTC)


def parse_month_day(text: str) -> tuple[int, int]:
    """'12-31' -> (12, 31); rejects impossible days (Feb 29 is refused: it would not exist most years)."""
    try:
        month_s, day_s = text.split("-")
        month, day = int(month_s), int(day_s)
        date(2001, month, day)
    except ValueError:
        raise InvalidInput(f"'{text}' is not a day of the year as MM-DD (Feb 29 not allowed)") from None
    return month, day


_DURATION = re.compile(r"^P?(\d{1,5})([DWMY])$")
_DURATION_LIMITS = {"D": 3660, "W": 520, "M": 120, "Y": 10}


@dataclass(frozen=True, slots=True)
class Duration:
    """A calendar duration in whole units: days (D), weeks (W), months (M) or years (Y); `14D`, `1M`, `0D`."""

    amount: int
    unit: str

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def days(self) -> int | None:
        """The number of days for D and W; None for months and years (their length varies)."""
        return self.amount if self.unit == "D" else 7 * self.amount if self.unit == "W" else None

    def after(self, instant: datetime, tz: ZoneInfo) -> datetime:
        """The instant this long after `instant`, at the same local wall-clock time in `tz` (UTC result)."""
        days = self.days
        if days is not None:
            return add_local_days(instant, days, tz) if days else instant.astimezone(UTC)
        months = self.amount * (12 if self.unit == "Y" else 1)
        local = instant.astimezone(tz)
        moved = datetime.combine(add_months(local.date(), months), local.time())
        return moved.replace(tzinfo=tz).astimezone(UTC)


def parse_duration(text: str) -> Duration:
    """'14D' -> 14 days, '2W', '1M', '1Y', '0D' (an optional ISO 8601 'P' prefix is accepted). Integers only."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(f"{text!r} is not a duration such as 14D, 2W, 1M or 1Y (whole numbers only)")
    amount, unit = int(match.group(1)), match.group(2)
    if amount > _DURATION_LIMITS[unit]:
        raise InvalidInput(f"{text!r} is too long (at most {_DURATION_LIMITS[unit]}{unit})")
    return Duration(amount, unit)
