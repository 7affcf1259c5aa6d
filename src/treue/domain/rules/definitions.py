"""Rules, their versions, campaigns and rule sets, read from plain data with every error located.

A rule definition (one version of it):

    {"id": "saturday-double", "name": "Double points on Saturdays",
     "trigger": "purchase",            # refund | enrolment | birthday | membership_anniversary |
                                       # a custom event such as review.created | "cron: 0 9 * * mon"
     "condition": "now.weekday == 6",  # CEL, see treue.domain.rules.context for the variables
     "effects": [{"type": "multiplier", "factor": "2"}],   # see treue.domain.rules.effects
     "limits": {"per_member": [{"points": 500, "per": "month"}], "min_purchase": "20.00"},
     "priority": 10,                   # higher first; decides ties in exclusive groups
     "mode": "exclusive", "group": "weekend",   # or "stacking" (the default), no group
     "channels": ["store", "online"], "partners": ["default"]}   # checked before any CEL runs

A rule keeps every version with the instant (UTC) it is valid from; an event is evaluated against the
version in force at its time, and an edit adds a version (`edit_rule`). A campaign is a named set of
rules with a window in the programme's timezone, an audience (CEL over `member`), a budget in points,
per-member caps and a status; its rules apply only while it is scheduled or active and inside its window.
A rule set holds the programme's rules and campaigns and refuses two exclusive rules of one group with
the same priority that could apply at the same time.
"""

from __future__ import annotations

import copy
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from treue.domain.control import share_bp_of_percent
from treue.domain.durations import require_aware, start_of_local_day, zone
from treue.domain.errors import InvalidInput, RuleInvalid
from treue.domain.purchases import Channel
from treue.domain.rules.conditions import AUDIENCE_VARIABLES, Condition, Needs, condition, merge_needs
from treue.domain.rules.effects import Effect, LineSelection, parse_effect
from treue.domain.rules.limits import Budget, Cap, Limits, parse_caps, parse_limits
from treue.domain.rules.schedules import Cron, parse_cron
from treue.domain.rules.spec import Spec, join, refuse

if TYPE_CHECKING:
    from treue.domain.rules.plan import Plan

BUILTIN_TRIGGERS = ("purchase", "refund", "enrolment", "birthday", "membership_anniversary")
SCHEDULE_EVENT = "schedule"  # the event a scheduler sends every minute; cron triggers match its local time
_CUSTOM_EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
RULE_FIELDS = ("id", "name", "description", "trigger", "condition", "effects", "limits", "priority", "mode",
               "group", "channels", "partners")  # fmt: skip
MAX_PRIORITY = 10**6


@dataclass(frozen=True, slots=True)
class Trigger:
    event: str  # the event name that fires the rule
    cron: Cron | None = None  # for SCHEDULE_EVENT: the local minutes it fires in

    def matches(self, event: str, local: datetime) -> bool:
        return event == self.event and (self.cron is None or self.cron.matches(local))

    def __str__(self) -> str:
        return f"cron: {self.cron.text}" if self.cron else self.event


def parse_trigger(value: Any, location: str = "trigger") -> Trigger:
    if not isinstance(value, str) or not value.strip():
        raise refuse(location, "is required (e.g. purchase, enrolment, review.created, cron: 0 9 * * mon)")
    text = value.strip()
    if text.startswith("cron:"):
        return Trigger(SCHEDULE_EVENT, parse_cron(text[5:], location))
    if text in BUILTIN_TRIGGERS or _CUSTOM_EVENT.match(text):
        return Trigger(text)
    raise refuse(location, f"unknown trigger {text!r}: one of {', '.join(BUILTIN_TRIGGERS)}, a custom event "
                 "with a dot such as review.created, or a schedule such as 'cron: 0 9 * * mon'")  # fmt: skip


class Mode(enum.StrEnum):
    STACKING = "stacking"  # applies beside every other rule
    EXCLUSIVE = "exclusive"  # within its group only the best award applies


