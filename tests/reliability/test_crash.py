"""Crashes under load. A client thread records purchases with idempotency keys against `treue serve`:
- the API process is killed with SIGKILL and started again: every request that got a 2xx is in the ledger, and
  retrying the ones that got no answer (same Idempotency-Key) records each at most once;
- PostgreSQL itself (a private cluster started for the test, never the shared server) is restarted: the running
  API process reconnects by itself, and every 2xx is in the ledger.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from uuid import UUID

import httpx
import pytest
from sqlalchemy import Engine, select

from tests.integration.helpers import enrol
from tests.reliability.conftest import record_figure
from tests.reliability.processes import ApiServer, Hammer, PrivateCluster, in_thread, url_of
from treue.services.keys import create_api_key
from treue.services.programs import create_program
from treue.services.verify import verify
from treue.store import tables as t
from treue.store.database import make_engine
from treue.store.migrate import migrate
from treue.store.unit_of_work import SqlUnitOfWorkFactory


def recorded(engine: Engine, program_id) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.purchases.c.external_order_id).where(t.purchases.c.program_id == program_id))
        return {row[0] for row in rows}


def check_nothing_lost(engine: Engine, hammer: Hammer, program_id) -> dict[str, int]:
    in_ledger = recorded(engine, program_id)
    missing = set(hammer.ok) - in_ledger
    assert not missing, f"{len(missing)} requests got a 2xx but are not in the ledger"
    unanswered = set(hammer.failed) & in_ledger  # committed, but the client never heard: a retry replays them
    return {"answered_2xx": len(hammer.ok), "no_answer_or_error": len(hammer.failed),
            "committed_without_answer": len(unanswered), "purchases_in_ledger": len(in_ledger)}  # fmt: skip


def during_outage(base: str, hammer: Hammer) -> dict[str, object]:
    """While the database is down: readiness, liveness and a write each answer 503 problem+json with a stable
    code and Retry-After (the API process itself is up)."""
    seen: dict[str, object] = {}
    with httpx.Client(timeout=5) as client:
        ready = client.get(f"{base}/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable", ready.text
        alive = client.get(f"{base}/healthz")
        assert alive.status_code == 503, alive.text
        write = hammer.send(client, uuid.uuid4().hex)
        assert write.status_code == 503, write.text
        assert write.headers["content-type"] == "application/problem+json"
        assert write.json()["code"] == "database_unavailable" and int(write.headers["retry-after"]) > 0
        german = client.get(f"{base}/healthz", headers={"Accept-Language": "de"})
        assert german.json()["title"].startswith("Die Datenbank"), german.text
        seen = {"readyz": ready.status_code, "healthz": alive.status_code, "write": write.status_code,
                "retry_after": write.headers["retry-after"]}  # fmt: skip
    return seen


def test_kill_9_of_the_api_under_load_loses_no_acknowledged_request(engine, uow_factory, program_id):
    at = datetime.now(UTC)
    member = enrol(uow_factory, program_id, at)
    token = create_api_key(uow_factory(), program_id, "pos", "till", at)["key"]
    server = ApiServer(url_of(engine))
    hammer = Hammer(server.base, token, str(member), at.isoformat())
    server.start()
    try:
        thread = in_thread(hammer.run)
        hammer.wait_for_successes(30, 30)
        server.kill()  # SIGKILL while requests are in flight
        time.sleep(0.5)
        server.start()
        hammer.wait_for_successes(30, 30)
        hammer.stop.set()
        thread.join(15)
        figure = check_nothing_lost(engine, hammer, program_id)
        with httpx.Client() as client:  # retrying what got no answer records each at most once
            for key in hammer.failed:
                response = hammer.send(client, key)
                assert response.status_code == 201, response.text
        assert recorded(engine, program_id) == set(hammer.ok) | set(hammer.failed)
    finally:
        hammer.stop.set()
        server.stop()
    assert verify(uow_factory(), program_id) == []
    record_figure(f"crash_api_kill9_{engine.dialect.name}", {**figure, "statuses": hammer.statuses})


def test_a_postgresql_restart_under_load_loses_nothing_and_the_api_reconnects(backend):
    if backend == "sqlite":
        pytest.skip("PostgreSQL only: a database server restart")
    problem = PrivateCluster.unavailable()
    if problem:
        pytest.skip(problem)
    cluster = PrivateCluster()
    server: ApiServer | None = None
    hammer: Hammer | None = None
    engine = None
    try:
        cluster.init()
        engine = make_engine(cluster.url)
        migrate(engine)
        uow_factory = SqlUnitOfWorkFactory(engine)
        at = datetime.now(UTC)
        program_id = UUID(create_program(uow_factory(), "Restart", "EUR", "Europe/Berlin", {}, at)["id"])
        member = enrol(uow_factory, program_id, at)
        token = create_api_key(uow_factory(), program_id, "pos", "till", at)["key"]
        engine.dispose()
        server = ApiServer(cluster.url)
        hammer = Hammer(server.base, token, str(member), at.isoformat())
        server.start()
        thread = in_thread(hammer.run)
        hammer.wait_for_successes(30, 30)
        stopped = time.monotonic()
        cluster.stop("fast")  # terminates every connection of the API's pool
        outage = during_outage(server.base, hammer)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - stopped)))
        cluster.start()
        hammer.wait_for_successes(1, 30)  # the same API process serves again: it reconnected by itself
        recovered = time.monotonic() - stopped
        hammer.wait_for_successes(30, 30)
        hammer.stop.set()
        thread.join(15)
        assert server.process is not None and server.process.poll() is None, "the API process died"
        # during the outage a request is refused with 503 (or never connects), never a 500
        answered = {status for status in hammer.statuses if status.isdigit()}
        assert answered <= {"201", "503"}, hammer.statuses
        assert httpx.get(f"{server.base}/readyz", timeout=5).status_code == 200
        figure = check_nothing_lost(engine, hammer, program_id)
        assert verify(uow_factory(), program_id) == []
        record_figure("crash_postgres_restart", {**figure, "statuses": hammer.statuses, "during_outage": outage,
                                                 "seconds_until_first_2xx_after_stop": round(recovered, 1)})  # fmt: skip
    finally:
        if hammer:
            hammer.stop.set()
        if server:
            server.stop()
        if engine is not None:
            engine.dispose()
        cluster.destroy()


def test_only_a_lost_or_refused_connection_counts_as_the_database_being_unavailable():
    import psycopg
    from sqlalchemy import exc

    from treue.api.errors import database_unavailable

    refused = psycopg.OperationalError("connection refused")  # no SQLSTATE: the client could not connect
    shutdown = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    assert database_unavailable(exc.OperationalError("SELECT 1", {}, refused))
    assert database_unavailable(exc.OperationalError("SELECT 1", {}, shutdown))
    assert database_unavailable(exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True))
    assert database_unavailable(exc.TimeoutError("QueuePool limit reached"))
    # refusals by a database that is there stay what they were (409/422 by their handlers, else 500)
    assert not database_unavailable(exc.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("dup")))
    assert not database_unavailable(exc.OperationalError("UPDATE", {}, psycopg.errors.DeadlockDetected("dl")))
    assert not database_unavailable(exc.OperationalError("UPDATE", {}, Exception("database is locked")))
    assert not database_unavailable(ValueError("not a database error"))
