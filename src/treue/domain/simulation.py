"""The programme simulator's engine: recorded purchases and events replayed through a rule set, in memory.

The same evaluator as live (`rules.evaluator.evaluate`) sees the same facts it would have seen: each member's
purchase count and spend to date (from before the period, then advanced by every replayed purchase), the
member's usage of per-member caps and the campaigns' spent budgets, both advanced by what the replay itself
awarded. Nothing is written anywhere; one `Replay` per rule set, fed the same stream, gives figures that
compare like with like. Pure: no clock, no I/O.

Not replayed (stated in the report): scheduled triggers (birthday, anniversary, cron), caps used before the
period (the replay starts every cap and budget at zero on its first day), and tier and club benefits (a tier's
multiplier or cashback; tiers are not part of a draft yet).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from treue.domain.money import Money, currency_exponent
from treue.domain.programs import Program
from treue.domain.purchases import Purchase, points_to_take_back
from treue.domain.rules.context import EventFacts, MemberSnapshot
from treue.domain.rules.definitions import RuleSet
from treue.domain.rules.evaluator import evaluate
from treue.domain.rules.limits import LimitState, Usage, UsageKey


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What the replay knows of a member before the period."""

    enrolled_at: datetime | None = None
    birthday: date | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    tier: str | None = None
    purchase_count: int = 0  # before the period
    spend_minor: int = 0  # before the period, net of refunds


@dataclass(slots=True)
class _Member:
    facts: MemberFacts
    purchase_count: int
    spend_minor: int
    usage: dict[UsageKey, Usage] = field(default_factory=dict)
    points: int = 0


@dataclass(slots=True)
class Replay:
    """One rule set's replay: feed it purchases and events in time order, then read `report()`."""

    program: Program
    rules: RuleSet
    purchases: int = 0
    events: int = 0
    revenue_minor: int = 0  # net of refunds recorded so far
    points_issued: int = 0
    points_taken_back: int = 0  # by refunds of replayed purchases, in proportion, as live
    by_rule: dict[str, int] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)
    members: dict[UUID, _Member] = field(default_factory=dict)

    def purchase(self, purchase: Purchase, facts: MemberFacts | None, refunded_minor: int = 0) -> int:
        """Replay one purchase (`refunded_minor`: what was refunded of it since); the points it earns."""
        total = purchase.total.minor
        self.purchases += 1
        self.revenue_minor += total - refunded_minor
        member = self._member(purchase.member_id, facts)
        snapshot = None
        if member is not None:
            known = member.facts
            snapshot = MemberSnapshot(str(purchase.member_id), known.tier, known.attributes, (), known.enrolled_at,
                                      known.birthday, member.purchase_count, member.spend_minor)  # fmt: skip
        limits = LimitState(member.usage if member else {}, self.budgets)
        evaluation = evaluate(EventFacts.of_purchase(purchase, snapshot), self.rules, limits, self.program)
        if member is None:
            return 0  # an anonymous purchase earns nothing (its revenue counts)
        points = evaluation.points
        self._apply(member, evaluation.usage, evaluation.budgets)
        for contribution in evaluation.outcome.contributions:
            if contribution.points:
                self.by_rule[contribution.rule] = self.by_rule.get(contribution.rule, 0) + contribution.points
        member.purchase_count += 1
        member.spend_minor += total - refunded_minor
        taken = points_to_take_back(points, total, 0, refunded_minor, self.program.rounding) if refunded_minor else 0
        self.points_issued += points
        self.points_taken_back += taken
        member.points += points - taken
        return points

    def event(self, name: str, occurred_at: datetime, member_id: UUID, facts: MemberFacts | None,
              attributes: Mapping[str, Any]) -> int:  # fmt: skip
        """Replay one custom event; the points it earns."""
        self.events += 1
        member = self._member(member_id, facts)
        assert member is not None
        known = member.facts
        snapshot = MemberSnapshot(str(member_id), known.tier, known.attributes, (), known.enrolled_at, known.birthday,
                                  member.purchase_count, member.spend_minor)  # fmt: skip
        evaluation = evaluate(EventFacts(name, occurred_at, snapshot, None, attributes), self.rules,
                              LimitState(member.usage, self.budgets), self.program)  # fmt: skip
        self._apply(member, evaluation.usage, evaluation.budgets)
        for contribution in evaluation.outcome.contributions:
            if contribution.points:
                self.by_rule[contribution.rule] = self.by_rule.get(contribution.rule, 0) + contribution.points
        self.points_issued += evaluation.points
        member.points += evaluation.points
        return evaluation.points

    def _member(self, member_id: UUID | None, facts: MemberFacts | None) -> _Member | None:
        if member_id is None:
            return None
        member = self.members.get(member_id)
        if member is None:
            known = facts or MemberFacts()
            member = self.members[member_id] = _Member(known, known.purchase_count, known.spend_minor)
        return member

    def _apply(self, member: _Member, usage: Any, budgets: Any) -> None:
        for delta in usage:
            before = member.usage.get(delta.key, Usage())
            member.usage[delta.key] = Usage(before.points + delta.points, before.awards + delta.awards)
        for spent in budgets:
            self.budgets[spent.campaign] = self.budgets.get(spent.campaign, 0) + spent.points

    def member_points(self) -> dict[UUID, int]:
        """Net points per replayed member."""
        return {member_id: member.points for member_id, member in self.members.items()}

    def report(self, top: int = 10) -> dict[str, Any]:
        program = self.program
        net = self.points_issued - self.points_taken_back
        liability = program.points_value(net)
        revenue = Money(self.revenue_minor, program.currency)
        per_100 = None
        if self.revenue_minor > 0:  # cost of the points per 100 currency units of revenue, in minor units
            per_100 = Money(liability.minor * 100 * 10 ** currency_exponent(program.currency) // self.revenue_minor,
                            program.currency)  # fmt: skip
        rules = sorted(self.by_rule.items(), key=lambda item: (-item[1], item[0]))
        return {
            "purchases": self.purchases, "events": self.events, "members": len(self.members),
            "revenue": revenue.format(), "points_issued": self.points_issued,
            "points_taken_back": self.points_taken_back, "points_net": net,
            "projected_liability": liability.format(),
            "cost_per_100_revenue": per_100.format() if per_100 is not None else None,
            "top_rules": [{"rule": rule, "points": points, "cost": program.points_value(points).format()}
                          for rule, points in rules[:top]],
        }  # fmt: skip


def most_affected(current: Mapping[UUID, int], draft: Mapping[UUID, int], top: int = 10) -> list[dict[str, Any]]:
    """The members whose points the draft changes most (either way), largest change first; `current` and `draft`
    are each side's points per member (`Replay.member_points`)."""

    def change(member_id: UUID) -> int:
        return draft.get(member_id, 0) - current.get(member_id, 0)

    changed = [m for m in current.keys() | draft.keys() if change(m) != 0]
    found = heapq.nlargest(top, changed, key=lambda m: (abs(change(m)), str(m)))
    return [{"member_id": str(m), "points_current": current.get(m, 0), "points_draft": draft.get(m, 0),
             "change": change(m)} for m in found]  # fmt: skip