@dataclass(frozen=True, slots=True, eq=False)
class RuleVersion:
    rule: str
    version: int
    valid_from: datetime  # UTC
    name: str
    trigger: Trigger
    condition: Condition | None
    effects: tuple[Effect, ...]
    limits: Limits
    priority: int = 0
    mode: Mode = Mode.STACKING
    group: str | None = None
    channels: frozenset[str] = frozenset()  # empty: every channel
    partners: frozenset[str] = frozenset()  # empty: every partner
    definition: Mapping[str, Any] = field(default_factory=dict)  # the plain data it was read from

    @property
    def exclusive(self) -> bool:
        return self.mode is Mode.EXCLUSIVE

    def needs(self) -> Needs:
        """The context variables and fields its condition and line filters read."""
        found = [self.condition.needs] if self.condition else []
        for effect in self.effects:
            lines = getattr(effect, "lines", None)
            if isinstance(lines, LineSelection) and lines.filter is not None:
                found.append(lines.filter.needs)
        return merge_needs(found)


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    id: str
    versions: tuple[RuleVersion, ...]  # ascending valid_from
    campaign: str | None = None

    @property
    def latest(self) -> RuleVersion:
        return self.versions[-1]

    def version_at(self, at: datetime) -> RuleVersion | None:
        """The version in force at `at`, or None before the first version."""
        for version in reversed(self.versions):
            if version.valid_from <= at:
                return version
        return None

    def spans(self) -> list[tuple[RuleVersion, datetime, datetime | None]]:
        """Each version with the interval it is in force: [valid_from, next valid_from)."""
        ends: list[datetime | None] = [v.valid_from for v in self.versions[1:]]
        return [(v, v.valid_from, end) for v, end in zip(self.versions, [*ends, None], strict=True)]


def parse_rule_version(data: Any, *, rule_id: str, version: int, valid_from: datetime, currency: str,
                       location: str = "") -> RuleVersion:  # fmt: skip
    spec = Spec(data, location).only(*RULE_FIELDS)
    valid_from = require_aware(valid_from, "valid_from")
    trigger = parse_trigger(spec.raw("trigger", None), spec.at("trigger"))
    purchase = trigger.event == "purchase"
    text = spec.text("condition", None)
    when = condition(text, spec.at("condition")) if text is not None else None
    items = spec.items("effects")
    if not items:
        raise refuse(spec.at("effects"), "a rule needs at least one effect")
    effects = tuple(
        parse_effect(Spec(item, join(spec.at("effects"), index)), currency, purchase=purchase)
        for index, item in enumerate(items)
    )
    limits = parse_limits(spec.sub("limits"), currency, purchase=purchase)
    priority: int = spec.integer("priority", 0, minimum=-MAX_PRIORITY, maximum=MAX_PRIORITY)
    try:
        mode = Mode(spec.text("mode", "stacking"))
    except ValueError:
        raise refuse(spec.at("mode"), "must be stacking or exclusive") from None
    group: str | None = spec.text("group", None)
    if mode is Mode.EXCLUSIVE and group is None:
        raise refuse(spec.at("group"), "an exclusive rule needs a group name")
    if mode is Mode.STACKING and group is not None:
        raise refuse(spec.at("group"), "only exclusive rules have a group")
    channels = spec.strings("channels")
    for index, channel in enumerate(channels):
        if channel not in set(Channel):
            raise refuse(join(spec.at("channels"), index), f"unknown channel {channel!r} (store, online, app)")
    if (channels or spec.strings("partners")) and not purchase:
        raise refuse(
            spec.at("channels" if channels else "partners"), "only purchase rules filter by channel or partner"
        )
    name: str = spec.text("name", rule_id)
    return RuleVersion(
        rule_id, version, valid_from, name, trigger, when, effects, limits, priority, mode, group,
        frozenset(channels), frozenset(spec.strings("partners")), copy.deepcopy(dict(spec.data)),
    )  # fmt: skip


def rule_id_of(data: Any, location: str = "") -> str:
    spec = Spec(data, location)
    rule_id: str = spec.text("id")
    if not _ID.match(rule_id) or rule_id == "base":
        raise refuse(spec.at("id"), "must be 1-64 lower-case letters, digits, '.', '_' or '-' and not 'base'")
    return rule_id


def parse_rule(data: Any, *, currency: str, valid_from: datetime, campaign: str | None = None,
               location: str = "") -> Rule:  # fmt: skip
    """A new rule (version 1) from its definition."""
    rule_id = rule_id_of(data, location)
    version = parse_rule_version(data, rule_id=rule_id, version=1, valid_from=valid_from, currency=currency,
                                 location=location)  # fmt: skip
    return Rule(rule_id, (version,), campaign)


def rule_from_versions(rule_id: str, versions: Iterable[tuple[datetime, Mapping[str, Any]]], *, currency: str,
                       campaign: str | None = None) -> Rule:  # fmt: skip
    """A stored rule rebuilt from its versions' definitions, oldest first."""
    parsed = tuple(
        parse_rule_version(
            data, rule_id=rule_id, version=index + 1, valid_from=at, currency=currency, location=f"versions[{index}]"
        )
        for index, (at, data) in enumerate(versions)
    )
    if not parsed:
        raise RuleInvalid("a rule needs at least one version", location="versions")
    for index in range(1, len(parsed)):
        if parsed[index].valid_from <= parsed[index - 1].valid_from:
            raise RuleInvalid("versions must be in order of valid_from", location=f"versions[{index}]")
    return Rule(rule_id, parsed, campaign)


