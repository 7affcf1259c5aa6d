"""`treue worker run` as real processes: a worker killed (SIGKILL) in the middle of a delivery loses nothing; a
second worker sends it once the first one's lease has lapsed. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from tests.integration.helpers import enrol
from tests.integration.test_webhooks import Receiver

TREUE = Path(sys.executable).with_name("treue")


class Cli:
    def __init__(self, engine: Engine) -> None:
        url = engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")
        self.env = {**os.environ, "TREUE_DATABASE_URL": url, "NO_COLOR": "1", "COLUMNS": "200"}
        self.env.pop("TREUE_NATS_URL", None)

    def json(self, *args: str) -> Any:
        done = subprocess.run([str(TREUE), *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"treue {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout)

    def worker(self, name: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(TREUE), "worker", "run", "--name", name, "--lease", "6", "--poll", "0.2"],
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_killed_mid_delivery_loses_nothing_and_another_worker_delivers(engine, uow_factory, program_id):
    cli = Cli(engine)
    receiver = Receiver()
    first = second = None
    try:
        hook = cli.json("worker", "webhooks", "add", "--program", str(program_id), "--url", receiver.url,
                        "--event", "member.*")  # fmt: skip
        receiver.secret = hook["secret"]
        listed = cli.json("worker", "webhooks", "list", "--program", str(program_id), "--json")
        assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
        member = enrol(uow_factory, program_id, datetime.now(UTC), external_ref="kill-me")
        receiver.block = True  # the first request hangs: the worker is mid-delivery
        first = cli.worker("A")
        assert receiver.arrived.wait(60), "worker A never sent the delivery"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        receiver.block, receiver.status = False, 200

        def log() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = cli.json("worker", "webhooks", "deliveries", hook["id"], "--program",
                                                   str(program_id), "--json")  # fmt: skip
            return found

        [pending] = log()
        assert pending["status"] == "pending" and pending["attempts"] == 1 and pending["attempt_log"] == []
        second = cli.worker("B")
        [done] = wait_for(lambda: [d for d in log() if d["status"] == "succeeded"], 60, "worker B's delivery")
        second.send_signal(signal.SIGTERM)  # a clean stop after the round
        assert second.wait(20) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        receiver.close()
    assert done["attempts"] == 2 and [(a["number"], a["worker"]) for a in done["attempt_log"]] == [(2, "B")]
    [got] = receiver.received  # delivered once, verified with the library, to the same webhook-id as A's try
    assert got["payload"]["type"] == "member.enrolled" and got["payload"]["data"]["member_id"] == str(member)
    assert receiver.seen == [got["headers"]["webhook-id"]] * 2


def test_a_worker_with_jobs_runs_the_periodic_jobs(engine, uow_factory, program_id):
    from tests.integration.rules_helpers import fixed, rule
    from treue.jobs.scheduler import DEFAULT_JOBS
    from treue.services.points import get_balance

    started = datetime.now(UTC)
    rule(uow_factory, program_id, started, "birthday-bonus", fixed(500), trigger="birthday")
    today = started.astimezone(ZoneInfo("Europe/Berlin")).date()
    member = enrol(uow_factory, program_id, started, birthday=today.replace(year=1990))
    cli = Cli(engine)
    done = cli.json("worker", "run", "--once", "--jobs", "--name", "jobs-1")
    assert set(done["jobs"]) == set(DEFAULT_JOBS)
    assert get_balance(uow_factory(), program_id, member, datetime.now(UTC))["points"] == 500
    # Without --jobs a worker only delivers.
    assert "jobs" not in cli.json("worker", "run", "--once", "--name", "jobs-2")
