"""Two `treue worker run` processes on one database (a fresh one per test, SQLite file and PostgreSQL):

- every webhook delivery reaches a local HTTP receiver exactly once, and every email reaches a local SMTP server
  (aiosmtpd) exactly once, while both workers claim from the same queues (leases, SKIP LOCKED on PostgreSQL);
- a periodic job started twice at the same moment for the same period (`treue jobs run rules` birthday awards,
  `treue jobs run expire`) has its effect once: one scheduled event (the job's run record, keyed by trigger,
  member and period) and one award per member, one expiry per lot.

A worker killed in the middle of a delivery is covered by tests/e2e/test_worker.py (its lease lapses and the other
worker delivers it, once).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import Engine, func, select

from tests.conftest import PG_ADMIN_URL
from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import fixed, rule
from tests.integration.test_webhooks import Receiver
from tests.integration.web_helpers import smtp_server
from tests.reliability.conftest import record_figure
from treue.services.notifications import update_settings
from treue.services.programs import create_program
from treue.services.verify import verify
from treue.services.webhooks import create_endpoint
from treue.store import tables as t
from treue.store.database import make_engine
from treue.store.migrate import migrate
from treue.store.unit_of_work import SqlUnitOfWorkFactory

TREUE = Path(sys.executable).with_name("treue")
MEMBERS = 60


@pytest.fixture
def fresh(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A new migrated database of the backend (workers serve every programme: no other test's leftovers)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'workers.db'}"
        name = None
    else:
        request.getfixturevalue("pg_url")  # skips (or fails in CI) without a PostgreSQL server
        name = f"treue_workers_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    engine = make_engine(url)
    migrate(engine)
    try:
        yield url, engine
    finally:
        engine.dispose()
        if name is not None:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def env_for(url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "TREUE_DATABASE_URL": url, "NO_COLOR": "1", **extra}
    env.pop("TREUE_NATS_URL", None)
    return env


def start_worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # a file, never a pipe: a full pipe would stall the worker
        return subprocess.Popen([str(TREUE), "worker", "run", "--name", name, "--poll", "0.1", "--batch", "5"],
                                env=env, stdout=subprocess.DEVNULL, stderr=out)  # fmt: skip


def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def stop(workers: list[subprocess.Popen[bytes]]) -> list[int | None]:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # finishes the round, then exits
    codes = []
    for worker in workers:
        try:
            codes.append(worker.wait(30))
        except subprocess.TimeoutExpired:
            worker.kill()
            codes.append(worker.wait(10))
    return codes


def test_two_workers_deliver_every_webhook_and_email_exactly_once(backend, fresh, tmp_path):
    url, engine = fresh
    uow_factory = SqlUnitOfWorkFactory(engine)
    now = datetime.now(UTC)
    program = UUID(create_program(uow_factory(), "Workers", "EUR", "Europe/Berlin", {}, now)["id"])
    update_settings(uow_factory(), program, {"quiet_hours": None}, now)  # mail goes now, whatever the hour
    receiver = Receiver()
    hook = create_endpoint(uow_factory(), program, {"url": receiver.url, "events": ["member.*", "points.*"]}, now)
    receiver.secret = hook["secret"]
    workers: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / "worker-A.log", tmp_path / "worker-B.log"]
    try:
        with smtp_server() as (inbox, mailer):
            env = env_for(url, TREUE_SMTP_URL=f"smtp://127.0.0.1:{mailer.port}", TREUE_MAIL_FROM="shop@example.org")
            workers = [start_worker(env, name, log) for name, log in zip("AB", logs, strict=True)]
            wait_for(lambda: all("started" in log.read_text() for log in logs), 60, "both workers to start")
            started = time.monotonic()
            for i in range(MEMBERS):  # the work arrives while both workers poll
                member = enrol(uow_factory, program, datetime.now(UTC), email=f"m{i}@example.org",
                               consents={"email": True})  # fmt: skip
                buy(uow_factory, program, member, "25.00", datetime.now(UTC))

            def counts() -> dict[str, int]:
                with engine.connect() as conn:
                    d, m = t.webhook_deliveries, t.notification_messages
                    deliveries = dict(conn.execute(select(d.c.status, func.count()).where(d.c.program_id == program)
                                                   .group_by(d.c.status)).all())  # fmt: skip
                    mails = dict(conn.execute(select(m.c.status, func.count()).where(m.c.program_id == program,
                                                                                     m.c.channel == "email")
                                              .group_by(m.c.status)).all())  # fmt: skip
                with engine.connect() as conn:
                    unrelayed = conn.execute(select(func.count()).select_from(t.outbox)
                                             .where(t.outbox.c.program_id == program,
                                                    t.outbox.c.dispatched_at.is_(None))).scalar_one()  # fmt: skip
                return {"deliveries_pending": deliveries.get("pending", 0), "deliveries": sum(deliveries.values()),
                        "mails_queued": mails.get("queued", 0), "mails": sum(mails.values()),
                        "unrelayed": unrelayed}  # fmt: skip

            def drained() -> bool:
                c = counts()
                return c["unrelayed"] == 0 and c["deliveries_pending"] == 0 and c["mails_queued"] == 0 and \
                    c["deliveries"] >= 2 * MEMBERS and c["mails"] >= MEMBERS  # fmt: skip

            wait_for(drained, 240, "both workers to drain the outbox, the deliveries and the mail")
            seconds = time.monotonic() - started
            time.sleep(2)  # room for a duplicate to show up
            codes = stop(workers)
            final = counts()
            mails = list(inbox.messages)
    finally:
        stop(workers)
        receiver.close()
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]

    # webhooks: every delivery sent once, to its own webhook-id, each verified; none twice
    ids = Counter(receiver.seen)
    assert len(receiver.received) == final["deliveries"] == len(ids) and set(ids.values()) == {1}, ids.most_common(3)
    types = Counter(r["payload"]["type"] for r in receiver.received)
    assert types["member.enrolled"] == MEMBERS and types["points.earned"] == MEMBERS, types
    with engine.connect() as conn:
        a = t.webhook_attempts
        by_worker = dict(conn.execute(select(a.c.worker, func.count()).where(a.c.program_id == program)
                                      .group_by(a.c.worker)).all())  # fmt: skip
        statuses = dict(conn.execute(select(t.webhook_deliveries.c.status, func.count())
                                     .where(t.webhook_deliveries.c.program_id == program)
                                     .group_by(t.webhook_deliveries.c.status)).all())  # fmt: skip
    assert statuses == {"succeeded": final["deliveries"]}
    assert sum(by_worker.values()) == final["deliveries"]  # one attempt each: nothing was sent twice

    # email: every queued message sent once; one mail per (recipient, subject)
    with engine.connect() as conn:
        m = t.notification_messages
        sent = conn.execute(select(m.c.recipient, m.c.subject, m.c.attempts)
                            .where(m.c.program_id == program, m.c.channel == "email", m.c.status == "sent")).all()  # fmt: skip
    assert len(sent) == final["mails"] and all(row.attempts == 1 for row in sent)
    delivered = Counter((str(mail["To"]), str(mail["Subject"])) for mail in mails)
    assert set(delivered.values()) == {1}, delivered.most_common(3)
    assert set(delivered) == {(row.recipient, row.subject) for row in sent}
    assert len({to for to, _ in delivered}) == MEMBERS
    assert verify(uow_factory(), program) == []
    record_figure(f"workers_{backend}", {"workers": 2, "webhook_deliveries": final["deliveries"],
                                         "emails": len(mails), "attempts_by_worker": by_worker,
                                         "duplicates": 0, "seconds_to_drain": round(seconds, 1)})  # fmt: skip
    assert len(by_worker) == 2, f"only one worker did any webhook work: {by_worker}"  # both really competed


def test_a_periodic_job_started_twice_for_the_same_period_runs_once(backend, fresh):
    url, engine = fresh
    uow_factory = SqlUnitOfWorkFactory(engine)
    now = datetime.now(UTC)
    program = UUID(create_program(uow_factory(), "Jobs", "EUR", "Europe/Berlin",
                                  {"expiry_policy": "rolling", "expiry_months": 1}, now - timedelta(days=90))["id"])  # fmt: skip
    rule(uow_factory, program, now - timedelta(days=2), "birthday-bonus", fixed(100), trigger="birthday")
    today = now.astimezone(ZoneInfo("Europe/Berlin")).date()
    birthday = date(1990, today.month, 28 if (today.month, today.day) == (2, 29) else today.day)
    members = [enrol(uow_factory, program, now - timedelta(days=80), birthday=birthday) for _ in range(40)]
    for member in members:  # lots that expired a month after they were earned
        buy(uow_factory, program, member, "30.00", now - timedelta(days=60))
    env = env_for(url)
    runs: dict[str, list[dict[str, Any]]] = {}
    for job in ("rules", "expire"):  # both copies start at once, for the same period
        copies = [subprocess.Popen([str(TREUE), "jobs", "run", job, "--program", str(program)], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
        outputs = [copy.communicate(timeout=300) for copy in copies]
        assert [copy.returncode for copy in copies] == [0, 0], outputs
        runs[job] = [json.loads(out) for out, _ in outputs]
    awarded = sum(run["awarded"] for run in runs["rules"])
    assert awarded == len(members), runs["rules"]
    assert sum(run["lots_expired"] for run in runs["expire"]) == len(members), runs["expire"]
    with engine.connect() as conn:
        e, tr = t.events, t.transfers
        records = conn.execute(select(e.c.member_id, func.count()).where(e.c.program_id == program,
                                                                         e.c.name == "birthday")
                               .group_by(e.c.member_id)).all()  # fmt: skip
        kinds = Counter(conn.execute(select(tr.c.kind, tr.c.member_id).where(tr.c.program_id == program)).all())
    assert {member: count for member, count in records} == dict.fromkeys(members, 1)  # one run record each
    per_member_expiries = [kinds[("expire", m)] for m in members]
    assert per_member_expiries == [1] * len(members)
    assert verify(uow_factory(), program) == []
    record_figure(f"workers_jobs_{backend}", {"members": len(members),
                                              "rules_awarded_per_copy": [r["awarded"] for r in runs["rules"]],
                                              "lots_expired_per_copy": [r["lots_expired"] for r in runs["expire"]]})  # fmt: skip
