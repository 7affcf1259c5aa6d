"""A programme's gamification configuration, as the purchase and event use cases need it: what runs for which
event. Built once per cache period; an empty configuration lets a programme that uses none of it skip all work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from treue.domain.gamification.instant_wins import InstantWin
from treue.domain.gamification.missions import Mission
from treue.domain.gamification.streaks import Streak
from treue.domain.rules.conditions import Needs, merge_needs


@dataclass(frozen=True)
class Triggered:
    """What one event may move, before conditions run."""

    missions: tuple[Mission, ...] = ()
    streaks: tuple[Streak, ...] = ()
    instant_wins: tuple[InstantWin, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.missions or self.streaks or self.instant_wins)

    @property
    def needs(self) -> Needs:
        """What of the event's CEL context the filters and audiences read."""
        conditions = [m.goal.filter for m in self.missions] + [m.audience for m in self.missions]
        conditions += [s.filter for s in self.streaks] + [w.filter for w in self.instant_wins]
        return merge_needs(c.needs for c in conditions if c is not None)

    @property
    def reads_member(self) -> bool:
        return bool(self.needs.get("member"))


@dataclass(frozen=True)
class Config:
    missions: tuple[Mission, ...] = ()
    streaks: tuple[Streak, ...] = ()
    instant_wins: tuple[InstantWin, ...] = ()
    hook_missions: dict[str, Mission] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.missions or self.streaks or self.instant_wins)

    @property
    def tracks_refunds(self) -> bool:
        """Whether a refund may take back progress (missions and streaks count purchases and rule steps)."""
        return bool(self.missions or self.streaks)

    def triggered(self, event: str, at: datetime) -> Triggered:
        if self.empty:
            return Triggered()
        return Triggered(
            tuple(m for m in self.missions if m.goal.event == event and m.in_force(at)),
            tuple(s for s in self.streaks if s.event == event and s.active),
            tuple(w for w in self.instant_wins if w.event == event and w.in_force(at)),
        )


def build_config(missions: list[Mission], streaks: list[Streak], instant_wins: list[InstantWin]) -> Config:
    active = tuple(m for m in missions if m.active)
    return Config(active, tuple(s for s in streaks if s.active), tuple(w for w in instant_wins if w.active),
                  {m.code: m for m in active})  # fmt: skip
