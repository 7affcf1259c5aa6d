"""The KPI roll-ups' rows: daily sums of member and wallet postings and of members' revenue, and the state that
says which rows they hold (docs/analytics.md, "Roll-ups"). Written here; read with the raw rows in
`treue.store.kpis`.

A roll-up holds the rows recorded before its watermark that occurred before its first unrolled day. Everything
else - rows that occurred later, or were recorded later but back-dated - is read raw, by the two indexes on
`occurred_at` and `created_at`. So a KPI is exact whatever was written since the last roll-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Connection, and_, case, cast, delete, func, literal, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from treue.domain.analytics.rollups import SLOT_EPOCH, SLOT_EPOCH_OFFSET, SLOT_SECONDS
from treue.domain.ledger import AccountKind
from treue.store import tables as t

# Account kinds whose postings KPIs read: members' points and cashback wallets.
ROLLED_ACCOUNT_KINDS = (str(AccountKind.MEMBER), str(AccountKind.WALLET))
CHUNK = 1000  # rows per INSERT


@dataclass(frozen=True, slots=True)
class Rolled:
    """A roll-up's extent: rows with created_at < watermark and occurred_at < through_at (the start of the local
    day `through_day`) are in it."""

    timezone: str
    through_day: date
    through_at: datetime
    watermark: datetime

    def outside(self, occurred_at: Any, created_at: Any) -> Any:
        """The condition on a row not in the roll-up (read raw)."""
        return or_(occurred_at >= self.through_at, created_at >= self.watermark)


@dataclass(frozen=True, slots=True)
class Part:
    """Rows with created_at in [created_from, created_to) and occurred_at in [occurred_from, occurred_to); None is
    unbounded below."""

    created_from: datetime | None
    created_to: datetime
    occurred_from: datetime | None
    occurred_to: datetime

    def where(self, occurred_at: Any, created_at: Any) -> list[Any]:
        found = [created_at < self.created_to, occurred_at < self.occurred_to]
        if self.created_from is not None:
            found.append(created_at >= self.created_from)
        if self.occurred_from is not None:
            found.append(occurred_at >= self.occurred_from)
        return found


def slot_of(column: Any, dialect: str) -> Any:
    """The quarter-hour of UTC an instant lies in, counted from 1900 (`treue.domain.analytics.rollups`)."""
    if dialect == "postgresql":
        epoch = func.extract("epoch", column) + literal(SLOT_EPOCH_OFFSET, BigInteger)
        return cast(func.floor(epoch / literal(SLOT_SECONDS, BigInteger)), BigInteger)
    # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff'; strftime rounds fractions, so they are cut off first.
    seconds = cast(func.strftime("%s", func.substr(column, 1, 19)), BigInteger)
    return (seconds + literal(SLOT_EPOCH_OFFSET, BigInteger)) / literal(SLOT_SECONDS, BigInteger)


def corrected_kind() -> Any:
    """For a correction, the kind of the transfer it corrects (looked up by primary key: a join would hash every
    transfer); else NULL."""
    tr = t.transfers
    corrected = tr.alias("corrected")
    return case((tr.c.corrects_id.is_not(None), select(corrected.c.kind).where(
        corrected.c.program_id == tr.c.program_id, corrected.c.id == tr.c.corrects_id).scalar_subquery()),
        else_=null())  # fmt: skip


def postings_with_transfers() -> Any:
    po, ac, tr = t.postings, t.accounts, t.transfers
    return po.join(ac, and_(ac.c.program_id == po.c.program_id, ac.c.id == po.c.account_id)).join(
        tr, and_(tr.c.program_id == po.c.program_id, tr.c.id == po.c.transfer_id)
    )


class KpiRollups:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def _dialect(self) -> str:
        return self.conn.dialect.name

    # -- state ----------------------------------------------------------------------------------------------------
    def claim(self, program_id: UUID, now: datetime) -> tuple[str, date, datetime]:
        """The state row, locked until commit: a second roll-up of the programme waits here, then sees what this
        one added. Before the first roll-up, an empty state is inserted first (timezone '': rebuild), so that two
        first roll-ups at once also meet on one row (the second's insert waits for the first's commit)."""
        r = t.kpi_rollups
        insert = postgres_insert if self._dialect == "postgresql" else sqlite_insert
        self.conn.execute(insert(r).values(program_id=program_id, timezone="", through_day=date(1900, 1, 1),
                                           watermark=SLOT_EPOCH, rolled_at=now).on_conflict_do_nothing())  # fmt: skip
        found = self.state(program_id, lock=True)
        assert found is not None  # inserted above or by a roll-up that committed first
        return found

    def state(self, program_id: UUID, *, lock: bool = False) -> tuple[str, date, datetime] | None:
        """(timezone, through_day, watermark), or None before the first roll-up."""
        r = t.kpi_rollups
        query = select(r.c.timezone, r.c.through_day, r.c.watermark).where(r.c.program_id == program_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return None if row is None else (row[0], _day(row[1]), row[2])

    def save_state(self, program_id: UUID, timezone: str, through_day: date, watermark: datetime,
                   rolled_at: datetime) -> None:  # fmt: skip
        r = t.kpi_rollups
        self.conn.execute(update(r).where(r.c.program_id == program_id).values(
            timezone=timezone, through_day=through_day, watermark=watermark, rolled_at=rolled_at))  # fmt: skip

    def clear(self, program_id: UUID) -> None:
        for table in (t.kpi_flow_days, t.kpi_revenue_days):
            self.conn.execute(delete(table).where(table.c.program_id == program_id))

    # -- rows to roll up ------------------------------------------------------------------------------------------
    def flow_slots(self, program_id: UUID, part: Part) -> Iterator[tuple[int, str, str, str, str, int]]:
        """(quarter-hour, account kind, unit, transfer kind, corrected kind or '', sum) of member and wallet
        postings in `part`."""
        po, ac, tr = t.postings, t.accounts, t.transfers
        slot = slot_of(tr.c.occurred_at, self._dialect).label("slot")
        corrected = corrected_kind().label("corrected_kind")
        query = (
            select(slot, ac.c.kind, po.c.unit, tr.c.kind, corrected, func.sum(po.c.amount))
            .select_from(postings_with_transfers())
            .where(po.c.program_id == program_id, ac.c.kind.in_(ROLLED_ACCOUNT_KINDS),
                   *part.where(tr.c.occurred_at, tr.c.created_at))
            .group_by(slot, ac.c.kind, po.c.unit, tr.c.kind, corrected)
        )  # fmt: skip
        for row in self.conn.execute(query):
            yield int(row[0]), row[1], row[2], row[3], row[4] or "", int(row[5])

    def revenue_slots(self, program_id: UUID, part: Part) -> Iterator[tuple[int, str, int]]:
        """(quarter-hour of the purchase, currency, sum) of members' purchases recorded in `part`, and less the
        refunds in `part` (by the refund's recording time and the purchase's time) of members' purchases."""
        p, r = t.purchases, t.refunds
        slot = slot_of(p.c.occurred_at, self._dialect).label("slot")
        bought = (
            select(slot, p.c.currency, func.sum(p.c.total_minor))
            .where(p.c.program_id == program_id, p.c.member_id.is_not(None),
                   *part.where(p.c.occurred_at, p.c.created_at))
            .group_by(slot, p.c.currency)
        )  # fmt: skip
        refunded = (
            select(slot, p.c.currency, -func.sum(r.c.amount_minor))
            .select_from(r.join(p, and_(p.c.program_id == r.c.program_id, p.c.id == r.c.purchase_id)))
            .where(r.c.program_id == program_id, p.c.member_id.is_not(None),
                   *part.where(p.c.occurred_at, r.c.created_at))
            .group_by(slot, p.c.currency)
        )  # fmt: skip
        for query in (bought, refunded):
            for row in self.conn.execute(query):
                yield int(row[0]), row[1], int(row[2])

    # -- adding to the days ---------------------------------------------------------------------------------------
    def add_flow_days(self, program_id: UUID, sums: Mapping[tuple[date, str, str, str, str], int]) -> None:
        f = t.kpi_flow_days
        rows = [{"program_id": program_id, "day": day, "account_kind": account_kind, "unit": unit, "kind": kind,
                 "corrected_kind": corrected, "amount": amount}
                for (day, account_kind, unit, kind, corrected), amount in sums.items()]  # fmt: skip
        self._add(f, rows, [f.c.program_id, f.c.day, f.c.account_kind, f.c.unit, f.c.kind, f.c.corrected_kind])

    def add_revenue_days(self, program_id: UUID, sums: Mapping[tuple[date, str], int]) -> None:
        v = t.kpi_revenue_days
        rows = [{"program_id": program_id, "day": day, "currency": currency, "amount": amount}
                for (day, currency), amount in sums.items()]  # fmt: skip
        self._add(v, rows, [v.c.program_id, v.c.day, v.c.currency])

    def _add(self, table: Any, rows: list[dict[str, Any]], key: list[Any]) -> None:
        """Insert the rows, adding each amount to the row with its key if there is one (keys are unique here)."""
        insert = postgres_insert if self._dialect == "postgresql" else sqlite_insert
        for chunk in _chunks(rows):
            values = insert(table).values(chunk)
            self.conn.execute(
                values.on_conflict_do_update(
                    index_elements=key, set_={"amount": table.c.amount + values.excluded.amount}
                )
            )


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _day(value: Any) -> date:
    found: date = date.fromisoformat(value) if isinstance(value, str) else value
    return found
