"""Tenancy and scopes, generated from the OpenAPI document: every operation under /api/v1 is called
without a key, with programme B's keys on programme A's objects, with A's read-only key, and with a
programme key on operator routes. None of it may read or change A."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.api_helpers import Api, Caller, Tenant
from treue.api.auth import forget_cached_keys

OPERATOR_PATHS = ("/programs", "/programs/{program_id}/keys")
READ_ONLY_POSTS = ("POST /purchases/preview",)  # writes nothing: any key of the programme may ask
# GETs that A's own admin key is refused for a reason of A's data, not of tenancy (asserted with that status)
A_ADMIN_REFUSED = {"GET /analytics/roi": 422}  # A holds out no control group: nothing to compare


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


@dataclass
class Operation:
    method: str
    template: str  # path below /api/v1
    has_body: bool
    query: dict[str, str]

    @property
    def operator_only(self) -> bool:
        return self.template in OPERATOR_PATHS

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def operations(api: Api) -> list[Operation]:
    found = []
    for path, methods in api.app.openapi()["paths"].items():
        # Inbound shop webhooks take the platform's signature, not an API key: their tenancy (a connection of B
        # never records into A) and their 401s are tested in tests/integration/test_shops_api.py.
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/inbound/"):
            continue
        for method, spec in methods.items():
            required = {p["name"] for p in spec.get("parameters", []) if p["in"] == "query" and p.get("required")}
            found.append(Operation(method.upper(), path.removeprefix("/api/v1"), "requestBody" in spec,
                                   dict.fromkeys(required, "")))  # fmt: skip
    assert len(found) >= 25, [str(x) for x in found]
    return found


@dataclass
class World:
    """Programme A with one of everything, programme B with its own keys."""

    a: Tenant
    b: Tenant
    ids: dict[str, str]  # path parameter -> an object of A
    secrets: list[str]  # what of A nobody else may see
    order_id: str


def build(api: Api, now) -> World:
    a = api.tenant("A", scopes=("admin", "pos", "read_only"))
    b = api.tenant("B", scopes=("admin", "pos", "shop", "read_only"))
    b.callers["partner"] = api.key(b.program_id, "partner", partner="acme")
    member = a.pos.post("/members", {"email": "alice@a.example", "phone": "+4917011112222", "external_ref": "a-ref-1"})
    other = a.pos.post("/members", {"external_ref": "a-ref-2"})
    bought = a.pos.post("/purchases", {"member_id": member["id"], "external_order_id": "A-ORDER-1",
                                       "occurred_at": now.isoformat(), "total": "300.00", "currency": "EUR",
                                       "lines": [{"sku": "SOFA", "quantity": 1, "unit_price": "300.00"}]})  # fmt: skip
    reward = a.admin.post("/rewards", {"name": {"de": "Lampe"}, "type": "merchandise", "cost_points": 100,
                                       "stock": 5})  # fmt: skip
    redemption = a.pos.post("/redemptions", {"reward_id": reward["id"], "member_id": member["id"]})
    a.admin.post("/rules", {"id": "a-secret-rule", "trigger": "review.created",
                            "effects": [{"type": "fixed_points", "points": 10}]})  # fmt: skip
    a.admin.post("/campaigns", {"id": "a-secret-campaign", "starts": "2026-03-01", "ends": "2026-03-31",
                                "status": "active", "budget": 1000,
                                "rules": [{"id": "a-secret-campaign-rule", "trigger": "purchase",
                                           "effects": [{"type": "fixed_points", "points": 5}]}]})  # fmt: skip
    review = a.pos.post("/events", {"name": "review.created", "member_id": member["id"],
                                    "attributes": {"product": "SOFA"}})  # fmt: skip
    hold = a.pos.post("/holds", {"member_id": member["id"], "points": 50})  # wallet and checkout (issue 4)
    hook = a.admin.post("/webhooks", {"url": "https://a.example/hooks", "events": ["*"]})  # webhooks (issue 5)
    a.admin.post("/partners", {"code": "a-secret-partner", "name": "A's partner"})  # partners (issue 5)
    assert a.admin.post("/settlements", {"period": "2026-01"})["period"] == "2026-01"
    ids = {"member_id": member["id"], "purchase_id": bought["id"], "reward_id": reward["id"], "hold_id": hold["id"],
           "redemption_id": redemption["id"], "code": redemption["coupon"]["code"], "key_id": a.pos.key_id,
           "program_id": a.program_id, "other_member_id": other["id"], "rule_id": "a-secret-rule",
           "campaign_id": "a-secret-campaign", "partner": "a-secret-partner", "period": "2026-01"}  # fmt: skip
    secrets = [member["id"], other["id"], member["card_number"], other["card_number"], "alice@a.example",
               "+4917011112222", bought["id"], reward["id"], redemption["id"],
               redemption["coupon"]["code"], a.program_id, a.pos.key_id, "a-secret-rule", "a-secret-campaign",
               "a-secret-campaign-rule", review["id"], review["transfer_id"], hold["id"]]  # fmt: skip
    ids["webhook_id"], secrets = hook["id"], [*secrets, hook["id"], hook["secret"]]  # webhooks (issue 5)
    shop = a.admin.post("/shops", {"code": "a-shop", "platform": "shopify", "secret": "a-secret-shop-key"})  # issue 5
    ids["shop_code"], secrets = shop["code"], [*secrets, shop["id"], "a-secret-shop-key"]  # shop adapters (issue 5)
    # tills and exports (issue 5)
    till_line = {"key": "a-till-1", "type": "purchase", "occurred_at": now.isoformat(), "external_order_id": "A-TILL-1",
                 "total": "12.00", "currency": "EUR", "member_id": member["id"], "cashier": "a-secret-cashier"}  # fmt: skip
    uploaded = api.client.post("/api/v1/till/batches", content=json.dumps(till_line).encode(), headers={
        "Authorization": f"Bearer {a.pos.token}", "Content-Type": "application/x-ndjson"})  # fmt: skip
    assert uploaded.status_code == 201 and uploaded.json()["applied"] == 1, uploaded.text
    ids["batch_id"], secrets = uploaded.json()["batch_id"], [*secrets, uploaded.json()["batch_id"], "a-secret-cashier"]
    # card-linked earning (issue 11)
    card = a.pos.post(f"/members/{member['id']}/cards", {"token": "tok_a_secret_card", "brand": "visa", "last4": "4242",
                                                         "exp_month": 12, "exp_year": 2030})  # fmt: skip
    a.admin.post("/offers", {"code": "a-secret-offer", "name": "A's offer", "starts": "2026-03-01",
                             "ends": "2026-03-31", "effects": [{"type": "fixed_points", "points": 5}]})  # fmt: skip
    a.admin.post("/cards/merchants", {"merchant_id": "a-secret-merchant", "partner": "a-secret-partner"})
    ids["card_id"], ids["offer_code"] = card["id"], "a-secret-offer"
    secrets = [*secrets, card["id"], "tok_a_secret_card", "a-secret-offer", "a-secret-merchant"]
    # referrals and social rewards (issue 7)
    a.admin.ok("PUT", "/referrals/settings", status=200, json={"condition": "purchase.total >= 1000"})
    code = a.pos.get(f"/members/{member['id']}/referrals")["code"]
    friend = a.pos.post("/members", {"referral_code": code, "email": "friend@a.example"})
    held = a.pos.post("/events", {"name": "review.created", "member_id": member["id"], "moderation": "pending"})
    ids |= {"referral_id": friend["referral"]["id"], "event_id": held["id"]}
    secrets = [*secrets, code, friend["id"], friend["referral"]["id"], held["id"]]
    # gamification (issue 7)
    a.admin.post("/badges", {"code": "a-secret-badge", "name": {"de": "A"}})
    a.admin.post("/missions", {"code": "a-secret-mission", "name": {"de": "A"}, "opt_in": True,
                               "goal": {"type": "count", "target": 2, "event": "purchase"},
                               "reward": {"points": 5, "badge": "a-secret-badge"}})  # fmt: skip
    a.admin.post("/streaks", {"code": "a-secret-streak", "name": {"de": "A"}, "event": "purchase",
                              "milestones": [{"length": 3, "reward": {"points": 5}}]})  # fmt: skip
    a.admin.post("/instant-wins", {"code": "a-secret-win", "name": {"de": "A"}, "event": "review.created",
                                   "prizes": [{"code": "p", "probability": "50", "points": 5, "total": 10}]})  # fmt: skip
    a.pos.post(f"/members/{member['id']}/missions/a-secret-mission/opt-in", status=200)
    a.admin.post(f"/members/{member['id']}/badges", {"badge": "a-secret-badge"})
    a.pos.post(f"/members/{member['id']}/leaderboard-consent", {"nickname": "AliceSecretNick"}, status=200)
    ids |= {"mission_code": "a-secret-mission", "streak_code": "a-secret-streak", "badge_code": "a-secret-badge",
            "instant_win_code": "a-secret-win"}  # fmt: skip
    secrets += ["a-secret-mission", "a-secret-streak", "a-secret-badge", "a-secret-win", "AliceSecretNick"]
    # notifications (issue 8)
    from treue.services.webhooks import relay_outbox  # the welcome notice lands in A's member's inbox

    relay_outbox(api.uow, now)
    note = a.admin.get(f"/members/{member['id']}/inbox")["messages"][0]
    a.admin.ok("PUT", "/notifications/templates", status=200, json={"trigger": "welcome", "channel": "email",
                                                                     "locale": "de", "subject": "A-secret-subject",
                                                                     "text": "Hallo"})  # fmt: skip
    ids["message_id"], secrets = note["id"], [*secrets, note["id"], "A-secret-subject"]
    # segments, offers, recommendations, surveys (issue 8)
    a.admin.post("/segments", {"code": "a-secret-segment", "name": "A", "kind": "static"})
    a.admin.post("/segments/a-secret-segment/members", {"members": [member["id"]]}, status=200)
    a.admin.post("/surveys", {"code": "a-secret-survey", "name": "A"})
    a.pos.post("/surveys/a-secret-survey/responses", {"member_id": member["id"], "score": 9,
                                                      "comment": "a-secret-comment"})  # fmt: skip
    ids |= {"segment_code": "a-secret-segment", "survey_code": "a-secret-survey"}
    secrets += ["a-secret-segment", "a-secret-survey", "a-secret-comment"]
    # privacy and security (issue 10)
    # fraud controls (issue 10)
    from uuid import UUID

    from treue.services.fraud import scan

    a.admin.ok("PUT", "/fraud/settings", status=200, json={"caps": [{"action": "earn", "subject": "member",
                                                                      "window": "day", "max_count": 1}],
                                                             "alerts": {"cap_hits": 1}})  # fmt: skip
    for order in ("A-FRAUD-1", "A-FRAUD-2"):  # the second goes over the cap: held
        a.pos.post("/purchases", {"member_id": member["id"], "external_order_id": order, "total": "5.00",
                                  "occurred_at": now.isoformat(), "currency": "EUR"})  # fmt: skip
    fraud_hold = a.admin.get("/fraud/held")[0]
    scan(api.uow, now, UUID(a.program_id))
    fraud_alert = a.admin.get("/fraud/alerts")[0]
    ids |= {"held_id": fraud_hold["id"], "alert_id": fraud_alert["id"]}
    secrets += [fraud_hold["id"], fraud_alert["id"]]
    return World(a, b, ids, secrets, "A-ORDER-1")


def body_for(op: Operation, w: World, now) -> dict[str, Any] | None:
    """A minimal valid body that names A's objects wherever the request can name one."""
    member, other = w.ids["member_id"], w.ids["other_member_id"]
    bodies: dict[str, dict[str, Any]] = {
        "POST /programs": {"name": "Mallory", "currency": "EUR", "timezone": "Europe/Berlin"},
        "POST /programs/{program_id}/keys": {"scope": "admin"},
        "PATCH /program": {"name": "Renamed", "pending_days": 99},
        "POST /keys": {"scope": "admin"},
        "POST /keys/{key_id}/rotate": {"grace_hours": 0},  # operations (issue 9/10)
        "POST /members": {"external_ref": "a-ref-1"},
        "PATCH /members/{member_id}": {"email": "mallory@evil.example", "external_ref": "stolen"},
        "POST /members/{member_id}/adjustments": {"points": -100, "reason": "theft"},
        "POST /members/{member_id}/transfers": {"to_member_id": other, "points": 50},
        "POST /purchases": {"member_id": member, "external_order_id": "B-ORDER", "occurred_at": now.isoformat(),
                            "total": "0.50", "currency": "EUR"},  # 0 points: must still be refused
        "POST /purchases/{purchase_id}/refunds": {"amount": "300.00"},
        "POST /rewards": {"name": {"de": "X"}, "type": "merchandise", "cost_points": 1},
        "PATCH /rewards/{reward_id}": {"cost_points": 1, "stock": 0},
        "POST /redemptions": {"reward_id": w.ids["reward_id"], "member_id": member},
        "POST /redemptions/{redemption_id}/cancel": {"reason": "x"},
        "POST /coupons/{code}/consume": {"order_id": "B-1"},
        "POST /rules": {"id": "b-rule", "trigger": "purchase", "effects": [{"type": "fixed_points", "points": 1}]},
        "POST /rules/validate": {"id": "b-rule", "trigger": "purchase",
                                 "effects": [{"type": "fixed_points", "points": 1}]},
        "POST /rules/import": {"format": "treue.rules/1", "rules": [], "campaigns": []},
        "PATCH /rules/{rule_id}": {"priority": 5, "effects": [{"type": "fixed_points", "points": 1000}]},
        "POST /campaigns": {"id": "b-campaign", "starts": "2026-03-01", "ends": "2026-03-31"},
        "PATCH /campaigns/{campaign_id}": {"status": "ended", "budget": 10**9},
        "POST /events": {"name": "review.created", "member_id": member},
        "POST /purchases/preview": {"member_id": member, "total": "10.00", "currency": "EUR"},
        "POST /simulations": {"draft": {"format": "treue.rules/1", "rules": [], "campaigns": []},
                              "from": "2026-03-01", "to": "2026-03-31"},
        # tiers (issue 4)
        "PUT /tiers": {"basis": "spend", "tiers": [{"code": "basis", "name": {"de": "Basis"}, "threshold": "0"},
                                                   {"code": "gold", "name": {"de": "Gold"}, "threshold": "1.00"}]},
        "POST /members/{member_id}/tier/assignment": {"tier": "gold", "reason": "x"},
        # wallet and checkout (issue 4)
        "POST /checkout/preview": {"member_id": member, "total": "10.00", "currency": "EUR"},
        "POST /holds": {"member_id": member, "points": 10},
        "POST /holds/{hold_id}/capture": {"external_order_id": "B-CAPTURE", "total": "10.00", "currency": "EUR"},
        # club (issue 4)
        # partners (issue 5)
        "POST /partners": {"code": "b-partner", "name": "B's partner", "issue_price": "0.01"},
        "PATCH /partners/{partner}": {"redeem_price": "99.00", "billing": "prepaid"},
        "POST /settlements": {"period": "2025-12"},
        # webhooks and streams (issue 5)
        "POST /webhooks": {"url": "https://b.example/hooks", "events": ["*"]},
        "PATCH /webhooks/{webhook_id}": {"url": "https://evil.example/steal", "enabled": True, "rotate_secret": True},
        "POST /webhooks/{webhook_id}/redeliveries": {"failed_since": "2020-01-01T00:00:00Z"},
        # shop adapters (issue 5)
        "POST /shops": {"code": "b-shop", "platform": "generic"},
        "PATCH /shops/{shop_code}": {"secret": "stolen-secret", "active": False},
        # tills and exports (issue 5)
        "POST /till/batches": {"key": "b-1", "type": "purchase", "occurred_at": now.isoformat(),
                               "external_order_id": "B-TILL", "total": "1.00", "currency": "EUR"},
        "POST /holds/{hold_id}/release": {"store": "b-store", "cashier": "b-cashier"},
        # card-linked earning (issue 11)
        "POST /members/{member_id}/cards": {"token": "tok_b_stolen", "brand": "visa", "last4": "4242",
                                            "exp_month": 12, "exp_year": 2030},
        "POST /members/{member_id}/cards/{card_id}/unlink": {"reason": "stolen"},
        "POST /cards/merchants": {"merchant_id": "b-merchant", "partner": "default"},
        "POST /cards/feeds": {"format": "csv", "content": "merchant_id,token,amount,currency,occurred_at,"
                              "authorisation_code,type\ndefault,tok_a_secret_card,10.00,EUR,2026-03-02T10:30:00Z,"
                              "B-AUTH,sale\n"},
        "POST /offers": {"code": "b-offer", "name": "B", "starts": "2026-03-01", "ends": "2026-03-31",
                         "effects": [{"type": "fixed_points", "points": 1000}]},
        # referrals and social rewards (issue 7)
        "PUT /referrals/settings": {"condition": "purchase.total >= 1", "window_days": 5, "referrer_limit": 1},
        "POST /events/{event_id}/moderation": {"decision": "reject", "note": "x"},
        # gamification (issue 7)
        "POST /missions": {"code": "b-mission", "name": {"de": "B"}, "goal": {"type": "count", "target": 1,
                                                                            "event": "purchase"},
                           "reward": {"points": 10**6}},
        "PATCH /missions/{mission_code}": {"active": False, "reward": {"points": 10**6}},
        "POST /streaks": {"code": "b-streak", "name": {"de": "B"}, "event": "purchase"},
        "PATCH /streaks/{streak_code}": {"active": False},
        "POST /badges": {"code": "b-badge", "name": {"de": "B"}},
        "PATCH /badges/{badge_code}": {"active": False, "image_url": "https://evil.example/x.png"},
        "POST /members/{member_id}/badges": {"badge": "a-secret-badge"},
        "POST /instant-wins": {"code": "b-win", "name": {"de": "B"}, "event": "purchase",
                               "prizes": [{"code": "p", "probability": "100", "points": 10**6}]},
        "PATCH /instant-wins/{instant_win_code}": {"active": False, "points_budget": 10**9},
        "POST /members/{member_id}/leaderboard-consent": {"consented": False, "nickname": "mallory"},
        # notifications (issue 8)
        "PUT /notifications/settings": {"weekly_marketing_cap": 0, "triggers": {"welcome": {"enabled": False}}},
        "PUT /notifications/templates": {"trigger": "welcome", "channel": "email", "locale": "de",
                                         "subject": "B", "text": "B"},
        "POST /notifications/templates/reset": {"trigger": "welcome", "channel": "email", "locale": "de"},
        "POST /notifications/templates/preview": {"trigger": "welcome", "channel": "email", "locale": "de"},
        "POST /members/{member_id}/notifications/consents": {"channel": "email", "granted": True},
        "POST /notifications/messages/{message_id}/bounce": {"reason": "x", "permanent": True},
        "POST /notifications/messages/{message_id}/resend": {"reason": "x"},
        # segments, offers, recommendations, surveys (issue 8)
        "POST /segments": {"code": "b-segment", "name": "B", "kind": "static"},
        "POST /segments/{segment_code}/refresh": {"member_ids": [member]},
        "POST /segments/{segment_code}/members": {"members": [member, other], "mode": "replace"},
        "POST /surveys": {"code": "b-survey", "name": "B"},
        "POST /surveys/{survey_code}/responses": {"member_id": member, "score": 0, "comment": "b"},
        # privacy and security (issue 10)
        "POST /members/{member_id}/erase": {"reason": "mallory wants A's member gone"},
        "PUT /privacy/retention": {"retention_months": 1},
        # fraud controls (issue 10)
        "PUT /fraud/settings": {"active": False, "caps": []},
        "POST /fraud/held/{held_id}/approve": {"reason": "mallory says so"},
        "POST /fraud/held/{held_id}/reject": {"reason": "mallory says so"},
        "POST /fraud/alerts/{alert_id}/acknowledge": {"note": "nothing to see"},
        "POST /club/plans": {"code": "b-plan", "name": {"de": "B"}, "price": "9.90", "interval": "month"},
        "PATCH /club/plans/{code}": {"active": False, "bonus_points": 10**6},
        "POST /club/subscriptions": {"member_id": member, "plan": "b-plan"},
        "POST /members/{member_id}/club/payments": {"provider_reference": "b-ref", "amount": "9.90", "currency": "EUR"},
        "POST /members/{member_id}/club/cancel": {"at_period_end": False},
    }  # fmt: skip
    if not op.has_body:
        return None
    assert str(op) in bodies, f"new operation {op}: give it a body in body_for() so tenancy is tested"
    return bodies[str(op)]


