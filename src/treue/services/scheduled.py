"""Rules triggered by time: `birthday`, `membership_anniversary` and cron schedules (`cron: 0 9 * * mon`).

The job `rules` (`treue jobs run rules`, and every minute in `treue serve`) calls `run_scheduled_rules`.
Calendar notions are in the programme's timezone:

- `birthday`: members whose birthday (month and day) is the programme-local date; a 29 February birthday is
  celebrated on 28 February in years without one.
- `membership_anniversary`: members whose local enrolment date (month and day) is the local date, from the
  first anniversary on (never on the enrolment day itself); 29 February as for birthdays.
- `cron: ...`: every local minute a schedule fires in, every active member enrolled before it is evaluated.

Once per (trigger, member, period): each evaluation stores an event (name = the trigger, attributes = the
period) whose id is derived from programme, trigger, member and period - the local date, or the local minute
of a cron fire. The events table's primary key makes the award happen once, however often the job runs and
however many workers run it at the same time: the member's account is locked, the event looked for, the
rules applied and the event inserted (ON CONFLICT DO NOTHING) in one transaction; a worker that finds the
event, or fails to insert it, rolls back.

Catch-up: a run also covers the periods of the last `LOOKBACK` (one day) that no run handled - a birthday
missed because the job did not run yesterday is still awarded today (evaluated as at the last instant of
that day), one missed for longer is not. Members enrolled after a period get nothing for it.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from treue.domain import events
from treue.domain.durations import require_aware, zone
from treue.domain.events import Event
from treue.domain.programs import Program
from treue.domain.rules.context import EventFacts
from treue.domain.rules.definitions import SCHEDULE_EVENT, RuleSet
from treue.services.earning import emit_grants_and_hooks, post_earn, run_rules
from treue.services.ports import UnitOfWorkFactory

log = logging.getLogger("treue.jobs")

LOOKBACK = timedelta(days=1)  # how far back a run catches up on periods no run handled
BIRTHDAY, ANNIVERSARY = "birthday", "membership_anniversary"
_NAMESPACE = UUID("6f1c1a52-3f0e-4c55-9d1e-7a1b0d6f2c10")  # for the deterministic event ids
BATCH = 500


@dataclass(frozen=True, slots=True)
class Period:
    """One occasion to evaluate a scheduled trigger: its name, key (local date or minute) and time."""

    trigger: str
    key: str  # "2026-11-23" or "2026-11-23T09:00"
    occurred_at: datetime  # what the rules see (versions in force, `now`)
    local_date: date


def event_id(program_id: UUID, trigger: str, member_id: UUID, key: str) -> UUID:
    return uuid5(_NAMESPACE, f"{program_id}/{trigger}/{member_id}/{key}")


def run_scheduled_rules(
    uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None
) -> dict[str, int]:
    """Evaluate the scheduled triggers of one or every programme as of `now`. Returns what was done."""
    now = require_aware(now, "now").astimezone(UTC)
    counts = {"evaluated": 0, "awarded": 0, "points": 0, "already_done": 0}
    with uow_factory(read_only=True) as uow:
        programs = [uow.programs.get(program_id)] if program_id else [p for p, _ in uow.programs.list()]
    for program in programs:
        with uow_factory(read_only=True) as uow:
            rules = uow.rules.ruleset(program, cached=True)
            bonus = _birthday_bonus(uow, program)
        for period in periods(program, rules, now, birthday_bonus=bonus):
            _run_period(uow_factory, program, period, now, counts)
    return counts


def _birthday_bonus(uow: Any, program: Program) -> bool:
    """Does a tier or a club plan of the programme give a birthday bonus (then birthdays are due without a rule)?"""
    ladder, plans = uow.tiers.benefit_sources(program.id, cached=True)
    tiers = uow.tiers.ladder(program.id, cached=True).tiers if ladder else ()
    if any(tier.benefits.birthday_bonus_points > 0 for tier in tiers):
        return True
    return bool(plans) and any(plan.benefits.birthday_bonus_points > 0 for plan in uow.club.plans(program.id))


def periods(program: Program, rules: RuleSet, now: datetime, *, birthday_bonus: bool = False) -> list[Period]:
    """The periods due at `now` (within the look-back) that have a rule in force (or, for birthdays, a tier or
    club birthday bonus)."""
    tz = zone(program.timezone)
    local_now = now.astimezone(tz)
    found: list[Period] = []
    today = local_now.date()
    days = [today - timedelta(days=n) for n in range(LOOKBACK.days, -1, -1)]
    for trigger in (BIRTHDAY, ANNIVERSARY):
        for day in days:
            at = now if day == today else _end_of_day(day, tz)
            if (trigger == BIRTHDAY and birthday_bonus) or _live(rules, trigger, at, at.astimezone(tz)):
                found.append(Period(trigger, day.isoformat(), at, day))
    if rules.entries(SCHEDULE_EVENT):
        minute = now.replace(second=0, microsecond=0)
        start = now - LOOKBACK
        while minute > start:
            local = minute.astimezone(tz)
            if _live(rules, SCHEDULE_EVENT, minute, local):
                found.append(Period(SCHEDULE_EVENT, local.strftime("%Y-%m-%dT%H:%M"), minute, local.date()))
            minute -= timedelta(minutes=1)
        found.sort(key=lambda p: p.occurred_at)
    return found


def _live(rules: RuleSet, trigger: str, at: datetime, local: datetime) -> bool:
    for rule, campaign in rules.entries(trigger):
        version = rule.version_at(at)
        if (
            version is not None
            and version.trigger.matches(trigger, local)
            and (campaign is None or campaign.running_at(at))
        ):
            return True
    return False


def _end_of_day(day: date, tz: ZoneInfo) -> datetime:
    last = datetime.combine(day, time(23, 59, 59, 999999), tzinfo=tz)
    return last.astimezone(UTC)


def _occasions(day: date) -> set[tuple[int, int]]:
    """The (month, day) pairs celebrated on `day`: its own, plus 29 February on 28 February of a common year."""
    pairs = {(day.month, day.day)}
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        pairs.add((2, 29))
    return pairs


def _around(pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Pairs two days either side (a UTC timestamp's date differs from the local one by at most a day; the
    database may extract in its session timezone): the pre-filter, the exact test is in Python."""
    found = set()
    for month, day in pairs:
        centre = date(2000, month, day)  # a leap year, so that 29 February exists
        found |= {((centre + timedelta(days=n)).month, (centre + timedelta(days=n)).day) for n in range(-2, 3)}
    return found


