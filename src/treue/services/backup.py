"""Back up a whole database to one file and restore it into an empty database (`treue backup`).

- SQLite: the sqlite3 online backup API copies every page in one step under a read transaction, so the copy is a
  consistent snapshot even while the application writes (WAL mode lets the writers go on meanwhile).
- PostgreSQL: `pg_dump --format=custom` (one consistent snapshot, a repeatable-read transaction) and
  `pg_restore`, both from PATH; their major version must be at least the server's.

A restore goes into an empty database only: restoring over existing data would mix two ledgers. The file is
checked to be of the target's kind first (SQLite file header, pg_dump custom archive magic).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url

from treue.domain.errors import InvalidInput
from treue.store.database import database_url, make_engine

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


class BackupError(InvalidInput):
    """A backup or restore that cannot be done: a missing tool, a non-empty target, a file of the wrong kind."""


def _url(url: str | None) -> URL:
    return make_url(database_url(url))


def _is_sqlite(url: URL) -> bool:
    return url.drivername.startswith("sqlite")


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found on PATH: install the PostgreSQL client tools (e.g. postgresql-client)")
    return found


def _pg_env(url: URL) -> dict[str, str]:
    """libpq settings for pg_dump/pg_restore: the password goes in the environment, never on the command line."""
    env = dict(os.environ)
    for name, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                        ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):  # fmt: skip
        if value is not None:
            env[name] = str(value)
    return env


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        message = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").splitlines()
        raise BackupError(f"{Path(args[0]).name} failed: {message[0]}")


def _copy_sqlite(source: Path, target: Path) -> None:
    with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)  # every page in one step: one snapshot, taken under a read transaction
        # a self-contained file (no -wal beside it); the application switches WAL on again when it connects
        dst.execute("PRAGMA journal_mode=DELETE")


def create_backup(target: Path, url: str | None = None) -> dict[str, Any]:
    """Write a backup of the database (TREUE_DATABASE_URL unless `url`) to `target`, which must not exist yet.
    Written to a temporary name first, so a failed backup never leaves a file that looks complete."""
    source = _url(url)
    if target.exists():
        raise BackupError(f"{target} exists already: choose a new file name")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        if _is_sqlite(source):
            path = _sqlite_path(source)
            if not path.exists():
                raise BackupError(f"no SQLite database at {path}")
            _copy_sqlite(path, partial)
        else:
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"],
                 _pg_env(source))  # fmt: skip
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return {"backend": "sqlite" if _is_sqlite(source) else "postgresql", "file": str(target),
            "bytes": target.stat().st_size, "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip


def _tables(url: URL) -> list[str]:
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            return list(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def restore_backup(source: Path, url: str | None = None) -> dict[str, Any]:
    """Restore `source` into the database (TREUE_DATABASE_URL unless `url`), which must be empty: no tables."""
    target = _url(url)
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    with source.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    started = time.perf_counter()
    if _is_sqlite(target):
        if not head.startswith(SQLITE_MAGIC):
            raise BackupError(f"{source} is not a SQLite backup (a PostgreSQL dump restores into PostgreSQL)")
        path = _sqlite_path(target)
        if path.exists() and path.stat().st_size and _tables(target):
            raise BackupError(f"the target database {path} is not empty: restore into a new database")
        path.parent.mkdir(parents=True, exist_ok=True)
        _copy_sqlite(source, path)
    else:
        if not head.startswith(PG_DUMP_MAGIC):
            raise BackupError(f"{source} is not a pg_dump custom-format archive (made by `treue backup create`)")
        restore = _tool("pg_restore")
        if _tables(target):
            raise BackupError(f"the target database {target.database} is not empty: restore into a new database")
        _run([restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
              f"--dbname={target.database}", str(source)], _pg_env(target))  # fmt: skip
    return {"backend": "sqlite" if _is_sqlite(target) else "postgresql", "file": str(source),
            "seconds": round(time.perf_counter() - started, 3), "tables": len(_tables(target))}  # fmt: skip