def call(caller: Caller, op: Operation, w: World, now, params: dict[str, str] | None = None) -> tuple[Any, str]:
    path = re.sub(r"\{(\w+)\}", lambda m: w.ids[m.group(1)], op.template)
    known = {"external_order_id": w.order_id, "member_id": w.ids["member_id"]}
    query = {name: known.get(name, "x") for name in op.query} | (params or {})
    body = body_for(op, w, now)
    response = caller.request(op.method, path, json=body, params=query or None)
    sent = path + json.dumps(query) + json.dumps(body)
    return response, sent


def leaked(w: World, response: Any, sent: str) -> list[str]:
    """A's identifiers in a response that the request did not itself contain."""
    return [s for s in w.secrets if s in response.text and s not in sent]


def references_a(op: Operation, w: World, now) -> bool:
    """Does the request name one of A's objects (in its path or body)?"""
    body = json.dumps(body_for(op, w, now))
    return "{" in op.template or any(v in body for v in w.ids.values())


FIND_BY = [{"card_number": "CARD"}, {"email": "alice@a.example"}, {"phone": "+4917011112222"},
           {"external_ref": "a-ref-1"}, {"q": "alice"}]  # fmt: skip


def test_no_key_of_another_programme_no_missing_key_and_no_wrong_scope_reaches_programme_a(api: Api, now):
    w = build(api, now)
    ops = operations(api)
    member = w.ids["member_id"]
    card = next(s for s in w.secrets if s.isdigit() and len(s) == 19)
    before = api.snapshot(w.a.program_id)
    balance_before = w.a.read_only.get(f"/members/{member}/balance")
    checked: list[str] = []

    with api.unchanged(w.a.program_id):
        # Look-ups by A's identifiers find nothing for B.
        for params in FIND_BY:
            params = {k: (card if v == "CARD" else v) for k, v in params.items()}
            assert w.b.pos.get("/members", params=params) == [], params
        for op in ops:
            # (a) no credentials, or a key that does not exist
            for caller in (api.anonymous, Caller(api.client, "trk_000000000000_forged")):
                response, _ = call(caller, op, w, now)
                assert response.status_code == 401, f"{op}: {response.status_code} {response.text}"
                assert response.json()["code"] == "unauthorized"

            # (b) programme B's keys on A's objects
            for scope, caller in w.b.callers.items():
                response, sent = call(caller, op, w, now)
                assert response.status_code < 500, f"{op} as B {scope}: {response.text}"
                assert not leaked(w, response, sent), f"{op} as B {scope} leaked {leaked(w, response, sent)}"
                if op.operator_only or references_a(op, w, now):
                    assert response.status_code in (403, 404, 422), f"{op} as B {scope}: {response.text}"
                    assert response.json()["code"] != "validation_error", (
                        f"{op}: the body is not valid: {response.text}"
                    )
                if op.operator_only:
                    assert response.status_code == 403, f"{op} as B {scope}: {response.text}"
            # (c) A's read-only key on every write
            if op.method != "GET":
                response, _ = call(w.a.read_only, op, w, now)
                expected = 200 if str(op) in READ_ONLY_POSTS else 403
                assert response.status_code == expected, f"{op} read_only: {response.status_code} {response.text}"
            # (d) programme keys on operator routes; the operator key on programme routes
            if op.operator_only:
                for scope, caller in w.a.callers.items():
                    response, _ = call(caller, op, w, now)
                    assert response.status_code == 403, f"{op} as A {scope}: {response.text}"
            else:
                response, _ = call(api.operator, op, w, now)
                assert response.status_code == 403, f"{op} as operator: {response.text}"
            checked.append(str(op))

        assert w.b.admin.get("/program")["id"] == w.b.program_id
        # A's external references are A's: B may use them too (a conflict would reveal that A has them).
        assert w.b.pos.post("/members", {"external_ref": "a-ref-2"})["external_ref"] == "a-ref-2"

    assert api.snapshot(w.a.program_id) == before
    assert w.a.read_only.get(f"/members/{member}/balance") == balance_before
    assert api.verify(w.a.program_id) == []
    assert len(checked) == len(ops)

    # The same requests by A's own keys do work: the refusals above were about tenancy, not bad requests.
    forget_cached_keys()
    for op in ops:
        if op.method == "GET" and not op.operator_only:
            response, _ = call(w.a.admin, op, w, now)
            expected = A_ADMIN_REFUSED.get(str(op), 200)
            assert response.status_code == expected, f"{op} as A admin: {response.text}"
    assert w.a.admin.post(f"/members/{member}/transfers", body_for(_op(ops, "POST", "/members/{member_id}/transfers"),
                                                                   w, now))["points"] == 50  # fmt: skip
    assert w.a.pos.post(f"/coupons/{w.ids['code']}/consume", {"order_id": "A-1"}, status=200)["status"] == "consumed"
    w.a.admin.ok("DELETE", f"/keys/{w.ids['key_id']}", status=204)
    forget_cached_keys()
    response = w.a.pos.request("GET", "/program")
    assert response.status_code == 401  # a revoked key stops working


