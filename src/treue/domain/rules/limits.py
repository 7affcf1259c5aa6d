"""Limits on what rules award: caps per member and period, campaign budgets, a minimum purchase.

The evaluator cannot read storage. It is given a `LimitState` - a snapshot of what was already awarded
for the keys it needs (see `usage_keys`) and of each campaign's spent budget - and returns the usage
deltas to persist with the awards. Period keys are calendar periods in the programme's timezone at the
event's time: day `2026-03-07`, ISO week `2026-W10`, month `2026-03`, year `2026`, `lifetime`.

Caps of a rule count that rule's awards to one member; caps of a campaign count all its rules' awards
to one member. A campaign budget counts points given to all members.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from treue.domain.errors import InvalidInput
from treue.domain.money import Money
from treue.domain.rules.spec import Spec, refuse


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    LIFETIME = "lifetime"


def period_key(period: Period, local: datetime) -> str:
    """The calendar period containing `local` (a time already in the programme's timezone)."""
    if period is Period.DAY:
        return local.date().isoformat()
    if period is Period.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.MONTH:
        return f"{local.year:04d}-{local.month:02d}"
    if period is Period.YEAR:
        return f"{local.year:04d}"
    return "lifetime"


class Scope(enum.StrEnum):
    RULE = "rule"
    CAMPAIGN = "campaign"


@dataclass(frozen=True, slots=True)
class Cap:
    """At most `points` points, or at most `awards` awards, per member and period - and, with a `key` (an event
    attribute such as `event.attributes.product`), per value of that attribute: "one review reward per product"."""

    per: Period
    points: int | None = None
    awards: int | None = None
    key: str | None = None  # the attribute's name in event.attributes

    def describe(self) -> str:
        what = f"{self.points} point(s)" if self.points is not None else f"{self.awards} award(s)"
        each = f" per event.attributes.{self.key}" if self.key is not None else ""
        return f"at most {what} per member{each}" + ("" if self.per is Period.LIFETIME else f" per {self.per.value}")


@dataclass(frozen=True, slots=True)
class Limits:
    caps: tuple[Cap, ...] = ()
    min_purchase_minor: int | None = None


@dataclass(frozen=True, slots=True, order=True)
class UsageKey:
    """What one member was awarded by one rule or campaign in one period."""

    scope: Scope
    owner: str  # rule id or campaign id
    period: Period
    key: str  # the period key, e.g. "2026-03"


@dataclass(frozen=True, slots=True)
class Usage:
    points: int = 0
    awards: int = 0


@dataclass(frozen=True, slots=True)
class LimitState:
    """A snapshot for one member: usage per key (missing keys: nothing yet) and spent budget per campaign."""

    usage: Mapping[UsageKey, Usage] = field(default_factory=dict)
    budget_spent: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UsageDelta:
    key: UsageKey
    points: int
    awards: int


@dataclass(frozen=True, slots=True)
class BudgetDelta:
    campaign: str
    points: int


@dataclass(frozen=True, slots=True)
class Bound:
    """A cap applied at one event: the cap and the usage key it counts against."""

    cap: Cap
    key: UsageKey


def bounds(caps: Iterable[Cap], scope: Scope, owner: str, local: datetime,
           attributes: Mapping[str, Any] | None = None) -> tuple[Bound, ...]:  # fmt: skip
    """The usage key each cap counts against at an event at `local` with these `attributes`."""
    return tuple(Bound(cap, UsageKey(scope, owner, cap.per, cap_key(cap, local, attributes))) for cap in caps)


def cap_key(cap: Cap, local: datetime, attributes: Mapping[str, Any] | None) -> str:
    """The period key; for a keyed cap a digest of period and attribute value (the stored key has 16
    characters: `k` + 15 of base32, 75 bits, so that two products of one member never share a counter)."""
    period = period_key(cap.per, local)
    if cap.key is None:
        return period
    value = (attributes or {}).get(cap.key)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{period}|{text}".encode()).digest()
    return "k" + base64.b32encode(digest).decode()[:15].lower()


@dataclass(frozen=True, slots=True)
class Budget:
    campaign: str
    total: int


class Room(NamedTuple):
    """What limits still allow: an award at all, and at most `points` points (None: unlimited)."""

    allowed: bool
    points: int | None
    why: str = ""


class Tracker:
    """Usage during one evaluation: the snapshot plus what this evaluation has awarded so far."""

    def __init__(self, state: LimitState) -> None:
        self.state = state
        self.usage: dict[UsageKey, Usage] = {}
        self.spent: dict[str, int] = {}

    def used(self, key: UsageKey, *, with_deltas: bool = True) -> Usage:
        before = self.state.usage.get(key, Usage())
        delta = self.usage.get(key) if with_deltas else None
        return before if delta is None else Usage(before.points + delta.points, before.awards + delta.awards)

    def room(self, limits: Iterable[Bound], budget: Budget | None, *, with_deltas: bool = True) -> Room:
        points: int | None = None
        why = ""
        for bound in limits:
            used = self.used(bound.key, with_deltas=with_deltas)
            if bound.cap.awards is not None and used.awards >= bound.cap.awards:
                return Room(False, 0, f"limit reached: {bound.cap.describe()} ({bound.key.key})")
            if bound.cap.points is not None:
                left = max(bound.cap.points - used.points, 0)
                if points is None or left < points:
                    points, why = left, f"{bound.cap.describe()} ({bound.key.key}, {left} left)"
        if budget is not None:
            spent = self.state.budget_spent.get(budget.campaign, 0)
            if with_deltas:
                spent += self.spent.get(budget.campaign, 0)
            left = max(budget.total - spent, 0)
            if points is None or left < points:
                points, why = left, f"campaign budget of {budget.total} point(s) ({left} left)"
        return Room(True, points, why)

    def record(self, limits: Iterable[Bound], budget: Budget | None, points: int) -> None:
        for bound in limits:
            delta = self.usage.get(bound.key, Usage())
            self.usage[bound.key] = Usage(delta.points + points, delta.awards + 1)
        if budget is not None and points:
            self.spent[budget.campaign] = self.spent.get(budget.campaign, 0) + points

    def usage_deltas(self) -> tuple[UsageDelta, ...]:
        return tuple(UsageDelta(key, u.points, u.awards) for key, u in sorted(self.usage.items()))

    def budget_deltas(self) -> tuple[BudgetDelta, ...]:
        return tuple(BudgetDelta(c, p) for c, p in sorted(self.spent.items()))


_CAP_FIELDS = ("points", "awards", "per", "key")
_ATTRIBUTE = re.compile(r"^event\.attributes\.([A-Za-z_][A-Za-z0-9_]{0,63})$")


def parse_caps(spec: Spec, key: str = "per_member") -> tuple[Cap, ...]:
    caps: list[Cap] = []
    for index, item in enumerate(spec.items(key, [])):
        cap = Spec(item, f"{spec.at(key)}[{index}]").only(*_CAP_FIELDS)
        try:
            per = Period(cap.text("per"))
        except ValueError:
            raise refuse(cap.at("per"), f"must be one of {', '.join(p.value for p in Period)}") from None
        if cap.has("points") == cap.has("awards"):
            raise refuse(cap.location, "give either points or awards")
        points = cap.integer("points", None, minimum=1, maximum=10**9)
        awards = cap.integer("awards", None, minimum=1, maximum=10**6)
        attribute: str | None = None
        if cap.has("key"):
            found = _ATTRIBUTE.match(cap.text("key"))
            if found is None:
                raise refuse(cap.at("key"), "must name an event attribute, such as event.attributes.product")
            attribute = found.group(1)
        caps.append(Cap(per, points, awards, attribute))
    if spec.boolean("once_per_member", False):
        caps.append(Cap(Period.LIFETIME, awards=1))
    return tuple(caps)


def parse_limits(spec: Spec, currency: str, *, purchase: bool) -> Limits:
    """`{"per_member": [{"points": 500, "per": "month"}, {"awards": 1, "per": "week"},
    {"awards": 1, "per": "lifetime", "key": "event.attributes.product"}], "once_per_member": true,
    "min_purchase": "20.00"}`"""
    spec.only("per_member", "once_per_member", "min_purchase")
    minimum: int | None = None
    if spec.has("min_purchase"):
        if not purchase:
            raise refuse(spec.at("min_purchase"), "only rules triggered by a purchase can have a minimum purchase")
        value = spec.raw("min_purchase")
        try:
            minimum = Money.parse(value, currency).minor
        except InvalidInput as error:
            raise refuse(spec.at("min_purchase"), error.detail) from None
        if minimum < 0:
            raise refuse(spec.at("min_purchase"), "must not be negative")
    return Limits(parse_caps(spec), minimum)
