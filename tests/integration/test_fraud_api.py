"""The fraud controls over HTTP (issue 10): settings, a held purchase approved, a redemption refused with 429
problem+json, alerts acknowledged; device ids and client IPs reach the caps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api
from treue.api.fraud_origin import client_ip


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def test_caps_over_http(api: Api, now):
    a = api.tenant("F", scopes=("admin", "pos", "read_only"))
    assert a.admin.get("/fraud/settings")["configured"] is False
    a.read_only.ok("GET", "/fraud/held", status=403)  # reviewing fraud is an admin's job
    settings = a.admin.ok("PUT", "/fraud/settings", status=200, json={"caps": [
        {"action": "earn", "subject": "device", "window": "hour", "max_count": 1},
        {"action": "redeem", "subject": "member", "window": "day", "max_points": 15}]})  # fmt: skip
    assert settings["configured"] and settings["alerts"]["cap_hits"] == 3
    bad = a.admin.request("PUT", "/fraud/settings", json={"caps": [{"action": "earn", "subject": "member",
                                                                    "window": "day"}]})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"

    member = a.pos.post("/members", {"external_ref": "fraud-1"})["id"]
    body = {"member_id": member, "total": "40.00", "currency": "EUR", "occurred_at": now.isoformat(),
            "device_id": "phone-9"}  # fmt: skip
    first = a.pos.post("/purchases", body | {"external_order_id": "F-1"})
    assert "fraud_hold" not in first
    second = a.pos.post("/purchases", body | {"external_order_id": "F-2"})
    assert second["fraud_hold"]["reasons"][0]["cap"] == "earn:device:hour"
    held = a.admin.get("/fraud/held")
    assert [(h["purchase_id"], h["points"]) for h in held] == [(second["id"], 40)]
    assert a.pos.get(f"/members/{member}/balance")["available"] == 40
    approved = a.admin.post(f"/fraud/held/{held[0]['id']}/approve", {"reason": "regular"}, status=200)
    assert approved["status"] == "approved"
    again = a.admin.request("POST", f"/fraud/held/{held[0]['id']}/reject", json={"reason": "late"})
    assert again.status_code == 409 and again.json()["code"] == "fraud_hold_decided"
    assert a.pos.get(f"/members/{member}/balance")["available"] == 80

    reward = a.admin.post("/rewards", {"name": {"de": "Kaffee"}, "type": "free_product", "cost_points": 10})
    a.pos.post("/redemptions", {"reward_id": reward["id"], "member_id": member, "device_id": "phone-9"})
    refused = api.client.post("/api/v1/redemptions", json={"reward_id": reward["id"], "member_id": member},
                              headers={"Authorization": f"Bearer {a.pos.token}", "Accept-Language": "de"})  # fmt: skip
    assert refused.status_code == 429
    problem = refused.json()
    assert problem["code"] == "velocity_cap_exceeded" and problem["retry_after"] > 0
    assert problem["title"].startswith("Ein Häufigkeitslimit")
    assert problem["caps"][0]["cap"] == "redeem:member:day" and problem["caps"][0]["points"] == 20
    assert a.pos.get(f"/members/{member}/balance")["points"] == 70
    assert api.verify(a.program_id) == []


def test_client_ip_believes_forwarded_for_only_from_trusted_proxies():
    assert client_ip("198.51.100.7", "203.0.113.1", None) == "198.51.100.7"  # no proxies configured
    assert client_ip("10.0.0.5", "203.0.113.1", "10.0.0.0/8") == "203.0.113.1"
    # the left-most entry is whatever the client claimed; the right-most untrusted hop is the client
    assert client_ip("10.0.0.5", "1.2.3.4, 203.0.113.1, 10.0.0.9", "10.0.0.0/8") == "203.0.113.1"
    assert client_ip("198.51.100.7", "203.0.113.1", "10.0.0.0/8") == "198.51.100.7"  # peer is not a proxy
    assert client_ip("10.0.0.5", "not-an-ip", "10.0.0.0/8") == "10.0.0.5"
    assert client_ip("10.0.0.5", "10.0.0.6", "10.0.0.0/8") == "10.0.0.5"  # only proxies: the peer
