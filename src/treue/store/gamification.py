"""Missions, progress, streaks, badges, instant wins (issue 7)."""

from __future__ import annotations

from sqlalchemy import Connection

from treue.store.batch import InsertBatch


class Gamification:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch
