"""Storage of tiers: the ladder of a programme, members' tier state and its history, qualifying amounts.

Qualifying amounts are counted from the facts when asked (one query for every window needed), so a refund
lowers them without bookkeeping and a redemption cannot: spend and purchase counts from `purchases` (net of
refunds), status points from the earn transfers to the member's points account and the refund take-backs.

Whether a programme has a ladder (and club plans) is cached per process for a few seconds, like its rule set,
so a purchase in a programme without either asks nothing about benefits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from treue.domain.ledger import POINTS, TransferKind
from treue.domain.tiers import Basis, Ladder, MemberTier, Review, Tier, TierBenefits, Window
from treue.store import tables as t
from treue.store.batch import InsertBatch

L, T, M, C = t.tier_ladders, t.tiers, t.member_tiers, t.tier_changes


class Tiers:
    _cache: dict[UUID, tuple[float, Ladder | None, bool]] = {}
    _cache_lock = threading.Lock()
    CACHE_SECONDS = 5.0  # ladders change rarely; other processes see an edit within this time

    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    # -- the ladder ------------------------------------------------------------------------------
    def ladder(self, program_id: UUID, *, cached: bool = False) -> Ladder | None:
        return self._sources(program_id, cached)[0]

    def benefit_sources(self, program_id: UUID, *, cached: bool = False) -> tuple[bool, bool]:
        """(the programme has a tier ladder, it has club plans): whether a purchase need ask for benefits."""
        ladder, plans = self._sources(program_id, cached)
        return ladder is not None, plans

    def _sources(self, program_id: UUID, cached: bool) -> tuple[Ladder | None, bool]:
        if cached:
            hit = self._cache.get(program_id)
            if hit and hit[0] > time.monotonic():
                return hit[1], hit[2]
        expires = time.monotonic() + self.CACHE_SECONDS
        plans = select(t.club_plans.c.id).where(t.club_plans.c.program_id == program_id).exists()
        found = select(L.c.program_id).where(L.c.program_id == program_id).exists()
        head = self.conn.execute(select(found.label("ladder"), plans.label("plans"))).one()
        ladder = None
        if head.ladder:
            top = self.conn.execute(select(L).where(L.c.program_id == program_id)).one()
            rows = self.conn.execute(select(T).where(T.c.program_id == program_id).order_by(T.c.position)).all()
            tiers = tuple(
                Tier(r.code, r.name, int(r.threshold), Window.parse(r.qualifying_window),
                     TierBenefits.parse(r.benefits)) for r in rows
            )  # fmt: skip
            ladder = Ladder(Basis(top.basis), tiers, Review(top.review), top.grace_days, top.notice_days)
        with self._cache_lock:
            self._cache[program_id] = (expires, ladder, bool(head.plans))
        return ladder, bool(head.plans)

    @classmethod
    def forget(cls, program_id: UUID) -> None:
        """Drop this process's cached ladder (and club-plan flag) of a programme, after an edit."""
        with cls._cache_lock:
            cls._cache.pop(program_id, None)

    def save_ladder(self, program_id: UUID, ladder: Ladder, now: datetime) -> None:
        self.conn.execute(delete(T).where(T.c.program_id == program_id))
        self.conn.execute(delete(L).where(L.c.program_id == program_id))
        self.conn.execute(insert(L).values(program_id=program_id, basis=ladder.basis.value,
                                           review=ladder.review.value, grace_days=ladder.grace_days,
                                           notice_days=ladder.notice_days, updated_at=now))  # fmt: skip
        self.conn.execute(insert(T), [
            {"program_id": program_id, "code": tier.code, "position": index, "name": dict(tier.name),
             "threshold": tier.threshold, "qualifying_window": str(tier.window), "benefits": tier.benefits.to_json()}
            for index, tier in enumerate(ladder.tiers)])  # fmt: skip
        self.forget(program_id)

    def lock_ladder(self, program_id: UUID) -> None:
        """Serialise edits of one programme's ladder (on the programme row, which always exists)."""
        self.conn.execute(
            select(t.programs.c.id).where(t.programs.c.id == program_id).with_for_update(key_share=True)
        ).first()

    def codes_held(self, program_id: UUID) -> dict[str, int]:
        """How many members hold each tier code, earned or manually assigned."""
        found: dict[str, int] = {}
        for column in (M.c.tier_code, M.c.manual_code):
            rows = self.conn.execute(
                select(column, func.count()).where(M.c.program_id == program_id, column.is_not(None)).group_by(column)
            )  # fmt: skip
            for code, count in rows:
                found[code] = found.get(code, 0) + int(count)
        return found

    # -- a member's state ------------------------------------------------------------------------
    def state(self, program_id: UUID, member_id: UUID, *, lock: bool = False) -> MemberTier | None:
        query = select(M).where(M.c.program_id == program_id, M.c.member_id == member_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return _state(row._mapping) if row is not None else None

    def state_and_enrolment(self, program_id: UUID, member_id: UUID) -> tuple[MemberTier | None, datetime | None]:
        """The state (None: never stored) and the member's enrolment (None: no such member), in one query."""
        m = t.members
        row = self.conn.execute(
            select(m.c.enrolled_at, M).select_from(m)
            .outerjoin(M, and_(M.c.program_id == m.c.program_id, M.c.member_id == m.c.id))
            .where(m.c.program_id == program_id, m.c.id == member_id)
        ).first()  # fmt: skip
        if row is None:
            return None, None
        mapping = row._mapping
        return (_state(mapping) if mapping[M.c.tier_code] is not None else None), mapping[m.c.enrolled_at]

    def effective_code(self, program_id: UUID, member_id: UUID, at: datetime) -> str | None:
        """The tier in force at `at` (a manual assignment not expired, else the earned tier); None: no state."""
        row = self.conn.execute(
            select(M.c.tier_code, M.c.manual_code, M.c.manual_until)
            .where(M.c.program_id == program_id, M.c.member_id == member_id)
        ).first()  # fmt: skip
        if row is None:
            return None
        manual = row.manual_code is not None and (row.manual_until is None or at < row.manual_until)
        return str(row.manual_code if manual else row.tier_code)

    def lock_state(self, program_id: UUID, member_id: UUID, initial: MemberTier, now: datetime) -> MemberTier:
        """The member's state under a row lock, created as `initial` if there was none (concurrent creators
        of one member's state queue on the primary key; the later one reads the earlier one's row)."""
        make = postgres_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        self.conn.execute(
            make(M).values(program_id=program_id, member_id=member_id, **_row(initial), updated_at=now)
            .on_conflict_do_nothing(index_elements=[M.c.program_id, M.c.member_id])
        )  # fmt: skip
        state = self.state(program_id, member_id, lock=True)
        assert state is not None
        return state

    def save_state(self, program_id: UUID, member_id: UUID, state: MemberTier, now: datetime) -> None:
        self.conn.execute(
            update(M).where(M.c.program_id == program_id, M.c.member_id == member_id)
            .values(**_row(state), updated_at=now)
        )  # fmt: skip

    def set_manual_reason(self, program_id: UUID, member_id: UUID, reason: str | None) -> None:
        self.conn.execute(
            update(M).where(M.c.program_id == program_id, M.c.member_id == member_id).values(manual_reason=reason)
        )

    def manual_reason(self, program_id: UUID, member_id: UUID) -> str | None:
        return self.conn.execute(
            select(M.c.manual_reason).where(M.c.program_id == program_id, M.c.member_id == member_id)
        ).scalar()

    def add_change(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(C).values(**row))

    def changes_of(self, program_id: UUID, member_id: UUID, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(C).where(C.c.program_id == program_id, C.c.member_id == member_id)
            .order_by(C.c.at.desc(), C.c.created_at.desc()).limit(limit)
        )  # fmt: skip
        return [dict(r._mapping) for r in rows]

    # -- what the tiers job works through ----------------------------------------------------------
    def reviews_due(self, program_id: UUID, review_before: datetime, after: UUID | None, limit: int) -> list[UUID]:
        """Members whose review date is at or before `review_before` (the job adds the grace period itself)."""
        query = select(M.c.member_id).where(M.c.program_id == program_id, M.c.review_at <= review_before)
        return self._page(query, after, limit)

    def notices_due(self, program_id: UUID, review_before: datetime, now: datetime, after: UUID | None,
                    limit: int) -> list[UUID]:  # fmt: skip
        """Members whose review is still ahead but within the notice period, not yet noticed for it."""
        query = select(M.c.member_id).where(
            M.c.program_id == program_id, M.c.review_at > now, M.c.review_at <= review_before,
            or_(M.c.notice_for.is_(None), M.c.notice_for != M.c.review_at),
        )  # fmt: skip
        return self._page(query, after, limit)

    def assignments_expired(self, program_id: UUID, now: datetime, after: UUID | None, limit: int) -> list[UUID]:
        query = select(M.c.member_id).where(M.c.program_id == program_id, M.c.manual_until <= now)
        return self._page(query, after, limit)

    def _page(self, query: Any, after: UUID | None, limit: int) -> list[UUID]:
        if after is not None:
            query = query.where(M.c.member_id > after)
        return [r[0] for r in self.conn.execute(query.order_by(M.c.member_id).limit(limit))]

    def enrolled_at(self, program_id: UUID, member_id: UUID) -> datetime | None:
        return self.conn.execute(
            select(t.members.c.enrolled_at).where(t.members.c.program_id == program_id, t.members.c.id == member_id)
        ).scalar()

    # -- qualifying amounts ------------------------------------------------------------------------
    def amounts(self, program_id: UUID, member_id: UUID, basis: Basis, starts: Sequence[datetime | None],
                end: datetime) -> list[int]:  # fmt: skip
        """The member's amount of `basis` from each start (None: ever) up to `end` inclusive, in one query."""
        if not starts:
            return []
        if basis is Basis.STATUS_POINTS:
            return self._status_points(program_id, member_id, starts, end)
        p = t.purchases
        net = p.c.total_minor - p.c.refunded_minor
        value: Any = net if basis is Basis.SPEND else case((net > 0, 1), else_=0)
        columns = [
            func.coalesce(func.sum(value if start is None else case((p.c.occurred_at >= start, value), else_=0)), 0)
            for start in starts
        ]
        where = [p.c.program_id == program_id, p.c.member_id == member_id, p.c.occurred_at <= end]
        earliest = _earliest(starts)
        if earliest is not None:
            where.append(p.c.occurred_at >= earliest)
        row = self.conn.execute(select(*columns).where(*where)).one()
        return [int(v) for v in row]

    def _status_points(self, program_id: UUID, member_id: UUID, starts: Sequence[datetime | None],
                       end: datetime) -> list[int]:  # fmt: skip
        """Points posted to the member's points account by earn transfers, less refund take-backs (reverse
        transfers of a purchase); a redemption, its cancellation, expiry and adjustments do not count."""
        tr, po, ac = t.transfers, t.postings, t.accounts
        amount = po.c.amount
        columns = [
            func.coalesce(func.sum(amount if start is None else case((tr.c.occurred_at >= start, amount), else_=0)), 0)
            for start in starts
        ]
        counted = or_(tr.c.kind == TransferKind.EARN.value,
                      and_(tr.c.kind == TransferKind.REVERSE.value, tr.c.purchase_id.is_not(None)))  # fmt: skip
        where = [
            tr.c.program_id == program_id, tr.c.member_id == member_id, tr.c.occurred_at <= end, counted,
            ac.c.member_id == member_id, ac.c.unit == POINTS,
        ]  # fmt: skip
        earliest = _earliest(starts)
        if earliest is not None:
            where.append(tr.c.occurred_at >= earliest)
        row = self.conn.execute(
            select(*columns).select_from(tr)
            .join(po, and_(po.c.program_id == tr.c.program_id, po.c.transfer_id == tr.c.id))
            .join(ac, and_(ac.c.program_id == po.c.program_id, ac.c.id == po.c.account_id))
            .where(*where)
        ).one()  # fmt: skip
        return [int(v) for v in row]


def _earliest(starts: Sequence[datetime | None]) -> datetime | None:
    return None if any(s is None for s in starts) else min(s for s in starts if s is not None)


def _row(state: MemberTier) -> dict[str, Any]:
    return {"tier_code": state.tier, "since": state.since, "review_at": state.review_at,
            "manual_code": state.manual, "manual_until": state.manual_until, "notice_for": state.notice_for}  # fmt: skip


def _state(m: Mapping[Any, Any]) -> MemberTier:
    def get(column: Any) -> Any:
        return m[column] if column in m else m[column.name]

    return MemberTier(get(M.c.tier_code), get(M.c.since), get(M.c.review_at), get(M.c.manual_code),
                      get(M.c.manual_until), get(M.c.notice_for))  # fmt: skip
