"""Engines: SQLite (embedded, WAL, durable) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from psycopg.types.json import set_json_dumps, set_json_loads
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from treue.jsoncodec import dumps

DEFAULT_URL = "sqlite:///treue.db"
READ_ONLY = "treue_read_only"


def database_url(url: str | None = None) -> str:
    raw = url or os.environ.get("TREUE_DATABASE_URL") or DEFAULT_URL
    parsed = make_url(raw)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    resolved = database_url(url)
    if resolved.startswith("sqlite"):
        return _sqlite_engine(resolved, **kwargs)
    kwargs.setdefault("pool_size", int(os.environ.get("TREUE_DB_POOL_SIZE", "20")))
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", False)
    set_json_dumps(dumps)  # psycopg's own JSON adapter (used by the batched inserts): orjson, not json
    set_json_loads(orjson.loads)  # and reading JSON columns (purchase lines, explanations): several times faster
    return create_engine(resolved, json_serializer=dumps, **kwargs)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, json_serializer=dumps,
                           **kwargs)  # fmt: skip

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # durable: a commit survives a power cut
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front: two writers never both read a balance and then
        # fail to upgrade (SQLite's deadlock); readers in WAL mode are never blocked.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
