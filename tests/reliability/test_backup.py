"""Backup and restore with `treue backup` as a user runs it, on SQLite and PostgreSQL.

A fresh source database gets a programme with real activity (purchases, redemptions, points expired to
breakage); a writer thread keeps recording purchases while `treue backup create` runs, so the backup is taken
mid-write. The backup is restored into a fresh, empty database (`treue backup restore`), where `treue verify`
passes, the schema is at the migration head, and every account's balance equals the source's as of the snapshot:
the sums of the source's postings over exactly the transfers the backup holds (the writer's purchases are in the
backup whole or not at all). Refusals: a non-empty target, a file of the other kind, pg_dump missing from PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import Engine, func, select

from tests.conftest import PG_ADMIN_URL
from tests.integration.helpers import buy, enrol
from tests.reliability.conftest import OUT
from treue.services.expiry import expire_points
from treue.services.programs import create_program
from treue.services.rewards import create_reward, redeem_reward
from treue.store import tables as t
from treue.store.database import make_engine
from treue.store.migrate import migrate, pending_migrations
from treue.store.unit_of_work import SqlUnitOfWorkFactory

TREUE = Path(sys.executable).with_name("treue")
MEMBERS = 25


@pytest.fixture
def databases(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A source and an empty target database of the backend, each new and dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'source.db'}", f"sqlite:///{tmp_path / 'restored' / 'target.db'}"
        return
    request.getfixturevalue("pg_url")  # skips (or fails in CI) without a PostgreSQL server
    names = [f"treue_backup_{kind}_{os.getpid()}_{uuid.uuid4().hex[:8]}" for kind in ("source", "target")]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def treue(url: str, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TREUE_DATABASE_URL": url, "NO_COLOR": "1"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([str(TREUE), *args], env=env, capture_output=True, text=True, timeout=300)


def seed(uow_factory: SqlUnitOfWorkFactory, now: datetime) -> tuple[UUID, list[UUID]]:
    """Purchases two months ago (expired by now), recent ones, redemptions, and the expiry job's transfers."""
    program = UUID(create_program(uow_factory(), "Backup", "EUR", "Europe/Berlin",
                                  {"expiry_policy": "rolling", "expiry_months": 1}, now - timedelta(days=90))["id"])  # fmt: skip
    members = [enrol(uow_factory, program, now - timedelta(days=80)) for _ in range(MEMBERS)]
    reward = UUID(create_reward(uow_factory(), program, {"name": {"de": "Kaffee"}, "type": "free_product",
                                                         "sku": "COFFEE", "cost_points": 20}, now)["id"])  # fmt: skip
    for i, member in enumerate(members):
        buy(uow_factory, program, member, f"{40 + i}.00", now - timedelta(days=60))  # expires before now
        buy(uow_factory, program, member, f"{30 + i}.50", now - timedelta(days=2))
        if i % 2 == 0:
            redeem_reward(uow_factory(), program, member, reward, now - timedelta(days=1))
    expired = expire_points(uow_factory, now, program)
    assert expired["points_expired"] > 0, expired
    return program, members


class Writer:
    """Records purchases on the source until stopped: the backup is taken while it writes."""

    def __init__(self, uow_factory: SqlUnitOfWorkFactory, program: UUID, members: list[UUID]) -> None:
        self.uow_factory, self.program, self.members = uow_factory, program, members
        self.done = 0
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                at = datetime.now(UTC)
                buy(self.uow_factory, self.program, self.members[self.done % len(self.members)], "12.00", at)
                self.done += 1
            except BaseException as error:  # reported by the test
                self.errors.append(error)
                return

    def wait_for(self, more: int, timeout: float = 60) -> None:
        target, deadline = self.done + more, time.monotonic() + timeout
        while self.done < target:
            assert not self.errors and time.monotonic() < deadline, f"writer stuck: {self.errors}"
            time.sleep(0.01)


def balances(engine: Engine, program: UUID, transfer_ids: set[UUID] | None = None) -> dict[tuple[UUID, str], int]:
    """Each account's postings sum per unit, optionally over the given transfers only."""
    query = (select(t.postings.c.account_id, t.postings.c.unit, func.sum(t.postings.c.amount))
             .where(t.postings.c.program_id == program).group_by(t.postings.c.account_id, t.postings.c.unit))  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(query if transfer_ids is None else query.where(t.postings.c.transfer_id.in_(transfer_ids)))
        return {(row[0], row[1]): int(row[2]) for row in rows}


def ids(engine: Engine, table: Any, program: UUID) -> set[UUID]:
    with engine.connect() as conn:
        return set(conn.execute(select(table.c.id).where(table.c.program_id == program)).scalars())


def cached_member_balances(engine: Engine, program: UUID) -> dict[UUID, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.accounts.c.member_id, t.accounts.c.balance)
                            .where(t.accounts.c.program_id == program, t.accounts.c.member_id.is_not(None)))  # fmt: skip
        return {row[0]: int(row[1]) for row in rows}


