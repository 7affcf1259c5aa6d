"""The main flows through HTTP, on SQLite and PostgreSQL: every refusal is a problem and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.integration.api_helpers import Api, Caller, luhn_ok


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def purchase_body(member: dict, order: str, at: datetime, total: str = "60.00", **kw) -> dict:
    body = {"member_id": member["id"], "external_order_id": order, "occurred_at": at.isoformat(), "total": total,
            "currency": "EUR"}  # fmt: skip
    return body | kw


THREE_LINES = [
    {"sku": "CHAIR", "quantity": 2, "unit_price": "10.00", "category": "furniture"},
    {"sku": "LAMP", "quantity": 1, "unit_price": "15.00", "category": "lighting"},
    {"sku": "CUP", "quantity": 5, "unit_price": "5.00", "category": "kitchen"},
]  # 20 + 15 + 25 = 60.00


def balance(caller, member: dict) -> dict:
    return caller.get(f"/members/{member['id']}/balance")


def test_operator_creates_programmes_and_keys(api: Api):
    program = api.operator.post("/programs", {"name": "Möbelhaus", "currency": "EUR", "timezone": "Europe/Berlin",
                                              "pending_days": 7, "return_policy": "allow_negative"})  # fmt: skip
    assert (program["name"], program["pending_days"], program["return_policy"]) == ("Möbelhaus", 7, "allow_negative")
    assert program["id"] in [p["id"] for p in api.operator.get("/programs")]
    admin = api.key(program["id"], "admin")
    assert admin.get("/program")["id"] == program["id"]
    assert [k["scope"] for k in admin.get("/keys")] == ["admin"]
    assert all("key" not in k and "secret_hash" not in k for k in admin.get("/keys"))  # the secret is shown once
    # Refusals: a bad timezone, an unknown programme, a bad scope; nothing is created.
    count = len(api.operator.get("/programs"))
    api.refused(api.operator, "POST", "/programs", 422, "invalid_input", program["id"],
                json={"name": "X", "currency": "EUR", "timezone": "Mars/Olympus"})  # fmt: skip
    api.refused(api.operator, "POST", "/programs", 422, "validation_error", program["id"],
                json={"name": "X", "currency": "euro", "timezone": "Europe/Berlin"})  # fmt: skip
    api.refused(api.operator, "POST", "/programs/00000000-0000-0000-0000-000000000000/keys", 404, "not_found",
                program["id"], json={"scope": "admin"})  # fmt: skip
    api.refused(api.operator, "POST", f"/programs/{program['id']}/keys", 422, "validation_error", program["id"],
                json={"scope": "operator"})  # fmt: skip
    assert len(api.operator.get("/programs")) == count


def test_enrol_look_up_and_update_a_member(api: Api):
    a = api.tenant()
    member = a.pos.post("/members", {"first_name": "Anna", "email": "Anna.Schmidt@Example.org",
                                     "phone": "+49 170 1234567", "external_ref": "shop-42"})  # fmt: skip
    card = member["card_number"]
    assert len(card) == 19 and card.isdigit() and luhn_ok(card)
    assert member["email"] == "anna.schmidt@example.org" and member["status"] == "active"
    assert card not in member["id"].replace("-", "")  # the card number is not derived from the id

    spaced = " ".join(card[i : i + 4] for i in range(0, 19, 4))
    for params in ({"card_number": spaced}, {"card_number": card}, {"email": "ANNA.schmidt@example.ORG"},
                   {"phone": "0049 170 123 4567"}, {"phone": "+491701234567"}, {"external_ref": "shop-42"}):  # fmt: skip
        assert [m["id"] for m in a.read_only.get("/members", params=params)] == [member["id"]], params
    other = a.pos.post("/members", {"email": "someone@example.org"})
    assert a.pos.get("/members", params={"email": "nobody@example.org"}) == []
    assert {m["id"] for m in a.pos.get("/members", params={"q": "anna"})} == {member["id"]}
    assert {m["id"] for m in a.pos.get("/members")} == {member["id"], other["id"]}
    assert a.read_only.get(f"/members/{member['id']}")["card_number"] == card

    # A bad card number is refused, not searched for.
    bad = card[:-1] + str((int(card[-1]) + 1) % 10)
    api.refused(a.pos, "GET", "/members", 422, "invalid_input", a.program_id, params={"card_number": bad})

    updated = a.pos.patch(f"/members/{member['id']}", {"last_name": "Schmidt", "email": "anna@neu.example"})
    assert (updated["first_name"], updated["last_name"], updated["email"]) == ("Anna", "Schmidt", "anna@neu.example")
    assert updated["card_number"] == card and updated["phone"] == "+491701234567"
    assert a.pos.get("/members", params={"email": "anna.schmidt@example.org"}) == []
    assert [m["id"] for m in a.pos.get("/members", params={"email": "Anna@Neu.example"})] == [member["id"]]

    # Refusals change nothing.
    api.refused(a.pos, "PATCH", f"/members/{member['id']}", 422, "invalid_input", a.program_id,
                json={"email": "not-an-email"})  # fmt: skip
    api.refused(a.pos, "PATCH", f"/members/{other['id']}", 409, "member_exists", a.program_id,
                json={"external_ref": "shop-42"})  # fmt: skip
    api.refused(a.pos, "POST", "/members", 409, "member_exists", a.program_id, json={"external_ref": "shop-42"})
    api.refused(a.pos, "POST", "/members", 422, "validation_error", a.program_id, json={"locale": "fr"})
    api.refused(a.pos, "GET", "/members/00000000-0000-0000-0000-000000000000", 404, "not_found", a.program_id)
    api.refused(a.pos, "GET", "/members/not-a-uuid", 422, "validation_error", a.program_id)
    api.refused(a.read_only, "POST", "/members", 403, "forbidden", a.program_id, json={})
    assert a.pos.get(f"/members/{member['id']}")["email"] == "anna@neu.example"


def test_purchase_balance_history_and_refunds(api: Api, now):
    a = api.tenant(pending_days=14)
    member = a.pos.post("/members", {"email": "b@example.org"})
    purchase = a.pos.post("/purchases", purchase_body(member, "ORD-1", now, lines=THREE_LINES, store="berlin-1"))
    assert purchase["points_earned"] == 60 and purchase["member_id"] == member["id"]
    assert [line["sku"] for line in purchase["lines"]] == ["CHAIR", "LAMP", "CUP"]
    rules = purchase["explanation"]["rules"]
    assert sum(r["points"] for r in rules) == 60 and all(r["reason"] for r in rules)

    b = balance(a.read_only, member)
    assert (b["points"], b["available"], b["pending"]) == (60, 0, 60)
    api.clock.advance(days=13)
    assert balance(a.read_only, member)["available"] == 0
    api.clock.advance(days=1, hours=1)
    b = balance(a.read_only, member)
    assert (b["points"], b["available"], b["pending"]) == (60, 60, 0)
    assert b["value"] == "0.60" and b["currency"] == "EUR"
    lots = a.read_only.get(f"/members/{member['id']}/lots")
    assert [(x["points"], x["state"], x["purchase_id"]) for x in lots] == [(60, "available", purchase["id"])]

    found = a.read_only.get("/purchases", params={"external_order_id": "ORD-1"})
    assert found["id"] == purchase["id"] and found["total"] == "60.00"
    api.refused(a.read_only, "GET", "/purchases", 404, "not_found", a.program_id,
                params={"external_order_id": "ORD-1", "partner": "elsewhere"})  # fmt: skip

    # A duplicate order is refused whatever its amount; another partner may reuse the number.
    api.refused(a.pos, "POST", "/purchases", 409, "duplicate_order", a.program_id,
                json=purchase_body(member, "ORD-1", now, total="999.00"))  # fmt: skip
    api.refused(a.pos, "POST", "/purchases", 422, "currency_mismatch", a.program_id,
                json=purchase_body(member, "ORD-2", now, currency="USD"))  # fmt: skip
    api.refused(a.pos, "POST", "/purchases", 422, "validation_error", a.program_id,
                json=purchase_body(member, "ORD-2", now, total=60.0))  # floats are never money  # fmt: skip
    api.refused(a.pos, "POST", "/purchases", 422, "invalid_input", a.program_id,
                json=purchase_body(member, "ORD-2", now.replace(tzinfo=None)))  # fmt: skip
    assert balance(a.pos, member)["points"] == 60

    refund = a.pos.post(f"/purchases/{purchase['id']}/refunds", {"amount": "15.00"})
    assert (refund["amount"], refund["points_taken_back"], refund["points_forgiven"]) == ("15.00", 15, 0)
    by_lines = a.pos.post(f"/purchases/{purchase['id']}/refunds", {"lines": [{"sku": "CUP", "quantity": 2}]})
    assert (by_lines["amount"], by_lines["points_taken_back"]) == ("10.00", 10)
    assert balance(a.pos, member)["points"] == 35

    for body, status, code in (
        ({"amount": "35.01"}, 422, "refund_exceeds_purchase"),
        ({"lines": [{"sku": "LAMP", "quantity": 2}]}, 422, "refund_exceeds_purchase"),
        ({"lines": [{"sku": "SOFA", "quantity": 1}]}, 422, "invalid_input"),
        ({"amount": "1.00", "lines": [{"sku": "CUP", "quantity": 1}]}, 422, "invalid_input"),
        ({"amount": "1.00", "currency": "USD"}, 422, "currency_mismatch"),
        ({"amount": "0.00"}, 422, "invalid_input"),
    ):
        api.refused(a.pos, "POST", f"/purchases/{purchase['id']}/refunds", status, code, a.program_id, json=body)
    api.refused(a.pos, "POST", "/purchases/00000000-0000-0000-0000-000000000000/refunds", 404, "not_found",
                a.program_id, json={"amount": "1.00"})  # fmt: skip

    shown = a.read_only.get(f"/purchases/{purchase['id']}")
    assert shown["refunded"] == "25.00" and [r["amount"] for r in shown["refunds"]] == ["15.00", "10.00"]
    history = a.read_only.get(f"/members/{member['id']}/history")
    assert [(h["kind"], h["points"]) for h in history] == [("reverse", -10), ("reverse", -15), ("earn", 60)]
    assert all(h["explanation"] for h in history)
    assert history[-1]["explanation"]["order"] == "ORD-1"
    assert history[0]["explanation"]["reason"] == "refund" and history[0]["corrects"] == history[-1]["id"]

    # The rest refunded: everything left goes, and the purchase is then exhausted.
    rest = a.pos.post(f"/purchases/{purchase['id']}/refunds", {})
    assert (rest["amount"], rest["points_taken_back"]) == ("35.00", 35)
    assert balance(a.pos, member)["points"] == 0
    api.refused(a.pos, "POST", f"/purchases/{purchase['id']}/refunds", 422, "refund_exceeds_purchase",
                a.program_id, json={"amount": "0.01"})  # fmt: skip
    assert api.verify(a.program_id) == []


def test_refunds_by_lines_cannot_return_more_items_than_were_bought(api: Api, now):
    a = api.tenant()
    member = a.pos.post("/members", {})
    purchase = a.pos.post("/purchases", purchase_body(member, "ORD-L", now, lines=THREE_LINES))
    first = a.pos.post(f"/purchases/{purchase['id']}/refunds", {"lines": [{"sku": "CUP", "quantity": 3}]})
    assert first["amount"] == "15.00"
    # Only two cups are left to return: three more (or the same line twice in one request) are refused.
    api.refused(a.pos, "POST", f"/purchases/{purchase['id']}/refunds", 422, "refund_exceeds_purchase",
                a.program_id, json={"lines": [{"sku": "CUP", "quantity": 3}]})  # fmt: skip
    api.refused(a.pos, "POST", f"/purchases/{purchase['id']}/refunds", 422, "refund_exceeds_purchase",
                a.program_id, json={"lines": [{"sku": "CUP", "quantity": 2}, {"sku": "CUP", "quantity": 1}]})  # fmt: skip
    assert a.pos.post(f"/purchases/{purchase['id']}/refunds", {"lines": [{"sku": "CUP", "quantity": 2}]})
    assert balance(a.pos, member)["points"] == 35
    assert api.verify(a.program_id) == []


def test_rewards_redemptions_and_coupons(api: Api, now):
    a = api.tenant()
    member = a.pos.post("/members", {"external_ref": "c-7"})
    a.pos.post("/purchases", purchase_body(member, "ORD-R", now, total="120.00"))

    # Catalogue: create, read, change (admin only).
    voucher = a.admin.post("/rewards", {"name": {"de": "Gutschein", "en": "Voucher"}, "type": "discount_fixed",
                                        "value": "5.00", "cost_points": 40, "stock": 1})  # fmt: skip
    assert (voucher["cost_points"], voucher["stock"], voucher["value"]) == (40, 1, "5.00")
    cushion = a.admin.post("/rewards", {"name": {"de": "Kissen"}, "type": "merchandise", "cost_points": 60})
    assert cushion["stock"] is None
    assert [r["id"] for r in a.read_only.get("/rewards")] == [voucher["id"], cushion["id"]]
    changed = a.admin.patch(f"/rewards/{voucher['id']}", {"cost_points": 50, "name": {"de": "Gutschein 5 €"}})
    assert (changed["cost_points"], changed["name"], changed["type"]) == (50, {"de": "Gutschein 5 €"}, "discount_fixed")
    assert a.read_only.get(f"/rewards/{voucher['id']}")["cost_points"] == 50
    api.refused(a.pos, "PATCH", f"/rewards/{voucher['id']}", 403, "forbidden", a.program_id, json={"cost_points": 1})
    api.refused(a.pos, "POST", "/rewards", 403, "forbidden", a.program_id,
                json={"name": {"de": "X"}, "type": "merchandise", "cost_points": 1})  # fmt: skip
    api.refused(a.admin, "POST", "/rewards", 422, "validation_error", a.program_id,
                json={"name": {"de": "X"}, "type": "merchandise", "cost_points": 0})  # fmt: skip
    pricey = a.admin.post("/rewards", {"name": {"de": "Sofa"}, "type": "merchandise", "cost_points": 1000})
    hidden = a.admin.post("/rewards", {"name": {"de": "Alt"}, "type": "merchandise", "cost_points": 1})
    a.admin.patch(f"/rewards/{hidden['id']}", {"active": False})
    assert hidden["id"] not in [r["id"] for r in a.read_only.get("/rewards", params={"active": True})]

    # Redeem: points leave, a coupon comes back; the coupon works exactly once.
    redemption = a.pos.post("/redemptions", {"reward_id": voucher["id"], "card_number": member["card_number"]})
    assert redemption["status"] == "active" and redemption["balance_after"] == 70
    code = redemption["coupon"]["code"]
    assert balance(a.pos, member)["points"] == 70
    assert a.read_only.get(f"/rewards/{voucher['id']}")["stock"] == 0
    api.refused(a.pos, "POST", "/redemptions", 409, "reward_out_of_stock", a.program_id,
                json={"reward_id": voucher["id"], "member_id": member["id"]})  # fmt: skip
    api.refused(a.pos, "POST", "/redemptions", 422, "insufficient_points", a.program_id,
                json={"reward_id": pricey["id"], "external_ref": "c-7"})  # fmt: skip
    api.refused(a.pos, "POST", "/redemptions", 422, "reward_unavailable", a.program_id,
                json={"reward_id": hidden["id"], "member_id": member["id"]})  # fmt: skip
    api.refused(a.pos, "POST", "/redemptions", 422, "invalid_input", a.program_id,
                json={"reward_id": cushion["id"], "member_id": member["id"], "external_ref": "c-7"})  # fmt: skip

    valid = a.read_only.get(f"/coupons/{code.lower()}")
    assert (valid["valid"], valid["reason"], valid["member_id"]) == (True, None, member["id"])
    assert valid["reward"]["id"] == voucher["id"]
    consumed = a.pos.post(f"/coupons/{code}/consume", {"order_id": "TILL-9"}, status=200)
    assert (consumed["status"], consumed["order_id"]) == ("consumed", "TILL-9")
    api.refused(a.pos, "POST", f"/coupons/{code}/consume", 422, "coupon_invalid", a.program_id, json={})
    after = a.read_only.get(f"/coupons/{code}")
    assert (after["valid"], after["reason"]) == (False, "consumed")
    api.refused(a.pos, "GET", "/coupons/NOT-A-CODE", 422, "invalid_input", a.program_id)
    unknown = code[::-1]  # well formed, but (almost surely) never issued
    api.refused(a.pos, "GET", f"/coupons/{unknown}", 404, "not_found", a.program_id)
    api.refused(a.pos, "POST", f"/coupons/{unknown}/consume", 404, "not_found", a.program_id)
    # A used coupon's redemption cannot be cancelled.
    api.refused(a.pos, "POST", f"/redemptions/{redemption['id']}/cancel", 422, "coupon_invalid", a.program_id,
                json={})  # fmt: skip

    # Cancel an unused redemption: the points and the stock come back, once.
    second = a.pos.post("/redemptions", {"reward_id": cushion["id"], "member_id": member["id"]})
    assert balance(a.pos, member)["points"] == 10
    cancelled = a.pos.post(f"/redemptions/{second['id']}/cancel", {"reason": "changed mind"}, status=200)
    assert (cancelled["status"], cancelled["points_returned"]) == ("cancelled", 60)
    assert balance(a.pos, member)["points"] == 70
    api.refused(a.pos, "POST", f"/redemptions/{second['id']}/cancel", 409, "already_cancelled", a.program_id)
    assert a.read_only.get(f"/coupons/{second['coupon']['code']}")["reason"] == "cancelled"
    api.refused(a.pos, "POST", f"/coupons/{second['coupon']['code']}/consume", 422, "coupon_invalid", a.program_id)
    listed = a.read_only.get(f"/members/{member['id']}/redemptions")
    assert {(r["id"], r["status"], r["coupon_status"]) for r in listed} == {
        (redemption["id"], "active", "consumed"), (second["id"], "cancelled", "cancelled")}  # fmt: skip
    assert api.verify(a.program_id) == []


def test_adjust_transfer_and_audit(api: Api):
    a = api.tenant()
    anna, ben = a.pos.post("/members", {"first_name": "Anna"}), a.pos.post("/members", {"first_name": "Ben"})
    adjusted = a.admin.post(f"/members/{anna['id']}/adjustments", {"points": 100, "reason": "goodwill"})
    assert adjusted["balance_after"] == 100 and balance(a.pos, anna)["available"] == 100

    for caller in (a.pos, a.shop, a.read_only):  # adjustments are for admins only
        api.refused(caller, "POST", f"/members/{anna['id']}/adjustments", 403, "forbidden", a.program_id,
                    json={"points": 5, "reason": "x"})  # fmt: skip
    api.refused(a.admin, "POST", f"/members/{anna['id']}/adjustments", 422, "insufficient_points", a.program_id,
                json={"points": -101, "reason": "too much"})  # fmt: skip
    api.refused(a.admin, "POST", f"/members/{anna['id']}/adjustments", 422, "invalid_input", a.program_id,
                json={"points": 0, "reason": "nothing"})  # fmt: skip
    api.refused(a.admin, "POST", f"/members/{anna['id']}/adjustments", 422, "validation_error", a.program_id,
                json={"points": 5})  # fmt: skip

    moved = a.pos.post(f"/members/{anna['id']}/transfers", {"to_member_id": ben["id"], "points": 40, "note": "gift"})
    assert (moved["from_balance_after"], moved["to_balance_after"]) == (60, 40)
    assert (balance(a.pos, anna)["points"], balance(a.pos, ben)["points"]) == (60, 40)
    for body, status, code in (
        ({"to_member_id": ben["id"], "points": 61}, 422, "insufficient_points"),
        ({"to_member_id": anna["id"], "points": 1}, 422, "invalid_input"),
        ({"to_member_id": "00000000-0000-0000-0000-000000000000", "points": 1}, 404, "not_found"),
        ({"to_member_id": "ben", "points": 1}, 422, "validation_error"),
        ({"to_member_id": ben["id"], "points": 0}, 422, "validation_error"),
    ):
        api.refused(a.pos, "POST", f"/members/{anna['id']}/transfers", status, code, a.program_id, json=body)
    api.refused(a.read_only, "POST", f"/members/{anna['id']}/transfers", 403, "forbidden", a.program_id,
                json={"to_member_id": ben["id"], "points": 1})  # fmt: skip

    api.refused(a.pos, "GET", "/audit", 403, "forbidden", a.program_id)
    audit = a.admin.get("/audit")
    adjust = [e for e in audit if e["action"] == "points.adjust"]
    assert len(adjust) == 1
    assert (adjust[0]["target_id"], adjust[0]["reason"], adjust[0]["actor"]) == (anna["id"], "goodwill", "key:admin")
    assert (adjust[0]["before"], adjust[0]["after"]) == ({"points": 0}, {"points": 100})
    moves = [e for e in audit if e["action"] == "points.transfer"]
    assert [(e["target_id"], e["after"]) for e in moves] == [(anna["id"], {"to": ben["id"], "points": 40})]
    kinds = [(h["kind"], h["points"]) for h in a.read_only.get(f"/members/{anna['id']}/history")]
    assert kinds == [("transfer", -40), ("adjust", 100)]
    assert api.verify(a.program_id) == []


def test_http_errors_are_problems_too(api: Api):
    a = api.tenant(scopes=("admin",))
    for method, path, status, code in (("GET", "/nowhere", 404, "not_found"),
                                       ("DELETE", "/members", 405, "method_not_allowed")):  # fmt: skip
        api.refused(a.admin, method, path, status, code, a.program_id)
    api.refused(a.admin, "POST", "/members", 422, "validation_error", a.program_id, content=b"{not json")
    api.refused(api.anonymous, "GET", "/program", 401, "unauthorized", a.program_id)
    for token in ("trk_bad_key", "trk_000000000000_wrong", "not-a-key"):
        api.refused(Caller(api.client, token), "GET", "/program", 401, "unauthorized", a.program_id)
