"""The event stream against the real NATS server (127.0.0.1:4222, JetStream on): every domain event published
per programme and type; purchase intake at-least-once with exactly-once effect, acked only after commit.
Each test uses its own stream and subjects and deletes them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import nats
import pytest
from sqlalchemy import func, select

from tests.integration.helpers import enrol
from treue.services import streams
from treue.services.webhooks import relay_outbox
from treue.store import tables as t

NATS_URL = os.environ.get("TREUE_TEST_NATS_URL", "nats://127.0.0.1:4222")


def run(coroutine: Any) -> Any:
    """`asyncio.run` in a thread of its own: in an xdist worker that also ran the browser tests, Playwright's sync
    API keeps an event loop running in the main thread for the session, and asyncio.run refuses to start there."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _nats_ok() -> None:
    nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
    await nc.jetstream().account_info()
    await nc.close()


@pytest.fixture(scope="module")
def nats_server() -> str:
    try:
        run(_nats_ok())
    except Exception as error:  # no server, or JetStream off
        if os.environ.get("CI") or os.environ.get("TREUE_REQUIRE_NATS"):
            pytest.fail(f"NATS JetStream not reachable at {NATS_URL}: {error}")
        pytest.skip(f"NATS JetStream not reachable at {NATS_URL}: {error}")
    return NATS_URL


@pytest.fixture
def names(nats_server: str) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    found = {"stream": f"TREUE_TEST_{tag}", "prefix": f"treuetest{tag}", "subject": f"treuetest{tag}.intake",
             "durable": f"intake-{tag}"}  # fmt: skip
    yield found

    async def drop() -> None:
        nc = await nats.connect(nats_server)
        with contextlib.suppress(Exception):  # a test that never created its stream
            await nc.jetstream().delete_stream(found["stream"])
        await nc.close()

    run(drop())


async def _read_all(url: str, stream: str, subject: str) -> list[Any]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(stream)
    got = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        message = await js.get_msg(stream, seq)
        if message.subject.startswith(subject):
            got.append(message)
    await nc.close()
    return got


def test_every_domain_event_is_published_once_per_programme_and_type(uow_factory, program_id, names):
    now = datetime.now(UTC)
    member = enrol(uow_factory, program_id, now, external_ref="stream-1")
    publisher = streams.JetStreamPublisher(NATS_URL, stream=names["stream"], prefix=names["prefix"])
    try:
        result = relay_outbox(uow_factory, now, publisher=publisher)
        assert result["failed"] == 0
        message_id = uuid.uuid4()  # a relay retried after a failed commit publishes again: JetStream drops it
        publisher(program_id, "points.earned", {"points": 5}, message_id)
        publisher(program_id, "points.earned", {"points": 5}, message_id)
    finally:
        publisher.close()
    mine = run(_read_all(NATS_URL, names["stream"], f"{names['prefix']}.{program_id}."))
    subjects = [m.subject for m in mine]
    assert f"{names['prefix']}.{program_id}.member.enrolled" in subjects
    enrolled = [json.loads(m.data) for m in mine if m.subject.endswith("member.enrolled")]
    assert [e["data"]["member_id"] for e in enrolled] == [str(member)]
    assert enrolled[0]["program_id"] == str(program_id) and enrolled[0]["type"] == "member.enrolled"
    assert subjects.count(f"{names['prefix']}.{program_id}.points.earned") == 1


def purchase(program_id: UUID, order: str, ref: str, total: str = "20.00") -> bytes:
    return json.dumps({"program_id": str(program_id), "external_order_id": order, "external_ref": ref,
                       "total": total, "currency": "EUR", "occurred_at": "2026-03-02T10:00:00+00:00",
                       "lines": [{"sku": "TEA", "quantity": 1, "unit_price": total}]}).encode()  # fmt: skip


async def _publish(url: str, stream: str, subject: str, bodies: list[bytes]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await streams.ensure_stream(js, stream, [subject])
    for body in bodies:
        await js.publish(subject, body, stream=stream)
    await nc.close()


def intake(uow_factory: Any, names: dict[str, str], ack_wait: float = 30.0) -> streams.IntakeReport:
    return run(streams.run_intake(uow_factory, lambda: datetime.now(UTC), NATS_URL, names["stream"],
                                          names["subject"], names["durable"], ack_wait=ack_wait,
                                          stop_when_idle=True))  # fmt: skip


def purchases_of(engine: Any, program_id: UUID) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.purchases)
                                .where(t.purchases.c.program_id == program_id)).scalar_one())  # fmt: skip


def test_intake_records_a_duplicate_message_once_and_terminates_a_malformed_one(
    uow_factory, program_id, names, engine, now
):
    enrol(uow_factory, program_id, now, external_ref="intake-1")
    same = purchase(program_id, "NATS-1", "intake-1")
    bodies = [same, same, b"{not json", purchase(program_id, "NATS-2", "nobody-here")]
    run(_publish(NATS_URL, names["stream"], names["subject"], bodies))
    report = intake(uow_factory, names)
    assert (report.recorded, report.duplicate, report.rejected) == (1, 1, 2), report.errors
    assert purchases_of(engine, program_id) == 1
    again = intake(uow_factory, names)  # everything was acked or terminated: nothing comes back
    assert (again.recorded, again.duplicate, again.rejected) == (0, 0, 0)


class Killed(BaseException):
    """The process dies: not an error the intake could handle."""


class DiesBeforeCommit:
    """A unit-of-work factory whose commit kills the 'process' before anything is committed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, **kw: Any) -> Any:
        uow = self.inner(**kw)

        def commit() -> None:
            raise Killed

        uow.commit = commit
        return uow


def test_a_message_is_acked_only_after_commit_so_a_kill_before_commit_redelivers_it(
    uow_factory, program_id, names, engine, now
):
    enrol(uow_factory, program_id, now, external_ref="intake-kill")
    run(_publish(NATS_URL, names["stream"], names["subject"], [purchase(program_id, "NATS-K", "intake-kill")]))
    with pytest.raises(Killed):
        intake(DiesBeforeCommit(uow_factory), names, ack_wait=1.0)
    assert purchases_of(engine, program_id) == 0
    recorded = 0
    deadline = time.monotonic() + 20
    while not recorded and time.monotonic() < deadline:  # redelivered once ack_wait has passed
        recorded = intake(uow_factory, names, ack_wait=1.0).recorded
    assert recorded == 1
    assert purchases_of(engine, program_id) == 1


def test_purchase_messages_are_checked_before_anything_is_written(program_id):
    with pytest.raises(streams.InvalidInput):
        streams.purchase_command({"program_id": "nope", "external_order_id": "x"})
    with pytest.raises(streams.InvalidInput, match="occurred_at needs a timezone"):
        streams.purchase_command(json.loads(purchase(program_id, "X", "r").decode().replace("+00:00", "")))
    pid, command = streams.purchase_command(json.loads(purchase(program_id, "X", "r")))
    assert pid == program_id and command.external_order_id == "X" and command.partner == "default"
