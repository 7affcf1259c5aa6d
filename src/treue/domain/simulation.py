"""The programme simulator's engine: recorded purchases and events replayed through a rule set, in memory.

The same evaluator as live (`rules.evaluator.evaluate`) sees the same facts it would have seen: each member's
purchase count and spend to date (from before the period, then advanced by every replayed purchase), the
member's usage of per-member caps and the campaigns' spent budgets, both advanced by what the replay itself
awarded. Nothing is written anywhere; one `Replay` per rule set, fed the same stream, gives figures that
compare like with like. Pure: no clock, no I/O.

Not replayed (stated in the report): scheduled triggers (birthday, anniversary, cron), caps used before the
period (the replay starts every cap and budget at zero on its first day), and tier and club benefits (a tier's
multiplier or cashback; tiers are not part of a draft yet).

A replay can be split by member (`defer_budgets`): each part replays only its members' purchases and events,
which is exact for everything a rule keeps per member (caps, purchase count, spend). A campaign budget is the
one thing shared across members, so a part replays as if the whole budget were still there and logs each award
it drew on it; `Replay.combined` then walks those logs in the period's order and cuts what the budget could not
pay, as a single replay would have. That is exact as long as no budgeted rule is in an exclusive group (see
`shardable`): only there does a budget's room change which rule wins, not just how much one gets.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

from treue.domain.money import Money, currency_exponent
from treue.domain.programs import Program
from treue.domain.purchases import Purchase, points_to_take_back
from treue.domain.rules.context import EventFacts, MemberSnapshot
from treue.domain.rules.definitions import RuleSet
from treue.domain.rules.evaluator import Evaluation, evaluate
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
    id: UUID
    key: str  # the id as rules see it (member.id)
    usage: dict[UsageKey, Usage] = field(default_factory=dict)
    points: int = 0


Shard = tuple[int, int]  # (this one, of how many): members split by id; anonymous purchases go with shard 0


class BudgetEntry(NamedTuple):
    """An award drawn on a campaign budget by a replay that deferred budgets, as it was before the budget's cut.
    Ids are kept as integers: a part's log goes to another process, and UUIDs pickle ten times slower."""

    order: tuple[datetime, int, int]  # the event's place in the period: time, purchases first, then its id
    step: int  # the award's place among the event's awards
    campaign: str
    rule: str
    points: int
    member: int  # the member's id as an integer
    earned: int  # everything the event earned, for the share a refund takes back
    total_minor: int
    refunded_minor: int


@dataclass(slots=True)
class ReplayPart:
    """What a replay of some members found, to be combined with the other parts (`Replay.combined`)."""

    purchases: int
    events: int
    revenue_minor: int
    points_issued: int
    points_taken_back: int
    by_rule: dict[str, int]
    member_points: dict[UUID, int]
    budgets: dict[str, int]  # spent per campaign (with budgets deferred: as if each had the whole budget)
    budget_log: list[BudgetEntry]
    deferred: bool  # budgets were deferred: `budget_log` settles them


def shardable(rules: RuleSet) -> bool:
    """Whether a replay of `rules` can be split by member and combined exactly: no rule of a campaign with a
    budget is exclusive in a group (there the budget's room decides which rule wins)."""
    return not any(version.exclusive and version.group is not None
                   for campaign in rules.campaigns if campaign.budget_points is not None
                   for rule in campaign.rules for version in rule.versions)  # fmt: skip


