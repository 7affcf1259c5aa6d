"""Request limits (rates per API key and per member, body size), security headers, readiness and metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api, assert_problem
from treue.api.limits import Limits, RateLimiter
from treue.logs import JsonFormatter
from treue.store.database import make_engine
from treue.store.migrate import migrate, pending_migrations


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def limited(api: Api, ticks: Ticks, *, per_key: int = 0, per_member: int = 0, body: int = 1 << 20) -> None:
    api.app.state.limits = Limits(RateLimiter(per_key, ticks), RateLimiter(per_member, ticks), body, 1 << 22)


def test_a_key_over_its_rate_is_refused_with_retry_after_and_others_are_not(api):
    a, b = api.tenant("A", scopes=("admin",)), api.tenant("B", scopes=("admin",))
    ticks = Ticks()
    limited(api, ticks, per_key=120)  # two a second, a burst of 120
    for _ in range(120):
        assert a.admin.request("GET", "/program").status_code == 200
    refused = a.admin.request("GET", "/program")
    assert refused.status_code == 429 and assert_problem(refused)["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "1"  # one request comes back every half second
    assert b.admin.request("GET", "/program").status_code == 200  # B's key has its own allowance
    ticks.now += 0.5
    assert a.admin.request("GET", "/program").status_code == 200
    assert a.admin.request("GET", "/program").status_code == 429


def test_a_member_over_their_rate_is_refused_whichever_key_asks(api):
    shop = api.tenant("Shop", scopes=("admin", "pos"))
    anna, ben = shop.pos.post("/members", {})["id"], shop.pos.post("/members", {})["id"]
    ticks = Ticks()
    limited(api, ticks, per_member=3)
    for caller in (shop.pos, shop.admin, shop.pos):
        assert caller.request("GET", f"/members/{anna}/balance").status_code == 200
    refused = shop.admin.request("GET", f"/members/{anna}/balance")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 20  # 3 a minute: one per 20 s
    assert shop.pos.request("GET", f"/members/{ben}/balance").status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read_and_changes_nothing(api):
    shop = api.tenant("Shop", scopes=("pos",))
    limited(api, Ticks(), body=1_000)
    big = {"external_ref": "x" * 2_000}
    sized = shop.pos.request("POST", "/members", json=big)
    assert sized.status_code == 413 and assert_problem(sized)["code"] == "payload_too_large"
    chunks = [json.dumps(big).encode()[i : i + 100] for i in range(0, 2_100, 100)]
    streamed = api.client.post("/api/v1/members", content=iter(chunks),
                               headers={"Authorization": f"Bearer {shop.pos.token}", "Content-Type": "application/json"})  # fmt: skip
    assert streamed.status_code == 413 and assert_problem(streamed)["code"] == "payload_too_large"
    assert shop.pos.request("GET", "/members", params={"external_ref": "x" * 2_000}).json() == []
    assert shop.pos.request("POST", "/members", json={"external_ref": "small"}).status_code == 201


def test_security_headers_readiness_and_metrics(api, now):
    shop = api.tenant("Shop", scopes=("pos",))
    member = shop.pos.post("/members", {})
    shop.pos.post("/purchases", {"member_id": member["id"], "external_order_id": "M-1", "total": "10.00",
                                 "currency": "EUR", "occurred_at": now.isoformat()})  # fmt: skip
    health = api.client.get("/healthz")
    assert health.headers["x-content-type-options"] == "nosniff" and health.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in health.headers  # JSON needs none
    page = api.client.get("/admin/sign-in")
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    scraped = api.client.get("/metrics").text
    assert 'treue_http_requests_total{method="POST",route="/api/v1/purchases",status="201"}' in scraped
    assert 'treue_domain_events_total{event="purchase.recorded"}' in scraped
    assert "treue_outbox_pending " in scraped and "treue_outbox_lag_seconds " in scraped
    assert 'route="/api/v1/members/{member_id}' not in scraped or "{member_id}" in scraped  # templates, not ids
    assert member["id"] not in scraped


def test_readiness_names_the_migrations_a_database_lacks(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0016")
    pending = pending_migrations(engine)
    assert pending[0] == "0017" and pending == sorted(pending)  # from the next one to the head, in order
    migrate(engine, "0017")
    assert pending_migrations(engine) == pending[1:]
    migrate(engine)
    assert pending_migrations(engine) == []
    engine.dispose()


def test_rate_limiter_refills_continuously_and_is_off_at_zero():
    ticks = Ticks()
    limiter = RateLimiter(60, ticks)  # one a second
    assert all(limiter.take("k") is None for _ in range(60))
    assert limiter.take("k") == pytest.approx(1.0)
    ticks.now += 0.25
    assert limiter.take("k") == pytest.approx(0.75)
    ticks.now += 0.75
    assert limiter.take("k") is None
    off = RateLimiter(0, ticks)
    assert all(off.take("k") is None for _ in range(1_000))


def test_settings_from_the_environment_are_checked():
    limits = Limits.from_environment({"TREUE_RATE_LIMIT_KEY": "100", "TREUE_MAX_BODY_BYTES": "2048"})
    assert (limits.per_key.per_minute, limits.per_member.per_minute, limits.max_body) == (100, 600, 2048)
    with pytest.raises(ValueError, match="TREUE_RATE_LIMIT_MEMBER"):
        Limits.from_environment({"TREUE_RATE_LIMIT_MEMBER": "lots"})


def test_json_log_lines():
    record = logging.LogRecord("treue.test", logging.ERROR, __file__, 1, "failed %s", ("job",), None)
    record.program_id = "p-1"
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"], line["program_id"]) == ("error", "treue.test",
                                                                                    "failed job", "p-1")  # fmt: skip
    assert line["time"].endswith("+00:00")
