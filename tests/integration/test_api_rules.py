"""Rules, campaigns, custom events and the checkout preview through the HTTP API, on SQLite and PostgreSQL.

Every refusal is checked to be problem+json by the `Caller`; rule refusals carry `rule_invalid` and a location.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.api_helpers import Api, Tenant
from treue.domain.rules import definitions as d
from treue.domain.rules.schema import rules_schema

SATURDAY = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
WEEKEND = {"id": "weekend-double", "name": "Doppelte Punkte am Wochenende", "trigger": "purchase",
           "condition": "now.weekday >= 6", "effects": [{"type": "multiplier", "factor": "2"}],
           "mode": "exclusive", "group": "weekend", "priority": 10}  # fmt: skip
REVIEW = {"id": "review-reward", "name": "Bewertung", "trigger": "review.created",
          "condition": "has(event.attributes.stars)", "effects": [{"type": "fixed_points", "points": 50}],
          "limits": {"per_member": [{"awards": 1, "per": "month"}]}}  # fmt: skip
SOFA = {"id": "sofa-bonus", "trigger": "purchase",
        "effects": [{"type": "points_per_amount", "points": 3, "per": "2.00", "lines": "line.category == 'sofa'",
                     "exclude_skus": ["SOFA-GIFT"], "pending": "14D"}]}  # fmt: skip


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


@pytest.fixture
def shop(api: Api) -> Tenant:
    return api.tenant("Möbelhaus", scopes=("admin", "pos", "read_only"))


def cart(member: str, at: datetime, order: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"member_id": member, "occurred_at": at.isoformat(), "total": "420.00", "currency": "EUR",
            "lines": [{"sku": "SOFA-1", "quantity": 1, "unit_price": "400.00", "category": "sofa"},
                      {"sku": "VASE", "quantity": 2, "unit_price": "10.00", "category": "deco"}], **extra}  # fmt: skip
    if order:
        body["external_order_id"] = order
    return body


def rows_but_audit(api: Api, tenant: Tenant) -> dict[str, Any]:
    return {name: rows for name, rows in api.snapshot(tenant.program_id).items() if name != "audit_log"}


def test_rule_crud_versions_and_archive(api: Api, shop: Tenant):
    created = shop.admin.post("/rules", WEEKEND)
    assert created["id"] == "weekend-double" and created["version"] == 1 and created["status"] == "active"
    assert created["name"] == "Doppelte Punkte am Wochenende"
    assert [r["id"] for r in shop.read_only.get("/rules")] == ["weekend-double"]
    api.refused(shop.admin, "POST", "/rules", 409, "conflict", shop.program_id, json=WEEKEND)
    api.refused(shop.pos, "POST", "/rules", 403, "forbidden", shop.program_id, json=WEEKEND | {"id": "other"})

    api.clock.advance(minutes=1)
    edited = shop.admin.patch("/rules/weekend-double", {"priority": 20, "condition": None})
    assert edited["version"] == 2 and "condition" not in edited["definition"]
    history = shop.read_only.get("/rules/weekend-double")
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert history["versions"][0]["definition"]["condition"] == "now.weekday >= 6"
    assert history["versions"][1]["definition"]["priority"] == 20
    api.clock.advance(minutes=1)
    body = api.refused(shop.admin, "PATCH", "/rules/weekend-double", 422, "rule_invalid", shop.program_id,
                       json={"id": "renamed"})  # fmt: skip
    assert body["location"] == "id"

    archived = shop.admin.post("/rules/weekend-double/archive", status=200)
    assert archived["status"] == "archived"
    assert shop.admin.post("/rules/weekend-double/archive", status=200)["status"] == "archived"  # harmless again
    assert shop.read_only.get("/rules") == []
    assert [r["id"] for r in shop.read_only.get("/rules", params={"include_archived": "true"})] == ["weekend-double"]
    api.refused(shop.admin, "PATCH", "/rules/weekend-double", 409, "conflict", shop.program_id, json={"priority": 1})
    api.refused(shop.admin, "GET", "/rules/no-such-rule", 404, "not_found", shop.program_id)


def test_validate_writes_nothing_and_locates_problems(api: Api, shop: Tenant):
    with api.unchanged(shop.program_id):
        ok = shop.admin.post("/rules/validate", SOFA, status=200)
        assert (
            ok["valid"] is True and ok["new"] is True and ok["reads"] == {"line": ["category"], "purchase": ["lines"]}
        )
        bad_cel = api.refused(shop.admin, "POST", "/rules/validate", 422, "rule_invalid", shop.program_id,
                              json=WEEKEND | {"condition": "purchase.totl >= 5000"})  # fmt: skip
        assert bad_cel["location"] == "condition" and bad_cel["line"] == 1 and bad_cel["column"] >= 1
        syntax = api.refused(shop.admin, "POST", "/rules/validate", 422, "rule_invalid", shop.program_id,
                             json=WEEKEND | {"condition": "now.weekday >= "})  # fmt: skip
        assert syntax["location"] == "condition" and "line" in syntax and "column" in syntax
        negative = api.refused(shop.admin, "POST", "/rules/validate", 422, "rule_invalid", shop.program_id,
                               json={**REVIEW, "effects": [{"type": "fixed_points", "points": -5}]})  # fmt: skip
        assert negative["location"] == "effects[0].points"
        typo = api.refused(shop.admin, "POST", "/rules/validate", 422, "rule_invalid", shop.program_id,
                           json=REVIEW | {"pionts": 5})  # fmt: skip
        assert typo["location"] == "pionts"
    # The same checks guard the writes; German titles on request.
    response = shop.admin.request("POST", "/rules", json={**REVIEW, "effects": [{"type": "fixed_points",
                                                                                   "points": -5}]})  # fmt: skip
    assert response.status_code == 422 and response.json()["code"] == "rule_invalid"
    german = shop.admin.client.post(
        "/api/v1/rules",
        json=REVIEW | {"priority": "high"},
        headers={"Authorization": f"Bearer {shop.admin.token}", "Accept-Language": "de"},
    )
    assert german.json()["title"] == "Die Regeldefinition ist ungültig" and german.json()["location"] == "priority"
    # An exclusive group with two rules of one priority is refused with the location of the second.
    shop.admin.post("/rules", WEEKEND)
    clash = api.refused(shop.admin, "POST", "/rules", 422, "rule_invalid", shop.program_id,
                        json=WEEKEND | {"id": "zz-weekend", "effects": [{"type": "fixed_points", "points": 5}]})  # fmt: skip
    assert clash["location"] == "rules[zz-weekend].priority"


def test_preview_equals_the_actual_earn_and_writes_nothing(api: Api, shop: Tenant):
    for rule in (WEEKEND, SOFA):
        shop.admin.post("/rules", rule)
    member = shop.pos.post("/members", {})["id"]
    with api.unchanged(shop.program_id):
        preview = shop.pos.post("/purchases/preview", cart(member, SATURDAY), status=200)
        assert shop.read_only.post("/purchases/preview", cart(member, SATURDAY), status=200) == preview
    assert preview["points"] == 420 + 420 + 600
    assert [r["rule"] for r in preview["rules"]] == ["base", "weekend-double", "sofa-bonus"]
    recorded = shop.pos.post("/purchases", cart(member, SATURDAY, order="ORDER-1"))
    assert recorded["points_earned"] == preview["points"]
    # On a Wednesday the weekend rule is skipped, and says why.
    wednesday = shop.pos.post("/purchases/preview", cart(member, SATURDAY - timedelta(days=3)), status=200)
    assert "weekend-double" in {s["rule"] for s in wednesday["skipped"]}
    assert wednesday["points"] == shop.pos.post(
        "/purchases", cart(member, SATURDAY - timedelta(days=3), order="ORDER-2"))["points_earned"]  # fmt: skip
    # Anonymous carts earn nothing; other currencies and unknown members are refused as problems.
    anonymous = shop.pos.post("/purchases/preview", cart(member, SATURDAY) | {"member_id": None}, status=200)
    assert anonymous["points"] == 0 and anonymous["note"]
    api.refused(shop.pos, "POST", "/purchases/preview", 422, "currency_mismatch", shop.program_id,
                json=cart(member, SATURDAY) | {"currency": "USD"})  # fmt: skip
    api.refused(shop.pos, "POST", "/purchases/preview", 404, "not_found", shop.program_id,
                json=cart("00000000-0000-4000-8000-000000000000", SATURDAY))  # fmt: skip


def test_events_award_a_review_once_per_month(api: Api, shop: Tenant, now):
    shop.admin.post("/rules", REVIEW)
    member = shop.pos.post("/members", {"external_ref": "crm-7"})
    first = shop.pos.post("/events", {"name": "review.created", "member_id": member["id"],
                                      "attributes": {"stars": 5, "product": "SOFA-1"}}, idem="review-1")  # fmt: skip
    assert first["points"] == 50 and [line["rule"] for line in first["explanation"]["rules"]] == ["review-reward"]
    replay = shop.pos.post("/events", {"name": "review.created", "member_id": member["id"],
                                       "attributes": {"stars": 5, "product": "SOFA-1"}}, idem="review-1")  # fmt: skip
    assert replay == first
    second = shop.pos.post("/events", {"name": "review.created", "card_number": member["card_number"],
                                       "attributes": {"stars": 4}})  # fmt: skip
    assert second["points"] == 0 and second["skipped"]
    next_month = shop.pos.post("/events", {"name": "review.created", "external_ref": "crm-7",
                                           "attributes": {"stars": 3},
                                           "occurred_at": (now + timedelta(days=31)).isoformat()})  # fmt: skip
    assert next_month["points"] == 50
    unknown = shop.pos.post("/events", {"name": "newsletter.subscribed", "member_id": member["id"]})
    assert unknown["points"] == 0  # stored, no rule yet
    listed = shop.read_only.get("/events", params={"member_id": member["id"]})
    assert len(listed) == 4 and {e["name"] for e in listed} == {"review.created", "newsletter.subscribed"}
    assert shop.read_only.get(f"/members/{member['id']}/balance")["points"] == 100
    api.refused(shop.pos, "POST", "/events", 422, "invalid_input", shop.program_id,
                json={"name": "purchase", "member_id": member["id"]})  # fmt: skip
    api.refused(shop.pos, "POST", "/events", 422, "invalid_input", shop.program_id,
                json={"name": "Not An Event", "member_id": member["id"]})  # fmt: skip
    api.refused(shop.read_only, "POST", "/events", 403, "forbidden", shop.program_id,
                json={"name": "review.created", "member_id": member["id"]})  # fmt: skip


def test_export_import_round_trip_is_idempotent(api: Api, shop: Tenant):
    shop.admin.post("/rules", WEEKEND)
    shop.admin.post("/rules", REVIEW)
    shop.admin.post("/campaigns", {"id": "spring", "name": "Frühling", "starts": "2026-03-01", "ends": "2026-03-31",
                                   "status": "active", "budget": 1000,
                                   "rules": [{"id": "spring-bonus", "trigger": "purchase",
                                              "effects": [{"type": "fixed_points", "points": 25}]}]})  # fmt: skip
    document = shop.read_only.get("/rules/export")
    assert document["format"] == "treue.rules/1"
    assert sorted(r["id"] for r in document["rules"]) == ["review-reward", "weekend-double"]
    assert [r["id"] for r in document["campaigns"][0]["rules"]] == ["spring-bonus"]
    for rule in document["rules"] + document["campaigns"][0]["rules"]:  # every export is a valid definition
        d.parse_rule(rule, currency="EUR", valid_from=SATURDAY)

    before = rows_but_audit(api, shop)
    again = shop.admin.post("/rules/import", document, status=200)
    assert rows_but_audit(api, shop) == before  # the import is audited, nothing else is written
    assert again["created"] == [] and again["updated"] == [] and len(again["unchanged"]) == 3
    assert again["campaigns_unchanged"] == ["spring"]

    changed = {**document, "rules": [r | {"priority": 30} if r["id"] == "weekend-double" else r
                                     for r in document["rules"] if r["id"] != "review-reward"]}  # fmt: skip
    api.clock.advance(minutes=1)
    with api.unchanged(shop.program_id):
        dry = shop.admin.post("/rules/import", changed, params={"dry_run": "true", "archive_missing": "true"},
                              status=200)  # fmt: skip
    assert dry["dry_run"] is True and dry["updated"] == ["weekend-double"] and dry["archived"] == ["review-reward"]
    done = shop.admin.post("/rules/import", changed | {"archive_missing": True}, status=200)
    assert done["dry_run"] is False and done["updated"] == ["weekend-double"] and done["archived"] == ["review-reward"]
    assert shop.read_only.get("/rules/weekend-double")["version"] == 2
    assert shop.read_only.get("/rules/review-reward")["status"] == "archived"

    other = api.tenant("Filiale", scopes=("admin",))
    created = other.admin.post("/rules/import", document, status=200)
    assert sorted(created["created"]) == ["review-reward", "spring-bonus", "weekend-double"]
    exported = other.admin.get("/rules/export")
    assert exported == document
    bad = api.refused(other.admin, "POST", "/rules/import", 422, "rule_invalid", other.program_id,
                      json={"format": "treue.rules/1", "rules": [WEEKEND | {"effects": []}]})  # fmt: skip
    assert bad["location"].startswith("rules[0]")
    api.refused(other.admin, "POST", "/rules/import", 422, "rule_invalid", other.program_id,
                json={"format": "other/9", "rules": []})  # fmt: skip


def test_campaign_budget_through_the_api(api: Api, shop: Tenant, now):
    campaign = shop.admin.post("/campaigns", {
        "id": "app-first-order", "name": "500 Bonuspunkte für die erste Bestellung in der App",
        "starts": "2026-03-01", "ends": "2026-03-31", "status": "active", "budget": 700,
        "rules": [{"id": "app-first-order-bonus", "trigger": "purchase", "channels": ["app"],
                   "condition": "member.purchase_count == 0", "effects": [{"type": "fixed_points", "points": 500}]}]})  # fmt: skip
    assert campaign["budget"] == {"points": 700, "spent": 0, "left": 700}
    assert [r["id"] for r in campaign["rules"]] == ["app-first-order-bonus"]
    earned = []
    for index in range(3):
        member = shop.pos.post("/members", {})["id"]
        body = cart(member, now, order=f"APP-{index}", channel="app", total="10.00", lines=[])
        earned.append(shop.pos.post("/purchases", body)["points_earned"] - 10)
    spent = shop.read_only.get("/campaigns/app-first-order")["budget"]
    assert earned[0] == 500 and sum(earned) == spent["spent"] <= 700 and earned[2] == 0
    assert [c["id"] for c in shop.read_only.get("/campaigns")] == ["app-first-order"]
    api.refused(shop.admin, "PATCH", "/campaigns/app-first-order", 422, "rule_invalid", shop.program_id,
                json={"budget": 100})  # fmt: skip
    ended = shop.admin.patch("/campaigns/app-first-order", {"status": "ended"})
    assert ended["status"] == "ended"
    api.refused(shop.admin, "POST", "/campaigns", 409, "conflict", shop.program_id,
                json={"id": "app-first-order", "starts": "2026-03-01", "ends": "2026-03-31"})  # fmt: skip
    bad = api.refused(shop.admin, "POST", "/campaigns", 422, "rule_invalid", shop.program_id,
                      json={"id": "late", "starts": "2026-03-31", "ends": "2026-03-01"})  # fmt: skip
    assert bad["location"] == "ends"
    api.refused(shop.admin, "GET", "/campaigns/nope", 404, "not_found", shop.program_id)


def test_the_published_schema(shop: Tenant):
    served = shop.read_only.get("/rules/schema")
    assert served == rules_schema()
    assert served["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert served["$defs"]["rule"]["required"] == ["id", "trigger", "effects"]
