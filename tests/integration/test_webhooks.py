"""Outbound webhooks on SQLite and PostgreSQL: outbox -> deliveries -> a real local HTTP receiver that checks the
Standard Webhooks signature with the `standardwebhooks` library; retries on a passed-in clock; the disabling
rule; manual redelivery; leases; the API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.integration.api_helpers import Api, Clock
from tests.integration.helpers import enrol
from treue.domain.webhooks import WEBHOOK_DISABLED, DeliveryPolicy
from treue.services import webhooks as hooks
from treue.store import tables as t

FAST = DeliveryPolicy(schedule=(timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)),
                      disable_after=timedelta(hours=1), disable_min_failures=3, timeout_seconds=5)  # fmt: skip


# One xdist worker runs the whole module, so two of its tests never send each other's deliveries.
pytestmark = pytest.mark.xdist_group("webhooks")


class Receiver:
    """A tiny threaded HTTP server: answers `status`, or blocks until released; verifies signatures when it
    knows the secret (a bad signature is answered 400 and not counted as received)."""

    def __init__(self) -> None:
        self.status = 200
        self.block = False
        self.secret: str | None = None
        self.verify_time = True
        self.received: list[dict[str, Any]] = []  # verified payloads with their headers
        self.rejected: list[str] = []
        self.seen: list[str] = []  # every request's webhook-id, answered or not
        self.arrived = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.seen.append(headers.get("webhook-id", ""))
                receiver.arrived.set()
                if receiver.block:  # hang like a slow receiver; its client is gone by the time it is released
                    receiver.release.wait(60)
                    self.close_connection = True
                    return
                try:
                    payload = receiver.check(body, headers)
                except WebhookVerificationError as error:
                    receiver.rejected.append(str(error))
                    self.send_response(400)
                    self.end_headers()
                    return
                status = receiver.status
                if status < 300:
                    receiver.received.append({"payload": payload, "headers": headers})
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"nope")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def check(self, body: bytes, headers: dict[str, str]) -> Any:
        if self.secret is None:
            return json.loads(body)
        if self.verify_time:
            return Webhook(self.secret).verify(body, headers)
        # a passed-in clock far from today: check the signature itself the library's way, at the sent time
        sent = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        expected = Webhook(self.secret).sign(headers["webhook-id"], sent, body.decode())
        if expected not in headers["webhook-signature"].split(" "):
            raise WebhookVerificationError("No matching signature found")
        return json.loads(body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def add_endpoint(uow_factory: Any, program_id: UUID, receiver: Receiver, now: datetime, events: list[str]) -> str:
    view = hooks.create_endpoint(uow_factory(), program_id, {"url": receiver.url, "events": events}, now)
    assert view["secret"].startswith("whsec_")
    receiver.secret = view["secret"]
    return str(view["id"])


def deliveries(uow_factory: Any, program_id: UUID, endpoint_id: str) -> list[dict[str, Any]]:
    return hooks.list_deliveries(uow_factory(), program_id, UUID(endpoint_id), limit=500)


def real_now() -> datetime:
    return datetime.now(UTC)


def pump(uow_factory: Any, program_id: UUID, now: datetime, done: Callable[[], bool], seconds: float = 20) -> None:
    """Relay the outbox and send due deliveries until `done()`: other tests' endpoints in the same database (or a
    relay in another worker) may take the first turns, so one round is not enough to see a given delivery."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the delivery did not arrive"
        relayed = hooks.relay_outbox(uow_factory, now)
        assert relayed["failed"] == 0
        hooks.deliver_due(uow_factory, real_now, "w1", FAST, program_id=program_id)
        time.sleep(0.02)


