"""Offline till batches and their per-line reports (issue 5)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, insert, select, update

from treue.domain.errors import TillBatchNotFound
from treue.store import tables as t
from treue.store.batch import InsertBatch

B, L = t.till_batches, t.till_batch_lines


class Tills:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch

    # -- batches -------------------------------------------------------------------------------------------------
    def add_batch(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(B).values(**row))

    def batch_by_upload_key(self, program_id: UUID, upload_key: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(B).where(B.c.program_id == program_id, B.c.upload_key == upload_key)).first()
        return dict(row._mapping) if row else None

    def get_batch(self, program_id: UUID, batch_id: UUID) -> dict[str, Any]:
        row = self.conn.execute(select(B).where(B.c.program_id == program_id, B.c.id == batch_id)).first()
        if row is None:
            raise TillBatchNotFound(f"till batch {batch_id} not found", resource="till_batch")
        return dict(row._mapping)

    def finish_batch(self, program_id: UUID, batch_id: UUID, now: datetime) -> None:
        self.conn.execute(update(B).where(B.c.program_id == program_id, B.c.id == batch_id).values(finished_at=now))

    def batches(self, program_id: UUID, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(B).where(B.c.program_id == program_id).order_by(B.c.received_at.desc(), B.c.id.desc()).limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    # -- lines ---------------------------------------------------------------------------------------------------
    def add_line(self, row: dict[str, Any]) -> None:
        """Insert a line's outcome now (a line that owns its key meets a concurrent owner here)."""
        self.conn.execute(insert(L).values(**row))

    def set_result(self, program_id: UUID, batch_id: UUID, line_no: int, result: dict[str, Any]) -> None:
        self.conn.execute(
            update(L).where(L.c.program_id == program_id, L.c.batch_id == batch_id, L.c.line_no == line_no)
            .values(result=result)
        )  # fmt: skip

    def owner_of(self, program_id: UUID, key: str) -> dict[str, Any] | None:
        """The line holding the key's first result, if any."""
        row = self.conn.execute(select(L).where(L.c.program_id == program_id, L.c.key == key, L.c.owns_key)).first()
        return dict(row._mapping) if row else None

    def counts(self, program_id: UUID, batch_id: UUID) -> dict[str, int]:
        rows = self.conn.execute(
            select(L.c.outcome, func.count()).where(L.c.program_id == program_id, L.c.batch_id == batch_id)
            .group_by(L.c.outcome)
        )  # fmt: skip
        return {r[0]: int(r[1]) for r in rows}

    def conflict_codes(self, program_id: UUID, batch_id: UUID) -> dict[str, int]:
        rows = self.conn.execute(
            select(L.c.code, func.count())
            .where(L.c.program_id == program_id, L.c.batch_id == batch_id, L.c.outcome == "conflict")
            .group_by(L.c.code).order_by(L.c.code)
        )  # fmt: skip
        return {str(r[0]): int(r[1]) for r in rows}

    def lines(self, program_id: UUID, batch_id: UUID, chunk: int = 500) -> Iterator[dict[str, Any]]:
        """The batch's lines in file order, streamed (`chunk` rows at a time)."""
        query = select(L).where(L.c.program_id == program_id, L.c.batch_id == batch_id).order_by(L.c.line_no)
        for row in self.conn.execution_options(yield_per=chunk).execute(query):
            yield dict(row._mapping)
