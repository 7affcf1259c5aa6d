"""The programme simulator: replay a period's recorded purchases and events against a draft rule set, beside
the programme's current rules, writing nothing. See `treue.domain.simulation` for what a replay sees."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from typing import Any
from uuid import UUID

from treue.domain.durations import start_of_local_day, zone
from treue.domain.errors import InvalidInput, RuleInvalid
from treue.domain.money import currency_exponent
from treue.domain.programs import Program
from treue.domain.rules.definitions import RuleSet, parse_campaign, parse_rule
from treue.domain.rules.spec import Spec, join
from treue.domain.simulation import MemberFacts, Replay, ReplayPart, Shard, most_affected, shardable
from treue.domain.tiers import Basis, Ladder
from treue.services.ports import UnitOfWork
from treue.services.rules import FORMAT

PARALLEL_FROM = 50_000  # purchases and events: below this a second process costs more than it saves
SINCE_EVER = datetime(2000, 1, 1, tzinfo=UTC)  # a draft's rules are replayed as if in force all along
NOT_REPLAYED = ["scheduled triggers (birthday, membership_anniversary, cron)",
                "caps and campaign budgets used before the period (each starts at zero on its first day)",
                "tier and club benefits (earn multipliers, cashback percent, birthday bonus)",
                "tier changes during the period (rules see each member's tier of today)"]  # fmt: skip


def draft_rule_set(program: Program, document: Mapping[str, Any]) -> RuleSet:
    """The rule set of a draft in the `treue rules export` format, every rule in force from the start."""
    spec = Spec(dict(document)).only("format", "rules", "campaigns", "tiers")
    if spec.text("format", FORMAT) != FORMAT:
        raise RuleInvalid(f"unknown format (expected {FORMAT})", location="format")
    rules = [parse_rule(item, currency=program.currency, valid_from=SINCE_EVER, location=join("rules", index))
             for index, item in enumerate(spec.items("rules", []))]  # fmt: skip
    campaigns = [parse_campaign(item, timezone=program.timezone, currency=program.currency, valid_from=SINCE_EVER,
                                location=join("campaigns", index))
                 for index, item in enumerate(spec.items("campaigns", []))]  # fmt: skip
    return RuleSet(rules, campaigns)


def draft_ladder(program: Program, document: Mapping[str, Any]) -> Ladder | None:
    """The draft's tier ladder (`tiers`, as `PUT /tiers` takes it), or None to keep today's."""
    data = document.get("tiers")
    if data is None:
        return None
    try:
        return Ladder.parse(data, currency_exponent(program.currency))
    except InvalidInput as error:
        raise RuleInvalid(f"tiers: {error.detail}", location="tiers") from None


def members_per_tier(ladder: Ladder | None, tiers: Mapping[UUID, str | None],
                     replayed: Iterable[UUID]) -> dict[str, int]:  # fmt: skip
    """How many of the replayed members hold each tier of `ladder` (lowest first; members without a stored state
    are at the lowest tier). Empty without a ladder."""
    if ladder is None:
        return {}
    counts = dict.fromkeys((t.code for t in ladder.tiers), 0)
    lowest = ladder.lowest.code
    for member_id in replayed:
        code = tiers.get(member_id) or lowest
        counts[code if code in counts else lowest] += 1
    return counts


def draft_tiers(uow: UnitOfWork, program: Program, ladder: Ladder, draft: Replay, start: datetime,
                end: datetime) -> dict[UUID, str]:  # fmt: skip
    """Each replayed member's tier under the draft ladder at the end of the period: spend or purchases in each
    tier's window ending then (counted in the database), or - for a status-points ladder - the points the draft
    awarded them in the period."""
    windows = ladder.windows()
    tz = zone(program.timezone)
    if ladder.basis is Basis.STATUS_POINTS:
        points = draft.member_points()
        return {m: ladder.qualified(dict.fromkeys(windows, points.get(m, 0))).code for m in draft.members}
    counted = uow.simulation.window_amounts(program.id, ladder.basis.value, [w.start(end, tz) for w in windows],
                                            start, end)  # fmt: skip
    none = (0,) * len(windows)
    return {m: ladder.qualified(dict(zip(windows, counted.get(m, none), strict=True))).code for m in draft.members}


def simulate(uow: UnitOfWork, program_id: UUID, draft: Mapping[str, Any], first_day: date, last_day: date, *,
             progress: Callable[[int, int], None] | None = None, top: int = 10, limit: int | None = None,
             database_url: str | None = None, processes: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Replay the purchases and events from `first_day` through `last_day` (programme-local dates) against the
    current rules and against `draft`, and report both side by side. `progress(done, total)` is called as the
    replay goes; `limit` refuses a period with more purchases and events than that (for the API).

    With `database_url` (a file or server database) and a period of at least `PARALLEL_FROM` purchases and events,
    the replay runs in `processes` processes (default: one per core, at least two) that each replay both sides
    for a share of the members and read only their rows; the shares are combined exactly (see
    `treue.domain.simulation`). Where a budgeted rule is exclusive in a group, that split is not exact: then one
    process replays today's side and another the draft's."""
    if last_day < first_day:
        raise InvalidInput("the period ends before it starts", location="to")
    with uow:
        program = uow.programs.get(program_id)
        proposed = draft_rule_set(program, draft)
        proposed_ladder = draft_ladder(program, draft)
        current = uow.rules.ruleset(program)
        tz = zone(program.timezone)
        start, end = start_of_local_day(first_day, tz), start_of_local_day(last_day + timedelta(days=1), tz)
        total = uow.simulation.count(program_id, start, end)
        if limit is not None and total > limit:
            raise InvalidInput(f"the period holds {total} purchases and events; at most {limit} are replayed here "
                               "(use `treue simulate` for more)", location="to")  # fmt: skip
        parallel = database_url is not None and total >= PARALLEL_FROM and _shareable(database_url)
        if parallel and shardable(current) and shardable(proposed):
            assert database_url is not None
            count = max(2, processes or os.cpu_count() or 2)
            now_side, draft_side, today = _replay_in_shards(uow, program, current, proposed, draft, start, end,
                                                            total, database_url, count, progress)  # fmt: skip
        elif parallel:
            assert database_url is not None
            now_side, draft_side, today = _replay_side_by_side(uow, program, current, proposed, start, end, total,
                                                               database_url, progress)  # fmt: skip
        else:
            now_side, draft_side = Replay(program, current), Replay(program, proposed)
            members = replay_period(uow, program_id, start, end, [now_side, draft_side], total, progress)
            today = {m: facts.tier for m, facts in members.items()}
        ladder = uow.tiers.ladder(program_id)
        after = today if proposed_ladder is None else draft_tiers(uow, program, proposed_ladder, draft_side,
                                                                  start, end)  # fmt: skip
    now_report = now_side.report(top)
    now_report["members_per_tier"] = members_per_tier(ladder, today, draft_side.members)
    draft_report = draft_side.report(top)
    draft_report["members_per_tier"] = members_per_tier(proposed_ladder or ladder, after, draft_side.members)
    return {
        "program_id": str(program_id), "currency": program.currency,
        "period": {"from": first_day.isoformat(), "to": last_day.isoformat(), "timezone": program.timezone},
        "current": now_report, "draft": draft_report,
        "difference": {key: draft_report[key] - now_report[key] for key in ("points_issued", "points_net")},
        "most_affected": most_affected(now_side.member_points(), draft_side.member_points(), top=top),
        "not_replayed": NOT_REPLAYED,
    }  # fmt: skip