def test_an_event_reaches_the_receiver_signed_by_standard_webhooks_and_only_matching_endpoints(
    uow_factory, program_id, receiver
):
    now = real_now()
    endpoint = add_endpoint(uow_factory, program_id, receiver, now, ["member.*"])
    other = Receiver()
    try:
        add_endpoint(uow_factory, program_id, other, now, ["points.*"])  # does not want member events
        member = enrol(uow_factory, program_id, now, external_ref="hook-1")
        # Other tests' endpoints (same database) may hold the first due deliveries: send until this one arrived.
        pump(uow_factory, program_id, now, lambda: any(r["payload"]["data"].get("member_id") == str(member)
                                           for r in receiver.received))  # fmt: skip
    finally:
        other.close()
    assert not receiver.rejected and not other.received
    [got] = [r for r in receiver.received if r["payload"]["data"].get("member_id") == str(member)]
    assert got["payload"]["type"] == "member.enrolled"
    assert got["headers"]["webhook-id"].startswith("msg_") and got["headers"]["webhook-signature"].startswith("v1,")
    [log] = deliveries(uow_factory, program_id, endpoint)
    assert log["status"] == "succeeded" and log["attempts"] == 1 and log["last_status_code"] == 200
    assert log["attempt_log"][0]["status_code"] == 200 and log["attempt_log"][0]["worker"] == "w1"
    assert log["attempt_log"][0]["duration_ms"] >= 0
    # a second relay finds nothing new: the outbox message is dispatched, the delivery unique
    hooks.relay_outbox(uow_factory, now)
    assert len(deliveries(uow_factory, program_id, endpoint)) == 1


def test_a_tampered_signature_is_refused_by_the_receiver(uow_factory, program_id, receiver):
    now = real_now()
    add_endpoint(uow_factory, program_id, receiver, now, ["*"])
    receiver.secret = hooks.new_secret()  # the receiver holds another secret than the one we sign with
    enrol(uow_factory, program_id, now)
    pump(uow_factory, program_id, now, lambda: bool(receiver.rejected))
    assert not receiver.received


def test_failed_attempts_back_off_on_the_schedule_then_fail_and_a_redelivery_sends_again(
    uow_factory, program_id, receiver, now
):
    clock = Clock(now)
    receiver.verify_time = False
    endpoint = add_endpoint(uow_factory, program_id, receiver, now, ["member.enrolled"])
    policy = DeliveryPolicy(schedule=FAST.schedule, disable_after=timedelta(days=30), disable_min_failures=100)
    enrol(uow_factory, program_id, now)
    hooks.relay_outbox(uow_factory, now)
    receiver.status = 500

    def state() -> dict[str, Any]:
        [found] = deliveries(uow_factory, program_id, endpoint)
        return found

    hooks.deliver_due(uow_factory, clock, "w1", policy, program_id=program_id)
    assert state()["attempts"] == 1 and state()["status"] == "pending"
    assert state()["next_attempt_at"] == (now + timedelta(seconds=5)).isoformat()
    hooks.deliver_due(uow_factory, clock, "w1", policy, program_id=program_id)  # not due yet: nothing is sent
    assert state()["attempts"] == 1
    for step, attempts in ((timedelta(seconds=5), 2), (timedelta(minutes=5), 3)):
        clock.advance(seconds=step.total_seconds() - 1)
        hooks.deliver_due(uow_factory, clock, "w1", policy, program_id=program_id)
        assert state()["attempts"] == attempts - 1, "a second early"
        clock.advance(seconds=1)
        hooks.deliver_due(uow_factory, clock, "w1", policy, program_id=program_id)
        assert state()["attempts"] == attempts
    clock.advance(minutes=30)
    hooks.deliver_due(uow_factory, clock, "w1", policy, program_id=program_id)
    done = state()
    assert done["status"] == "failed" and done["attempts"] == 4 and done["next_attempt_at"] is None
    assert [a["status_code"] for a in done["attempt_log"]] == [500, 500, 500, 500]
    assert "HTTP 500" in done["attempt_log"][0]["error"]
    clock.advance(hours=10)
    hooks.deliver_due(uow_factory, clock, "w1", policy, program_id=program_id)
    assert state()["attempts"] == 4  # spent: no more automatic tries

    receiver.status = 200
    assert hooks.redeliver(uow_factory(), program_id, UUID(endpoint), clock(), delivery_id=UUID(done["id"])) == {
        "requeued": 1
    }
    hooks.deliver_due(uow_factory, clock, "w1", policy, program_id=program_id)
    again = state()
    assert again["status"] == "succeeded" and again["attempts"] == 5
    assert len(receiver.received) == 1
    assert receiver.received[0]["headers"]["webhook-id"] == f"msg_{done['id']}"  # the same id: receivers dedupe


