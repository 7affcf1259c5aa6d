"""Insert rows into several tables in one round trip.

On PostgreSQL the inserts become data-modifying CTEs of a single statement (foreign keys between them
are checked at the end of the statement, so a transfer and its postings can travel together). SQLite
runs one statement per table: it has no network round trip to save.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table, insert, literal, literal_column, select
from sqlalchemy.exc import IntegrityError


class InsertBatch:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        self._parts: list[tuple[Table, list[dict[str, Any]]]] = []
        self._conflicts: dict[str, Callable[[], Exception]] = {}

    def add(self, table: Table, rows: list[dict[str, Any]], *,
            on_conflict: tuple[str, Callable[[], Exception]] | None = None) -> None:  # fmt: skip
        """Queue rows; `on_conflict` names a unique index and the error to raise if the rows break it."""
        if rows:
            self._parts.append((table, rows))
        if on_conflict is not None:
            self._conflicts[on_conflict[0]] = on_conflict[1]

    def __bool__(self) -> bool:
        return bool(self._parts)

    def flush(self) -> None:
        parts, conflicts = self._parts, self._conflicts
        self._parts, self._conflicts = [], {}
        if not parts:
            return
        try:
            if self.postgres and len(parts) > 1:
                ctes = [insert(table).values(rows).returning(literal_column("1")).cte(f"w{n}")
                        for n, (table, rows) in enumerate(parts)]  # fmt: skip
                self.conn.execute(select(literal(1)).add_cte(*ctes))
            else:
                for table, rows in parts:
                    self.conn.execute(insert(table), rows)
        except IntegrityError as error:
            for index, make in conflicts.items():
                if violates(error, index):
                    raise make() from None
            raise


def violates(error: IntegrityError, index: str) -> bool:
    """Did this IntegrityError come from the unique index `index`? (SQLite names columns, not indexes.)"""
    message = str(error.orig)
    if index in message:
        return True
    columns = UNIQUE_COLUMNS.get(index)
    return columns is not None and "UNIQUE constraint failed" in message and all(c in message for c in columns)


# SQLite reports "UNIQUE constraint failed: purchases.program_id, purchases.partner, ..." instead of a name.
UNIQUE_COLUMNS = {
    "uq_purchases_order": ("purchases.partner", "purchases.external_order_id"),
}
