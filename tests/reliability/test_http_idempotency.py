"""Idempotency-Key over real HTTP against `treue serve` as a process (SQLite and PostgreSQL): a replay returns the
first answer, another body is refused (422), a concurrent duplicate is refused while the first runs (409), and a
retry after the server died between commit and response (test hook TREUE_TEST_CRASH_AFTER_COMMIT) returns the
committed answer: exactly one effect every time."""

from __future__ import annotations

import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
from sqlalchemy import func, select

from tests.integration.helpers import enrol
from tests.reliability.conftest import record_figure
from tests.reliability.processes import ApiServer, Hammer, url_of
from treue.services.keys import create_api_key
from treue.services.points import get_balance
from treue.store import tables as t


def purchases_of(engine, program_id, order: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.purchases).where(
            t.purchases.c.program_id == program_id, t.purchases.c.external_order_id == order)).scalar_one())  # fmt: skip


def test_idempotency_over_http_including_a_crash_between_commit_and_response(engine, uow_factory, program_id):
    at = datetime.now(UTC)
    member = enrol(uow_factory, program_id, at)
    token = create_api_key(uow_factory(), program_id, "pos", "till", at)["key"]
    flag = Path(tempfile.mkdtemp()) / "crash-once"
    server = ApiServer(url_of(engine), TREUE_TEST_CRASH_AFTER_COMMIT=str(flag))
    hammer = Hammer(server.base, token, str(member), at.isoformat())
    figure: dict[str, object] = {}
    server.start()
    try:
        with httpx.Client() as client:
            # Replay: the same key and body answer the same, once.
            first = hammer.send(client, "order-1")
            again = hammer.send(client, "order-1")
            assert first.status_code == again.status_code == 201
            assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
            # Another body under the same key: 422, nothing recorded.
            other = client.post(f"{server.base}/api/v1/purchases", json={**hammer.body("order-1"), "total": "11.00"},
                                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "order-1"})  # fmt: skip
            assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
            assert purchases_of(engine, program_id, "order-1") == 1

        # Concurrent duplicates: one runs, the others are told it is in progress (409) or get its replay.
        seen: Counter[str] = Counter()
        for attempt in range(5):
            key = f"burst-{attempt}"
            with httpx.Client(limits=httpx.Limits(max_connections=40)) as client, ThreadPoolExecutor(40) as pool:
                responses = list(pool.map(lambda _, k=key: hammer.send(client, k), range(40)))
            kinds = Counter("replayed" if r.headers.get("idempotent-replayed") else str(r.status_code)
                            for r in responses)  # fmt: skip
            seen.update(kinds)
            assert set(kinds) <= {"201", "409", "replayed"} and kinds["201"] == 1, kinds
            assert all(r.json()["code"] == "idempotency_in_progress" for r in responses if r.status_code == 409)
            assert purchases_of(engine, program_id, key) == 1
            if kinds["409"]:
                break
        assert seen["409"] > 0, f"no concurrent duplicate was ever in flight: {seen}"
        figure["concurrent_duplicates"] = dict(seen)

        # A crash after the commit, before the response: the client sees the connection drop ...
        flag.touch()
        with httpx.Client() as client:
            try:
                lost = hammer.send(client, "order-crash")
                raise AssertionError(f"the server answered {lost.status_code} instead of dying")
            except httpx.HTTPError as error:
                figure["client_saw"] = type(error).__name__
        assert server.wait_exit() == 86 and not flag.exists()
        assert purchases_of(engine, program_id, "order-crash") == 1  # ... but the purchase was committed
        server.start()  # restarted: the retry gets the committed answer, and nothing happens twice
        with httpx.Client() as client:
            retry = hammer.send(client, "order-crash")
            assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
            assert hammer.send(client, "order-crash").json() == retry.json()
        assert purchases_of(engine, program_id, "order-crash") == 1
        balance = get_balance(uow_factory(), program_id, member, at)
        assert balance["points"] + balance.get("pending", 0) >= 0
    finally:
        server.stop()
    figure["purchases_order_crash"] = 1
    record_figure(f"idempotency_http_{engine.dialect.name}", figure)
    assert UUID(retry.json()["id"])