def record(backend: str, figure: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "backup.json"
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[backend] = figure
    path.write_text(json.dumps(figures, indent=2, sort_keys=True))
    print(f"\nbackup {backend}: {json.dumps(figure, sort_keys=True)}")


def test_backup_while_writing_restores_into_a_fresh_database_with_equal_balances(backend, databases, tmp_path):
    source_url, target_url = databases
    source = make_engine(source_url)
    migrate(source)
    uow_factory = SqlUnitOfWorkFactory(source)
    now = datetime.now(UTC)
    program, members = seed(uow_factory, now)
    writer = Writer(uow_factory, program, members)
    file = tmp_path / f"treue-{backend}.backup"
    writer.thread.start()
    try:
        writer.wait_for(20)
        started = time.perf_counter()
        made = treue(source_url, "backup", "create", "--to", str(file))
        backup_seconds = time.perf_counter() - started
        assert made.returncode == 0, made.stderr
        during = writer.done
        writer.wait_for(20)  # still writing afterwards: the backup was taken mid-stream
    finally:
        writer.stop.set()
        writer.thread.join(30)
    assert not writer.errors, writer.errors
    created = json.loads(made.stdout)
    assert created["bytes"] == file.stat().st_size > 0

    started = time.perf_counter()
    restored_run = treue(target_url, "backup", "restore", "--from", str(file))
    restore_seconds = time.perf_counter() - started
    assert restored_run.returncode == 0, restored_run.stderr
    checked = treue(target_url, "verify", "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"], checked.stdout + checked.stderr

    target = make_engine(target_url)
    try:
        assert pending_migrations(target) == []
        in_backup = ids(target, t.transfers, program)
        assert in_backup <= ids(source, t.transfers, program)  # nothing invented
        purchases = ids(target, t.purchases, program)
        writes_in_backup = len(purchases) - 2 * MEMBERS
        assert 0 < writes_in_backup < writer.done, (writes_in_backup, writer.done)  # a snapshot mid-write
        # every account's balance per unit equals the source's at the snapshot (the backup's transfers only)
        assert balances(target, program) == balances(source, program, in_backup)
        member_postings = {account: total for (account, _), total in balances(target, program).items()}
        cached = cached_member_balances(target, program)
        assert len(cached) == MEMBERS and sum(cached.values()) > 0
        with target.connect() as conn:
            account_of = dict(conn.execute(select(t.accounts.c.member_id, t.accounts.c.id)
                                           .where(t.accounts.c.program_id == program,
                                                  t.accounts.c.member_id.is_not(None))).all())  # fmt: skip
        assert {m: member_postings.get(account_of[m], 0) for m in cached} == cached
        with target.connect() as conn:  # the expiry and the redemptions came along
            kinds = set(conn.execute(select(t.transfers.c.kind).where(t.transfers.c.program_id == program)).scalars())
        assert {"expire"} <= kinds and len(ids(target, t.redemptions, program)) == (MEMBERS + 1) // 2

        again = treue(target_url, "backup", "restore", "--from", str(file))  # the target is no longer empty
        assert again.returncode == 1 and "not empty" in again.stderr and len(again.stderr.splitlines()) == 1
    finally:
        target.dispose()
        source.dispose()
    record(backend, {"bytes": created["bytes"], "backup_seconds": created["seconds"],
                     "restore_seconds": json.loads(restored_run.stdout)["seconds"],
                     "backup_command_seconds": round(backup_seconds, 2),  # with the CLI's start-up
                     "restore_command_seconds": round(restore_seconds, 2), "members": MEMBERS,
                     "transfers": len(in_backup), "writer_purchases_during_backup": writes_in_backup,
                     "writer_purchases_total": writer.done, "writes_before_backup_finished": during})  # fmt: skip


def test_refusals_are_one_line_errors(backend, databases, tmp_path):
    source_url, target_url = databases
    migrate_run = treue(source_url, "migrate")
    assert migrate_run.returncode == 0, migrate_run.stderr
    file = tmp_path / "one.backup"
    assert treue(source_url, "backup", "create", "--to", str(file)).returncode == 0
    exists = treue(source_url, "backup", "create", "--to", str(file))
    assert exists.returncode == 1 and "exists already" in exists.stderr
    into_source = treue(source_url, "backup", "restore", "--from", str(file))
    assert into_source.returncode == 1 and "not empty" in into_source.stderr
    wrong = tmp_path / "wrong.backup"
    wrong.write_bytes(b"PGDMP-not-really" if backend == "sqlite" else b"SQLite format 3\x00not really")
    refused = treue(target_url, "backup", "restore", "--from", str(wrong))
    assert refused.returncode == 1 and "is not a" in refused.stderr, refused.stderr
    if backend == "postgres":
        venv_only = str(TREUE.parent)  # no pg_dump there
        missing = treue(source_url, "backup", "create", "--to", str(tmp_path / "two.backup"), path=venv_only)
        assert missing.returncode == 1 and missing.stderr.startswith("error: invalid_input: pg_dump not found")
    for run in (exists, into_source, refused):
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
