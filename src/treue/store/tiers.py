"""Storage of the tiers part of issue 4 (see services/tiers.py)."""

from __future__ import annotations

from sqlalchemy import Connection

from treue.store.batch import InsertBatch


class Tiers:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch
