"""Missions (challenges): a goal counted or summed over a member's recorded events within a window.

A mission's progress is never a stored counter: it is the sum of the member's contributions in the window
(one row per counted event, and a negative row when a refund takes one back), so it can be recomputed and a
refunded purchase stops counting. Definition format (API and CLI):

    {"code": "may-3x", "name": {"de": "3 Einkäufe im Mai", "en": "3 purchases in May"},
     "description": {"de": "...", "en": "..."},
     "goal": {"type": "count", "target": 3, "event": "purchase", "filter": "purchase.total >= 2000"},
     "window": {"type": "month"},                       # week | month | days (+ "days": N) | campaign
     "starts": "2026-05-01", "ends": "2026-05-31",      # local dates (ends inclusive) or ISO instants
     "opt_in": true, "audience": "member.tier == 'gold'", "repeatable": false,
     "reward": {"points": 500, "coupon": "WELCOME10", "badge": "may-hero"}}

A sum goal adds up the purchase totals: `{"type": "sum", "target": "100.00", "event": "purchase"}`. A goal
without an `event` moves only by the rules' `mission_progress` effect (steps).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from treue.domain.errors import GamificationInvalid, InvalidInput, RuleInvalid
from treue.domain.gamification.periods import Window, WindowKind, window_at
from treue.domain.money import Money
from treue.domain.rules.conditions import AUDIENCE_VARIABLES, Condition, condition
from treue.domain.rules.context import EventFacts
from treue.domain.rules.spec import Spec, refuse

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
LOCALES = ("de", "en")
MAX_TARGET = 10**12
MAX_POINTS = 10**9
MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
}  # fmt: skip


class GoalKind(enum.StrEnum):
    COUNT = "count"  # matching events (or rule steps)
    SUM = "sum"  # the amount of matching purchases, in minor units


@dataclass(frozen=True, slots=True)
class Goal:
    kind: GoalKind
    target: int  # events, or minor units for a sum
    event: str | None  # "purchase", a custom event name, or None (moved only by rules)
    filter: Condition | None = None
    unit: Mapping[str, str] = field(default_factory=dict)

    def amount_of(self, facts: EventFacts) -> int:
        """What one matching event contributes."""
        if self.kind is GoalKind.COUNT:
            return 1
        return facts.purchase.total.minor if facts.purchase is not None else 0


@dataclass(frozen=True, slots=True)
class Reward:
    points: int = 0
    coupon: str | None = None
    badge: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.points or self.coupon or self.badge)

    def to_json(self) -> dict[str, Any]:
        return {"points": self.points, "coupon": self.coupon, "badge": self.badge}


@dataclass(frozen=True, slots=True)
class Mission:
    id: Any  # UUID; kept loose so the domain does not care how ids are made
    code: str
    name: Mapping[str, str]
    description: Mapping[str, str]
    goal: Goal
    window: WindowKind
    days: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    opt_in: bool = False
    audience: Condition | None = None
    repeatable: bool = False
    reward: Reward = Reward()
    active: bool = True

    def in_force(self, instant: datetime) -> bool:
        if not self.active:
            return False
        return (self.starts_at is None or instant >= self.starts_at) and (
            self.ends_at is None or instant < self.ends_at
        )

    def window_at(self, instant: datetime, tz: ZoneInfo, opted_in_at: datetime | None = None) -> Window | None:
        if self.opt_in and opted_in_at is None:
            return None
        return window_at(self.window, instant, tz, days=self.days, starts_at=self.starts_at, ends_at=self.ends_at,
                         opted_in_at=opted_in_at)  # fmt: skip

    def completion_key(self, window: Window) -> str:
        """Completions are unique per member and key: a repeatable mission once per window, else once."""
        return window.key if self.repeatable else "once"

    def document(self, currency: str) -> dict[str, Any]:
        """The definition as stored (and shown): `parse_mission` reads it back to this mission."""
        target: Any = Money(self.goal.target, currency).format() if self.goal.kind is GoalKind.SUM else self.goal.target
        return {
            "code": self.code, "name": dict(self.name), "description": dict(self.description),
            "goal": {"type": self.goal.kind.value, "target": target, "event": self.goal.event,
                     "filter": self.goal.filter.source if self.goal.filter else None, "unit": dict(self.goal.unit)},
            "window": {"type": self.window.value, "days": self.days},
            "starts": self.starts_at.isoformat() if self.starts_at else None,
            "ends": self.ends_at.isoformat() if self.ends_at else None,
            "opt_in": self.opt_in, "audience": self.audience.source if self.audience else None,
            "repeatable": self.repeatable, "reward": self.reward.to_json(),
        }  # fmt: skip


def localised(texts: Mapping[str, str], locale: str) -> str:
    return texts.get(locale) or texts.get("en") or texts.get("de") or next(iter(texts.values()), "")


# -- parsing -------------------------------------------------------------------------------------------
def instant_or_day(value: Any, location: str, tz: ZoneInfo, *, end: bool) -> datetime:
    """An ISO 8601 instant, or a local date: its start (or, for an end, the start of the next day)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise refuse(location, "an instant needs a timezone offset")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise refuse(location, 'must be a date "YYYY-MM-DD" or an ISO 8601 instant')
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + (timedelta(days=1) if end else timedelta())
            return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise refuse(location, f"{value!r} is not a date or an ISO 8601 instant") from None
    if instant.tzinfo is None:
        raise refuse(location, "an instant needs a timezone offset")
    return instant.astimezone(UTC)