_NOTHING_SPENT: Mapping[str, int] = {}
_UNKNOWN = MemberFacts()


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
    defer_budgets: bool = False  # replay part of the members: log budgeted awards instead of cutting them
    budget_log: list[BudgetEntry] = field(default_factory=list)

    def purchase(self, purchase: Purchase, facts: MemberFacts | None, refunded_minor: int = 0) -> int:
        """Replay one purchase (`refunded_minor`: what was refunded of it since); the points it earns."""
        total = purchase.total.minor
        self.purchases += 1
        self.revenue_minor += total - refunded_minor
        member = self._member(purchase.member_id, facts)
        if member is None:
            return 0  # an anonymous purchase earns nothing (its revenue counts), and draws on no budget
        evaluation = evaluate(EventFacts.of_purchase(purchase, self._snapshot(member)), self.rules,
                              self._limits(member), self.program, explain=False)  # fmt: skip
        points = evaluation.points
        self._apply(member, evaluation)
        member.purchase_count += 1
        member.spend_minor += total - refunded_minor
        taken = points_to_take_back(points, total, 0, refunded_minor, self.program.rounding) if refunded_minor else 0
        self.points_issued += points
        self.points_taken_back += taken
        member.points += points - taken
        if self.defer_budgets and evaluation.budgets:
            self._log((purchase.occurred_at, 0, purchase.id.int), member.id, evaluation, total, refunded_minor)
        return points

    def event(self, name: str, occurred_at: datetime, member_id: UUID, facts: MemberFacts | None,
              attributes: Mapping[str, Any], event_id: UUID | None = None) -> int:  # fmt: skip
        """Replay one custom event (`event_id` places it among events at the same time when budgets are
        deferred); the points it earns."""
        self.events += 1
        member = self._member(member_id, facts)
        assert member is not None
        evaluation = evaluate(EventFacts(name, occurred_at, self._snapshot(member), None, attributes), self.rules,
                              self._limits(member), self.program, explain=False)  # fmt: skip
        self._apply(member, evaluation)
        self.points_issued += evaluation.points
        member.points += evaluation.points
        if self.defer_budgets and evaluation.budgets:
            if event_id is None:
                raise ValueError("a replay that defers budgets needs each event's id")
            self._log((occurred_at, 1, event_id.int), member.id, evaluation, 0, 0)
        return evaluation.points

    @staticmethod
    def _snapshot(member: _Member) -> MemberSnapshot:
        known = member.facts
        return MemberSnapshot(member.key, known.tier, known.attributes, (), known.enrolled_at, known.birthday,
                              member.purchase_count, member.spend_minor)  # fmt: skip

    def _limits(self, member: _Member) -> LimitState:
        """The member's usage, and the budgets spent so far (none while budgets are deferred)."""
        return LimitState(member.usage, _NOTHING_SPENT if self.defer_budgets else self.budgets)

    def _log(self, order: tuple[datetime, int, int], member_id: UUID, evaluation: Evaluation, total_minor: int,
             refunded_minor: int) -> None:  # fmt: skip
        budgeted = {spent.campaign for spent in evaluation.budgets}
        for step, award in enumerate(evaluation.awards):
            if award.campaign in budgeted and award.points:
                self.budget_log.append(BudgetEntry(order, step, award.campaign, award.rule, award.points,
                                                   member_id.int, evaluation.points, total_minor, refunded_minor))  # fmt: skip

    def part(self) -> ReplayPart:
        """What this replay found, to combine with the replays of the other members."""
        return ReplayPart(self.purchases, self.events, self.revenue_minor, self.points_issued,
                          self.points_taken_back, dict(self.by_rule), self.member_points(), dict(self.budgets),
                          list(self.budget_log), self.defer_budgets)  # fmt: skip

    @classmethod
    def combined(cls, program: Program, rules: RuleSet, parts: Iterable[ReplayPart]) -> Replay:
        """One replay of `rules` from the parts that each replayed some of the members with budgets deferred,
        with every budget cut where a single replay in the period's order would have found it spent."""
        whole = cls(program, rules)
        deferred = False
        for part in parts:
            deferred = deferred or part.deferred
            whole.purchases += part.purchases
            whole.events += part.events
            whole.revenue_minor += part.revenue_minor
            whole.points_issued += part.points_issued
            whole.points_taken_back += part.points_taken_back
            for rule, points in part.by_rule.items():
                whole.by_rule[rule] = whole.by_rule.get(rule, 0) + points
            for member_id, points in part.member_points.items():
                whole.members[member_id] = _Member(_UNKNOWN, 0, 0, member_id, "", points=points)
            for campaign, points in part.budgets.items():
                whole.budgets[campaign] = whole.budgets.get(campaign, 0) + points
            whole.budget_log.extend(part.budget_log)
        if deferred:
            whole._settle_budgets()
        return whole

    def _settle_budgets(self) -> None:
        totals = {c.id: c.budget_points for c in self.rules.campaigns if c.budget_points is not None}
        spent = dict.fromkeys(totals, 0)
        cuts: dict[tuple[datetime, int, int], tuple[BudgetEntry, int]] = {}
        self.budget_log.sort()
        for entry in self.budget_log:  # in the order a single replay would have drawn on the budgets
            left = totals[entry.campaign] - spent[entry.campaign]
            kept = min(entry.points, left)
            spent[entry.campaign] += kept
            if kept < entry.points:
                cut = entry.points - kept
                self.by_rule[entry.rule] -= cut
                if not self.by_rule[entry.rule]:
                    del self.by_rule[entry.rule]
                before = cuts.get(entry.order)
                cuts[entry.order] = (entry, cut + (before[1] if before else 0))
        rounding = self.program.rounding
        members = {member_id.int: member for member_id, member in self.members.items()} if cuts else {}
        for entry, cut in cuts.values():  # the event earned less, so a refund of it takes back less
            taken, now_taken = 0, 0
            if entry.refunded_minor:
                taken = points_to_take_back(entry.earned, entry.total_minor, 0, entry.refunded_minor, rounding)
                now_taken = points_to_take_back(entry.earned - cut, entry.total_minor, 0, entry.refunded_minor,
                                                rounding)  # fmt: skip
            self.points_issued -= cut
            self.points_taken_back -= taken - now_taken
            members[entry.member].points -= cut - (taken - now_taken)
        self.budgets = {campaign: points for campaign, points in spent.items() if points}
        self.budget_log = []

    def _member(self, member_id: UUID | None, facts: MemberFacts | None) -> _Member | None:
        if member_id is None:
            return None
        member = self.members.get(member_id)
        if member is None:
            known = facts or _UNKNOWN
            member = self.members[member_id] = _Member(known, known.purchase_count, known.spend_minor, member_id,
                                                     str(member_id))  # fmt: skip
        return member

    def _apply(self, member: _Member, evaluation: Evaluation) -> None:
        for delta in evaluation.usage:
            before = member.usage.get(delta.key, Usage())
            member.usage[delta.key] = Usage(before.points + delta.points, before.awards + delta.awards)
        for spent in evaluation.budgets:
            self.budgets[spent.campaign] = self.budgets.get(spent.campaign, 0) + spent.points
        for contribution in evaluation.outcome.contributions:
            if contribution.points:
                self.by_rule[contribution.rule] = self.by_rule.get(contribution.rule, 0) + contribution.points

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
