"""Idempotency-Key: a retry returns the first answer and changes nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from tests.integration.api_helpers import Api
from treue.api import idempotency


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()
    with idempotency._lock:
        idempotency._in_flight.clear()


def purchase(member_id: str, order: str, now, total: str = "42.00") -> dict:
    return {"member_id": member_id, "external_order_id": order, "occurred_at": now.isoformat(), "total": total,
            "currency": "EUR", "lines": [{"sku": "A", "quantity": 1, "unit_price": total}]}  # fmt: skip


def points(api: Api, tenant, member_id: str) -> int:
    return tenant.read_only.get(f"/members/{member_id}/balance")["points"]  # type: ignore[no-any-return]


def test_a_retry_returns_the_stored_response_and_records_nothing_twice(api: Api, now):
    a = api.tenant()
    member = a.pos.post("/members", {})["id"]
    body = purchase(member, "ORD-1", now)
    first = a.pos.request("POST", "/purchases", json=body, idem="key-1")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    with api.unchanged(a.program_id):
        again = a.pos.request("POST", "/purchases", json=body, idem="key-1")
        # The same JSON with its keys in another order is the same request.
        shuffled = json.dumps(dict(reversed(list(body.items())))).encode()
        third = a.pos.request("POST", "/purchases", content=shuffled, idem="key-1")
    for replay in (again, third):
        assert replay.status_code == 201
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.headers["content-type"].startswith("application/json")
        assert replay.json() == first.json()
    assert points(api, a, member) == 42
    assert a.read_only.get("/purchases", params={"external_order_id": "ORD-1"})["id"] == first.json()["id"]
    # Without the key the same order is a duplicate, not a replay.
    api.refused(a.pos, "POST", "/purchases", 409, "duplicate_order", a.program_id, json=body)
    # Every kind of POST replays: enrolment, too, returns the same member instead of a second one.
    enrolled = a.pos.post("/members", {"email": "x@example.org"}, idem="enrol-1")
    with api.unchanged(a.program_id):
        assert a.pos.post("/members", {"email": "x@example.org"}, idem="enrol-1") == enrolled
    assert len(a.pos.get("/members", params={"email": "x@example.org"})) == 1


def test_the_same_key_with_another_request_is_refused(api: Api, now):
    a = api.tenant()
    member = a.pos.post("/members", {})["id"]
    a.pos.post("/purchases", purchase(member, "ORD-1", now), idem="key-1")
    for path, body in (("/purchases", purchase(member, "ORD-2", now)),  # another body
                       ("/purchases", purchase(member, "ORD-1", now, total="43.00")),
                       ("/members", {})):  # another endpoint  # fmt: skip
        api.refused(a.pos, "POST", path, 422, "idempotency_key_reused", a.program_id, json=body, idem="key-1")
    assert points(api, a, member) == 42
    api.refused(a.pos, "POST", "/members", 400, "invalid_idempotency_key", a.program_id, json={}, idem="k" * 256)


def test_a_business_refusal_is_replayed_too(api: Api, now):
    a = api.tenant()
    member = a.pos.post("/members", {})["id"]
    reward = a.admin.post("/rewards", {"name": {"de": "Kissen"}, "type": "merchandise", "cost_points": 50})
    body = {"reward_id": reward["id"], "member_id": member}
    first = api.refused(a.pos, "POST", "/redemptions", 422, "insufficient_points", a.program_id, json=body,
                        idem="redeem-1")  # fmt: skip
    a.pos.post("/purchases", purchase(member, "ORD-1", now, total="80.00"))  # now the member could afford it
    with api.unchanged(a.program_id):
        retry = a.pos.request("POST", "/redemptions", json=body, idem="redeem-1")
    assert retry.status_code == 422 and retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["content-type"].startswith("application/problem+json")
    assert retry.json() == first
    assert points(api, a, member) == 80
    assert a.read_only.get(f"/members/{member}/redemptions") == []
    # A new key is a new request.
    assert a.pos.post("/redemptions", body, idem="redeem-2")["balance_after"] == 30


def test_keys_are_scoped_to_the_api_key(api: Api, now):
    a, b = api.tenant("A"), api.tenant("B")
    till_2 = api.key(a.program_id, "pos", name="till-2")
    member = a.pos.post("/members", {})["id"]
    member_b = b.pos.post("/members", {})["id"]
    one = a.pos.post("/purchases", purchase(member, "ORD-1", now), idem="shared")
    two = till_2.post("/purchases", purchase(member, "ORD-2", now, total="10.00"), idem="shared")
    other = b.pos.post("/purchases", purchase(member_b, "ORD-1", now, total="5.00"), idem="shared")
    assert len({one["id"], two["id"], other["id"]}) == 3
    assert points(api, a, member) == 52 and points(api, b, member_b) == 5
    # The second till's key names its own request: the first till's body there is a new (duplicate) order.
    api.refused(till_2, "POST", "/purchases", 409, "duplicate_order", a.program_id,
                json=purchase(member, "ORD-1", now), idem="fresh")  # fmt: skip
    replay = a.pos.request("POST", "/purchases", json=purchase(member, "ORD-1", now), idem="shared")
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == one


def test_a_retry_while_the_first_runs_in_this_process_is_refused(api: Api, now):
    a = api.tenant()
    member = a.pos.post("/members", {})["id"]
    token = (a.pos.key_id, "busy-1")
    with idempotency._lock:
        idempotency._in_flight.add(token)
    try:
        api.refused(a.pos, "POST", "/purchases", 409, "idempotency_in_progress", a.program_id,
                    json=purchase(member, "ORD-1", now), idem="busy-1")  # fmt: skip
        assert token in idempotency._in_flight  # the refused retry did not release the first's claim
        # Another key of the same API key is not blocked.
        a.pos.post("/purchases", purchase(member, "ORD-2", now), idem="busy-2")
    finally:
        with idempotency._lock:
            idempotency._in_flight.discard(token)
    created = a.pos.post("/purchases", purchase(member, "ORD-1", now), idem="busy-1")
    assert created["points_earned"] == 42 and points(api, a, member) == 84


def test_a_retry_while_another_process_runs_the_key_is_refused(api: Api, backend, now):
    """On PostgreSQL the claim is an advisory lock, so it holds across processes."""
    if backend != "postgres":
        pytest.skip("the cross-process claim is PostgreSQL's advisory lock; SQLite has one writer")
    a = api.tenant()
    member = a.pos.post("/members", {})["id"]
    url = api.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as other_process:
        other_process.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"{a.pos.key_id}:busy",))
        api.refused(a.pos, "POST", "/purchases", 409, "idempotency_in_progress", a.program_id,
                    json=purchase(member, "ORD-1", now), idem="busy")  # fmt: skip
        # The same string from another API key is another lock.
        a.shop.post("/purchases", purchase(member, "ORD-2", now), idem="busy")
        other_process.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"{a.pos.key_id}:busy",))
        created = a.pos.request("POST", "/purchases", json=purchase(member, "ORD-1", now), idem="busy")
    assert created.status_code == 201 and "idempotent-replayed" not in created.headers
    assert points(api, a, member) == 84
