"""Checkout and wallet through HTTP: the till's flow, and every refusal a problem that changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def test_till_flow_and_refusals(api: Api, now):
    shop = api.tenant("Möbel", min_redemption_points=100)
    shop.admin.post("/rules", {"id": "cashback", "trigger": "purchase",
                               "effects": [{"type": "cashback_percent", "percent": "10"}]})  # fmt: skip
    member = shop.pos.post("/members", {"external_ref": "m-1"})
    path = f"/members/{member['id']}"
    shop.admin.post(f"{path}/adjustments", {"points": 800, "reason": "start"})
    shop.pos.post("/purchases", {"member_id": member["id"], "external_order_id": "o-1", "occurred_at": now.isoformat(),
                                 "total": "30.00", "currency": "EUR"})  # fmt: skip
    wallet = shop.read_only.get(f"{path}/wallet")
    assert (wallet["balance"], wallet["usable"]) == ("3.00", "3.00")

    preview = shop.pos.post("/checkout/preview", {"member_id": member["id"], "total": "20.00", "currency": "EUR"},
                            status=200)  # fmt: skip
    assert (preview["earn"]["points"], preview["points"]["usable"], preview["points"]["max_payable"]) == (20, 830, 830)

    hold = shop.pos.post("/holds", {"member_id": member["id"], "points": 500, "wallet_amount": "3.00"})
    hold_path = f"/holds/{hold['id']}"
    pid = shop.program_id
    api.refused(
        shop.pos, "POST", "/holds", 422, "insufficient_points", pid, json={"member_id": member["id"], "points": 331}
    )
    api.refused(
        shop.pos,
        "POST",
        "/holds",
        422,
        "insufficient_wallet",
        pid,
        json={"member_id": member["id"], "wallet_amount": "0.01"},
    )
    api.refused(
        shop.pos, "POST", "/holds", 422, "below_minimum_redemption", pid, json={"member_id": member["id"], "points": 99}
    )
    api.refused(
        shop.pos,
        "POST",
        "/holds",
        422,
        "currency_mismatch",
        pid,
        json={"member_id": member["id"], "points": 100, "currency": "USD"},
    )
    api.refused(
        shop.pos, "POST", "/holds", 422, "validation_error", pid, json={"member_id": member["id"], "wallet_amount": 1.5}
    )  # never a float
    capture = {"external_order_id": "o-2", "total": "40.00", "currency": "EUR"}
    api.refused(shop.pos, "POST", f"{hold_path}/capture", 422, "hold_exceeded", pid, json=capture | {"points": 501})
    api.refused(
        shop.pos, "POST", f"{hold_path}/capture", 422, "payment_exceeds_total", pid, json=capture | {"total": "7.99"}
    )
    api.refused(
        shop.pos, "POST", f"{hold_path}/capture", 422, "currency_mismatch", pid, json=capture | {"currency": "USD"}
    )

    done = shop.pos.post(f"{hold_path}/capture", capture, status=200)
    assert (done["state"], done["paid"]["money"], done["purchase"]["points_earned"]) == ("captured", "32.00", 40)
    body = api.refused(
        shop.pos,
        "POST",
        f"{hold_path}/capture",
        409,
        "hold_not_active",
        pid,
        json=capture | {"external_order_id": "o-3"},
    )
    assert body["reason"] == "captured"
    assert shop.read_only.get(hold_path)["state"] == "captured"
    assert shop.read_only.get(f"{path}/wallet")["balance"] == "4.00"  # 3.00 - 3.00 + 10% of 40.00
    history = shop.read_only.get(f"{path}/wallet/history")
    assert [e["kind"] for e in history] == ["cashback", "pay", "cashback"]
    assert [h["id"] for h in shop.read_only.get(f"{path}/holds")] == [hold["id"]]

    abandoned = shop.pos.post("/holds", {"member_id": member["id"], "points": 100, "expires_in_minutes": 1})
    api.clock.advance(minutes=2)
    assert shop.read_only.get(f"/holds/{abandoned['id']}")["state"] == "expired"
    api.refused(
        shop.pos,
        "POST",
        f"/holds/{abandoned['id']}/capture",
        409,
        "hold_not_active",
        pid,
        json=capture | {"external_order_id": "o-4"},
    )
    assert shop.pos.post(f"/holds/{abandoned['id']}/release", status=200)["state"] == "released"
    assert api.verify(pid) == []
