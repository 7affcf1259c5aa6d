"""Bulk export reads (issue 5): members, ledger transfers with their postings, and account balances.

Every query is streamed: rows come in chunks of `chunk` (a server-side cursor on PostgreSQL, SQLite's stepping
cursor), so memory stays flat however large the programme is. A count query with the same filter gives the
total for a progress bar. Time ranges are half-open [from, to) on the time a row was recorded: `enrolled_at`
for members, the transfer's `created_at` (its booking, as settlement counts it) for transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Select, and_, func, select

from treue.store import tables as t

CHUNK = 1000


def _range(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    found = []
    if start is not None:
        found.append(column >= start)
    if end is not None:
        found.append(column < end)
    return found


class Exports:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _stream(self, query: Select[Any], chunk: int) -> Iterator[dict[str, Any]]:
        for row in self.conn.execution_options(yield_per=chunk).execute(query):
            yield dict(row._mapping)

    def _count(self, query: Select[Any]) -> int:
        return int(self.conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())

    # -- members -------------------------------------------------------------------------------------------------
    def _members(self, program_id: UUID, start: datetime | None, end: datetime | None) -> Select[Any]:
        m = t.members
        return select(m.c.id).where(m.c.program_id == program_id, *_range(m.c.enrolled_at, start, end))

    def count_members(self, program_id: UUID, start: datetime | None, end: datetime | None) -> int:
        return self._count(self._members(program_id, start, end))

    def members(self, program_id: UUID, start: datetime | None, end: datetime | None,
                chunk: int = CHUNK) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Members in the order they enrolled (ties by id)."""
        m = t.members
        query = (select(m).where(m.c.program_id == program_id, *_range(m.c.enrolled_at, start, end))
                 .order_by(m.c.enrolled_at, m.c.id))  # fmt: skip
        return self._stream(query, chunk)

    # -- transactions --------------------------------------------------------------------------------------------
    def count_transfers(self, program_id: UUID, start: datetime | None, end: datetime | None) -> int:
        tr = t.transfers
        return self._count(select(tr.c.id).where(tr.c.program_id == program_id, *_range(tr.c.created_at, start, end)))

    def postings(self, program_id: UUID, start: datetime | None, end: datetime | None,
                 chunk: int = CHUNK) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Every posting of the transfers booked in the range, with its transfer, the account it touches, and the
        order and member it concerns: ordered by booking time, transfer, account - a transfer's postings are
        consecutive."""
        tr, p, a, m, pu = t.transfers, t.postings, t.accounts, t.members, t.purchases
        query = (
            select(tr.c.id.label("transfer_id"), tr.c.kind, tr.c.occurred_at, tr.c.created_at, tr.c.member_id,
                   m.c.card_number, tr.c.purchase_id, pu.c.external_order_id, pu.c.partner, pu.c.store,
                   tr.c.redemption_id, tr.c.corrects_id, tr.c.actor, tr.c.explanation, p.c.account_id,
                   a.c.kind.label("account_kind"), a.c.member_id.label("account_member_id"), p.c.unit, p.c.amount)
            .join(p, and_(p.c.program_id == tr.c.program_id, p.c.transfer_id == tr.c.id))
            .join(a, and_(a.c.program_id == p.c.program_id, a.c.id == p.c.account_id))
            .outerjoin(m, and_(m.c.program_id == tr.c.program_id, m.c.id == tr.c.member_id))
            .outerjoin(pu, and_(pu.c.program_id == tr.c.program_id, pu.c.id == tr.c.purchase_id))
            .where(tr.c.program_id == program_id, *_range(tr.c.created_at, start, end))
            .order_by(tr.c.created_at, tr.c.id, p.c.account_id, p.c.unit)
        )  # fmt: skip
        return self._stream(query, chunk)

    # -- balances ------------------------------------------------------------------------------------------------
    def count_accounts(self, program_id: UUID) -> int:
        a = t.accounts
        return self._count(select(a.c.id).where(a.c.program_id == program_id))

    def member_balances(self, program_id: UUID, chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
        """Members' accounts (points, wallets) with their cached balances, in enrolment order."""
        a, m = t.accounts, t.members
        query = (
            select(a.c.id.label("account_id"), a.c.kind, a.c.unit, a.c.balance, a.c.member_id, m.c.card_number,
                   m.c.external_ref)
            .join(m, and_(m.c.program_id == a.c.program_id, m.c.id == a.c.member_id))
            .where(a.c.program_id == program_id, a.c.member_id.is_not(None))
            .order_by(m.c.enrolled_at, a.c.member_id, a.c.unit)
        )  # fmt: skip
        return self._stream(query, chunk)

    def system_balances(self, program_id: UUID) -> Iterator[dict[str, Any]]:
        """The programme's own accounts (issuance, redemption, breakage...), their balances summed from postings
        (they keep no cached balance: no hot rows)."""
        a, p = t.accounts, t.postings
        query = (
            select(a.c.id.label("account_id"), a.c.kind, a.c.unit, func.coalesce(func.sum(p.c.amount), 0).label("balance"))
            .outerjoin(p, and_(p.c.program_id == a.c.program_id, p.c.account_id == a.c.id))
            .where(a.c.program_id == program_id, a.c.member_id.is_(None))
            .group_by(a.c.id, a.c.kind, a.c.unit)
            .order_by(a.c.unit, a.c.kind)
        )  # fmt: skip
        return self._stream(query, CHUNK)
