"""The club over HTTP: plans, joining, payments from the provider, cancelling, and the problems bad input gets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


PLAN = {"code": "plus", "name": {"de": "Plus", "en": "Plus"}, "price": "9.90", "interval": "month", "trial_days": 14,
        "benefits": {"earn_multiplier": "2", "cashback_percent": "1.5", "perks": ["free_shipping"]},
        "bonus_points": 100}  # fmt: skip


def test_join_pay_cancel_over_the_api_with_time_travel(api: Api):
    a = api.tenant(scopes=("admin", "shop", "read_only"))
    plan = a.admin.post("/club/plans", PLAN)
    assert (plan["price"], plan["currency"], plan["benefits"]["cashback_percent"]) == ("9.90", "EUR", "1.5")
    assert [p["code"] for p in a.read_only.get("/club/plans")] == ["plus"]
    member = a.shop.post("/members", {})
    assert a.read_only.get(f"/members/{member['id']}/club") == {"member_id": member["id"], "subscription": None,
                                                                 "benefits": None, "earlier": []}  # fmt: skip

    joined = a.shop.post("/club/subscriptions", {"plan": "plus", "card_number": member["card_number"]})
    assert joined["status"] == "trialing" and joined["current_period"]["kind"] == "trial"
    view = a.read_only.get(f"/members/{member['id']}/club")
    assert view["benefits"]["perks"] == ["free_shipping"] and view["benefits"]["earn_multiplier"] == "2"

    api.clock.advance(days=15)  # the trial is over, nothing was paid
    assert a.read_only.get(f"/members/{member['id']}/club")["subscription"]["status"] == "past_due"
    body = {"provider_reference": "pi_123", "amount": "9.90", "currency": "EUR", "plan": "plus",
            "subscription_id": joined["id"]}  # fmt: skip
    paid = a.shop.post(f"/members/{member['id']}/club/payments", body, idem="pay-1")
    assert paid["status"] == "succeeded" and paid["period"]["index"] == 0
    replay = a.shop.request("POST", f"/members/{member['id']}/club/payments", json=body, idem="pay-1")
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == paid
    # The provider reports the same payment again without the key: the reference makes it idempotent.
    with api.unchanged(a.program_id):
        assert a.shop.post(f"/members/{member['id']}/club/payments", body, status=201) == paid
    assert a.read_only.get(f"/members/{member['id']}/club")["subscription"]["status"] == "active"

    cancelled = a.shop.post(f"/members/{member['id']}/club/cancel", {"reason": "moving"}, status=200)
    assert cancelled["status"] == "active" and cancelled["cancel_at"] == paid["period"]["end"]
    api.refused(a.shop, "POST", f"/members/{member['id']}/club/cancel", 409, "already_cancelled", a.program_id,
                json={})  # fmt: skip
    assert a.shop.post(f"/members/{member['id']}/club/cancel", {"at_period_end": False}, status=200)["status"] == (
        "cancelled"
    )
    assert a.read_only.get(f"/members/{member['id']}/club")["benefits"] is None
    assert api.verify(a.program_id) == []


def test_bad_club_requests_get_problems_in_german_and_english_and_change_nothing(api: Api):
    a = api.tenant(scopes=("admin", "shop", "read_only"))
    a.callers["partner"] = api.key(a.program_id, "partner", partner="acme")
    a.admin.post("/club/plans", PLAN | {"trial_days": 0})
    member = a.shop.post("/members", {})
    other = a.shop.post("/members", {})
    first = {"provider_reference": "pi_first", "amount": "9.90", "currency": "EUR"}
    a.shop.post("/club/subscriptions", {"plan": "plus", "member_id": member["id"], "payment": first})
    pid, mid = a.program_id, member["id"]
    payments = f"/members/{mid}/club/payments"

    api.refused(a.admin, "POST", "/club/plans", 422, "validation_error", pid, json=PLAN | {"price": 9.9})
    api.refused(a.admin, "POST", "/club/plans", 409, "club_plan_exists", pid, json=PLAN)
    api.refused(a.admin, "POST", "/club/plans", 422, "invalid_input", pid,
                json=PLAN | {"code": "x", "benefits": {"earn_multiplier": "0.5"}})  # fmt: skip
    api.refused(a.admin, "PATCH", "/club/plans/plus", 422, "validation_error", pid, json={"trial_days": 400})
    api.refused(a.admin, "PATCH", "/club/plans/plus", 422, "invalid_input", pid, json={"name": {"fr": "Plus"}})
    api.refused(a.admin, "PATCH", "/club/plans/gold", 404, "not_found", pid, json={"active": False})
    api.refused(a.shop, "POST", "/club/subscriptions", 404, "not_found", pid, json={"plan": "gold", "member_id": mid})
    api.refused(a.shop, "POST", "/club/subscriptions", 422, "club_payment_required", pid,
                json={"plan": "plus", "member_id": other["id"]})  # fmt: skip
    api.refused(a.shop, "POST", "/club/subscriptions", 409, "club_already_subscribed", pid,
                json={"plan": "plus", "member_id": mid})  # fmt: skip
    german = api.client.post("/api/v1/club/subscriptions", json={"plan": "plus", "member_id": mid},
                             headers={"Authorization": f"Bearer {a.shop.token}", "Accept-Language": "de-DE"})  # fmt: skip
    assert german.status_code == 409 and german.json()["title"] == "Das Mitglied ist bereits im Club"
    api.refused(a.shop, "POST", payments, 404, "not_found", pid,
                json={"provider_reference": "p1", "amount": "9.90", "currency": "EUR", "plan": "gold"})  # fmt: skip
    api.refused(a.shop, "POST", payments, 404, "not_found", pid,
                json={"provider_reference": "p2", "amount": "9.90", "currency": "EUR",
                      "subscription_id": "00000000-0000-0000-0000-000000000001"})  # fmt: skip
    api.refused(a.shop, "POST", f"/members/{other['id']}/club/payments", 404, "not_found", pid,
                json={"provider_reference": "p3", "amount": "9.90", "currency": "EUR"})  # fmt: skip
    api.refused(a.shop, "POST", payments, 422, "currency_mismatch", pid,
                json={"provider_reference": "p4", "amount": "9.90", "currency": "USD"})  # fmt: skip
    problem = api.refused(a.shop, "POST", payments, 422, "club_payment_mismatch", pid,
                          json={"provider_reference": "p5", "amount": "5.00", "currency": "EUR"})  # fmt: skip
    assert problem["title"] == "The payment does not match the price" and problem["expected"] == "9.90"
    api.refused(a.shop, "POST", payments, 409, "club_payment_reference_reused", pid,
                json={"provider_reference": "pi_first", "amount": "9.90", "currency": "EUR", "status": "failed"})  # fmt: skip
    api.refused(a.shop, "POST", payments, 422, "validation_error", pid,
                json={"provider_reference": "p6", "amount": 9.9, "currency": "EUR"})  # fmt: skip
    api.refused(
        a.shop,
        "POST",
        payments,
        422,
        "invalid_input",
        pid,
        json={"provider_reference": "p7", "amount": "9.90", "currency": "EUR", "period_start": "2026-04-02T10:00:00"},
    )  # fmt: skip (no timezone)
    api.refused(a.partner, "POST", "/club/subscriptions", 403, "forbidden", pid,
                json={"plan": "plus", "member_id": other["id"]})  # fmt: skip
    api.refused(a.read_only, "POST", payments, 403, "forbidden", pid,
                json={"provider_reference": "p8", "amount": "9.90", "currency": "EUR"})  # fmt: skip
    a.shop.post(f"/members/{mid}/club/cancel", {"at_period_end": False}, status=200)
    api.refused(a.shop, "POST", f"/members/{mid}/club/cancel", 409, "already_cancelled", pid, json={})
    api.refused(a.shop, "POST", payments, 409, "club_subscription_ended", pid,
                json={"provider_reference": "p9", "amount": "9.90", "currency": "EUR"})  # fmt: skip
