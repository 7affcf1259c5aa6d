"""Linked payment cards, card-transaction feeds and offers (issue 11)."""

from __future__ import annotations

from sqlalchemy import Connection

from treue.store.batch import InsertBatch


class Cards:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch
