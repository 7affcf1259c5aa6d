"""Instant wins ("Sofortbelohnung"): a qualifying event enters a draw for a prize.

Each prize has a probability in percent (exact decimals, at most 4 places: "0.0001" is one in a million);
what the prizes leave to 100 % is "no win". The draw takes one uniform random number in [0, 1,000,000) from an
injected chooser (`secrets.randbelow` in production, a fixed one in tests) and walks the cumulative table in
the prizes' order; the number, the table's version and the outcome are recorded for audit. A prize whose budget
(total or today's cap) or the campaign's points budget is exhausted is not given: the draw is recorded as no
win with the reason, never as a win that cannot be paid.

Definition format:

    {"code": "spring-spin", "name": {"de": "Frühlingsgewinn", "en": "Spring spin"}, "event": "purchase",
     "filter": "purchase.total >= 2000", "starts": "2026-03-01", "ends": "2026-03-31", "points_budget": 100000,
     "prizes": [{"code": "p100", "probability": "5", "points": 100, "total": 500, "daily_cap": 50},
                {"code": "coffee", "probability": "1.5", "coupon": "FREE-COFFEE"},
                {"code": "lucky", "probability": "0.1", "badge": "lucky"}]}
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from treue.domain.errors import GamificationInvalid, InvariantViolated, RuleInvalid
from treue.domain.gamification.missions import (
    code_of,
    event_of,
    filter_of,
    instant_or_day,
    texts,
)
from treue.domain.rules.conditions import Condition
from treue.domain.rules.spec import Spec, decimal_text, exact_decimal, join, refuse

SCALE = 1_000_000  # probabilities in parts per million
MAX_PRIZES = 50
Chooser = Callable[[int], int]  # chooser(n) -> a uniform integer in [0, n)


class PrizeKind(enum.StrEnum):
    POINTS = "points"
    COUPON = "coupon"
    BADGE = "badge"


@dataclass(frozen=True, slots=True)
class Prize:
    code: str
    kind: PrizeKind
    ppm: int  # chance in parts per million
    points: int = 0
    coupon: str | None = None
    badge: str | None = None
    total: int | None = None  # how many of this prize the campaign gives at most
    daily_cap: int | None = None  # how many per local day at most

    @property
    def probability(self) -> str:
        return decimal_text(Fraction(self.ppm * 100, SCALE))

    def document(self) -> dict[str, Any]:
        found: dict[str, Any] = {"code": self.code, "probability": self.probability}
        found[self.kind.value] = {PrizeKind.POINTS: self.points, PrizeKind.COUPON: self.coupon,
                                  PrizeKind.BADGE: self.badge}[self.kind]  # fmt: skip
        return found | {"total": self.total, "daily_cap": self.daily_cap}


@dataclass(frozen=True, slots=True)
class InstantWin:
    id: Any
    code: str
    name: Mapping[str, str]
    event: str
    filter: Condition | None
    starts_at: datetime | None
    ends_at: datetime | None
    prizes: tuple[Prize, ...]
    points_budget: int | None = None
    odds_version: int = 1
    active: bool = True

    def in_force(self, instant: datetime) -> bool:
        return self.active and (self.starts_at is None or instant >= self.starts_at) and (
            self.ends_at is None or instant < self.ends_at)  # fmt: skip

    def prize(self, code: str) -> Prize | None:
        return next((p for p in self.prizes if p.code == code), None)

    def odds(self) -> list[dict[str, Any]]:
        """The odds table as recorded per version: each prize's range of numbers."""
        return [{"prize": row["prize"], "from": row["from"], "to": row["to"]} for row in self.odds_table()]

    def odds_table(self) -> list[dict[str, Any]]:
        """The cumulative table a draw walks: prize p wins for numbers in [from, to)."""
        table, low = [], 0
        for prize in self.prizes:
            table.append({"prize": prize.code, "from": low, "to": low + prize.ppm})
            low += prize.ppm
        table.append({"prize": None, "from": low, "to": SCALE})
        return table

    def document(self) -> dict[str, Any]:
        """The definition as stored: `parse_instant_win` reads it back to this campaign."""
        return {"code": self.code, "name": dict(self.name), "event": self.event,
                "filter": self.filter.source if self.filter else None,
                "starts": self.starts_at.isoformat() if self.starts_at else None,
                "ends": self.ends_at.isoformat() if self.ends_at else None, "points_budget": self.points_budget,
                "prizes": [p.document() for p in self.prizes]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DrawResult:
    number: int  # the random number in [0, SCALE)
    prize: Prize | None  # None: no win


def draw(prizes: tuple[Prize, ...], chooser: Chooser) -> DrawResult:
    """One draw: a uniform number from `chooser`, mapped onto the cumulative prize table."""
    number = chooser(SCALE)
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < SCALE:
        raise InvariantViolated(f"the chooser gave {number!r}, not a whole number in [0, {SCALE})")
    low = 0
    for prize in prizes:
        if low <= number < low + prize.ppm:
            return DrawResult(number, prize)
        low += prize.ppm
    return DrawResult(number, None)


def probability_ppm(value: Any, location: str) -> int:
    """A probability in percent as an exact decimal ("2.5") -> parts per million (25000)."""
    percent = exact_decimal(value, location)
    ppm = percent * SCALE / 100
    if ppm.denominator != 1:
        raise refuse(location, "at most 4 decimal places (0.0001 % is one in a million)")
    if not 0 < ppm <= SCALE:
        raise refuse(location, "more than 0 and at most 100 (percent)")
    return int(ppm)


def parse_instant_win(values: Mapping[str, Any], *, campaign_id: Any, tz: ZoneInfo, active: bool = True,
                      odds_version: int = 1) -> InstantWin:  # fmt: skip
    try:
        spec = Spec(values).only("code", "name", "event", "filter", "starts", "ends", "points_budget", "prizes",
                                 "active")  # fmt: skip
        starts = instant_or_day(spec.raw("starts"), spec.at("starts"), tz, end=False) if spec.has("starts") else None
        ends = instant_or_day(spec.raw("ends"), spec.at("ends"), tz, end=True) if spec.has("ends") else None
        if starts is not None and ends is not None and ends <= starts:
            raise refuse(spec.at("ends"), "must be after starts")
        items = spec.items("prizes")
        if not 1 <= len(items) <= MAX_PRIZES:
            raise refuse(spec.at("prizes"), f"give 1 to {MAX_PRIZES} prizes")
        prizes: list[Prize] = []
        for index, item in enumerate(items):
            prizes.append(_prize(Spec(item, join(spec.at("prizes"), index)), {p.code for p in prizes}))
        if sum(p.ppm for p in prizes) > SCALE:
            raise refuse(spec.at("prizes"), "the probabilities add up to more than 100 %")
        budget: int | None = spec.integer("points_budget", minimum=1) if spec.has("points_budget") else None
        event = event_of(spec)
        assert event is not None
        return InstantWin(campaign_id, code_of(spec), texts(spec, "name", required=True), event, filter_of(spec),
                          starts, ends, tuple(prizes), budget, odds_version, spec.boolean("active", active))  # fmt: skip
    except RuleInvalid as error:
        raise GamificationInvalid(error.detail, **error.extra) from None


def _prize(spec: Spec, taken: set[str]) -> Prize:
    spec.only("code", "probability", "points", "coupon", "badge", "total", "daily_cap")
    code = code_of(spec)
    if code in taken:
        raise refuse(spec.at("code"), f"prize {code!r} is given twice")
    given = [k for k in ("points", "coupon", "badge") if spec.has(k)]
    if len(given) != 1:
        raise refuse(spec.location, "a prize is one of points, coupon or badge")
    kind = PrizeKind(given[0])
    points: int = spec.integer("points", 0, minimum=1, maximum=10**9) if kind is PrizeKind.POINTS else 0
    total: int | None = spec.integer("total", minimum=0) if spec.has("total") else None
    cap: int | None = spec.integer("daily_cap", minimum=0) if spec.has("daily_cap") else None
    return Prize(code, kind, probability_ppm(spec.raw("probability"), spec.at("probability")), points,
                 spec.text("coupon") if kind is PrizeKind.COUPON else None,
                 code_of(spec, "badge") if kind is PrizeKind.BADGE else None, total, cap)  # fmt: skip
