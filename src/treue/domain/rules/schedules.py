"""Cron-like schedules in the programme's timezone, for rules triggered by time.

Five fields - minute hour day-of-month month day-of-week - each `*`, a number, a range `a-b`, a step
`*/n` or `a-b/n`, or a comma list of these. Days of the week are 0-7 (0 and 7 are Sunday) or mon..sun,
months 1-12 or jan..dec. As in cron, when both day fields are restricted a day matching either counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from treue.domain.errors import RuleInvalid

_NAMES = {
    3: {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                        "nov", "dec"))},
    4: {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}  # fmt: skip
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


@dataclass(frozen=True, slots=True)
class Cron:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    days_restricted: bool
    weekdays_restricted: bool

    def matches(self, local: datetime) -> bool:
        """Whether the schedule fires in the minute of `local` (a time in the programme's timezone)."""
        if local.minute not in self.minutes or local.hour not in self.hours or local.month not in self.months:
            return False
        day_ok = local.day in self.days
        weekday_ok = local.isoweekday() % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


def parse_cron(text: str, location: str = "trigger") -> Cron:
    parts = text.split()
    if len(parts) != 5:
        raise RuleInvalid(f"{location}: {text!r} needs five fields: minute hour day-of-month month day-of-week",
                          location=location)  # fmt: skip
    fields = [_field(part, index, location) for index, part in enumerate(parts)]
    weekdays = frozenset(d % 7 for d in fields[4])
    return Cron(" ".join(parts), fields[0], fields[1], fields[2], fields[3], weekdays,
                parts[2] != "*", parts[4] != "*")  # fmt: skip


def _field(part: str, index: int, location: str) -> frozenset[int]:
    low, high = _RANGES[index]
    values: set[int] = set()
    for item in part.split(","):
        try:
            values |= _item(item.lower(), index, low, high)
        except ValueError:
            raise RuleInvalid(
                f"{location}: {item!r} is not a valid {_FIELD_NAMES[index]} ({low}-{high})", location=location
            ) from None
    return frozenset(values)


def _item(item: str, index: int, low: int, high: int) -> set[int]:
    span, _, step_text = item.partition("/")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(item)
    if span == "*":
        start, end = low, high
    else:
        first, _, last = span.partition("-")
        start = _number(first, index)
        end = _number(last, index) if last else (high if step_text else start)
    if not low <= start <= end <= high:
        raise ValueError(item)
    return set(range(start, end + 1, step))


def _number(text: str, index: int) -> int:
    names = _NAMES.get(index, {})
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError(text)
    return int(text)
