"""Tiers over HTTP: the ladder, a member's progress, manual assignment, and the problems bad input gets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api
from tests.integration.test_tiers import FURNITURE


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def test_ladder_progress_and_assignment_over_the_api(api: Api, now):
    a = api.tenant(scopes=("admin", "pos", "read_only"))
    assert a.read_only.get("/tiers")["tiers"] == []
    ladder = a.admin.ok("PUT", "/tiers", json=FURNITURE)
    assert [t["code"] for t in ladder["tiers"]] == ["basis", "bronze", "silber", "gold"]
    assert ladder["tiers"][1]["threshold"] == "500.00" and ladder["currency"] == "EUR"
    assert a.read_only.get("/tiers") == ladder

    member = a.pos.post("/members", {})
    a.pos.post("/purchases", {"member_id": member["id"], "external_order_id": "T-1", "occurred_at": now.isoformat(),
                              "total": "700.00", "currency": "EUR"})  # fmt: skip
    view = a.read_only.get(f"/members/{member['id']}/tier")
    assert view["tier"]["code"] == "bronze" and view["tier"]["name"] == {"de": "Bronze", "en": "Bronze"}
    assert (view["basis"], view["amount"], view["needed"], view["currency"]) == ("spend", "700.00", "1300.00", "EUR")
    assert view["next_tier"]["code"] == "silber" and view["secured_until"] == "2026-09-02T09:00:00Z"
    assert view["review"]["downgrade_to"] == "basis"

    assigned = a.admin.post(f"/members/{member['id']}/tier/assignment",
                            {"tier": "gold", "until": "2026-12-31T23:00:00Z", "reason": "VIP"}, status=200)  # fmt: skip
    assert assigned["tier"]["code"] == "gold" and assigned["perks"] == ["free_shipping"]
    assert assigned["manual"] == {"tier": "gold", "until": "2026-12-31T23:00:00Z", "reason": "VIP"}
    removed = a.admin.ok("DELETE", f"/members/{member['id']}/tier/assignment", params={"reason": "done"})
    assert removed["tier"]["code"] == "bronze" and removed["manual"] is None


def test_bad_input_gets_problems_and_changes_nothing(api: Api):
    a = api.tenant(scopes=("admin", "pos", "read_only"))
    member = a.pos.post("/members", {})
    api.refused(a.admin, "POST", f"/members/{member['id']}/tier/assignment", 422, "no_tier_ladder", a.program_id,
                json={"tier": "gold"})  # fmt: skip
    api.refused(a.admin, "PUT", "/tiers", 422, "invalid_input", a.program_id, json=FURNITURE | {"tiers": [
        FURNITURE["tiers"][0], FURNITURE["tiers"][2], FURNITURE["tiers"][1]]})  # fmt: skip
    api.refused(a.admin, "PUT", "/tiers", 422, "validation_error", a.program_id, json=FURNITURE | {"basis": "x"})
    api.refused(a.pos, "PUT", "/tiers", 403, "forbidden", a.program_id, json=FURNITURE)
    a.admin.ok("PUT", "/tiers", json=FURNITURE)
    problem = api.refused(a.admin, "POST", f"/members/{member['id']}/tier/assignment", 422, "tier_unknown",
                          a.program_id, json={"tier": "platin"}, )  # fmt: skip
    assert "platin" in problem["detail"]
    api.refused(a.admin, "POST", "/members/00000000-0000-0000-0000-000000000001/tier/assignment", 404, "not_found",
                a.program_id, json={"tier": "gold"})  # fmt: skip
    api.refused(a.admin, "DELETE", f"/members/{member['id']}/tier/assignment", 422, "invalid_input", a.program_id)
    api.refused(a.read_only, "GET", "/members/00000000-0000-0000-0000-000000000001/tier", 404, "not_found",
                a.program_id)  # fmt: skip
    a.admin.post(f"/members/{member['id']}/tier/assignment", {"tier": "gold"}, status=200)
    body = api.refused(a.admin, "PUT", "/tiers", 409, "tier_in_use", a.program_id,
                       json=FURNITURE | {"tiers": FURNITURE["tiers"][:3]})  # fmt: skip
    assert body["tiers"] == ["gold"]