def _op(ops: list[Operation], method: str, template: str) -> Operation:
    return next(op for op in ops if op.method == method and op.template == template)


def test_requests_cannot_assign_what_the_server_owns(api: Api):
    a = api.tenant(scopes=("admin",))
    b = api.tenant(scopes=("admin",))
    member = a.admin.post("/members", {})
    for body in ({"balance": 100}, {"program_id": b.program_id}, {"id": member["id"]}, {"card_number": "1" * 19},
                 {"status": "blocked"}, {"points": 5}):  # fmt: skip
        api.refused(a.admin, "POST", "/members", 422, "validation_error", a.program_id, json=body)
    for body in ({"status": "erased"}, {"card_number": "1" * 19}, {"program_id": b.program_id},
                 {"enrolled_at": "2020-01-01T00:00:00Z"}):  # fmt: skip
        api.refused(a.admin, "PATCH", f"/members/{member['id']}", 422, "validation_error", a.program_id, json=body)
    api.refused(a.admin, "PATCH", "/program", 422, "validation_error", a.program_id, json={"currency": "USD"})
    api.refused(a.admin, "POST", "/rewards", 422, "validation_error", a.program_id,
                json={"name": {"de": "X"}, "type": "merchandise", "cost_points": 1, "program_id": b.program_id})  # fmt: skip
    assert a.admin.get(f"/members/{member['id']}")["status"] == "active"
    assert a.admin.get(f"/members/{member['id']}/balance")["points"] == 0


