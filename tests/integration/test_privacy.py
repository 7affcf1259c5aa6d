"""GDPR (issue 10) over the API on both backends: a member with activity in every area is exported (each area's
data in one document, the export audited), then erased: no personal value of theirs is left in any text or JSON
column of the whole database, the ledger still balances (`verify`, postings per unit sum to zero), revenue KPIs
are unchanged, the remaining points are written off, later activity is refused, a second erasure says so, and
another programme's keys can neither export nor erase."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import JSON, String, Text, func, select

from tests.integration.api_helpers import Api, Tenant
from treue.services.kpis import kpis
from treue.services.webhooks import relay_outbox
from treue.store import tables as t


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def database_text(engine) -> str:
    """Every text and JSON value of every table, as one string (the whole test database, all programmes)."""
    found: list[str] = []
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            columns = [c for c in table.c if isinstance(c.type, String | Text | JSON)]
            if columns:
                for row in conn.execute(select(*columns)):
                    found.extend(json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)
                                 for v in row if v is not None)  # fmt: skip
    return "\n".join(found)


def person() -> dict[str, Any]:
    tag = secrets.token_hex(4)
    return {"first_name": f"Zebulon{tag}", "last_name": f"Quirrelmann{tag}", "email": f"zq.{tag}@privacy.example",
            "phone": f"+49170{int(tag, 16) % 10**7:07d}", "external_ref": f"crm-{tag}", "birthday": "1984-02-29",
            "attributes": {"favourite_colour": f"ochre-{tag}"}, "consents": {"email": True, "sms": False},
            "nickname": f"Zeb{tag}", "comment": f"Sofa too soft, says Zebulon{tag}", "token": f"tok_priv_{tag}",
            "fingerprint": f"fp_priv_{tag}", "device": f"device-{tag}", "ip": "203.0.113.77"}  # fmt: skip


PROFILE = ("first_name", "last_name", "email", "phone", "external_ref", "birthday", "attributes", "consents")


def seed(api: Api, shop: Tenant, who: dict[str, Any], now) -> dict[str, Any]:
    """A member with activity in every area, through the API."""
    shop.admin.post("/rules", {"id": "cashback", "trigger": "purchase",
                               "effects": [{"type": "cashback_percent", "percent": "10"}]})  # fmt: skip
    referrer = shop.pos.post("/members", {"email": f"referrer.{secrets.token_hex(4)}@example.org"})
    shop.admin.ok("PUT", "/referrals/settings", status=200, json={"condition": "purchase.total >= 1000"})
    code = shop.pos.get(f"/members/{referrer['id']}/referrals")["code"]
    member = shop.pos.post("/members", {**{k: who[k] for k in PROFILE}, "referral_code": code,
                                        "device_id": who["device"], "ip": who["ip"]})  # fmt: skip
    mid = member["id"]
    shop.pos.ok("PATCH", f"/members/{mid}", status=200, json={"last_name": who["last_name"]})  # an audited change
    bought = shop.pos.post("/purchases", {"member_id": mid, "external_order_id": f"O-{mid}", "occurred_at": now.isoformat(),
                                          "total": "300.00", "currency": "EUR",
                                          "lines": [{"sku": "SOFA", "quantity": 1, "unit_price": "300.00"}]})  # fmt: skip
    api.clock.advance(days=40)  # past the return window: the points are available
    reward = shop.admin.post("/rewards", {"name": {"de": "Lampe"}, "type": "merchandise", "cost_points": 100})
    redemption = shop.pos.post("/redemptions", {"reward_id": reward["id"], "member_id": mid})
    shop.admin.post(f"/members/{mid}/adjustments", {"points": 25, "reason": "goodwill"})
    shop.pos.post("/events", {"name": "review.created", "member_id": mid,
                              "attributes": {"product": "SOFA", "text": f"Great, {who['first_name']}"}})  # fmt: skip
    shop.pos.post("/holds", {"member_id": mid, "points": 10})
    card = shop.pos.post(f"/members/{mid}/cards", {"token": who["token"], "fingerprint": who["fingerprint"],
                                                   "brand": "visa", "last4": "4242", "exp_month": 12,
                                                   "exp_year": 2030})  # fmt: skip
    shop.admin.post("/badges", {"code": "fan", "name": {"de": "Fan"}})
    shop.admin.post("/missions", {"code": "twice", "name": {"de": "Zweimal"}, "opt_in": True,
                                  "goal": {"type": "count", "target": 2, "event": "purchase"},
                                  "reward": {"points": 5}})  # fmt: skip
    shop.pos.post(f"/members/{mid}/missions/twice/opt-in", status=200)
    shop.admin.post(f"/members/{mid}/badges", {"badge": "fan"})
    shop.pos.post(f"/members/{mid}/leaderboard-consent", {"nickname": who["nickname"]}, status=200)
    shop.admin.post("/segments", {"code": "vip", "name": "VIP", "kind": "static"})
    shop.admin.post("/segments/vip/members", {"members": [mid]}, status=200)
    shop.admin.post("/surveys", {"code": "nps", "name": "NPS"})
    shop.pos.post("/surveys/nps/responses", {"member_id": mid, "score": 9, "comment": who["comment"]})
    shop.admin.post(
        "/club/plans", {"code": "plus", "name": {"de": "Plus"}, "price": "9.90", "interval": "month", "trial_days": 14}
    )
    shop.pos.post("/club/subscriptions", {"member_id": mid, "plan": "plus"})
    relay_outbox(api.uow, api.clock.now)  # the welcome notice lands in the inbox (and an email with the address)
    return {"member": member, "purchase": bought, "redemption": redemption, "card": card, "referrer": referrer}


def test_export_holds_every_area_and_is_audited(api: Api):
    shop = api.tenant("Export")
    who = person()
    seeded = seed(api, shop, who, api.clock.now)
    mid = seeded["member"]["id"]

    doc = shop.admin.get(f"/members/{mid}/export")
    assert doc["format"] == "treue.member-export/1" and doc["program"]["id"] == shop.program_id
    m = doc["member"]
    assert (m["email"], m["first_name"], m["last_name"], m["phone"], m["external_ref"], m["birthday"]) == (
        who["email"],
        who["first_name"],
        who["last_name"],
        who["phone"],
        who["external_ref"],
        who["birthday"],
    )
    assert m["attributes"] == who["attributes"] and m["consents"]["email"]["granted"] is True
    assert doc["consents"] and {c["channel"] for c in doc["consents"]} == {"email", "sms"}
    assert doc["balances"]["points"]["points"] == 300 - 100 + 25 and doc["balances"]["wallet"]["balance"] == "30.00"
    kinds = {tr["kind"] for tr in doc["transfers"]}
    assert {"earn", "redeem", "adjust", "cashback"} <= kinds, kinds
    assert all(tr["postings"] and sum(p["amount"] for p in tr["postings"]) == 0 for tr in doc["transfers"]
               if len({p["unit"] for p in tr["postings"]}) == 1)  # fmt: skip
    earn = next(tr for tr in doc["transfers"] if tr["kind"] == "earn" and tr["purchase_id"])
    assert earn["explanation"], earn
    assert doc["lots"] and doc["wallet_lots"]
    assert [p["id"] for p in doc["purchases"]] == [seeded["purchase"]["id"]]
    assert doc["redemptions"][0]["id"] == seeded["redemption"]["id"] and doc["coupons"][0]["code"]
    assert doc["club"]["subscriptions"] and doc["checkout_holds"]
    assert doc["cards"] == [
        {
            "id": seeded["card"]["id"],
            "brand": "visa",
            "last4": "4242",
            "exp_month": 12,
            "exp_year": 2030,
            "linked_at": doc["cards"][0]["linked_at"],
            "unlinked_at": None,
            "unlink_reason": None,
        }
    ]  # display data only: no token, no fingerprint
    assert who["token"] not in json.dumps(doc) and who["fingerprint"] not in json.dumps(doc)
    assert doc["referrals"]["codes"] and doc["referrals"]["as_referee"][0]["status"] in ("pending", "completed")
    assert "device_hash" not in doc["referrals"]["as_referee"][0]
    g = doc["gamification"]
    assert (
        g["missions_opted_in"]
        and g["badges"][0]["code"] == "fan"
        and g["leaderboard"][0]["nickname"] == who["nickname"]
    )
    assert doc["notifications"]["messages"], "the welcome notice"
    assert [s["code"] for s in doc["segments"]] == ["vip"]
    assert doc["surveys"][0]["comment"] == who["comment"] and doc["surveys"][0]["score"] == 9
    assert {e["name"] for e in doc["events"]} >= {"review.created", "survey.answered"}
    assert {a["action"] for a in doc["audit"]} >= {"member.update", "points.adjust"}
    assert doc["tier"]["member_id"] == mid

    with api.engine.connect() as conn:
        exports = conn.execute(select(t.audit_log.c.actor, t.audit_log.c.at).where(
            t.audit_log.c.program_id == UUID(shop.program_id), t.audit_log.c.action == "member.export",
            t.audit_log.c.target_id == mid)).all()  # fmt: skip
    assert len(exports) == 1 and exports[0].actor.startswith("key:"), exports


def _sums_per_unit(engine, program_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.postings.c.unit, func.sum(t.postings.c.amount)).where(
            t.postings.c.program_id == UUID(program_id)).group_by(t.postings.c.unit)).all()  # fmt: skip
    return {unit: int(total) for unit, total in rows}


def test_erasure_leaves_no_personal_value_and_keeps_the_ledger(api: Api):
    shop = api.tenant("Erase")
    who = person()
    seeded = seed(api, shop, who, api.clock.now)
    mid = seeded["member"]["id"]
    card_number = seeded["member"]["card_number"]
    pid = UUID(shop.program_id)
    day = api.clock.now.date()
    before_kpis = kpis(api.uow(), pid, date(day.year, 1, 1), day, api.clock.now)
    balance = shop.read_only.get(f"/members/{mid}/balance")
    assert balance["points"] == 225
    values = [
        who[k]
        for k in (
            "first_name",
            "last_name",
            "email",
            "phone",
            "external_ref",
            "nickname",
            "comment",
            "token",
            "fingerprint",
        )
    ] + [who["attributes"]["favourite_colour"], card_number]
    text = database_text(api.engine)
    assert all(v in text for v in values), [v for v in values if v not in text]  # the scan would see them

    done = shop.admin.post(f"/members/{mid}/erase", {"reason": f"asked by phone ({who['first_name']})"}, status=200)
    assert (
        done["status"] == "erased" and done["points_forfeited"] == 225 and done["wallet_forfeited"] == {"EUR": "30.00"}
    )

    text = database_text(api.engine)
    assert [v for v in values if v in text] == []
    assert who["device"] not in text  # the referral screen kept only a digest of it, now gone too
    assert api.verify(shop.program_id) == []
    assert all(total == 0 for total in _sums_per_unit(api.engine, shop.program_id).values())
    after_kpis = kpis(api.uow(), pid, date(day.year, 1, 1), day, api.clock.now)
    for key in ("revenue", "purchases", "members_total", "points_issued", "points_redeemed", "nps_answers"):
        assert after_kpis[key] == before_kpis[key], key
    assert after_kpis["points_outstanding"] == before_kpis["points_outstanding"] - 225
    assert after_kpis["cashback_liability"] != before_kpis["cashback_liability"]

    member = shop.read_only.get(f"/members/{mid}")
    assert member["status"] == "erased" and member["email"] is None and member["external_ref"] is None
    assert member["card_number"] != card_number
    assert shop.read_only.get(f"/members/{mid}/balance")["points"] == 0
    assert shop.pos.get("/members", params={"card_number": card_number}) == []
    assert shop.pos.get("/members", params={"q": ""}) == [m for m in shop.pos.get("/members", params={"q": ""})
                                                            if m["id"] != mid]  # fmt: skip
    assert mid not in [m["id"] for m in shop.pos.get("/members")]
    for path, body in (
        ("/events", {"name": "review.created", "member_id": mid}),
        ("/holds", {"member_id": mid, "points": 1}),
        ("/redemptions", {"reward_id": seeded["redemption"]["reward_id"], "member_id": mid}),
        (
            "/purchases",
            {
                "member_id": mid,
                "external_order_id": "O-ERASED",
                "total": "10.00",
                "currency": "EUR",
                "occurred_at": api.clock.now.isoformat(),
            },
        ),
        (
            "/purchases",
            {
                "member_id": mid,
                "external_order_id": "O-ERASED-0",
                "total": "0.00",
                "currency": "EUR",
                "occurred_at": api.clock.now.isoformat(),
            },
        ),
    ):
        refused = shop.pos.request("POST", path, json=body)
        assert refused.status_code == 409 and refused.json()["code"] == "member_erased", (path, refused.text)
    refused = shop.pos.request("POST", "/purchases", json={"card_number": card_number, "external_order_id": "O-AFTER",
                                                           "occurred_at": api.clock.now.isoformat(), "total": "10.00",
                                                           "currency": "EUR"})  # fmt: skip
    assert refused.status_code == 404  # the old card number is nobody's any more
    refused = shop.pos.request("PATCH", f"/members/{mid}", json={"email": who["email"]})
    assert refused.status_code == 409 and refused.json()["code"] == "member_erased"
    with api.engine.connect() as conn:
        erase_audit = conn.execute(select(t.audit_log).where(t.audit_log.c.program_id == pid,
                                                             t.audit_log.c.action == "member.erase")).one()  # fmt: skip
        event = conn.execute(select(t.outbox.c.payload).where(t.outbox.c.program_id == pid,
                                                              t.outbox.c.topic == "member.erased")).scalar_one()  # fmt: skip
    assert erase_audit.reason == "[erased]" and erase_audit.actor.startswith("key:")
    assert event["member_id"] == mid and event["points_forfeited"] == 225

    again = shop.admin.post(f"/members/{mid}/erase", {"reason": "again"}, status=200)
    assert again["status"] == "already_erased" and again["erased_at"] == done["erased_at"]
    assert api.verify(shop.program_id) == []
    doc = shop.admin.get(f"/members/{mid}/export")  # the pseudonym can still be exported: nothing personal in it
    assert doc["member"]["erased_at"] and doc["erasure"]["points_forfeited"] == 225
    assert [v for v in values if v in json.dumps(doc, ensure_ascii=False)] == []


def test_another_programme_cannot_export_or_erase_and_read_only_cannot_erase(api: Api):
    a, b = api.tenant("A"), api.tenant("B")
    member = a.pos.post("/members", {"email": "only-a@privacy.example"})
    with api.unchanged(a.program_id):
        for caller in (b.admin, b.pos, b.read_only):
            response = caller.request("GET", f"/members/{member['id']}/export")
            assert response.status_code in (403, 404) and "only-a@" not in response.text
            response = caller.request("POST", f"/members/{member['id']}/erase", json={"reason": "x"})
            assert response.status_code in (403, 404)
        for caller in (a.pos, a.read_only):
            assert caller.request("POST", f"/members/{member['id']}/erase", json={"reason": "x"}).status_code == 403
            assert caller.request("GET", f"/members/{member['id']}/export").status_code == 403
    assert a.admin.get(f"/members/{member['id']}")["email"] == "only-a@privacy.example"
    bad = a.admin.request("POST", f"/members/{member['id']}/erase", json={"reason": "  "})
    assert bad.status_code == 422


def test_retention_setting_over_the_api(api: Api):
    shop = api.tenant("Retention")
    assert shop.admin.get("/privacy/retention") == {"retention_months": None, "enabled": False, "updated_at": None,
                                                    "updated_by": None}  # fmt: skip
    assert shop.admin.ok("PUT", "/privacy/retention", json={"retention_months": 24})["retention_months"] == 24
    assert shop.admin.ok("PUT", "/privacy/retention", json={"retention_months": None})["enabled"] is False
    assert shop.admin.request("PUT", "/privacy/retention", json={"retention_months": 0}).status_code == 422
    assert shop.read_only.request("GET", "/privacy/retention").status_code == 403


def test_the_audit_log_stays_append_only_outside_an_erasure(api: Api, engine):
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    shop = api.tenant("AppendOnly")
    member = shop.pos.post("/members", {"email": "append.only@privacy.example"})
    shop.pos.ok("PATCH", f"/members/{member['id']}", status=200, json={"first_name": "Ada"})
    a = t.audit_log
    for statement in (update(a).where(a.c.program_id == UUID(shop.program_id)).values(reason="rewritten"),
                      delete(a).where(a.c.program_id == UUID(shop.program_id))):  # fmt: skip
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    with engine.begin() as conn:  # an erasure's marker allows UPDATE, never DELETE
        conn.execute(t.privacy_redactions.insert().values(program_id=UUID(shop.program_id),
                                                          member_id=UUID(member["id"]), started_at=api.clock.now))  # fmt: skip
        with pytest.raises(DBAPIError, match="append-only"), conn.begin_nested():
            conn.execute(delete(a).where(a.c.program_id == UUID(shop.program_id)))
        conn.execute(t.privacy_redactions.delete().where(t.privacy_redactions.c.program_id == UUID(shop.program_id)))
