"""Alembic environment: runs against the connection `treue.store.migrate` hands in (or the URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from treue.store.database import make_engine
from treue.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.connect() as conn:
        _run(conn)