def texts(spec: Spec, key: str, *, required: bool) -> dict[str, str]:
    if not spec.has(key):
        if required:
            raise refuse(spec.at(key), 'is required: {"de": "...", "en": "..."}')
        return {}
    sub = Spec(spec.raw(key), spec.at(key)).only(*LOCALES)
    found = {locale: sub.text(locale) for locale in LOCALES if sub.has(locale)}
    if required and not found:
        raise refuse(spec.at(key), "needs a German or an English text")
    for locale, text in found.items():
        if len(text) > 500:
            raise refuse(sub.at(locale), "is longer than 500 characters")
    return found


def code_of(spec: Spec, key: str = "code") -> str:
    value: str = spec.text(key)
    if not CODE.match(value):
        raise refuse(spec.at(key), "lower-case letters, digits, - and _, at most 64 (e.g. may-3x)")
    return value


def event_of(spec: Spec, key: str = "event", *, required: bool = True) -> str | None:
    if not spec.has(key):
        if required:
            raise refuse(spec.at(key), 'is required ("purchase" or a custom event such as review.created)')
        return None
    value: str = spec.text(key)
    if not EVENT_NAME.match(value) or value in ("refund", "schedule", "birthday", "membership_anniversary"):
        raise refuse(spec.at(key), '"purchase" or a custom event name such as review.created')
    return value


def filter_of(spec: Spec, key: str = "filter") -> Condition | None:
    return condition(spec.text(key), spec.at(key)) if spec.has(key) else None


def audience_of(spec: Spec, key: str = "audience") -> Condition | None:
    return condition(spec.text(key), spec.at(key), AUDIENCE_VARIABLES) if spec.has(key) else None


def reward_of(spec: Spec, key: str = "reward", *, required: bool = False) -> Reward:
    if not spec.has(key):
        if required:
            raise refuse(spec.at(key), "is required (points, coupon and/or badge)")
        return Reward()
    sub = Spec(spec.raw(key), spec.at(key)).only("points", "coupon", "badge")
    points: int = sub.integer("points", 0, minimum=0, maximum=MAX_POINTS)
    coupon: str | None = sub.text("coupon") if sub.has("coupon") else None
    badge = code_of(sub, "badge") if sub.has("badge") else None
    return Reward(points, coupon, badge)


def parse_mission(values: Mapping[str, Any], *, mission_id: Any, currency: str, tz: ZoneInfo,
                  active: bool = True) -> Mission:  # fmt: skip
    """A mission from its definition; refused (GamificationInvalid, with `location`) when not sound."""
    try:
        return _parse_mission(Spec(values), mission_id, currency, tz, active)
    except RuleInvalid as error:
        raise GamificationInvalid(error.detail, **error.extra) from None