def edit_rule(rule: Rule, changes: Mapping[str, Any], *, valid_from: datetime, currency: str) -> Rule:
    """The rule with a new version: the latest definition with `changes` applied (None removes a field),
    in force from `valid_from`. Events before that instant keep being evaluated with the older version."""
    valid_from = require_aware(valid_from, "valid_from")
    if valid_from <= rule.latest.valid_from:
        raise RuleInvalid(
            f"a new version must be valid after the latest one ({rule.latest.valid_from.isoformat()})",
            location="valid_from",
        )
    if "id" in changes and changes["id"] != rule.id:
        raise RuleInvalid("a rule's id cannot change", location="id")
    merged = {k: v for k, v in {**rule.latest.definition, **changes}.items() if v is not None}
    version = parse_rule_version(merged, rule_id=rule.id, version=rule.latest.version + 1, valid_from=valid_from,
                                 currency=currency)  # fmt: skip
    return replace(rule, versions=(*rule.versions, version))


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    ENDED = "ended"


@dataclass(frozen=True, slots=True, eq=False)
class Campaign:
    id: str
    name: str
    starts_at: datetime  # UTC, inclusive
    ends_at: datetime  # UTC, exclusive
    status: CampaignStatus
    rules: tuple[Rule, ...]
    audience: Condition | None = None
    budget_points: int | None = None
    caps: tuple[Cap, ...] = ()  # per member, over all the campaign's rules
    control_bp: int = 0  # members held out as the control group, in basis points (`treue.domain.control`)

    def running_at(self, at: datetime) -> bool:
        live = self.status in (CampaignStatus.SCHEDULED, CampaignStatus.ACTIVE)
        return live and self.starts_at <= at < self.ends_at

    @property
    def budget(self) -> Budget | None:
        return None if self.budget_points is None else Budget(self.id, self.budget_points)


CAMPAIGN_FIELDS = ("id", "name", "starts", "ends", "status", "audience", "budget", "limits", "rules", "control_percent")


def parse_campaign(data: Any, *, timezone: str, currency: str, valid_from: datetime,
                   location: str = "") -> Campaign:  # fmt: skip
    """`{"id": "summer", "name": ..., "starts": "2026-07-01", "ends": "2026-07-31" (a date: through the end of
    that day; or a local date-time, exclusive), "status": "scheduled", "audience": "member.tier == 'gold'",
    "budget": 100000, "limits": {"per_member": [...]}, "control_percent": "10", "rules": [rule, ...]}`; times are
    local to `timezone`. `control_percent` holds that share of members out of the campaign (a stable random
    control group, for measuring its uplift)."""
    spec = Spec(data, location).only(*CAMPAIGN_FIELDS)
    campaign_id = rule_id_of(data, location)
    starts = _local_instant(spec, "starts", timezone, end=False)
    ends = _local_instant(spec, "ends", timezone, end=True)
    if ends <= starts:
        raise refuse(spec.at("ends"), "must be after the start")
    try:
        status = CampaignStatus(spec.text("status", "draft"))
    except ValueError:
        raise refuse(spec.at("status"), "must be draft, scheduled, active or ended") from None
    text = spec.text("audience", None)
    audience = condition(text, spec.at("audience"), AUDIENCE_VARIABLES) if text is not None else None
    budget: int | None = spec.integer("budget", None, minimum=0, maximum=10**12)
    limits = spec.sub("limits").only("per_member", "once_per_member")
    rules = tuple(
        parse_rule(
            item, currency=currency, valid_from=valid_from, campaign=campaign_id, location=join(spec.at("rules"), index)
        )
        for index, item in enumerate(spec.items("rules"))
    )
    name: str = spec.text("name", campaign_id)
    control = spec.decimal("control_percent", None)
    try:
        control_bp = share_bp_of_percent(control) if control is not None else 0
    except InvalidInput as error:
        raise refuse(spec.at("control_percent"), error.detail) from None
    return Campaign(campaign_id, name, starts, ends, status, rules, audience, budget, parse_caps(limits), control_bp)


def _local_instant(spec: Spec, key: str, timezone: str, *, end: bool) -> datetime:
    text: str = spec.text(key)
    try:
        tz = zone(timezone)
        if len(text) == 10:
            day = date.fromisoformat(text)
            return start_of_local_day(day + timedelta(days=1) if end else day, tz)
        moment = datetime.fromisoformat(text)
    except (ValueError, InvalidInput):
        raise refuse(
            spec.at(key), f"{text!r} is not a date (2026-07-01) or local date-time (2026-07-01T08:00)"
        ) from None
    return require_aware(moment if moment.tzinfo else moment.replace(tzinfo=tz))