Tiers = dict[UUID, str | None]  # each replayed member's tier today
Sides = tuple[Replay, Replay, Tiers]  # today's side, the draft's, and the tiers


def _replay_in_shards(uow: UnitOfWork, program: Program, current: RuleSet, proposed: RuleSet,
                      draft: Mapping[str, Any], start: datetime, end: datetime, total: int, database_url: str,
                      count: int, progress: Callable[[int, int], None] | None) -> Sides:  # fmt: skip
    """Both sides in `count` processes, each replaying the members of one shard (this one replays shard 0)."""
    pool = ProcessPoolExecutor(count - 1, mp_context=get_context("spawn"))
    try:
        others = [pool.submit(replay_shard, database_url, program.id, draft, start, end, (index, count))
                  for index in range(1, count)]  # fmt: skip
        sides = [Replay(program, current, defer_budgets=True), Replay(program, proposed, defer_budgets=True)]

        def report(done: int, _: int) -> None:  # this shard's share stands for the whole
            if progress is not None:
                progress(min(done * count, total), total)

        members = replay_period(uow, program.id, start, end, sides, 0, report, shard=(0, count))
        parts = [([s.part() for s in sides], {m: facts.tier for m, facts in members.items()})]
        parts += [other.result() for other in others]
    finally:
        pool.shutdown(cancel_futures=True)
    if progress is not None:
        progress(total, total)
    today: Tiers = {}
    for _, tiers in parts:
        today.update(tiers)
    with collection_paused():
        return (Replay.combined(program, current, [p[0][0] for p in parts]),
                Replay.combined(program, proposed, [p[0][1] for p in parts]), today)  # fmt: skip


