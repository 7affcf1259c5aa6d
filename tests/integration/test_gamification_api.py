"""Gamification over HTTP: definitions, a member's progress and opt-in, the purchase response carrying mission
progress and the instant-win result, badges on the profile, leaderboards, and the problems bad input gets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api
from treue.services import gamification as g


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


MISSION = {"code": "may-3x", "name": {"de": "Drei Einkäufe", "en": "Three purchases"},
           "goal": {"type": "count", "target": 2, "event": "purchase", "filter": "purchase.total >= 1000"},
           "window": {"type": "month"}, "opt_in": True, "reward": {"points": 200, "badge": "hero"}}  # fmt: skip


def test_missions_badges_instant_wins_and_leaderboards_over_the_api(api: Api, now, monkeypatch):
    a = api.tenant(scopes=("admin", "pos", "read_only"))
    assert a.admin.post("/badges", {"code": "hero", "name": {"de": "Held", "en": "Hero"},
                                    "image_url": "https://cdn.example/hero.png", "rare_below_percent": "10"})["code"] == "hero"  # fmt: skip
    created = a.admin.post("/missions", MISSION)
    assert created["goal"]["filter"] == "purchase.total >= 1000" and created["active"] is True
    assert [m["code"] for m in a.read_only.get("/missions")] == ["may-3x"]
    a.admin.post("/instant-wins", {"code": "spin", "name": {"de": "Dreh"}, "event": "purchase",
                                   "prizes": [{"code": "p", "probability": "100", "points": 7, "total": 1}]})  # fmt: skip
    member = a.pos.post("/members", {"first_name": "Anna", "last_name": "Meier", "email": "anna@x.example"})
    mid = member["id"]
    listed = a.read_only.get(f"/members/{mid}/missions", params={"locale": "en"})
    assert listed[0]["opt_in_required"] is True and listed[0]["opted_in"] is False
    joined = a.pos.post(f"/members/{mid}/missions/may-3x/opt-in", status=200)
    assert joined["opted_in"] is True and joined["label"].startswith("0 von 2")  # the member's locale (de)

    monkeypatch.setattr(g, "chooser", lambda n: 0)
    body = {"member_id": mid, "occurred_at": now.isoformat(), "total": "20.00", "currency": "EUR"}
    first = a.pos.post("/purchases", body | {"external_order_id": "O-1"})
    assert first["missions"][0]["current"] == 1 and first["instant_win"]["outcome"] == "won"
    assert first["instant_win"]["prize"] == {"code": "p", "kind": "points", "points": 7, "coupon": None, "badge": None}
    second = a.pos.post("/purchases", body | {"external_order_id": "O-2"})
    assert second["missions"][0]["completed_now"] is True
    assert second["instant_win"]["not_given"] == {"prize": "p", "reason": "prize_exhausted"}
    assert a.read_only.get(f"/members/{mid}/balance")["points"] == 40 + 7 + 200
    badges = a.read_only.get(f"/members/{mid}/badges")
    assert [(b["code"], b["source"]["mission"]) for b in badges] == [("hero", "may-3x")]
    assert a.admin.post(f"/members/{mid}/badges", {"badge": "hero"})["awarded"] is False
    draws = a.admin.get("/instant-wins/spin/draws")
    assert [d["outcome"] for d in draws] == ["won", "no_win"] or [d["outcome"] for d in draws] == ["no_win", "won"]
    assert a.read_only.get("/instant-wins/spin")["draws"] == {"won": 1, "no_win": 1}

    consent = a.pos.post(f"/members/{mid}/leaderboard-consent", {"consented": True}, status=200)
    assert consent["display_name"] == "Anna M."
    board = a.read_only.get("/leaderboards/missions/may-3x")
    assert board["entries"] == [{"rank": 1, "display_name": "Anna M.", "value": 2}]
    points = a.read_only.get("/leaderboards/points", params={"period": "week"})
    assert points["entries"][0]["value"] == 247 and "anna@x.example" not in str(points)

    refund = a.pos.post(f"/purchases/{first['id']}/refunds", {})
    assert refund["gamification_reversed"][0]["points_taken_back"] == 200
    assert a.read_only.get(f"/members/{mid}/missions")[0]["current"] == 1


def test_problems(api: Api):
    a = api.tenant(scopes=("admin", "pos"))
    bad = a.admin.request("POST", "/missions", json=MISSION | {"goal": {"target": 2, "event": "purchase",
                                                                         "filter": "purchase.nope > 1"}})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["code"] == "gamification_invalid"
    assert a.admin.request("POST", "/missions", json=MISSION).json()["code"] == "badge_not_found"
    assert a.admin.request("GET", "/missions/none").json()["code"] == "mission_not_found"
    a.admin.post("/badges", {"code": "hero", "name": {"en": "Hero"}})
    assert a.admin.request("POST", "/badges", json={"code": "hero", "name": {"en": "Hero"}}).status_code == 409
    a.admin.post("/missions", MISSION | {"ends": "2026-03-01"})
    member = a.pos.post("/members", {})
    ended = a.pos.request("POST", f"/members/{member['id']}/missions/may-3x/opt-in")
    assert ended.status_code == 409 and ended.json()["code"] == "mission_not_open"
    assert a.pos.request("POST", "/missions", json=MISSION).status_code == 403
    german = a.admin.client.request("GET", "/api/v1/missions/none", headers={
        "Authorization": f"Bearer {a.admin.token}", "Accept-Language": "de"})  # fmt: skip
    assert german.json()["title"] == "Mission nicht gefunden"