def _parse_mission(spec: Spec, mission_id: Any, currency: str, tz: ZoneInfo, active: bool) -> Mission:
    spec.only("code", "name", "description", "goal", "window", "starts", "ends", "opt_in", "audience",
              "repeatable", "reward", "active")  # fmt: skip
    code = code_of(spec)
    goal_spec = spec.sub("goal").only("type", "target", "event", "filter", "unit")
    try:
        kind = GoalKind(goal_spec.text("type", "count"))
    except ValueError:
        raise refuse(goal_spec.at("type"), "count or sum") from None
    event = event_of(goal_spec, required=kind is GoalKind.SUM)
    if kind is GoalKind.SUM:
        if event != "purchase":
            raise refuse(goal_spec.at("event"), "a sum goal adds up purchases: the event must be purchase")
        try:
            target = Money.parse(goal_spec.raw("target"), currency).minor
        except InvalidInput as error:
            raise refuse(goal_spec.at("target"), error.detail) from None
        if not 0 < target <= MAX_TARGET:
            raise refuse(goal_spec.at("target"), 'must be a positive amount such as "100.00"')
    else:
        target = goal_spec.integer("target", minimum=1, maximum=MAX_TARGET)
    filter_ = filter_of(goal_spec)
    if filter_ is not None and event is None:
        raise refuse(goal_spec.at("filter"), "a filter needs an event")
    unit = texts(goal_spec, "unit", required=False)
    goal = Goal(kind, target, event, filter_, unit)
    window_spec = spec.sub("window").only("type", "days")
    try:
        window = WindowKind(window_spec.text("type", "month"))
    except ValueError:
        raise refuse(window_spec.at("type"), "week, month, days or campaign") from None
    days = None
    starts = instant_or_day(spec.raw("starts"), spec.at("starts"), tz, end=False) if spec.has("starts") else None
    ends = instant_or_day(spec.raw("ends"), spec.at("ends"), tz, end=True) if spec.has("ends") else None
    if starts is not None and ends is not None and ends <= starts:
        raise refuse(spec.at("ends"), "must be after starts")
    opt_in = spec.boolean("opt_in", False)
    if window is WindowKind.DAYS:
        days = window_spec.integer("days", minimum=1, maximum=3660)
        if not opt_in:
            raise refuse(spec.at("opt_in"), "a window of N days runs from the member's opt-in: opt_in must be true")
    elif window_spec.has("days"):
        raise refuse(window_spec.at("days"), "only a window of type days has days")
    if window is WindowKind.CAMPAIGN and (starts is None or ends is None):
        raise refuse(spec.at("starts"), "a campaign window needs starts and ends")
    repeatable = spec.boolean("repeatable", False)
    if repeatable and window is WindowKind.CAMPAIGN:
        raise refuse(spec.at("repeatable"), "a campaign has one window: it cannot repeat")
    reward = reward_of(spec, required=True)
    if reward.empty:
        raise refuse(spec.at("reward"), "give points, a coupon and/or a badge")
    return Mission(
        mission_id, code, texts(spec, "name", required=True), texts(spec, "description", required=False), goal,
        window, days, starts, ends, opt_in, audience_of(spec), repeatable, reward, spec.boolean("active", active),
    )  # fmt: skip


# -- the member's view ---------------------------------------------------------------------------------
_UNITS = {"purchase": {"en": "purchases", "de": "Einkäufen"}, None: {"en": "steps", "de": "Schritten"}}


def _amount(value: int, mission: Mission, currency: str, locale: str) -> str:
    if mission.goal.kind is GoalKind.COUNT:
        return str(value)
    text = Money(value, currency).format()
    return text.replace(".", ",") if locale == "de" else text


def progress_label(mission: Mission, current: int, window: Window | None, tz: ZoneInfo, currency: str,
                   locale: str) -> str:  # fmt: skip
    """ "2 of 3 purchases in May 2026" / "2 von 3 Einkäufen im Mai 2026"."""
    locale = locale if locale in LOCALES else "en"
    shown = min(current, mission.goal.target) if current >= 0 else 0
    of = "von" if locale == "de" else "of"
    if mission.goal.kind is GoalKind.SUM:
        text = f"{_amount(shown, mission, currency, locale)} {of} {_amount(mission.goal.target, mission, currency, locale)} {currency}"
    else:
        units = mission.goal.unit or _UNITS.get(mission.goal.event) or {"en": "times", "de": "Mal"}
        text = f"{shown} {of} {mission.goal.target} {localised(units, locale)}"
    return text + window_phrase(mission.window, window, tz, locale)


def window_phrase(kind: WindowKind, window: Window | None, tz: ZoneInfo, locale: str) -> str:
    if window is None:
        return ""
    first = window.local_start(tz).date()
    if kind is WindowKind.MONTH and first.day == 1:
        month = MONTHS[locale][first.month - 1]
        return f" im {month} {first.year}" if locale == "de" else f" in {month} {first.year}"
    if kind is WindowKind.WEEK and first.weekday() == 0:
        year, week, _ = first.isocalendar()
        return f" in KW {week}/{year}" if locale == "de" else f" in week {week} of {year}"
    last = window.local_last_day(tz)
    month = MONTHS[locale][last.month - 1]
    return f" bis {last.day}. {month} {last.year}" if locale == "de" else f" until {last.day} {month} {last.year}"
