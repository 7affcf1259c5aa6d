"""The result of evaluating rules: points with their explanation, ready to post."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Contribution:
    """One rule's part of an earn: which rule, how many points, and a sentence saying why.

    Rules of the rules engine also say which version of the rule gave them, the points a multiplier
    was applied to (`base`) and its factor, their campaign, and when pending points become available
    (`available_at`; None: the programme's default pending window).

    Not frozen, though nothing changes one once made: one is made per awarding rule per event, and a frozen
    dataclass costs four times as much to create.
    """

    rule: str
    points: int
    reason: str
    pending_days: int | None = None  # None: the programme's default
    details: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    base: int | None = None
    multiplier: str | None = None
    campaign: str | None = None
    pending: str | None = None  # the rule's pending duration as written ("14D", "1M")
    available_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rule": self.rule, "points": self.points, "reason": self.reason}
        if self.pending_days is not None:
            data["pending_days"] = self.pending_days
        if self.details:
            data["details"] = self.details
        if self.version is not None:
            data["version"] = self.version
        if self.base is not None:
            data["base"] = self.base
        if self.multiplier is not None:
            data["multiplier"] = self.multiplier
        if self.campaign is not None:
            data["campaign"] = self.campaign
        if self.pending is not None:
            data["pending"] = self.pending
        if self.available_at is not None:
            data["available_at"] = self.available_at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class EarnOutcome:
    contributions: tuple[Contribution, ...] = ()

    @property
    def points(self) -> int:
        return sum(c.points for c in self.contributions)

    def explanation(self) -> dict[str, Any]:
        return {"points": self.points, "rules": [c.as_dict() for c in self.contributions if c.points]}
