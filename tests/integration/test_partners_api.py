"""Partners and settlements over HTTP: CRUD, what a partner's key may see and do, where points were spent
(redemptions and checkout at a partner), settlement as JSON and CSV, refusals as problem+json."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


ALPHA = {"code": "alpha", "name": "Alpha GmbH", "stores": ["a-1", "a-2"], "channels": ["store", "online"],
         "issue_price": "1.00", "issue_points": 100, "redeem_price": "0.80", "redeem_points": 100}  # fmt: skip


def test_partner_crud_and_refusals(api: Api):
    a = api.tenant(scopes=("admin", "pos", "read_only"))
    created = a.admin.post("/partners", ALPHA)
    assert created == ALPHA | {"currency": "EUR", "billing": "postpaid"}
    assert a.admin.get("/partners/alpha") == created
    changed = a.admin.patch("/partners/alpha", {"redeem_price": "0.85", "billing": "prepaid"})
    assert (changed["redeem_price"], changed["redeem_points"], changed["billing"]) == ("0.85", 100, "prepaid")
    assert [p["code"] for p in a.read_only.get("/partners")] == ["alpha"]
    pid = a.program_id
    api.refused(a.admin, "POST", "/partners", 409, "partner_exists", pid, json=ALPHA)
    api.refused(a.admin, "POST", "/partners", 422, "invalid_input", pid, json={"code": "default", "name": "X"})
    api.refused(a.admin, "POST", "/partners", 422, "invalid_input", pid, json={"code": "Not A Code", "name": "X"})
    api.refused(a.admin, "POST", "/partners", 422, "invalid_input", pid,
                json={"code": "cheap", "name": "X", "issue_price": "0.001"})  # fmt: skip
    api.refused(a.admin, "POST", "/partners", 422, "validation_error", pid,
                json={"code": "floaty", "name": "X", "issue_price": 0.01})  # fmt: skip
    api.refused(a.admin, "POST", "/partners", 422, "validation_error", pid,
                json={"code": "neg", "name": "X", "issue_points": 0})  # fmt: skip
    api.refused(a.admin, "GET", "/partners/nobody", 404, "partner_not_found", pid)
    api.refused(a.admin, "PATCH", "/partners/nobody", 404, "partner_not_found", pid, json={"name": "Y"})
    api.refused(a.pos, "POST", "/partners", 403, "forbidden", pid, json=ALPHA | {"code": "till"})
    api.refused(a.pos, "GET", "/partners", 403, "forbidden", pid)
    german = api.client.get("/api/v1/partners/nobody",
                            headers={"Authorization": f"Bearer {a.admin.token}", "Accept-Language": "de"})  # fmt: skip
    assert german.status_code == 404 and german.json()["title"] == "Partner nicht gefunden"


def test_points_earned_at_one_partner_spent_at_another_and_settled(api: Api):
    a = api.tenant(scopes=("admin", "read_only"))
    a.admin.post("/partners", ALPHA)
    a.admin.post("/partners", {"code": "beta", "name": "Beta", "issue_price": "1.20", "issue_points": 100,
                               "redeem_price": "0.90", "redeem_points": 100, "billing": "prepaid"})  # fmt: skip
    alpha, beta = (api.key(a.program_id, "partner", partner=code) for code in ("alpha", "beta"))
    # A partner's key reads its own terms only, and no settlement.
    assert beta.get("/partners/beta")["code"] == "beta"
    api.refused(beta, "GET", "/partners/alpha", 403, "forbidden", a.program_id)
    api.refused(beta, "GET", "/partners", 403, "forbidden", a.program_id)
    api.refused(beta, "POST", "/settlements", 403, "forbidden", a.program_id, json={"period": "2026-02"})

    member = a.admin.post("/members", {})["id"]
    now = api.clock.now
    earned = alpha.post("/purchases", {"member_id": member, "external_order_id": "A-1", "occurred_at": now.isoformat(),
                                       "total": "100.00", "currency": "EUR"})  # fmt: skip
    assert earned["points_earned"] == 100
    reward = a.admin.post("/rewards", {"name": {"de": "Tasse"}, "type": "merchandise", "cost_points": 30})["id"]
    api.refused(beta, "POST", "/redemptions", 403, "forbidden", a.program_id,
                json={"reward_id": reward, "member_id": member, "partner": "alpha"})  # fmt: skip
    api.refused(a.admin, "POST", "/redemptions", 422, "partner_unknown", a.program_id,
                json={"reward_id": reward, "member_id": member, "partner": "nobody"})  # fmt: skip
    redeemed = beta.post("/redemptions", {"reward_id": reward, "member_id": member})  # at the key's partner
    assert redeemed["partner"] == "beta"
    # Paying with points at beta's till: the hold's partner is where they were spent.
    hold = beta.post("/holds", {"member_id": member, "points": 20, "partner": "beta"})
    beta.post(f"/holds/{hold['id']}/capture", {"external_order_id": "B-1", "total": "10.00", "currency": "EUR",
                                               "partner": "beta"}, status=200)  # fmt: skip

    api.refused(a.admin, "POST", "/settlements", 409, "period_open", a.program_id, json={"period": "2026-03"})
    api.clock.advance(days=31)  # April 2nd
    api.refused(a.admin, "POST", "/settlements", 422, "period_invalid", a.program_id, json={"period": "2026-3"})
    api.refused(a.admin, "GET", "/settlements/2026-02", 404, "settlement_not_found", a.program_id)
    settled = a.admin.post("/settlements", {"period": "2026-03"})
    assert a.admin.post("/settlements", {"period": "2026-03"}, status=200) == settled
    assert a.read_only.get("/settlements/2026-03") == settled
    lines = {line["partner"]: line for line in settled["lines"]}
    assert set(lines) == {"alpha", "beta"}
    assert lines["alpha"]["points_issued"] == 100 and lines["alpha"]["funded_redeemed_at"] == {"beta": 50}
    assert (lines["alpha"]["owed_by_partner"], lines["alpha"]["net"]) == ("1.00", "-1.00")
    assert lines["beta"]["points_issued"] == 10 and lines["beta"]["redeemed_by_funder"] == {"alpha": 50}
    # beta owes 10 x 1.20/100 = 0.12 and is owed 50 x 0.90/100 = 0.45 (floor: 0.45)
    assert (lines["beta"]["owed_by_partner"], lines["beta"]["owed_to_partner"], lines["beta"]["net"]) == (
        "0.12", "0.45", "0.33")  # fmt: skip
    response = a.read_only.request("GET", "/settlements/2026-03", params={"format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "settlement-2026-03.csv" in response.headers["content-disposition"]
    text = response.text.splitlines()
    assert text[0].startswith("period,partner,registered") and len(text) == 3
    assert text[2].startswith("2026-03,beta,true,prepaid,10,0,50,0,0,0.12,0.45,0.33,EUR,alpha:50")


def test_points_a_refund_gives_back_to_a_checkout_payment_count_back_at_the_partner(api: Api):
    a = api.tenant(scopes=("admin",))
    a.admin.post("/partners", {"code": "beta", "name": "Beta", "redeem_price": "1.00", "redeem_points": 100})
    member = a.admin.post("/members", {})["id"]
    a.admin.post("/purchases", {"member_id": member, "external_order_id": "P-1", "total": "100.00",
                                "currency": "EUR", "occurred_at": api.clock.now.isoformat()})  # fmt: skip
    hold = a.admin.post("/holds", {"member_id": member, "points": 20, "partner": "beta"})
    captured = a.admin.post(f"/holds/{hold['id']}/capture", {"external_order_id": "B-1", "total": "10.00",
                                                             "currency": "EUR", "partner": "beta"}, status=200)  # fmt: skip
    refund = a.admin.post(f"/purchases/{captured['purchase_id']}/refunds", {"amount": "10.00"})
    assert refund["points_returned"] == 20
    api.clock.advance(days=31)
    lines = {line["partner"]: line for line in a.admin.post("/settlements", {"period": "2026-03"})["lines"]}
    beta = lines["beta"]
    # 20 paid with points at beta and given back by the refund; the 10 the purchase earned at beta taken back.
    assert (beta["points_redeemed_at"], beta["points_issued"], beta["points_taken_back"]) == (0, 10, 10)
    assert (beta["redeemed_by_funder"], beta["owed_to_partner"], beta["net"]) == ({}, "0.00", "0.00")
    assert lines["default"]["points_issued"] == 100 and lines["default"]["funded_redeemed_at"] == {}
