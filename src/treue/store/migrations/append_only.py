"""Append-only tables for the migrations that add them: UPDATE and DELETE refused by a trigger (PostgreSQL: the
function treue_append_only() from migration 0002; SQLite: RAISE(ABORT) per action). One definition, so every
migration protects its facts the same way."""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op


def protect(tables: Iterable[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in tables:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION treue_append_only()"
            )
        return
    for table in tables:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'treue: {table} is append-only'); END"
            )


def unprotect(tables: Iterable[str]) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in tables:
        if postgres:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        else:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{action}")
