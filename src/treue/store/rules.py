"""Storage of the rules engine: rules and their versions, campaigns and their budgets, usage counters, custom events.

The rule set of a programme is cached per process for a few seconds (like `Programs.get(cached=True)`) and
forgotten in this process when it is edited, so an earn in a programme whose rules did not change reads none
of these tables. Budgets are spent with one conditional UPDATE, so concurrent earns can never spend more than a
campaign's budget (the CHECK constraint on `campaigns` guards it too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, case, extract, func, insert, literal, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from treue.domain.errors import NotFound, RuleInvalid
from treue.domain.programs import Program
from treue.domain.rules.context import MemberSnapshot
from treue.domain.rules.definitions import RuleSet
from treue.domain.rules.limits import BudgetDelta, LimitState, Period, Scope, Usage, UsageDelta, UsageKey
from treue.domain.rules.stored import StoredCampaign, StoredRule, build_rule_set
from treue.store import tables as t
from treue.store.batch import InsertBatch

log = logging.getLogger("treue.rules")


class Rules:
    _cache: dict[UUID, tuple[float, str, str, RuleSet]] = {}
    _cache_lock = threading.Lock()
    CACHE_SECONDS = 5.0  # rules change rarely; other processes see an edit within this time

    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    # -- the rule set of a programme -------------------------------------------------------------
    def ruleset(self, program: Program, *, cached: bool = False) -> RuleSet:
        """The programme's rules (not archived) and campaigns, ready to evaluate. With `cached`, a rule set
        read by this process in the last few seconds is reused without a query."""
        if cached:
            hit = self._cache.get(program.id)
            if hit and hit[0] > time.monotonic() and hit[1:3] == (program.timezone, program.currency):
                return hit[3]
        expires = time.monotonic() + self.CACHE_SECONDS
        ruleset = self.build(program, self.stored_rules(program.id), self.stored_campaigns(program.id),
                             strict=False)  # fmt: skip
        with self._cache_lock:
            self._cache[program.id] = (expires, program.timezone, program.currency, ruleset)
        return ruleset

    @staticmethod
    def build(program: Program, rules: Iterable[StoredRule], campaigns: Iterable[StoredCampaign], *,
              strict: bool = True) -> RuleSet:  # fmt: skip
        def skip(owner: str, error: RuleInvalid) -> None:
            log.warning("programme %s: %s no longer reads and is left out: %s", program.id, owner, error.detail)

        return build_rule_set(rules, campaigns, timezone=program.timezone, currency=program.currency,
                              on_invalid=None if strict else skip)  # fmt: skip

    @classmethod
    def forget(cls, program_id: UUID) -> None:
        """Drop this process's cached rule set of a programme (after an edit)."""
        with cls._cache_lock:
            cls._cache.pop(program_id, None)

    def stored_rules(self, program_id: UUID, *, include_archived: bool = False) -> list[StoredRule]:
        r, v = t.rules, t.rule_versions
        query = (
            select(r.c.id, r.c.campaign_id, v.c.valid_from, v.c.definition)
            .join(v, and_(v.c.program_id == r.c.program_id, v.c.rule_id == r.c.id))
            .where(r.c.program_id == program_id)
            .order_by(r.c.id, v.c.version)
        )
        if not include_archived:
            query = query.where(r.c.archived_at.is_(None))
        found: dict[str, tuple[str | None, list[tuple[datetime, Any]]]] = {}
        for row in self.conn.execute(query):
            found.setdefault(row.id, (row.campaign_id, []))[1].append((row.valid_from, row.definition))
        return [StoredRule(rule_id, campaign, tuple(versions)) for rule_id, (campaign, versions) in found.items()]

    def stored_campaigns(self, program_id: UUID) -> list[StoredCampaign]:
        rows = self.conn.execute(
            select(t.campaigns.c.id, t.campaigns.c.definition)
            .where(t.campaigns.c.program_id == program_id).order_by(t.campaigns.c.id)
        )  # fmt: skip
        return [StoredCampaign(row.id, row.definition) for row in rows]

    def lock_program(self, program_id: UUID) -> None:
        """Serialise edits of one programme's rules (they are validated against each other). FOR NO KEY UPDATE:
        inserts that reference the programme (foreign keys take KEY SHARE locks) do not wait for it."""
        found = self.conn.execute(
            select(t.programs.c.id).where(t.programs.c.id == program_id).with_for_update(key_share=True)
        ).scalar()
        if found is None:
            raise NotFound(f"programme {program_id} not found")

    # -- rules and versions ----------------------------------------------------------------------
    def rules(self, program_id: UUID, *, include_archived: bool = False,
              campaign_id: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Rule rows, each with its latest version (`version`, `valid_from`, `definition`)."""
        r, v = t.rules, t.rule_versions
        latest = (
            select(v.c.rule_id, func.max(v.c.version).label("version"))
            .where(v.c.program_id == program_id).group_by(v.c.rule_id).subquery()
        )  # fmt: skip
        query = (
            select(r, v.c.version, v.c.valid_from, v.c.definition, v.c.created_by)
            .join(latest, latest.c.rule_id == r.c.id)
            .join(v, and_(v.c.program_id == r.c.program_id, v.c.rule_id == r.c.id, v.c.version == latest.c.version))
            .where(r.c.program_id == program_id)
            .order_by(r.c.id)
        )
        if not include_archived:
            query = query.where(r.c.archived_at.is_(None))
        if campaign_id is not None:
            query = query.where(r.c.campaign_id == campaign_id)
        return [dict(row._mapping) for row in self.conn.execute(query)]

    def get_rule(self, program_id: UUID, rule_id: str, *, lock: bool = False) -> dict[str, Any]:
        """A rule row with all its versions, oldest first."""
        query = select(t.rules).where(t.rules.c.program_id == program_id, t.rules.c.id == rule_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"rule {rule_id!r} not found", resource="rule")
        versions = self.conn.execute(
            select(t.rule_versions)
            .where(t.rule_versions.c.program_id == program_id, t.rule_versions.c.rule_id == rule_id)
            .order_by(t.rule_versions.c.version)
        ).all()  # fmt: skip
        return {**row._mapping, "versions": [dict(v._mapping) for v in versions]}

    def exists(self, program_id: UUID, rule_id: str) -> bool:
        found = self.conn.execute(
            select(t.rules.c.id).where(t.rules.c.program_id == program_id, t.rules.c.id == rule_id)
        ).first()
        return found is not None

    def add_rule(self, program_id: UUID, rule_id: str, name: str, campaign_id: str | None, now: datetime) -> None:
        self.conn.execute(insert(t.rules).values(program_id=program_id, id=rule_id, name=name,
                                                 campaign_id=campaign_id, created_at=now))  # fmt: skip
        self.forget(program_id)

    def add_version(self, program_id: UUID, rule_id: str, version: int, valid_from: datetime,
                    definition: dict[str, Any], now: datetime, actor: str) -> None:  # fmt: skip
        self.conn.execute(insert(t.rule_versions).values(
            program_id=program_id, rule_id=rule_id, version=version, valid_from=valid_from, definition=definition,
            created_at=now, created_by=actor))  # fmt: skip
        self.forget(program_id)

    def set_rule(self, program_id: UUID, rule_id: str, **values: Any) -> None:
        self.conn.execute(
            update(t.rules).where(t.rules.c.program_id == program_id, t.rules.c.id == rule_id).values(**values)
        )
        self.forget(program_id)

    # -- campaigns ---------------------------------------------------------------------------------
    def campaigns(self, program_id: UUID) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.campaigns).where(t.campaigns.c.program_id == program_id).order_by(t.campaigns.c.id)
        )
        return [dict(row._mapping) for row in rows]

    def get_campaign(self, program_id: UUID, campaign_id: str, *, lock: bool = False) -> dict[str, Any]:
        query = select(t.campaigns).where(t.campaigns.c.program_id == program_id, t.campaigns.c.id == campaign_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"campaign {campaign_id!r} not found", resource="campaign")
        return dict(row._mapping)

    def add_campaign(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.campaigns).values(**row))
        self.forget(row["program_id"])

    def update_campaign(self, program_id: UUID, campaign_id: str, values: dict[str, Any]) -> None:
        self.conn.execute(
            update(t.campaigns)
            .where(t.campaigns.c.program_id == program_id, t.campaigns.c.id == campaign_id)
            .values(**values)
        )
        self.forget(program_id)

    # -- what an evaluation reads and writes -----------------------------------------------------
    def member_snapshot(self, program_id: UUID, member_id: UUID, before: datetime, *,
                        history: bool, segments: bool = True) -> MemberSnapshot:  # fmt: skip
        """What rules may know of a member; with `history` also the number of purchases and the spend (net of
        refunds) recorded with a time up to `before` - the event being evaluated is not stored yet, so it does
        not count itself; with `segments` the codes of the member's segments (issue 8; the earning hot path asks
        only when a rule reads member.segments). One query; NotFound if the member is not in this programme."""
        m, mt = t.members, t.member_tiers
        # The tier in force (an unexpired manual assignment, else the earned tier; no state: the ladder's lowest).
        in_force = case((and_(mt.c.manual_code.is_not(None), or_(mt.c.manual_until.is_(None), mt.c.manual_until > before)),
                         mt.c.manual_code), else_=mt.c.tier_code)  # fmt: skip
        tier = func.coalesce(
            select(in_force).where(mt.c.program_id == program_id, mt.c.member_id == member_id).scalar_subquery(),
            select(t.tiers.c.code).where(t.tiers.c.program_id == program_id, t.tiers.c.position == 0).scalar_subquery(),
        )
        columns: list[Any] = [m.c.attributes, m.c.enrolled_at, m.c.birthday, tier.label("tier")]
        if history:
            p = t.purchases
            earlier = and_(p.c.program_id == program_id, p.c.member_id == member_id, p.c.occurred_at <= before)
            count = select(func.count()).select_from(p).where(earlier).scalar_subquery()
            spend = select(func.coalesce(func.sum(p.c.total_minor - p.c.refunded_minor), 0)).where(earlier)
            columns += [count.label("purchase_count"), spend.scalar_subquery().label("spend")]
        if segments:  # segments (issue 8): the codes in the same query, comma-separated (codes have no commas)
            sm = t.segment_members
            joined = (func.string_agg(sm.c.segment_code, ",") if self.conn.dialect.name == "postgresql"
                      else func.group_concat(sm.c.segment_code, ","))  # fmt: skip
            codes = select(joined).where(sm.c.program_id == program_id, sm.c.member_id == member_id)
            columns.append(codes.scalar_subquery().label("segments"))
        row = self.conn.execute(select(*columns).where(m.c.program_id == program_id, m.c.id == member_id)).first()
        if row is None:
            raise NotFound(f"member {member_id} not found", resource="member")
        return MemberSnapshot(
            id=str(member_id), tier=row.tier, attributes=row.attributes or {}, enrolled_at=row.enrolled_at,
            birthday=row.birthday,
            purchase_count=int(row.purchase_count) if history else 0, spend_minor=int(row.spend) if history else 0,
            segments=tuple(sorted(row.segments.split(","))) if segments and row.segments else (),
        )  # fmt: skip

    def limit_state(self, program_id: UUID, member_id: UUID, keys: Sequence[UsageKey],
                    campaigns: Sequence[str]) -> LimitState:  # fmt: skip
        """The member's usage for `keys` and the spent budget of `campaigns`, in one query (no locks)."""
        if not keys and not campaigns:
            return LimitState()
        u, c = t.rule_usage, t.campaigns
        parts: list[Any] = []
        if keys:
            parts.append(
                select(literal("u").label("kind"), u.c.scope, u.c.owner, u.c.period, u.c.period_key, u.c.points,
                       u.c.awards)
                .where(u.c.program_id == program_id, u.c.member_id == member_id,
                       u.c.owner.in_(sorted({k.owner for k in keys})),
                       u.c.period_key.in_(sorted({k.key for k in keys})))
            )  # fmt: skip
        if campaigns:
            parts.append(
                select(literal("b").label("kind"), literal("").label("scope"), c.c.id.label("owner"),
                       literal("").label("period"), literal("").label("period_key"),
                       c.c.budget_spent.label("points"), literal(0).label("awards"))
                .where(c.c.program_id == program_id, c.c.id.in_(sorted(campaigns)))
            )  # fmt: skip
        query: Any = parts[0] if len(parts) == 1 else union_all(*parts)  # Any: mypy 2.4 crashes on the union
        wanted = set(keys)
        usage: dict[UsageKey, Usage] = {}
        spent: dict[str, int] = {}
        for row in self.conn.execute(query):
            if row.kind == "b":
                spent[row.owner] = int(row.points)
                continue
            key = UsageKey(Scope(row.scope), row.owner, Period(row.period), row.period_key)
            if key in wanted:
                usage[key] = Usage(int(row.points), int(row.awards))
        return LimitState(usage, spent)

    def lock_budgets(self, program_id: UUID, campaigns: Sequence[str]) -> dict[str, int]:
        """Lock campaign rows (in id order, after the member's account) and read their spent budgets."""
        rows = self.conn.execute(
            select(t.campaigns.c.id, t.campaigns.c.budget_spent)
            .where(t.campaigns.c.program_id == program_id, t.campaigns.c.id.in_(sorted(campaigns)))
            .order_by(t.campaigns.c.id).with_for_update(key_share=True)
        )  # fmt: skip
        return {row.id: int(row.budget_spent) for row in rows}

    def spend_budgets(self, program_id: UUID, deltas: Sequence[BudgetDelta]) -> str | None:
        """Spend budgets atomically, in campaign id order: each UPDATE succeeds only if the campaign still has
        the room. Returns None, or the campaign that had no room left (what was spent before it is undone)."""
        c = t.campaigns
        done: list[BudgetDelta] = []
        for delta in sorted(deltas, key=lambda d: d.campaign):
            if delta.points == 0:
                continue
            result = self.conn.execute(
                update(c)
                .where(c.c.program_id == program_id, c.c.id == delta.campaign,
                       (c.c.budget_points.is_(None)) | (c.c.budget_spent + delta.points <= c.c.budget_points))
                .values(budget_spent=c.c.budget_spent + delta.points)
            )  # fmt: skip
            if result.rowcount != 1:
                for earlier in done:
                    self.return_budget(program_id, earlier.campaign, earlier.points)
                return delta.campaign
            done.append(delta)
        return None

    def return_budget(self, program_id: UUID, campaign_id: str, points: int) -> None:
        """Give points back to a campaign's budget (a refund, or undoing a partial spend)."""
        c = t.campaigns
        self.conn.execute(
            update(c).where(c.c.program_id == program_id, c.c.id == campaign_id)
            .values(budget_spent=c.c.budget_spent - points)
        )  # fmt: skip

    def add_usage(self, program_id: UUID, member_id: UUID, deltas: Sequence[UsageDelta]) -> None:
        """Add to the member's usage counters (insert or add, one statement)."""
        if not deltas:
            return
        u = t.rule_usage
        rows = [
            {"program_id": program_id, "member_id": member_id, "scope": d.key.scope.value, "owner": d.key.owner,
             "period": d.key.period.value, "period_key": d.key.key, "points": d.points, "awards": d.awards}
            for d in deltas
        ]  # fmt: skip
        make = postgres_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        statement = make(u)
        statement = statement.on_conflict_do_update(
            index_elements=[u.c.program_id, u.c.member_id, u.c.scope, u.c.owner, u.c.period, u.c.period_key],
            set_={"points": u.c.points + statement.excluded.points, "awards": u.c.awards + statement.excluded.awards},
        )
        self.conn.execute(statement, rows)

    def return_usage(self, program_id: UUID, member_id: UUID, deltas: Sequence[UsageDelta]) -> None:
        """Take back from the member's usage counters what a refunded earn had added (`deltas` positive).
        An UPDATE, not an upsert: the rows exist since the earn, and the CHECK refuses a negative insert row."""
        u = t.rule_usage
        for d in deltas:
            self.conn.execute(
                update(u).where(u.c.program_id == program_id, u.c.member_id == member_id,
                                u.c.scope == d.key.scope.value, u.c.owner == d.key.owner,
                                u.c.period == d.key.period.value, u.c.period_key == d.key.key)
                .values(points=u.c.points - d.points, awards=u.c.awards - d.awards)
            )  # fmt: skip

    def usage_of(self, program_id: UUID, member_id: UUID) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.rule_usage).where(t.rule_usage.c.program_id == program_id,
                                       t.rule_usage.c.member_id == member_id)
            .order_by(t.rule_usage.c.scope, t.rule_usage.c.owner, t.rule_usage.c.period_key)
        )  # fmt: skip
        return [dict(row._mapping) for row in rows]


