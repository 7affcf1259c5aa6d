"""Referrals and moderation over HTTP: settings, enrolment with a code, completion in the purchase response,
statistics, the member's code and link, moderation decisions and their problems."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def test_referral_flow_over_the_api(api: Api, now, monkeypatch):
    monkeypatch.setenv("TREUE_PUBLIC_URL", "https://loyal.example")
    a = api.tenant()
    assert a.admin.get("/referrals/settings")["configured"] is False
    settings = a.admin.ok("PUT", "/referrals/settings", status=200,
                          json={"condition": "purchase.total >= 3000", "window_days": 60, "velocity_limit": None})  # fmt: skip
    assert settings["configured"] and settings["velocity_limit"] is None and settings["window_days"] == 60
    api.refused(a.pos, "PUT", "/referrals/settings", 403, "forbidden", a.program_id, json={"window_days": 5})
    api.refused(a.admin, "PUT", "/referrals/settings", 422, "rule_invalid", a.program_id,
                json={"condition": "purchase.totl > 1"})  # fmt: skip
    for rule_id, role, points in (("ref-a", "referrer", 300), ("ref-b", "referee", 100)):
        a.admin.post("/rules", {"id": rule_id, "trigger": "referral.completed",
                                "condition": f'event.attributes.role == "{role}"',
                                "effects": [{"type": "fixed_points", "points": points, "pending": "0D"}]})  # fmt: skip

    alice = a.pos.post("/members", {"email": "alice@example.com"})
    mine = a.pos.get(f"/members/{alice['id']}/referrals")
    assert mine["link"] == f"https://loyal.example/r/{mine['code']}" and mine["sent"] == 0
    bob = a.pos.post("/members", {"email": "bob@example.com", "referral_code": mine["code"].lower(),
                                  "device_id": "d-1", "ip": "198.51.100.7"})  # fmt: skip
    assert bob["referral"]["status"] == "pending"
    me_again = a.pos.post("/members", {"email": "alice@example.com", "referral_code": mine["code"]})
    assert me_again["referral"]["status"] == "rejected" and me_again["referral"]["reason"] == "self_referral"

    bought = a.pos.post("/purchases", {"member_id": bob["id"], "external_order_id": "R-1", "total": "42.00",
                                       "currency": "EUR", "occurred_at": now.isoformat()})  # fmt: skip
    assert bought["referral"]["status"] == "completed"
    assert bought["referral"]["rewards"]["referrer"]["points"] == 300
    assert a.pos.get(f"/members/{alice['id']}/balance")["points"] == 300

    stats = a.pos.get("/referrals/stats")
    assert (stats["sent"], stats["completed"], stats["rejected_by_reason"]) == (2, 1, {"self_referral": 1})
    assert stats["reward_points"] == 400
    assert a.pos.get(f"/members/{alice['id']}/referrals")["reward_points"] == 300
    listed = a.pos.get("/referrals", params={"status": "completed"})
    assert [r["referee_id"] for r in listed] == [bob["id"]]
    assert a.pos.get(f"/referrals/{listed[0]['id']}")["status"] == "completed"
    assert a.pos.request("GET", "/referrals", params={"status": "weird"}).status_code == 422

    rotated = a.pos.post(f"/members/{alice['id']}/referral-code")
    assert rotated["code"] != mine["code"]
    late = a.pos.post("/members", {"referral_code": mine["code"]})
    assert late["referral"]["reason"] == "code_expired"
    refund = a.pos.post(f"/purchases/{bought['id']}/refunds", {})
    assert refund["referral"]["status"] == "reversed"
    assert a.pos.get(f"/members/{alice['id']}/balance")["points"] == 0
    assert api.verify(a.program_id) == []


def test_moderation_over_the_api(api: Api, now):
    a = api.tenant()
    a.admin.post("/rules", {"id": "review", "trigger": "review.created",
                            "effects": [{"type": "fixed_points", "points": 50, "pending": "0D"}]})  # fmt: skip
    member = a.pos.post("/members", {})
    held = a.pos.post("/events", {"name": "review.created", "member_id": member["id"], "moderation": "pending",
                                  "attributes": {"product": "SOFA", "stars": 5}})  # fmt: skip
    assert held["moderation"] == "pending" and held["points"] == 50
    balance = a.pos.get(f"/members/{member['id']}/balance")
    assert (balance["available"], balance["pending"]) == (0, 50)
    assert [m["event_id"] for m in a.pos.get("/moderations")] == [held["id"]]
    api.refused(a.admin, "POST", f"/events/{held['id']}/moderation", 422, "validation_error", a.program_id,
                json={"decision": "maybe"})  # fmt: skip
    api.refused(a.admin, "POST", "/events", 422, "validation_error", a.program_id,
                json={"name": "review.created", "member_id": member["id"], "moderation": "later"})  # fmt: skip
    done = a.admin.post(f"/events/{held['id']}/moderation", {"decision": "approve"}, status=200)
    assert done["status"] == "approved"
    assert a.pos.get(f"/members/{member['id']}/balance")["available"] == 50
    api.refused(a.admin, "POST", f"/events/{held['id']}/moderation", 409, "moderation_decided", a.program_id,
                json={"decision": "reject"})  # fmt: skip
    plain = a.pos.post("/events", {"name": "review.created", "member_id": member["id"]})
    api.refused(a.admin, "POST", f"/events/{plain['id']}/moderation", 409, "event_not_moderated", a.program_id,
                json={"decision": "reject"})  # fmt: skip
    second = a.pos.post("/events", {"name": "review.created", "member_id": member["id"], "moderation": "pending"})
    voided = a.admin.post(f"/events/{second['id']}/moderation", {"decision": "reject", "note": "spam"}, status=200)
    assert voided["status"] == "rejected" and voided["points_voided"] == 50
    assert a.pos.get(f"/members/{member['id']}/balance")["points"] == 100
    assert api.verify(a.program_id) == []