def test_a_partner_key_records_purchases_for_its_own_partner_only(api: Api, now):
    a = api.tenant(scopes=("admin",))
    acme = api.key(a.program_id, "partner", partner="acme")
    member = a.admin.post("/members", {})
    body = {"member_id": member["id"], "external_order_id": "P-1", "occurred_at": now.isoformat(),
            "total": "20.00", "currency": "EUR"}  # fmt: skip
    api.refused(acme, "POST", "/purchases", 403, "forbidden", a.program_id, json=body | {"partner": "globex"})
    recorded = acme.post("/purchases", body)  # no partner given: the key's own partner
    assert recorded["partner"] == "acme" and recorded["points_earned"] == 20
    assert acme.post("/purchases", body | {"external_order_id": "P-2", "partner": "acme"})["partner"] == "acme"
    assert a.admin.get("/purchases", params={"external_order_id": "P-1", "partner": "acme"})["id"] == recorded["id"]
    # The programme's own till may record the same order number for the default partner.
    assert a.admin.post("/purchases", body)["partner"] == "default"
    lots = a.admin.get(f"/members/{member['id']}/lots")
    assert sorted(x["partner"] for x in lots) == ["acme", "acme", "default"]
    # Partner keys are programme keys like any other: no operator routes, no admin routes.
    api.refused(acme, "POST", "/rewards", 403, "forbidden", a.program_id,
                json={"name": {"de": "X"}, "type": "merchandise", "cost_points": 1})  # fmt: skip
    api.refused(acme, "GET", "/programs", 403, "forbidden", a.program_id)