class Events:
    """Custom events (review.created, ...), stored whether or not a rule exists for them."""

    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    def add(self, row: dict[str, Any]) -> None:
        """Queued: written with the next flush (or the commit)."""
        self.batch.add(t.events, [row])

    def get(self, program_id: UUID, event_id: UUID) -> dict[str, Any]:
        row = self.conn.execute(
            select(t.events).where(t.events.c.program_id == program_id, t.events.c.id == event_id)
        ).first()
        if row is None:
            raise NotFound(f"event {event_id} not found", resource="event")
        return dict(row._mapping)

    def of_member(self, program_id: UUID, member_id: UUID, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.events).where(t.events.c.program_id == program_id, t.events.c.member_id == member_id)
            .order_by(t.events.c.occurred_at.desc(), t.events.c.id).limit(limit)
        )  # fmt: skip
        return [dict(row._mapping) for row in rows]

    # -- scheduled triggers (birthday, membership_anniversary, cron): see services/scheduled.py ----------
    def claimed(self, program_id: UUID, event_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these (deterministic) event ids are already stored: their period was handled."""
        if not event_ids:
            return set()
        e = t.events
        rows = self.conn.execute(select(e.c.id).where(e.c.program_id == program_id, e.c.id.in_(list(event_ids))))
        return {row.id for row in rows}

    def claim(self, row: dict[str, Any]) -> bool:
        """Insert an event unless one with its id exists (written now, not queued). False: someone else has it
        - the primary key is the once-only guarantee of a scheduled award, whatever runs concurrently."""
        make = postgres_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        statement = make(t.events).values(**row).on_conflict_do_nothing(index_elements=["program_id", "id"])
        return bool(self.conn.execute(statement).rowcount)

    def scheduled_members(self, program_id: UUID, enrolled_before: datetime, *,
                          birthdays: Iterable[tuple[int, int]] = (), enrolments: Iterable[tuple[int, int]] = (),
                          after: UUID | None = None, limit: int = 500) -> list[tuple[UUID, datetime, Any]]:  # fmt: skip
        """Active members enrolled before `enrolled_before`, in id order after `after`: (id, enrolled_at,
        birthday). With `birthdays` / `enrolments` only those whose birthday / UTC enrolment date falls on one
        of these (month, day) pairs (a pre-filter: the caller checks the local dates)."""
        m = t.members
        query = select(m.c.id, m.c.enrolled_at, m.c.birthday).where(
            m.c.program_id == program_id, m.c.status == "active", m.c.enrolled_at < enrolled_before
        )
        if birthdays:
            query = query.where(_month_day_in(m.c.birthday, birthdays))
        if enrolments:
            query = query.where(_month_day_in(m.c.enrolled_at, enrolments))
        if after is not None:
            query = query.where(m.c.id > after)
        rows = self.conn.execute(query.order_by(m.c.id).limit(limit))
        return [(row.id, row.enrolled_at, row.birthday) for row in rows]


def _month_day_in(column: Any, pairs: Iterable[tuple[int, int]]) -> Any:
    month, day = extract("month", column), extract("day", column)
    return or_(*(and_(month == mm, day == dd) for mm, dd in sorted(set(pairs))))
