"""Streaks: consecutive periods (days, weeks or months in the programme's timezone) with a qualifying event.

A streak is derived from the periods in which the member had a qualifying event that still counts (a fully
refunded purchase does not). Consecutive periods make a run; a gap of one period is bridged once per run when
the streak allows a freeze, and any other gap starts a new run (the streak broke). Milestones (e.g. 3, 7, 30)
reward a run when it reaches their length; a new run can reach them again.

Definition format:

    {"code": "weekly-visit", "name": {"de": "Jede Woche", "en": "Every week"}, "period": "week",
     "event": "purchase", "filter": "purchase.total >= 1000", "freeze": true,
     "milestones": [{"length": 3, "reward": {"points": 50}}, {"length": 7, "reward": {"badge": "regular"}}]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from treue.domain.errors import GamificationInvalid, RuleInvalid
from treue.domain.gamification.missions import Reward, code_of, event_of, filter_of, reward_of, texts
from treue.domain.gamification.periods import Unit, period_bounds, period_key
from treue.domain.rules.conditions import Condition
from treue.domain.rules.spec import Spec, join, refuse

MAX_MILESTONE = 10_000


@dataclass(frozen=True, slots=True)
class Milestone:
    length: int
    reward: Reward


@dataclass(frozen=True, slots=True)
class Streak:
    id: Any
    code: str
    name: Mapping[str, str]
    description: Mapping[str, str]
    unit: Unit
    event: str
    filter: Condition | None
    milestones: tuple[Milestone, ...]
    freeze: bool = False
    active: bool = True

    def document(self) -> dict[str, Any]:
        return {"code": self.code, "name": dict(self.name), "description": dict(self.description),
                "period": self.unit.value, "event": self.event,
                "filter": self.filter.source if self.filter else None, "freeze": self.freeze,
                "milestones": [{"length": m.length, "reward": m.reward.to_json()} for m in self.milestones]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive qualifying periods [start .. last]; `length` counts the periods with an event (a frozen
    period bridges the gap but does not add to the length)."""

    start: int
    last: int
    length: int
    frozen: int | None = None  # the period the freeze bridged

    @property
    def freeze_used(self) -> bool:
        return self.frozen is not None


@dataclass(frozen=True, slots=True)
class StreakState:
    length: int  # the current streak; 0 when broken or never started
    run: Run | None  # the run the current streak is (None: broken or none)
    best: int
    freeze_available: bool
    at_risk: bool  # the current period has no event yet: one is needed to keep the streak


def runs(indices: Iterable[int], freeze: bool) -> list[Run]:
    """The runs of a set of qualifying period numbers, oldest first."""
    found: list[Run] = []
    for index in sorted(set(indices)):
        if found:
            run = found[-1]
            gap = index - run.last
            if gap == 1:
                found[-1] = Run(run.start, index, run.length + 1, run.frozen)
                continue
            if gap == 2 and freeze and not run.freeze_used:
                found[-1] = Run(run.start, index, run.length + 1, index - 1)
                continue
        found.append(Run(index, index, 1))
    return found


def alive(run: Run, now_index: int, freeze: bool) -> bool:
    """Whether the run can still go on at period `now_index` (it had this or the previous period, or the
    freeze can still bridge the previous one)."""
    if run.last >= now_index - 1:
        return True
    return freeze and not run.freeze_used and run.last == now_index - 2


def state(indices: Iterable[int], now_index: int, freeze: bool) -> StreakState:
    found = runs((i for i in indices if i <= now_index), freeze)
    best = max((r.length for r in found), default=0)
    current = found[-1] if found and alive(found[-1], now_index, freeze) else None
    if current is None:
        return StreakState(0, None, best, freeze, False)
    return StreakState(current.length, current, best, freeze and not current.freeze_used, current.last < now_index)


def milestone_key(run: Run, milestone: Milestone) -> str:
    """A milestone is rewarded once per run: the key names the run by its first period."""
    return f"{run.start}:{milestone.length}"


def reached(run: Run, milestones: Iterable[Milestone]) -> list[Milestone]:
    return [m for m in milestones if m.length <= run.length]


def period_view(unit: Unit, index: int, tz: ZoneInfo) -> dict[str, Any]:
    start, end = period_bounds(unit, index, tz)
    return {"period": period_key(unit, index), "start": start.astimezone(tz).isoformat(),
            "end": end.astimezone(tz).isoformat()}  # fmt: skip


def parse_streak(values: Mapping[str, Any], *, streak_id: Any, active: bool = True) -> Streak:
    try:
        spec = Spec(values).only("code", "name", "description", "period", "event", "filter", "freeze", "milestones",
                                 "active")  # fmt: skip
        code = code_of(spec)
        try:
            unit = Unit(spec.text("period", "day"))
        except ValueError:
            raise refuse(spec.at("period"), "day, week or month") from None
        event = event_of(spec)
        assert event is not None
        milestones: list[Milestone] = []
        for index, item in enumerate(spec.items("milestones", [])):
            sub = Spec(item, join(spec.at("milestones"), index)).only("length", "reward")
            length: int = sub.integer("length", minimum=1, maximum=MAX_MILESTONE)
            reward = reward_of(sub, required=True)
            if reward.empty:
                raise refuse(sub.at("reward"), "give points, a coupon and/or a badge")
            if any(m.length == length for m in milestones):
                raise refuse(sub.at("length"), f"a milestone of {length} is given twice")
            milestones.append(Milestone(length, reward))
        return Streak(streak_id, code, texts(spec, "name", required=True), texts(spec, "description", required=False),
                      unit, event, filter_of(spec), tuple(sorted(milestones, key=lambda m: m.length)),
                      spec.boolean("freeze", False), spec.boolean("active", active))  # fmt: skip
    except RuleInvalid as error:
        raise GamificationInvalid(error.detail, **error.extra) from None
