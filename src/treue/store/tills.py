"""Offline till batches and their per-line reports (issue 5)."""

from __future__ import annotations

from sqlalchemy import Connection

from treue.store.batch import InsertBatch


class Tills:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch
