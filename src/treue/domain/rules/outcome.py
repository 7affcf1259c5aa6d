"""The result of evaluating rules: points with their explanation, ready to post."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Contribution:
    """One rule's part of an earn: which rule, how many points, and a sentence saying why."""

    rule: str
    points: int
    reason: str
    pending_days: int | None = None  # None: the programme's default
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rule": self.rule, "points": self.points, "reason": self.reason}
        if self.pending_days is not None:
            data["pending_days"] = self.pending_days
        if self.details:
            data["details"] = self.details
        return data


@dataclass(frozen=True, slots=True)
class EarnOutcome:
    contributions: tuple[Contribution, ...] = ()

    @property
    def points(self) -> int:
        return sum(c.points for c in self.contributions)

    def explanation(self) -> dict[str, Any]:
        return {"points": self.points, "rules": [c.as_dict() for c in self.contributions if c.points]}