def test_an_endpoint_failing_long_and_often_enough_is_disabled_with_an_event(uow_factory, program_id, receiver, now):
    clock = Clock(now)
    receiver.verify_time = False
    receiver.status = 503
    endpoint = add_endpoint(uow_factory, program_id, receiver, now, ["member.enrolled"])
    for i in range(3):
        enrol(uow_factory, program_id, now, external_ref=f"dead-{i}")
    hooks.relay_outbox(uow_factory, now)
    hooks.deliver_due(
        uow_factory, clock, "w1", FAST, program_id=program_id
    )  # 3 failures within a second: not yet an hour
    view = hooks.get_endpoint(uow_factory(), program_id, UUID(endpoint))
    assert view["enabled"] and view["consecutive_failures"] == 3
    clock.advance(minutes=5, seconds=5)  # everything due again, an hour not yet over
    hooks.deliver_due(uow_factory, clock, "w1", FAST, program_id=program_id)
    assert hooks.get_endpoint(uow_factory(), program_id, UUID(endpoint))["enabled"]
    clock.advance(hours=1)
    result = hooks.deliver_due(uow_factory, clock, "w1", FAST, program_id=program_id)
    assert result["disabled"] == 1
    view = hooks.get_endpoint(uow_factory(), program_id, UUID(endpoint))
    assert not view["enabled"] and "failed attempts in a row" in view["disabled_reason"]
    with uow_factory() as uow:
        events = uow.outbox.recent(program_id, WEBHOOK_DISABLED, 10)
    assert len(events) == 1 and events[0]["payload"]["webhook_id"] == endpoint
    # a disabled endpoint's pending deliveries wait; enabling again clears the count and resumes them
    clock.advance(hours=20)
    assert hooks.deliver_due(uow_factory, clock, "w1", FAST, program_id=program_id)["attempted"] == 0
    receiver.status = 200
    view = hooks.update_endpoint(uow_factory(), program_id, UUID(endpoint), {"enabled": True}, clock())
    assert view["enabled"] and view["consecutive_failures"] == 0 and view["disabled_reason"] is None
    hooks.deliver_due(uow_factory, clock, "w1", FAST, program_id=program_id)
    statuses = sorted(d["status"] for d in deliveries(uow_factory, program_id, endpoint))
    assert statuses.count("succeeded") >= 1


def test_a_claimed_delivery_is_anothers_only_after_the_lease_lapses(uow_factory, program_id, receiver, now):
    clock = Clock(now)
    receiver.verify_time = False
    endpoint = add_endpoint(uow_factory, program_id, receiver, now, ["member.enrolled"])
    enrol(uow_factory, program_id, now)
    hooks.relay_outbox(uow_factory, now)
    with uow_factory() as uow:  # worker A claims and dies before it sends anything
        # this programme's only, as a worker given --program does: other tests' deliveries share the database
        claimed = uow.webhooks.claim_due(now, 100, "A", now + FAST.lease, program_id)
        uow.commit()
    assert [c for c in claimed if str(c["endpoint_id"]) == endpoint]
    clock.advance(seconds=FAST.lease.total_seconds() - 1)
    hooks.deliver_due(uow_factory, clock, "B", FAST, program_id=program_id)
    assert not receiver.received
    clock.advance(seconds=2)
    hooks.deliver_due(uow_factory, clock, "B", FAST, program_id=program_id)
    [done] = deliveries(uow_factory, program_id, endpoint)
    assert done["status"] == "succeeded" and done["attempts"] == 2  # A's attempt is counted, never logged
    assert [(a["number"], a["worker"]) for a in done["attempt_log"]] == [(2, "B")]
    assert len(receiver.received) == 1


def test_fan_out_of_one_message_twice_adds_one_delivery(uow_factory, program_id, receiver, now):
    endpoint = add_endpoint(uow_factory, program_id, receiver, now, ["*"])
    message = {"program_id": program_id, "id": UUID(int=7), "topic": "points.earned", "payload": {"points": 1},
               "created_at": now}  # fmt: skip
    for _ in range(2):
        with uow_factory() as uow:
            hooks.fan_out(uow, message, now)
            uow.commit()
    assert len(deliveries(uow_factory, program_id, endpoint)) == 1


