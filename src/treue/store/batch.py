"""Insert rows into several tables in one round trip.

On PostgreSQL the inserts become data-modifying CTEs of a single statement (foreign keys between them
are checked at the end of the statement, so a transfer and its postings can travel together). SQLite
runs one statement per table: it has no network round trip to save.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import JSON, Connection, Table, insert
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
                sql, params = _postgres_statement(parts)
                self.conn.exec_driver_sql(sql, params)
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


# SQL text per shape (tables, columns, row counts): SQLAlchemy does not cache the compiled form of
# multi-row inserts inside CTEs, and compiling it on every earn cost a third of the request's CPU.
_STATEMENTS: dict[tuple[tuple[str, tuple[str, ...], int], ...], str] = {}


def _postgres_statement(parts: list[tuple[Table, list[dict[str, Any]]]]) -> tuple[str, dict[str, Any]]:
    shape = tuple((table.name, tuple(rows[0]), len(rows)) for table, rows in parts)
    sql = _STATEMENTS.get(shape)
    if sql is None:
        ctes = []
        for n, (name, columns, count) in enumerate(shape):
            values = ", ".join("(" + ", ".join(f"%(w{n}_{i}_{c})s" for c in columns) + ")" for i in range(count))
            ctes.append(f"w{n} AS (INSERT INTO {name} ({', '.join(columns)}) VALUES {values})")
        sql = _STATEMENTS.setdefault(shape, "WITH " + ",\n".join(ctes) + "\nSELECT 1")
    params: dict[str, Any] = {}
    for n, (table, rows) in enumerate(parts):
        for i, row in enumerate(rows):
            for column, value in row.items():
                params[f"w{n}_{i}_{column}"] = _adapt(table, column, value)
    return sql, params


def _adapt(table: Table, column: str, value: Any) -> Any:
    """What SQLAlchemy's bind processing would do for our column types, for psycopg directly."""
    if value is None:
        return None
    if isinstance(table.c[column].type, JSON):
        return Json(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)
    return value
