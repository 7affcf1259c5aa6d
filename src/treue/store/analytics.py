"""Analytics reads, aggregated in the database: per member per programme-local day, then per member.

Purchases on the same local calendar day are one transaction (the BG/NBD convention). The local day is computed
in SQL: on PostgreSQL with `timezone(zone, occurred_at)`; on SQLite, which has no timezone database, with the
zone's UTC offsets over the queried period, found here in Python and passed as a CASE over UTC instants (exact
across daylight-saving changes). Only one row per member leaves the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Date, case, cast, delete, func, insert, select

from treue.store import tables as t


@dataclass(frozen=True, slots=True)
class MemberHistory:
    """One member's purchase days up to the calibration end (net values in minor units)."""

    member_id: UUID
    first_day: date
    last_day: date
    days: int  # distinct local days with a purchase: 1 + the repeat transactions
    total_minor: int  # net value of all those days
    first_day_minor: int  # net value of the first day (not a repeat transaction)


def offset_periods(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """[(from_instant, utc_offset_seconds), ...] covering [start, end): each entry holds until the next one."""

    def offset(instant: datetime) -> int:
        delta = instant.astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    periods = [(start, offset(start))]
    cursor = start
    while cursor < end:
        step = min(cursor + timedelta(days=1), end)
        if offset(step) != periods[-1][1]:
            low, high = cursor, step  # the offset changes in (low, high]: bisect to the second
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (low, middle) if offset(middle) != periods[-1][1] else (middle, high)
            periods.append((high.replace(microsecond=0), offset(high)))
        cursor = step
    return periods


class Analytics:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _local_day(self, program_id: UUID, tz: ZoneInfo, start: datetime | None, end: datetime) -> Any:
        """The programme-local date of `occurred_at`, for purchases in [start, end)."""
        occurred = t.purchases.c.occurred_at
        if self.conn.dialect.name == "postgresql":
            return cast(func.timezone(tz.key, occurred), Date)
        first = start or self._first_purchase(program_id) or end
        periods = offset_periods(tz, min(first, end), end)
        modifiers = [f"{seconds:+d} seconds" for _, seconds in periods]
        if len(periods) == 1:
            return func.date(occurred, modifiers[0])
        whens = [(occurred < periods[i + 1][0], modifiers[i]) for i in range(len(periods) - 1)]
        return func.date(occurred, case(*whens, else_=modifiers[-1]))

    def _first_purchase(self, program_id: UUID) -> datetime | None:
        p = t.purchases
        found = self.conn.execute(select(func.min(p.c.occurred_at)).where(p.c.program_id == program_id)).scalar()
        if found is None:
            return None
        if isinstance(found, str):  # an aggregate over the column comes back as stored on SQLite
            found = datetime.fromisoformat(found)
        stored: datetime = found
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)

    def _days(self, program_id: UUID, currency: str, tz: ZoneInfo, start: datetime | None, end: datetime) -> Any:
        """(member_id, day, value): each member's net spend per local day of purchases in [start, end).
        Purchases in another currency and purchases refunded in full are not transactions here."""
        p = t.purchases
        net = (p.c.total_minor - p.c.refunded_minor).label("value")
        conditions = [p.c.program_id == program_id, p.c.member_id.is_not(None), p.c.currency == currency,
                      p.c.refunded_minor < p.c.total_minor, p.c.occurred_at < end]  # fmt: skip
        if start is not None:
            conditions.append(p.c.occurred_at >= start)
        rows = (
            select(p.c.member_id, self._local_day(program_id, tz, start, end).label("day"), net)
            .where(*conditions)
            .subquery()
        )  # fmt: skip
        return (
            select(rows.c.member_id, rows.c.day, func.sum(rows.c.value).label("value"))
            .group_by(rows.c.member_id, rows.c.day)
            .subquery()
        )  # fmt: skip

    def histories(self, program_id: UUID, currency: str, tz: ZoneInfo, end: datetime) -> list[MemberHistory]:
        """Every member with a purchase before `end`, summarised over their purchase days."""
        days = self._days(program_id, currency, tz, None, end)
        per_member = (
            select(days.c.member_id, func.min(days.c.day).label("first_day"), func.max(days.c.day).label("last_day"),
                   func.count().label("days"), func.sum(days.c.value).label("total"))
            .group_by(days.c.member_id)
            .subquery()
        )  # fmt: skip
        first = days.alias("first")
        query = (
            select(per_member, first.c.value.label("first_value"))
            .join(first, (first.c.member_id == per_member.c.member_id) & (first.c.day == per_member.c.first_day))
            .order_by(per_member.c.member_id)
        )  # fmt: skip
        return [MemberHistory(row.member_id, _day(row.first_day), _day(row.last_day), int(row.days), int(row.total),
                              int(row.first_value)) for row in self.conn.execute(query)]  # fmt: skip

    def purchase_days(self, program_id: UUID, currency: str, tz: ZoneInfo, start: datetime,
                      end: datetime) -> dict[UUID, int]:  # fmt: skip
        """Distinct local purchase days per member in [start, end)."""
        days = self._days(program_id, currency, tz, start, end)
        query = select(days.c.member_id, func.count().label("days")).group_by(days.c.member_id)
        return {row.member_id: int(row.days) for row in self.conn.execute(query)}

    # -- member facts ---------------------------------------------------------------------------------------------
    def replace_member_clv(self, program_id: UUID, rows: list[dict[str, Any]]) -> None:
        """The latest results replace the previous run's, all members at once (in the caller's transaction)."""
        c = t.member_clv
        self.conn.execute(delete(c).where(c.c.program_id == program_id))
        for start in range(0, len(rows), 5_000):
            self.conn.execute(insert(c), [{"program_id": program_id, **row} for row in rows[start : start + 5_000]])

    def member_clv(self, program_id: UUID, member_id: UUID) -> dict[str, Any] | None:
        c = t.member_clv
        row = self.conn.execute(select(c).where(c.c.program_id == program_id, c.c.member_id == member_id)).first()
        return dict(row._mapping) if row else None

    # -- uplift over a control group (services.roi) ---------------------------------------------------------------
    def members_enrolled_before(self, program_id: UUID, end: datetime) -> list[UUID]:
        m = t.members
        query = select(m.c.id).where(m.c.program_id == program_id, m.c.enrolled_at < end)
        return [row.id for row in self.conn.execute(query)]

    def purchases_per_member(self, program_id: UUID, start: datetime, end: datetime) -> dict[UUID, tuple[int, int]]:
        """(purchases, net revenue in minor units) per member with a purchase in [start, end)."""
        p = t.purchases
        query = (
            select(p.c.member_id, func.count().label("n"), func.sum(p.c.total_minor - p.c.refunded_minor).label("net"))
            .where(p.c.program_id == program_id, p.c.member_id.is_not(None), p.c.occurred_at >= start,
                   p.c.occurred_at < end)
            .group_by(p.c.member_id)
        )  # fmt: skip
        return {row.member_id: (int(row.n), int(row.net or 0)) for row in self.conn.execute(query)}

    def earn_explanations(self, program_id: UUID, start: datetime, end: datetime) -> Iterator[tuple[UUID, Any]]:
        """(member, stored explanation) of every earn transfer in [start, end), streamed."""
        tr = t.transfers
        query = select(tr.c.member_id, tr.c.explanation).where(
            tr.c.program_id == program_id, tr.c.kind == "earn", tr.c.member_id.is_not(None),
            tr.c.occurred_at >= start, tr.c.occurred_at < end)  # fmt: skip
        for row in self.conn.execution_options(yield_per=5_000).execute(query):
            yield row.member_id, row.explanation


def _day(value: Any) -> date:
    """A date as PostgreSQL returns it, or SQLite's 'YYYY-MM-DD' text."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
