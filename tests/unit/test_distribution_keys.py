"""Growing past one database (issue 10): every primary key and every unique constraint or index includes the
distribution key `program_id`, so the schema can be distributed by programme (Citus: each table distributed on
program_id and co-located). The exceptions are listed with their reason (docs/scaling.md)."""

from __future__ import annotations

from sqlalchemy import UniqueConstraint

from treue.store import tables as t

EXCEPTIONS = {
    "programs": "the distribution key's own table: a reference table, replicated to every node",
    "api_keys": "looked up by prefix before the programme is known, and operator keys have none: a reference table",
    "idempotency_keys": "scoped by API key (operator requests have no programme); a local table of the API tier",
}


def keys_of(table) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    found = [("primary key", [c.name for c in table.primary_key.columns])]
    found += [
        ("unique", [c.name for c in con.columns]) for con in table.constraints if isinstance(con, UniqueConstraint)
    ]
    found += [("unique index", [c.name for c in index.columns]) for index in table.indexes if index.unique]
    return found


def test_every_primary_and_unique_key_includes_the_programme():
    missing = [f"{table.name}: {kind} ({', '.join(columns)})" for table in t.metadata.sorted_tables
               if table.name not in EXCEPTIONS for kind, columns in keys_of(table) if "program_id" not in columns]  # fmt: skip
    assert missing == [], "add program_id to these keys, or list the table in EXCEPTIONS with a reason"


def test_the_exceptions_are_real_tables_and_still_needed():
    tables = {table.name: table for table in t.metadata.sorted_tables}
    for name in EXCEPTIONS:
        assert name in tables, f"{name} is listed as an exception but no longer exists"
        assert any("program_id" not in columns for _, columns in keys_of(tables[name])), f"{name} no longer needs it"


def test_every_table_but_the_reference_tables_carries_the_programme():
    assert [table.name for table in t.metadata.sorted_tables
            if "program_id" not in table.c and table.name not in EXCEPTIONS] == []  # fmt: skip
