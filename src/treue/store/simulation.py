"""What the simulator replays, read in bulk: the period's purchases and events in time order, and what is
known of their members before the period (one aggregate query, not one per member)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, literal_column, or_, select, true

from treue.domain.cards import Payment
from treue.domain.money import Money
from treue.domain.purchases import Channel, Purchase
from treue.domain.simulation import MemberFacts, Shard
from treue.store import tables as t
from treue.store.rows import lines_from_json

BATCH = 5_000  # rows fetched per round trip (server-side cursor on PostgreSQL)


class SimulationSource:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def count(self, program_id: UUID, start: datetime, end: datetime) -> int:
        p = t.purchases
        query = select(func.count()).where(p.c.program_id == program_id, p.c.occurred_at >= start,
                                           p.c.occurred_at < end)  # fmt: skip
        e = t.events
        events = select(func.count()).where(e.c.program_id == program_id, e.c.occurred_at >= start,
                                            e.c.occurred_at < end)  # fmt: skip
        return int(self.conn.execute(query).scalar_one()) + int(self.conn.execute(events).scalar_one())

    def _in_shard(self, member_id: Any, shard: Shard | None, *, anonymous: bool = False) -> ColumnElement[bool]:
        """Whether the row of `member_id` (a column) belongs to `shard`: a uniform split of member ids by their
        last byte (PostgreSQL) or last hex digit (SQLite, which keeps them as 32 hex digits)."""
        if shard is None:
            return true()
        index, count = shard
        if self.conn.dialect.name == "postgresql":
            digit: ColumnElement[Any] = func.get_byte(func.uuid_send(member_id), 15)
        else:
            digit = func.instr("0123456789abcdef", func.lower(func.substr(member_id, -1))) - 1
        mine = (digit % literal_column(str(count))) == index
        return or_(member_id.is_(None), mine) if anonymous and index == 0 else mine

    def members(self, program_id: UUID, start: datetime, end: datetime,
                shard: Shard | None = None) -> dict[UUID, MemberFacts]:  # fmt: skip
        """The members active in [start, end) (of `shard`) with their purchase count and net spend before
        `start`."""
        p, e, m = t.purchases, t.events, t.members
        active = (
            select(p.c.member_id.label("id")).where(p.c.program_id == program_id, p.c.occurred_at >= start,
                                                    p.c.occurred_at < end, p.c.member_id.is_not(None),
                                                    self._in_shard(p.c.member_id, shard))
            .union(select(e.c.member_id).where(e.c.program_id == program_id, e.c.occurred_at >= start,
                                               e.c.occurred_at < end, self._in_shard(e.c.member_id, shard)))
        ).subquery()  # fmt: skip
        before = (
            select(p.c.member_id, func.count().label("purchases"),
                   func.sum(p.c.total_minor - p.c.refunded_minor).label("spend"))
            .where(p.c.program_id == program_id, p.c.occurred_at < start, p.c.member_id.is_not(None))
            .group_by(p.c.member_id)
        ).subquery()  # fmt: skip
        mt = t.member_tiers
        query = (
            select(m.c.id, m.c.enrolled_at, m.c.birthday, m.c.attributes, before.c.purchases, before.c.spend,
                   mt.c.tier_code, mt.c.manual_code, mt.c.manual_until)
            .join(active, active.c.id == m.c.id)
            .outerjoin(before, before.c.member_id == m.c.id)
            .outerjoin(mt, and_(mt.c.program_id == m.c.program_id, mt.c.member_id == m.c.id))
            .where(m.c.program_id == program_id)
        )  # fmt: skip
        found = {}
        for row in self.conn.execute(query):
            count, spend = int(row.purchases or 0), int(row.spend or 0)
            tier = row.tier_code  # today's tier: a manual assignment in force at the period's end, else the earned
            if row.manual_code is not None and (row.manual_until is None or row.manual_until > end):
                tier = row.manual_code
            found[row.id] = MemberFacts(row.enrolled_at, row.birthday, row.attributes or {}, tier, count, spend)
        return found

    def window_amounts(self, program_id: UUID, basis: str, starts: list[datetime | None], start: datetime,
                       end: datetime) -> dict[UUID, tuple[int, ...]]:  # fmt: skip
        """For the members with a purchase in [start, end): net spend (basis "spend") or purchases (basis
        "purchases") in each window [starts[i], end) (None: since the beginning), in one aggregate query."""
        p = t.purchases
        value = (p.c.total_minor - p.c.refunded_minor) if basis == "spend" else literal(1)
        sums = [func.sum(case((p.c.occurred_at >= s, value), else_=0) if s is not None else value).label(f"w{i}")
                for i, s in enumerate(starts)]  # fmt: skip
        active = select(p.c.member_id).where(p.c.program_id == program_id, p.c.occurred_at >= start,
                                             p.c.occurred_at < end, p.c.member_id.is_not(None)).distinct().subquery()  # fmt: skip
        query = (
            select(p.c.member_id, *sums)
            .where(p.c.program_id == program_id, p.c.occurred_at < end, p.c.member_id.in_(select(active.c.member_id)))
            .group_by(p.c.member_id)
        )  # fmt: skip
        return {row[0]: tuple(int(v or 0) for v in row[1:]) for row in self.conn.execute(query)}

    def stream(self, program_id: UUID, start: datetime, end: datetime,
               shard: Shard | None = None) -> Iterator[tuple[str, Any]]:  # fmt: skip
        """("purchase", (Purchase, refunded_minor)) and ("event", row) in time order (purchases first on a tie,
        then by id), of the members of `shard` (and, in shard 0, the anonymous purchases)."""
        p, e, pp = t.purchases, t.events, t.purchase_payments
        paid = p.outerjoin(pp, and_(pp.c.program_id == p.c.program_id, pp.c.purchase_id == p.c.id))
        purchases = (
            select(p.c.id, p.c.member_id, p.c.partner, p.c.store, p.c.channel, p.c.external_order_id,
                   p.c.occurred_at, p.c.total_minor, p.c.currency, p.c.lines, p.c.cashier, p.c.refunded_minor,
                   pp.c.token, pp.c.brand, pp.c.card_id, pp.c.matched_member_id)
            .select_from(paid)  # how it was paid, for rules reading purchase.payment (issue 11)
            .where(and_(p.c.program_id == program_id, p.c.occurred_at >= start, p.c.occurred_at < end,
                        self._in_shard(p.c.member_id, shard, anonymous=True)))
            .order_by(p.c.occurred_at, p.c.id)
        )  # fmt: skip
        events = (
            select(e.c.id, e.c.member_id, e.c.name, e.c.attributes, e.c.occurred_at)
            .where(e.c.program_id == program_id, e.c.occurred_at >= start, e.c.occurred_at < end,
                   self._in_shard(e.c.member_id, shard))
            .order_by(e.c.occurred_at, e.c.id)
        )  # fmt: skip
        # Two cursors open at once: events are few next to purchases, so they are read first (and kept), the
        # purchases streamed.
        event_rows = [(row.occurred_at, 1, "event", row) for row in self.conn.execute(events)]
        rows = self.conn.execution_options(stream_results=True, yield_per=BATCH).execute(purchases)
        bought = ((row[6], 0, "purchase", (_purchase(row), row[11])) for row in rows)
        for _, _, kind, item in heapq.merge(bought, event_rows, key=lambda entry: entry[:2]):
            yield kind, item


def _purchase(row: Any) -> Purchase:
    """A purchase from a row of `stream`'s query, by position (the simulator reads a million of them)."""
    payment = None if row[12] is None else Payment(row[12], row[13], None, row[14], row[15])
    return Purchase(row[0], row[1], row[2], row[3], Channel(row[4]), row[5], row[6], Money(row[7], row[8]),
                    lines_from_json(row[9]), row[10], payment)  # fmt: skip
