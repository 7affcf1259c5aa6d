"""The rules evaluator: one event in, awards with their explanation and the usage to persist out.

The same pure function serves live events, the checkout preview and the simulator: it reads no clock,
no storage and nothing random, so the same inputs always give the same `Evaluation`.

Order of work for one event:
1. Rules are picked by trigger, then skipped without running any CEL when no version is in force at the
   event's time, their campaign is not running, or the purchase's channel, partner or amount does not
   fit (`min_purchase`).
2. The CEL context is built once (see `context`) and shared by every condition and line filter.
3. In order of priority (higher first, then rule id): campaign audience, condition, effects.
4. Within an exclusive group only the best award applies: most points (as the limits allow before this
   event), then higher priority, then rule id.
5. Limits cap the winners in that order; a campaign budget spent by an earlier rule of this event is
   no longer there for a later one. Usage deltas are returned for the caller to persist.

For a purchase the programme's base rule (`base.base_contribution`) comes first; multipliers apply to
its points.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from treue.domain.control import campaign_unit, in_control
from treue.domain.durations import require_aware, zone
from treue.domain.errors import InvariantViolated
from treue.domain.programs import Program
from treue.domain.purchases import Purchase
from treue.domain.rules.base import base_contribution
from treue.domain.rules.conditions import ConditionFailed
from treue.domain.rules.context import EvalContext, EventFacts, MemberSnapshot, build_context
from treue.domain.rules.definitions import Campaign, RuleSet, RuleVersion
from treue.domain.rules.effects import EffectInput, EffectResult, Grant, Hook
from treue.domain.rules.limits import (
    Bound,
    BudgetDelta,
    LimitState,
    Tracker,
    UsageDelta,
    UsageKey,
)
from treue.domain.rules.outcome import Contribution, EarnOutcome
from treue.domain.rules.plan import Skip, Step

__all__ = ["Award", "Evaluation", "Skip", "evaluate", "evaluate_purchase_rules", "usage_keys"]


@dataclass(slots=True)  # made per awarding rule per event; not frozen because that costs 4x (nothing changes one)
class Award:
    """What one rule gave: points (after limits), one explanation line per point effect, grants, hooks."""

    rule: str
    version: int
    campaign: str | None
    points: int
    contributions: tuple[Contribution, ...]
    grants: tuple[Grant, ...] = ()
    hooks: tuple[Hook, ...] = ()
    capped_from: int | None = None  # the points before limits, when limits reduced them


@dataclass(slots=True)  # made per event; not frozen because that costs 4x (nothing changes one)
class Evaluation:
    outcome: EarnOutcome  # the base contribution (for a purchase) and every rule's points, ready to post
    awards: tuple[Award, ...] = ()
    usage: tuple[UsageDelta, ...] = ()  # add to the member's usage counters
    budgets: tuple[BudgetDelta, ...] = ()  # add to the campaigns' spent budgets
    skipped: tuple[Skip, ...] = ()

    @property
    def points(self) -> int:
        return self.outcome.points

    @property
    def grants(self) -> tuple[Grant, ...]:
        return tuple(g for a in self.awards for g in a.grants)

    @property
    def hooks(self) -> tuple[Hook, ...]:
        return tuple(h for a in self.awards for h in a.hooks)

    def explanation(self) -> dict[str, Any]:
        data = self.outcome.explanation()
        if self.grants:
            data["grants"] = [{"kind": g.kind, "code": g.code, "quantity": g.quantity, "rule": g.rule}
                              for g in self.grants]  # fmt: skip
        if self.hooks:
            data["hooks"] = [_hook_dict(h) for h in self.hooks]
        return data


def _hook_dict(hook: Hook) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type(hook).__name__, "rule": hook.rule}
    for name in hook.__dataclass_fields__:
        if name not in ("rule", "version"):
            value = getattr(hook, name)
            data[name] = value.format() if hasattr(value, "format") and not isinstance(value, str) else value
    return data


@dataclass(slots=True)
class _Draft:
    step: Step
    version: RuleVersion
    campaign: Campaign | None
    results: list[EffectResult]
    points: int
    limits: tuple[Bound, ...]
    preview: int  # points as the limits allow before this event; -1: the limits allow no award at all

    @property
    def gives_more_than_points(self) -> bool:
        return any(r.grants or r.hooks for r in self.results)


def evaluate(facts: EventFacts, rules: RuleSet, limits: LimitState, program: Program, *,
             include_base: bool = True, explain: bool = True) -> Evaluation:  # fmt: skip
    """Evaluate one event against the rules in force at its time. Deterministic, no I/O, no clock.

    `limits` is the member's usage for (at least) the keys `usage_keys` names, and the campaigns'
    spent budgets. `include_base=False` leaves out the programme's base rule (then multipliers have
    nothing to multiply). `explain=False` gives the same points, awards, usage and budgets without the
    contributions' sentences, details and availability dates (for the simulator, which reads none of them).
    """
    tz = zone(program.timezone)
    at = require_aware(facts.occurred_at, "occurred_at")
    local = at.astimezone(tz)
    base = None
    if include_base and facts.name == "purchase" and facts.purchase is not None:
        base = base_contribution(program, facts.purchase, explain=explain)
    skipped: list[Skip] = []
    plan = rules.plan(facts.name, at)
    candidates = plan.steps if plan.unfiltered else _candidates(facts, plan.steps, local, skipped)
    base_list = (base,) if base is not None else ()
    if not candidates:
        return Evaluation(EarnOutcome(base_list), skipped=tuple(skipped))

    context = build_context(facts, tz, program.currency, plan.needs, local)  # once per event
    given = EffectInput(context, facts.purchase, base.points if base else 0, program.rounding, explain)
    tracker = Tracker(limits)
    audiences: dict[str, str | None] = {}
    drafts: list[_Draft] = []
    verdicts = plan.verdicts(context)
    for step in candidates:
        version, campaign = step.version, step.campaign
        verdict = None if verdicts is None or step.slot is None else verdicts[step.slot]
        if verdict is False:
            skipped.append(step.not_met)  # type: ignore[arg-type]  # a slotted step has a condition
            continue
        why_not = None if verdict is True else _why_not(step, context, audiences)
        if why_not is None:
            try:
                results = [effect.apply(given) for effect in version.effects]
            except ConditionFailed as error:
                why_not = Skip(version.rule, version.version, f"a line filter could not be evaluated: {error}")
        if why_not is not None:
            skipped.append(why_not)
            continue
        points = sum(r.points for r in results)
        if points < 0:  # effects are validated never to do this; refuse rather than take points
            raise InvariantViolated(f"rule {version.rule} computed negative points")
        limit_bounds: tuple[Bound, ...] = ()
        preview = points
        if step.capped:
            limit_bounds = plan.bounds(step, local, facts.attributes)
            room = tracker.room(limit_bounds, campaign.budget if campaign else None, with_deltas=False)
            preview = -1 if not room.allowed else points if room.points is None else min(points, room.points)
        drafts.append(_Draft(step, version, campaign, results, points, limit_bounds, preview))

    awards: list[Award] = []
    for draft in _resolve_exclusive(drafts, skipped):
        award = _apply_limits(draft, tracker, at, tz, skipped, explain)
        if award is not None:
            awards.append(award)
    contributions = base_list + tuple(c for a in awards for c in a.contributions)
    return Evaluation(
        EarnOutcome(contributions), tuple(awards), tracker.usage_deltas(), tracker.budget_deltas(), tuple(skipped)
    )


def evaluate_purchase_rules(program: Program, purchase: Purchase, rules: RuleSet,
                            limits: LimitState | None = None, member: MemberSnapshot | None = None) -> Evaluation:  # fmt: skip
    """A purchase through the rules: `.outcome` replaces `base.evaluate_purchase(program, purchase)`."""
    return evaluate(
        EventFacts.of_purchase(purchase, member), rules, LimitState() if limits is None else limits, program
    )


def usage_keys(rules: RuleSet, event: str, occurred_at: datetime, program: Program,
               attributes: Mapping[str, Any] | None = None) -> tuple[UsageKey, ...]:  # fmt: skip
    """The usage keys an evaluation of this event may read: load these (for the member) into `LimitState`.
    `attributes`: the event's, for caps counted per attribute value (`key`)."""
    at = require_aware(occurred_at, "occurred_at")
    local = at.astimezone(zone(program.timezone))
    keys: set[UsageKey] = set()
    plan = rules.plan(event, at)
    for step in plan.steps:
        if step.not_running is None and step.capped:
            keys.update(b.key for b in plan.bounds(step, local, attributes))
    return tuple(sorted(keys))


def _candidates(facts: EventFacts, steps: tuple[Step, ...], local: datetime,
                skipped: list[Skip]) -> tuple[Step, ...]:  # fmt: skip
    """Rules that may apply, by trigger, dates, channel, partner and amount - no CEL runs here."""
    found: list[Step] = []
    purchase = facts.purchase
    for step in steps:
        version = step.version
        if version.trigger.cron is not None and not version.trigger.matches(facts.name, local):
            continue
        if step.not_running is not None:
            skipped.append(step.not_running)
            continue
        if step.prefilter:
            reason = None
            if version.channels and (purchase is None or purchase.channel.value not in version.channels):
                reason = "not for this channel"
            elif version.partners and (purchase is None or purchase.partner not in version.partners):
                reason = "not for this partner"
            elif version.limits.min_purchase_minor is not None and (
                purchase is None or purchase.total.minor < version.limits.min_purchase_minor
            ):
                reason = "below the minimum purchase"
            elif step.campaign is not None and _held_out(step.campaign, facts):
                reason = f"in the control group of campaign {step.campaign.id}"
            if reason is not None:
                skipped.append(Skip(version.rule, version.version, reason))
                continue
        found.append(step)
    return tuple(found)


def _held_out(campaign: Campaign, facts: EventFacts) -> bool:
    member = facts.member
    return bool(campaign.control_bp) and member is not None and in_control(campaign_unit(campaign.id), member.id,
                                                                          campaign.control_bp)  # fmt: skip


def _why_not(step: Step, context: EvalContext, audiences: dict[str, str | None]) -> Skip | None:
    version, campaign = step.version, step.campaign
    if campaign is not None and campaign.audience is not None:
        if campaign.id not in audiences:
            try:
                inside = campaign.audience.holds(context)
                audiences[campaign.id] = None if inside else f"not in the audience of campaign {campaign.id}"
            except ConditionFailed as error:
                audiences[campaign.id] = f"audience of campaign {campaign.id} could not be evaluated: {error}"
        outside = audiences[campaign.id]
        if outside is not None:
            return Skip(version.rule, version.version, outside)
    if version.condition is not None:
        try:
            if not version.condition.holds(context):
                return step.not_met
        except ConditionFailed as error:
            return Skip(version.rule, version.version,
                        f"condition could not be evaluated ({error}): counts as not met")  # fmt: skip
    return None


def _resolve_exclusive(drafts: list[_Draft], skipped: list[Skip]) -> list[_Draft]:
    groups: dict[str, list[_Draft]] = {}
    for draft in drafts:
        if draft.version.exclusive and draft.version.group is not None:
            groups.setdefault(draft.version.group, []).append(draft)
    # Most points (as limits allow), then higher priority, then the smaller rule id.
    best = {group: min(members, key=lambda d: (-d.preview, -d.version.priority, d.version.rule))
            for group, members in groups.items()}  # fmt: skip
    winners = []
    for draft in drafts:  # keeps the priority order
        group = draft.version.group
        if draft.version.exclusive and group is not None and best[group] is not draft:
            winner = best[group].version
            skipped.append(Skip(draft.version.rule, draft.version.version,
                                f"exclusive group {group}: rule {winner.rule} applies instead"))  # fmt: skip
            continue
        winners.append(draft)
    return winners


def _apply_limits(draft: _Draft, tracker: Tracker, at: datetime, tz: Any, skipped: list[Skip],
                  explain: bool = True) -> Award | None:  # fmt: skip
    version, campaign = draft.version, draft.campaign
    points, why = draft.points, ""
    budget = campaign.budget if campaign else None
    if draft.step.capped:
        room = tracker.room(draft.limits, budget)
        if not room.allowed:
            skipped.append(Skip(version.rule, version.version, room.why))
            return None
        points, why = (draft.points if room.points is None else min(draft.points, room.points)), room.why
    if points == 0 and not draft.gives_more_than_points:
        reason = f"limit reached: {why}" if draft.points else "nothing to award"
        skipped.append(Skip(version.rule, version.version, reason))
        return None
    if draft.step.capped:
        tracker.record(draft.limits, budget, points)
    results = _cap(draft.results, points, why) if points < draft.points else draft.results
    contributions = tuple(_contribution(version, campaign, r, at, tz, explain) for r in results if r.points > 0)
    rule, number = version.rule, version.version
    grants: tuple[Grant, ...] = ()
    hooks: tuple[Hook, ...] = ()
    if draft.gives_more_than_points:
        grants = tuple(replace(g, rule=rule, version=number) for r in results for g in r.grants)
        hooks = tuple(replace(h, rule=rule, version=number) for r in results for h in r.hooks)
    return Award(version.rule, version.version, campaign.id if campaign else None, points, contributions,
                 grants, hooks, draft.points if points < draft.points else None)  # fmt: skip


def _cap(results: Iterable[EffectResult], points: int, why: str) -> list[EffectResult]:
    """Cut the results down to `points` in total, keeping earlier effects whole first."""
    capped = []
    left = points
    for result in results:
        kept = min(result.points, left)
        left -= kept
        if kept != result.points:
            result = replace(result, points=kept, why=f"{result.why}; capped from {result.points}: {why}")
        capped.append(result)
    return capped


def _contribution(version: RuleVersion, campaign: Campaign | None, result: EffectResult, at: datetime,
                  tz: Any, explain: bool = True) -> Contribution:  # fmt: skip
    if not explain:  # points with their rule, version and campaign only
        return Contribution(version.rule, result.points, "", version=version.version,
                            campaign=campaign.id if campaign else None)  # fmt: skip
    pending = result.pending
    return Contribution(
        rule=version.rule, points=result.points, reason=result.why,
        pending_days=pending.days if pending is not None else None, details=dict(result.details),
        version=version.version, base=result.base, multiplier=result.multiplier,
        campaign=campaign.id if campaign else None, pending=str(pending) if pending is not None else None,
        available_at=pending.after(at, tz) if pending is not None else None,
    )  # fmt: skip