def replay_shard(database_url: str, program_id: UUID, draft: Mapping[str, Any], start: datetime, end: datetime,
                 shard: Shard) -> tuple[list[ReplayPart], Tiers]:  # fmt: skip
    """Both sides for the members of one shard, in a process of its own (see `simulate`)."""
    with _own_connection(database_url) as uow:
        program = uow.programs.get(program_id)
        sides = [Replay(program, uow.rules.ruleset(program), defer_budgets=True),
                 Replay(program, draft_rule_set(program, draft), defer_budgets=True)]  # fmt: skip
        members = replay_period(uow, program_id, start, end, sides, 0, shard=shard)
    return [side.part() for side in sides], {m: facts.tier for m, facts in members.items()}


def _replay_side_by_side(uow: UnitOfWork, program: Program, current: RuleSet, proposed: RuleSet, start: datetime,
                         end: datetime, total: int, database_url: str,
                         progress: Callable[[int, int], None] | None) -> Sides:  # fmt: skip
    """Today's side in a second process while this one replays the draft: the two share nothing but the input."""
    pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"))
    try:
        other = pool.submit(replay_current_side, database_url, program.id, start, end)
        draft_side = Replay(program, proposed)
        members = replay_period(uow, program.id, start, end, [draft_side], total, progress)
        now_part = other.result()
    finally:
        pool.shutdown(cancel_futures=True)
    now_side = Replay.combined(program, current, [now_part])
    return now_side, draft_side, {m: facts.tier for m, facts in members.items()}


def replay_period(uow: UnitOfWork, program_id: UUID, start: datetime, end: datetime, replays: list[Replay],
                  total: int, progress: Callable[[int, int], None] | None = None,
                  shard: Shard | None = None) -> dict[UUID, MemberFacts]:  # fmt: skip
    """Feed every replay the period's purchases and events (of the members of `shard`) in time order, inside
    the caller's transaction; what was known of the members before the period."""
    members: dict[UUID, MemberFacts] = uow.simulation.members(program_id, start, end, shard)
    done = 0
    with collection_paused():
        for done, (kind, item) in enumerate(uow.simulation.stream(program_id, start, end, shard), start=1):
            _feed(replays, members, kind, item)
            if progress is not None and done % 1000 == 0:
                progress(done, total)
    if progress is not None:
        progress(done, max(done, total))
    return members


def _feed(replays: list[Replay], members: Mapping[UUID, MemberFacts], kind: str, item: Any) -> None:
    if kind == "purchase":
        purchase, refunded = item
        known = members.get(purchase.member_id) if purchase.member_id else None
        for replay in replays:
            replay.purchase(purchase, known, refunded)
    else:
        known = members.get(item.member_id)
        for replay in replays:
            replay.event(item.name, item.occurred_at, item.member_id, known, item.attributes or {}, item.id)


@contextmanager
def collection_paused() -> Iterator[None]:
    """No automatic garbage collection inside: a replay allocates tens of objects per purchase and keeps what it
    learns of every member, so the collector ran every few purchases and rescanned all of it - a tenth of the
    time, for nothing, as a replay makes no reference cycles. Whatever it did make is collected on the way out."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def replay_current_side(database_url: str, program_id: UUID, start: datetime, end: datetime) -> ReplayPart:
    """Today's side of a simulation, in a process of its own (see `simulate`)."""
    with _own_connection(database_url) as uow:
        program = uow.programs.get(program_id)
        replay = Replay(program, uow.rules.ruleset(program))
        replay_period(uow, program_id, start, end, [replay], 0)
    return replay.part()


@contextmanager
def _own_connection(database_url: str) -> Iterator[UnitOfWork]:
    """A read-only unit of work on a connection of this process's own (a child process shares none)."""
    from treue.store.database import make_engine
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    engine = make_engine(database_url, pool_size=1)
    try:
        uow = SqlUnitOfWorkFactory(engine)(read_only=True)
        with uow:
            yield uow
    finally:
        engine.dispose()


def _shareable(database_url: str) -> bool:
    """A second process can read the same database (not an in-memory SQLite one)."""
    return not (database_url.startswith("sqlite") and (":memory:" in database_url or database_url.endswith("://")))