Entry = tuple[Rule, Campaign | None]


class RuleSet:
    """The rules and campaigns of a programme, indexed by the event that triggers them."""

    def __init__(self, rules: Iterable[Rule] = (), campaigns: Iterable[Campaign] = ()) -> None:
        self.rules = tuple(rules)
        self.campaigns = tuple(campaigns)
        entries: list[Entry] = [(rule, None) for rule in self.rules]
        entries += [(replace(rule, campaign=c.id), c) for c in self.campaigns for rule in c.rules]
        _check_ids(entries, self.campaigns)
        _check_exclusive_groups(entries)
        self._by_event: dict[str, list[Entry]] = {}
        needs: dict[str, list[Needs]] = {}
        for entry in sorted(entries, key=lambda e: e[0].id):
            rule, campaign = entry
            for event in sorted({v.trigger.event for v in rule.versions}):
                self._by_event.setdefault(event, []).append(entry)
                found = [v.needs() for v in rule.versions if v.trigger.event == event]
                if campaign is not None and campaign.audience is not None:
                    found.append(campaign.audience.needs)
                needs.setdefault(event, []).extend(found)
        self._needs = {event: merge_needs(found) for event, found in needs.items()}
        self._instants: dict[str, tuple[datetime, ...]] = {}
        self._plans: dict[tuple[str, int], Plan] = {}

    def plan(self, event: str, at: datetime) -> Plan:
        """The versions in force for `event` at `at`, in order of priority, with what they read (cached)."""
        from treue.domain.rules import plan as planning  # the plan module builds on this one

        instants = self._instants.get(event)
        if instants is None:
            entries = self.entries(event)
            instants = self._instants[event] = planning.boundaries([(r.versions, c) for r, c in entries])
        key = (event, planning.interval(instants, at))
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = planning.make_plan([(r.version_at(at), c) for r, c in self.entries(event)], at)
        return found

    def entries(self, event: str) -> Sequence[Entry]:
        return self._by_event.get(event, ())

    def needs(self, event: str) -> Needs:
        """What the rules triggered by `event` read from the context (so only that is built)."""
        return self._needs.get(event, {})

    def __len__(self) -> int:
        return sum(len(c.rules) for c in self.campaigns) + len(self.rules)


def _check_ids(entries: list[Entry], campaigns: tuple[Campaign, ...]) -> None:
    seen: set[str] = set()
    for rule, _ in entries:
        if rule.id in seen:
            raise RuleInvalid(f"two rules have the id {rule.id!r}", location=f"rules[{rule.id}].id")
        seen.add(rule.id)
    campaign_ids = [c.id for c in campaigns]
    for cid in campaign_ids:
        if campaign_ids.count(cid) > 1:
            raise RuleInvalid(f"two campaigns have the id {cid!r}", location=f"campaigns[{cid}].id")


def _window(entry: Entry, start: datetime, end: datetime | None) -> tuple[datetime, datetime | None] | None:
    campaign = entry[1]
    if campaign is None:
        return start, end
    if campaign.status is CampaignStatus.ENDED:
        return None
    lo = max(start, campaign.starts_at)
    hi = campaign.ends_at if end is None else min(end, campaign.ends_at)
    return (lo, hi) if lo < hi else None


def _check_exclusive_groups(entries: list[Entry]) -> None:
    spans: list[tuple[Entry, RuleVersion, datetime, datetime | None]] = []
    for entry in entries:
        for version, start, end in entry[0].spans():
            window = _window(entry, start, end) if version.exclusive else None
            if window is not None:
                spans.append((entry, version, *window))
    for i, (a, va, a_start, a_end) in enumerate(spans):
        for b, vb, b_start, b_end in spans[i + 1 :]:
            if a[0].id == b[0].id or (va.group, va.priority, va.trigger.event) != (
                vb.group,
                vb.priority,
                vb.trigger.event,
            ):
                continue
            if (a_end is None or b_start < a_end) and (b_end is None or a_start < b_end):
                first, second = sorted((a[0].id, b[0].id))
                raise RuleInvalid(
                    f"overlapping exclusive group without priority: rules {first!r} and {second!r} are both "
                    f"exclusive in group {va.group!r} with priority {va.priority}; give one a higher priority",
                    location=f"rules[{second}].priority", rules=[first, second], group=va.group,
                )  # fmt: skip
