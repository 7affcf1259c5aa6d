"""Shared fixtures: one migrated database per backend per test session, a fresh programme per test.

PostgreSQL tests need the server at 127.0.0.1:5432 (override: TREUE_TEST_PG_URL). Without it they are
skipped and the run says so at the end; with TREUE_REQUIRE_POSTGRES=1 (CI) a missing server fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine

from treue.services.programs import create_program
from treue.store.database import make_engine
from treue.store.migrate import migrate
from treue.store.unit_of_work import SqlUnitOfWorkFactory

PG_ADMIN_URL = os.environ.get("TREUE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("TREUE_REQUIRE_POSTGRES") == "1"


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as error:  # any failure to connect means "no PostgreSQL here"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {error}".splitlines()[0]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    problem = _pg_available()
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"{problem} (TREUE_REQUIRE_POSTGRES=1: PostgreSQL tests may not be skipped)")
        pytest.skip(f"SKIPPED PostgreSQL tests: {problem}")
    name = f"treue_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'treue.db'}"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def engine(backend: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("pg_url" if backend == "postgres" else "sqlite_url")
    eng = make_engine(url)
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def uow_factory(engine: Engine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine)


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def program_id(uow_factory: SqlUnitOfWorkFactory, now: datetime) -> uuid.UUID:
    """A fresh programme per test: tenancy keeps tests apart without cleaning tables."""
    view = create_program(uow_factory(), "Test", "EUR", "Europe/Berlin", {}, now)
    return uuid.UUID(view["id"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Skips happen in xdist workers; the controller sees their reports, so read the reasons there.
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "SKIPPED PostgreSQL" in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep("!", f"{len(skipped)} PostgreSQL tests were SKIPPED", red=True, bold=True)
        terminalreporter.write_line(str(skipped[0].longrepr[-1]) if isinstance(skipped[0].longrepr, tuple) else "")
        terminalreporter.write_line("Start PostgreSQL (see docs/operations.md) to run them; CI requires them.")