def test_attempts_are_append_only(uow_factory, program_id, receiver, engine):
    now = real_now()
    add_endpoint(uow_factory, program_id, receiver, now, ["*"])
    enrol(uow_factory, program_id, now)
    attempts = select(t.webhook_attempts).where(t.webhook_attempts.c.program_id == program_id)

    def attempted() -> bool:
        with engine.connect() as conn:
            return conn.execute(attempts).first() is not None

    pump(uow_factory, program_id, now, attempted)
    with pytest.raises(Exception, match=r"append-only|append_only"), engine.begin() as conn:
        conn.execute(t.webhook_attempts.update().where(t.webhook_attempts.c.program_id == program_id)
                     .values(status_code=200))  # fmt: skip


# -- API ------------------------------------------------------------------------------------------------------
@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def test_api_registers_lists_updates_and_redelivers(api: Api, receiver, now):
    a = api.tenant("Hooks", scopes=("admin", "pos", "read_only"))
    created = a.admin.post("/webhooks", {"url": receiver.url, "events": ["points.*", "member.enrolled"],
                                         "description": "CRM"})  # fmt: skip
    assert created["secret"].startswith("whsec_") and created["events"] == ["member.enrolled", "points.*"]
    listed = a.admin.get("/webhooks")
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert a.admin.get(f"/webhooks/{created['id']}")["deliveries"] == {"pending": 0, "succeeded": 0, "failed": 0}
    rotated = a.admin.patch(f"/webhooks/{created['id']}", {"rotate_secret": True, "enabled": False})
    assert rotated["secret"] != created["secret"] and not rotated["enabled"]
    assert a.admin.get(f"/webhooks/{created['id']}/deliveries") == []
    redo = a.admin.post(f"/webhooks/{created['id']}/redeliveries", {"failed_since": now.isoformat()}, status=200)
    assert redo == {"requeued": 0}
    api.refused(a.read_only, "GET", "/webhooks", 403, "forbidden", a.program_id)
    api.refused(a.pos, "POST", "/webhooks", 403, "forbidden", a.program_id,
                json={"url": receiver.url, "events": ["*"]})  # fmt: skip


@pytest.mark.parametrize("body", [
    {"url": "ftp://x.example/h", "events": ["*"]},
    {"url": "https:///nohost", "events": ["*"]},
    {"url": "https://x.example/h", "events": ["points.*.earned"]},
    {"url": "https://x.example/h", "events": ["Points"]},
])  # fmt: skip
def test_api_refuses_a_bad_url_or_filter_and_stores_nothing(api: Api, body):
    a = api.tenant("Bad hooks", scopes=("admin",))
    problem = api.refused(a.admin, "POST", "/webhooks", 422, "webhook_invalid", a.program_id, json=body)
    assert problem["title"]


def test_api_redelivery_needs_exactly_one_selector_and_a_known_delivery(api: Api, receiver):
    a = api.tenant("Redeliver", scopes=("admin",))
    hook = a.admin.post("/webhooks", {"url": receiver.url, "events": ["*"]})
    path = f"/webhooks/{hook['id']}/redeliveries"
    api.refused(a.admin, "POST", path, 422, "invalid_input", a.program_id, json={})
    api.refused(a.admin, "POST", path, 404, "not_found", a.program_id,
                json={"delivery_id": "00000000-0000-7000-8000-000000000000"})  # fmt: skip
    api.refused(a.admin, "GET", "/webhooks/00000000-0000-7000-8000-000000000000", 404, "not_found", a.program_id)


def test_a_failing_stream_publish_rolls_back_the_messages_deliveries_and_a_retry_writes_them_once(
    uow_factory, program_id, receiver
):
    now = real_now()
    endpoint = add_endpoint(uow_factory, program_id, receiver, now, ["member.*"])
    enrol(uow_factory, program_id, now, external_ref="hook-retry")

    def broken(*args: Any) -> None:
        raise ConnectionError("stream down")

    failed = hooks.relay_outbox(uow_factory, now, publisher=broken)
    assert failed["failed"] >= 1 and failed["deliveries"] == 0
    assert deliveries(uow_factory, program_id, endpoint) == []  # the savepoint took them back
    published: list[str] = []
    again = hooks.relay_outbox(uow_factory, now, publisher=lambda *a: published.append(a[1]))
    assert again["failed"] == 0 and "member.enrolled" in published
    assert len(deliveries(uow_factory, program_id, endpoint)) == 1
