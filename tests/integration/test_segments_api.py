"""Segments, targeted offers, recommendations and NPS surveys over HTTP (issue 8), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def _buy(api: Api, caller, member_id: str, total: str, order: str, lines=None):
    body = {"member_id": member_id, "external_order_id": order, "occurred_at": api.clock.now.isoformat(),
            "total": total, "currency": "EUR"}  # fmt: skip
    if lines:
        body["lines"] = lines
    return caller.post("/purchases", body)


def test_segments_over_http(api: Api):
    a = api.tenant(scopes=("admin", "pos", "read_only"))
    members = [a.pos.post("/members", {"email": f"m{i}@example.com"}) for i in range(4)]
    for i, member in enumerate(members[:3]):
        _buy(api, a.pos, member["id"], f"{10 * (i + 1)}.00", f"O-{i}")
    dynamic = a.admin.post("/segments", {"code": "spenders", "name": {"de": "Kunden", "en": "Buyers"},
                                         "condition": "member.frequency >= 1 && member.m >= 3"})  # fmt: skip
    assert (dynamic["kind"], dynamic["members"]) == ("dynamic", 2)  # 20 and 30 EUR: m = 3 and 4 of 4 members
    page = a.read_only.get("/segments/spenders/members", params={"limit": 1})
    assert page["total"] == 2 and len(page["members"]) == 1
    second = a.read_only.get("/segments/spenders/members", params={"limit": 1, "offset": 1})
    assert {page["members"][0]["member_id"], second["members"][0]["member_id"]} == {members[1]["id"], members[2]["id"]}

    a.admin.post("/segments", {"code": "press", "name": "Press", "kind": "static"})
    csv_text = f"card_number\n{members[0]['card_number']}\n{members[3]['card_number']}\n999\n"
    imported = a.admin.post("/segments/press/members", {"csv": csv_text, "members": ["m1@example.com"]}, status=200)
    assert (imported["members"], imported["added"], imported["unknown"]) == (3, 3, ["999"])
    view = a.read_only.get(f"/members/{members[1]['id']}/segments")
    assert view["segments"] == ["press", "spenders"] and view["facts"]["monetary"] == 2000
    assert [s["code"] for s in a.read_only.get("/segments")] == ["press", "spenders"]

    _buy(api, a.pos, members[0]["id"], "100.00", "O-9")
    refreshed = a.admin.post("/segments/spenders/refresh", {"member_ids": [members[0]["id"]]}, status=200)
    assert (refreshed["members"], refreshed["added"], refreshed["removed"]) == (3, 1, 0)
    assert a.read_only.get("/segments/spenders")["members"] == 3

    api.refused(a.admin, "POST", "/segments/spenders/members", 409, "segment_not_static", a.program_id,
                json={"members": [members[0]["id"]]})  # fmt: skip
    api.refused(a.admin, "POST", "/segments/nope/refresh", 404, "segment_not_found", a.program_id)
    api.refused(a.admin, "POST", "/segments", 409, "segment_exists", a.program_id,
                json={"code": "press", "name": "x", "kind": "static"})  # fmt: skip
    bad = api.refused(a.admin, "POST", "/segments", 422, "rule_invalid", a.program_id,
                      json={"code": "bad", "name": "x", "condition": "member.spend > 1"})  # fmt: skip
    assert "no field 'spend'" in bad["detail"]
    api.refused(a.read_only, "POST", "/segments", 403, "forbidden", a.program_id,
                json={"code": "ro", "name": "x", "kind": "static"})  # fmt: skip


def test_a_targeted_offer_is_seen_activated_and_used_by_its_segment_only(api: Api):
    a = api.tenant(scopes=("admin", "pos", "read_only"))
    vip, other = a.pos.post("/members", {}), a.pos.post("/members", {})
    a.admin.post("/segments", {"code": "vip", "name": "VIP", "kind": "static"})
    a.admin.post("/segments/vip/members", {"members": [vip["id"]]}, status=200)
    offer = a.admin.post("/offers", {"code": "double-march", "kind": "targeted", "segment": "vip",
                                     "name": {"de": "50 Extrapunkte", "en": "50 bonus points"},
                                     "starts": "2026-03-01", "ends": "2026-03-31",
                                     "effects": [{"type": "fixed_points", "points": 50}], "limit_per_member": 1})  # fmt: skip
    assert (offer["kind"], offer["segment"], offer["card_linked"]) == ("targeted", "vip", False)
    assert [o["code"] for o in a.read_only.get(f"/members/{vip['id']}/offers")] == ["double-march"]
    assert a.read_only.get(f"/members/{other['id']}/offers") == []
    api.refused(a.pos, "POST", f"/members/{other['id']}/offers/double-march/activation", 409, "offer_unavailable",
                a.program_id)  # fmt: skip
    api.refused(a.admin, "POST", "/offers", 404, "segment_not_found", a.program_id,
                json={"code": "x", "kind": "targeted", "segment": "nope", "name": "x", "starts": "2026-03-01",
                      "ends": "2026-03-31", "effects": [{"type": "fixed_points", "points": 1}]})  # fmt: skip

    assert _buy(api, a.pos, vip["id"], "10.00", "V-0")["points_earned"] == 10  # not activated yet
    a.pos.post(f"/members/{vip['id']}/offers/double-march/shown", status=200)
    activated = a.pos.post(f"/members/{vip['id']}/offers/double-march/activation")
    assert activated["state"] == "activated"
    api.clock.advance(minutes=1)
    assert _buy(api, a.pos, vip["id"], "10.00", "V-1")["points_earned"] == 60
    assert _buy(api, a.pos, vip["id"], "10.00", "V-2")["points_earned"] == 10  # limit per member: once
    assert _buy(api, a.pos, other["id"], "10.00", "O-1")["points_earned"] == 10
    assert a.read_only.get(f"/members/{vip['id']}/offers")[0]["state"] == "exhausted"
    stats = a.read_only.get("/offers/double-march/stats")
    assert stats | {"status": None} == {
        "offer": "double-march", "kind": "targeted", "segment": "vip", "segment_members": 1, "status": None,
        "shown": 1, "activated": 1, "used": 1, "uses": 1, "activation_rate": "1.0000", "use_rate": "1.0000",
        "reach": "1.0000"}  # fmt: skip
    # Leaving the segment: the offer no longer applies (its campaign's audience asks member.segments).
    a.admin.post("/segments", {"code": "gold", "name": "Gold", "kind": "static"})
    a.admin.post("/offers", {"code": "gold-bonus", "kind": "targeted", "segment": "gold", "name": "Gold",
                             "starts": "2026-03-01", "ends": "2026-03-31", "activation_required": False,
                             "effects": [{"type": "fixed_points", "points": 5}]})  # fmt: skip
    a.admin.post("/segments/gold/members", {"members": [other["id"]]}, status=200)
    assert _buy(api, a.pos, other["id"], "10.00", "O-2")["points_earned"] == 15
    a.admin.post("/segments/gold/members", {"members": [other["id"]], "mode": "remove"}, status=200)
    assert _buy(api, a.pos, other["id"], "10.00", "O-3")["points_earned"] == 10
    # A personal coupon: issued with the first purchase after the activation.
    mug = a.admin.post("/rewards", {"name": {"de": "Tasse"}, "type": "merchandise", "cost_points": 500})
    a.admin.post("/offers", {"code": "mug-coupon", "kind": "targeted", "segment": "vip", "name": "Mug",
                             "starts": "2026-03-01", "ends": "2026-03-31", "limit_per_member": 1,
                             "effects": [{"type": "grant_coupon", "coupon": mug["id"]}]})  # fmt: skip
    a.pos.post(f"/members/{vip['id']}/offers/mug-coupon/activation")
    api.clock.advance(minutes=1)
    _buy(api, a.pos, vip["id"], "10.00", "V-3")
    _buy(api, a.pos, vip["id"], "10.00", "V-4")
    granted = [r for r in a.read_only.get(f"/members/{vip['id']}/redemptions") if r["reward_id"] == mug["id"]]
    assert len(granted) == 1 and granted[0]["status"] == "granted"


def test_a_mission_audience_reads_member_segments(api: Api):
    a = api.tenant(scopes=("admin", "pos"))
    vip, other = a.pos.post("/members", {}), a.pos.post("/members", {})
    a.admin.post("/segments", {"code": "vip", "name": "VIP", "kind": "static"})
    a.admin.post("/segments/vip/members", {"members": [vip["id"]]}, status=200)
    a.admin.post("/missions", {"code": "vip-mission", "name": {"de": "VIP"}, "audience": '"vip" in member.segments',
                               "goal": {"type": "count", "target": 2, "event": "purchase"},
                               "reward": {"points": 5}})  # fmt: skip
    assert [m["code"] for m in a.pos.get(f"/members/{vip['id']}/missions")] == ["vip-mission"]
    assert a.pos.get(f"/members/{other['id']}/missions") == []


def test_nps_worked_example_by_tier_segment_and_channel_agrees_with_the_kpis(api: Api):
    """10 answers: 5 promoters, 3 passives, 2 detractors -> NPS = 50 % - 20 % = 30."""
    a = api.tenant(scopes=("admin", "pos", "read_only"))
    a.admin.ok("PUT", "/tiers", status=200, json={"basis": "spend", "review": "window_end", "tiers": [
        {"code": "basis", "name": {"de": "Basis"}, "threshold": "0", "window": "12M"},
        {"code": "gold", "name": {"de": "Gold"}, "threshold": "100.00", "window": "12M"}]})  # fmt: skip
    a.admin.post("/rules", {"id": "thanks", "trigger": "survey.answered", "effects": [{"type": "fixed_points",
                                                                                      "points": 20}]})  # fmt: skip
    a.admin.post("/surveys", {"code": "nps", "name": {"de": "Zufriedenheit", "en": "Satisfaction"},
                              "repeat": "quarter"})  # fmt: skip
    a.admin.post("/segments", {"code": "app-users", "name": "App", "kind": "static"})
    scores = [10, 9, 9, 10, 9, 7, 8, 7, 3, 6]
    members = [a.pos.post("/members", {}) for _ in scores]
    for member in members[:4]:  # four gold members (spend >= 100 EUR)
        _buy(api, a.pos, member["id"], "150.00", f"G-{member['id']}")
    a.admin.post("/segments/app-users/members", {"members": [m["id"] for m in members[5:]]}, status=200)
    api.clock.advance(minutes=1)
    for i, (member, score) in enumerate(zip(members, scores, strict=True)):
        answer = a.pos.post("/surveys/nps/responses", {"member_id": member["id"], "score": score,
                                                      "channel": "app" if i >= 5 else "email",
                                                      "comment": "super" if score == 10 else None})  # fmt: skip
        assert answer["points"] == 20 and answer["category"] in ("promoter", "passive", "detractor")
    assert a.read_only.get(f"/members/{members[0]['id']}/balance")["points"] == 150 + 20
    api.refused(a.pos, "POST", "/surveys/nps/responses", 409, "survey_answered", a.program_id,
                json={"member_id": members[0]["id"], "score": 1})  # fmt: skip
    api.refused(a.pos, "POST", "/surveys/nps/responses", 422, "validation_error", a.program_id,
                json={"member_id": members[0]["id"], "score": 11})  # fmt: skip

    whole = a.read_only.get("/surveys/nps/nps", params={"from": "2026-03-01", "to": "2026-03-31"})
    assert {k: whole[k] for k in ("responses", "promoters", "passives", "detractors", "nps")} == {
        "responses": 10, "promoters": 5, "passives": 3, "detractors": 2, "nps": 30.0}  # fmt: skip
    by_tier = {g["key"]: (g["responses"], g["nps"]) for g in
               a.read_only.get("/surveys/nps/nps", params={"by": "tier"})["groups"]}  # fmt: skip
    assert by_tier == {"gold": (4, 100.0), "basis": (6, -16.6667)}  # 1 promoter, 3 passives, 2 detractors
    by_segment = {g["key"]: (g["responses"], g["promoters"], g["detractors"], g["nps"]) for g in
                  a.read_only.get("/surveys/nps/nps", params={"by": "segment"})["groups"]}  # fmt: skip
    assert by_segment == {"app-users": (5, 0, 2, -40.0), None: (5, 5, 0, 100.0)}
    by_channel = {g["key"]: g["responses"] for g in
                  a.read_only.get("/surveys/nps/nps", params={"by": "channel"})["groups"]}  # fmt: skip
    assert by_channel == {"app": 5, "email": 5}
    assert a.read_only.get("/surveys/nps/nps", params={"from": "2026-04-01", "to": "2026-04-30"})["nps"] is None
    kpis = a.admin.get("/analytics/kpis", params={"from": "2026-03-01", "to": "2026-03-31"})
    assert (kpis["nps"], kpis["nps_answers"]) == (30.0, 10)  # the same answers, through the survey.answered events
    assert a.read_only.get("/surveys")[0]["responses"] == 10

    api.clock.advance(days=31)  # April: a new quarter, the survey may be answered again
    assert a.pos.post("/surveys/nps/responses", {"member_id": members[0]["id"], "score": 0})["period"] == "2026-Q2"
    api.refused(a.admin, "GET", "/surveys/nps/nps", 422, "validation_error", a.program_id, params={"by": "planet"})
    api.refused(a.admin, "GET", "/surveys/none/nps", 404, "survey_not_found", a.program_id)


def test_recommendations_over_http(api: Api):
    a = api.tenant(scopes=("admin", "pos", "read_only"))
    first, second = a.pos.post("/members", {}), a.pos.post("/members", {})
    pair = [{"sku": "tea", "quantity": 1, "unit_price": "4.00"}, {"sku": "honey", "quantity": 1, "unit_price": "6.00"}]
    _buy(api, a.pos, first["id"], "10.00", "R-1", pair)
    _buy(api, a.pos, second["id"], "4.00", "R-2", pair[:1])
    reward = a.admin.post("/rewards", {"name": {"de": "Tasse"}, "type": "merchandise", "cost_points": 5})
    api.clock.advance(minutes=1)
    assert a.admin.post("/recommendations/refresh", status=200)["pairs"] == 2
    view = a.read_only.get(f"/members/{second['id']}/recommendations", params={"limit": 3})
    assert view["products"] == [{"sku": "honey", "score": 0.707107, "bought_by": 1}]
    assert view["rewards"][0]["reward_id"] == reward["id"] and view["rewards"][0]["affordable"] == "soon"
    api.refused(a.read_only, "GET", "/members/00000000-0000-0000-0000-000000000000/recommendations", 404, None,
                a.program_id)  # fmt: skip
    assert api.verify(a.program_id) == []