def _run_period(uow_factory: UnitOfWorkFactory, program: Program, period: Period, now: datetime,
                counts: dict[str, int]) -> None:  # fmt: skip
    tz = zone(program.timezone)
    occasions = _occasions(period.local_date)
    filters: dict[str, Any] = {}
    if period.trigger == BIRTHDAY:
        filters["birthdays"] = occasions
    elif period.trigger == ANNIVERSARY:
        filters["enrolments"] = _around(occasions)
    after: UUID | None = None
    while True:
        with uow_factory(read_only=True) as uow:
            batch = uow.events.scheduled_members(program.id, period.occurred_at, after=after, limit=BATCH, **filters)
            if not batch:
                return
            after = batch[-1][0]
            due = []
            for member_id, enrolled_at, _ in batch:
                if period.trigger == ANNIVERSARY:
                    enrolled = enrolled_at.astimezone(tz).date()
                    if enrolled.year >= period.local_date.year or (enrolled.month, enrolled.day) not in occasions:
                        continue
                due.append(member_id)
            ids = {m: event_id(program.id, period.trigger, m, period.key) for m in due}
            done = uow.events.claimed(program.id, list(ids.values()))
        counts["already_done"] += sum(1 for m in due if ids[m] in done)
        for member_id in due:
            if ids[member_id] not in done:
                _award(uow_factory, program, period, member_id, ids[member_id], now, counts)


def _award(uow_factory: UnitOfWorkFactory, program: Program, period: Period, member_id: UUID, eid: UUID,
           now: datetime, counts: dict[str, int]) -> None:  # fmt: skip
    with uow_factory() as uow:
        # The account lock first: a second worker on the same member waits here, then finds the event.
        uow.ledger.add_to_balance(program.id, member_id, 0)
        if uow.events.claimed(program.id, [eid]):
            counts["already_done"] += 1
            return
        rules = uow.rules.ruleset(program, cached=True)
        attributes: dict[str, Any] = {"period": period.key, "scheduled": True}
        facts = EventFacts(period.trigger, period.occurred_at, attributes=attributes)
        earning = run_rules(uow, program, rules, facts, member_id)
        evaluation = earning.evaluation
        points = evaluation.points
        transfer_id = None
        if points > 0:
            transfer_id, _ = post_earn(uow, program, member_id, earning, period.occurred_at, now,
                                       {"event": period.trigger, "event_id": str(eid), "period": period.key})  # fmt: skip
        row = {"program_id": program.id, "id": eid, "member_id": member_id, "name": period.trigger,
               "attributes": attributes, "occurred_at": period.occurred_at, "created_at": now,
               "transfer_id": transfer_id}  # fmt: skip
        uow.flush()
        if not uow.events.claim(row):
            counts["already_done"] += 1
            return  # a concurrent run got there first: roll back
        emit_grants_and_hooks(
            uow, program.id, member_id, evaluation, {"event_id": str(eid), "event": period.trigger}, now
        )
        uow.emit(program.id, Event(events.EVENT_RECORDED, {
            "event_id": str(eid), "member_id": str(member_id), "name": period.trigger, "points": points}))  # fmt: skip
        uow.commit()
    counts["evaluated"] += 1
    if points > 0:
        counts["awarded"] += 1
        counts["points"] += points
