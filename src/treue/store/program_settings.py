"""A programme's settings of one feature (referrals, fraud controls) kept as one JSON row, read through a short
per-process cache: the hot paths (every purchase, every redemption) ask whether the programme uses the feature,
and a programme without settings must cost them no query."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Connection, Table, insert, select, update

T = TypeVar("T")


class SettingsRow(Generic[T]):
    CACHE_SECONDS = 5.0  # settings change rarely; other processes see an edit within this time

    def __init__(self, table: Table, parse: Callable[[Any], T]) -> None:
        self.table, self.parse = table, parse
        self._cache: dict[UUID, tuple[float, T | None]] = {}  # programme -> (expiry, settings or None)
        self._lock = threading.Lock()

    def get(self, conn: Connection, program_id: UUID, *, cached: bool = False) -> T | None:
        """The programme's settings, None if it has none. With `cached`, what this process read in the last few
        seconds is reused without a query."""
        if cached:
            hit = self._cache.get(program_id)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        expires = time.monotonic() + self.CACHE_SECONDS
        s = self.table
        row = conn.execute(select(s.c.settings).where(s.c.program_id == program_id)).first()
        found = self.parse(row.settings) if row is not None else None
        with self._lock:
            self._cache[program_id] = (expires, found)
        return found

    def save(self, conn: Connection, program_id: UUID, settings: dict[str, Any], now: datetime) -> None:
        s = self.table
        done = conn.execute(
            update(s).where(s.c.program_id == program_id).values(settings=settings, updated_at=now)
        ).rowcount
        if not done:
            conn.execute(insert(s).values(program_id=program_id, settings=settings, updated_at=now))
        self.forget(program_id)

    def forget(self, program_id: UUID) -> None:
        with self._lock:
            self._cache.pop(program_id, None)


class ProgramSettingsAccess(Generic[T]):
    """`settings` and `save_settings` for a repository on the unit of work (it has `conn`), over its SettingsRow."""

    conn: Connection
    SETTINGS: SettingsRow[T]

    def settings(self, program_id: UUID, *, cached: bool = False) -> T | None:
        """The programme's settings, None if it has none; `cached`: the hot paths' few-seconds cache."""
        return self.SETTINGS.get(self.conn, program_id, cached=cached)

    def save_settings(self, program_id: UUID, settings: dict[str, Any], now: datetime) -> None:
        self.SETTINGS.save(self.conn, program_id, settings, now)

    @classmethod
    def forget(cls, program_id: UUID) -> None:
        """Drop the cached settings (saving does it; tests that change settings behind the service call it)."""
        cls.SETTINGS.forget(program_id)
