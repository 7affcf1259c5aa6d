"""What is in force for one trigger between two instants at which anything about a rule set changes.

Which rule versions apply, whether their campaigns run, in which order they are tried and which context
fields they read depends only on the event's name and on where its time falls among the instants at
which a version starts or a campaign window opens or closes. A rule set works that out once per
(event, interval) and keeps it: evaluating a purchase then costs a lookup instead of walking every
rule's versions, sorting by priority and merging what the conditions read. The plan is a pure function
of the (immutable) rule set, so keeping it is memoisation, not state.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from treue.domain.rules.conditions import Needs, compile_expression, flatten, merge_needs
from treue.domain.rules.context import EvalContext
from treue.domain.rules.definitions import Campaign, RuleVersion
from treue.domain.rules.limits import Bound, Scope, bounds


class Skip(NamedTuple):
    """A rule whose trigger matched but that gave nothing, and why (for previews and support)."""

    rule: str
    version: int | None
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "version": self.version, "reason": self.reason}


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """One rule version to try, with what can be said about it before the event is known."""

    version: RuleVersion
    campaign: Campaign | None
    not_running: Skip | None  # its campaign is not running in this interval: skipped, nothing else to check
    prefilter: bool  # channels, partners or a minimum purchase to check against the purchase
    not_met: Skip | None  # the skip for a condition that does not hold (None: no condition)
    capped: bool  # per-member caps or a campaign budget apply
    slot: int | None = None  # where `Plan.verdicts` holds its condition (None: not there, evaluate it alone)
    keyed: bool = False  # a cap counts per value of an event attribute

    @property
    def rule(self) -> str:
        return self.version.rule


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    steps: tuple[Step, ...]  # in order of priority (higher first), then rule id
    needs: Needs  # what the running steps' conditions, line filters and audiences read
    conditions: Any = None  # one CEL program giving the list of the slotted steps' conditions
    unfiltered: bool = False  # no step is a cron, has a prefilter or belongs to a campaign not running
    _bounds: dict[tuple[int, date], tuple[Bound, ...]] = field(default_factory=dict, repr=False)

    def bounds(self, step: Step, local: datetime, attributes: Mapping[str, Any] | None) -> tuple[Bound, ...]:
        """The usage keys `step`'s caps count against at an event at `local` (the programme's time). Kept per
        step and local day, as they change only with the day, unless a cap counts per event attribute."""
        version, campaign = step.version, step.campaign
        if step.keyed:
            return _step_bounds(version, campaign, local, attributes)
        key = (id(step), local.date())
        found = self._bounds.get(key)
        if found is None:
            if len(self._bounds) >= 4096:  # a long replay: the days before are not asked for again
                self._bounds.clear()
            found = self._bounds[key] = _step_bounds(version, campaign, local, attributes)
        return found

    def verdicts(self, context: EvalContext) -> list[object] | None:
        """Every slotted condition in one CEL call: calling into CEL costs more than a comparison in it.

        None when there are none or when any of them fails (a missing attribute, say): the evaluator then
        runs each condition alone, so one failing condition cannot decide another's outcome.
        """
        if self.conditions is None:
            return None
        try:
            found = self.conditions.execute(context.cel)
        except Exception:  # the CEL library raises KeyError, TypeError, RuntimeError, ...
            return None
        return found if isinstance(found, list) else None


def boundaries(entries: Sequence[tuple[Sequence[RuleVersion], Campaign | None]]) -> tuple[datetime, ...]:
    """Every instant at which a version starts or a campaign's window opens or closes, ascending."""
    found: set[datetime] = set()
    for versions, campaign in entries:
        found.update(v.valid_from for v in versions)
        if campaign is not None:
            found.update((campaign.starts_at, campaign.ends_at))
    return tuple(sorted(found))


def interval(instants: tuple[datetime, ...], at: datetime) -> int:
    return bisect.bisect_right(instants, at)


def make_plan(entries: Sequence[tuple[RuleVersion | None, Campaign | None]], at: datetime) -> Plan:
    """The plan for the versions in force at `at` (None: no version yet) and their campaigns."""
    steps: list[Step] = []
    needs: list[Needs] = []
    sources: list[str] = []
    for version, campaign in entries:
        if version is None:
            continue
        not_running = None
        if campaign is not None and not campaign.running_at(at):
            reason = f"campaign {campaign.id} is not running ({campaign.status.value})"
            not_running = Skip(version.rule, version.version, reason)
        else:
            needs.append(version.needs())
            if campaign is not None and campaign.audience is not None:
                needs.append(campaign.audience.needs)
        condition = version.condition
        not_met = None if condition is None else Skip(version.rule, version.version,
                                                      f"condition not met: {condition.source}")  # fmt: skip
        prefilter = bool(version.channels or version.partners or version.limits.min_purchase_minor is not None
                         or (campaign is not None and campaign.control_bp))  # fmt: skip
        capped = bool(version.limits.caps or (campaign is not None and (campaign.caps or campaign.budget_points
                                                                        is not None)))  # fmt: skip
        slot = None
        if condition is not None and not_running is None and (campaign is None or campaign.audience is None):
            slot = len(sources)  # a campaign's audience is checked first, so its rules' conditions run alone
            sources.append(f"(\n{flatten(condition.source)}\n)")  # newlines end any trailing comment
        caps = version.limits.caps + (campaign.caps if campaign is not None else ())
        keyed = any(cap.key is not None for cap in caps)
        steps.append(Step(version, campaign, not_running, prefilter, not_met, capped, slot, keyed))
    steps.sort(key=lambda s: (-s.version.priority, s.version.rule))
    unfiltered = all(s.not_running is None and not s.prefilter and s.version.trigger.cron is None for s in steps)
    return Plan(tuple(steps), merge_needs(needs), _compiled(sources), unfiltered)


def _step_bounds(version: RuleVersion, campaign: Campaign | None, local: datetime,
                 attributes: Mapping[str, Any] | None) -> tuple[Bound, ...]:  # fmt: skip
    own = bounds(version.limits.caps, Scope.RULE, version.rule, local, attributes)
    return own + bounds(campaign.caps, Scope.CAMPAIGN, campaign.id, local, attributes) if campaign else own


def _compiled(sources: list[str]) -> Any:
    if not sources:
        return None
    try:
        return compile_expression(f"[{', '.join(sources)}]")
    except ValueError:  # not expected (each compiles alone); the conditions then run one by one
        return None
