"""Fraud controls: velocity counters, anomaly alerts, held transactions (issue 10)."""

from __future__ import annotations

from sqlalchemy import Connection

from treue.store.batch import InsertBatch


class Fraud:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch
