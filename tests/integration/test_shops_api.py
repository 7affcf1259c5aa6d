"""Inbound shop webhooks end to end, on SQLite and PostgreSQL: Shopify, WooCommerce, Shopware 6 and the generic
webhook, with payloads shaped like each platform's documented examples (tests/fixtures/shops)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.api_helpers import Api, Tenant
from tests.integration.shops_helpers import deliver, edited, raw

SHOPIFY_ORDER = "shop:820982911946154508"


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def connect(tenant: Tenant, platform: str, code: str = "shop", **options: Any) -> dict[str, Any]:
    shop: dict[str, Any] = tenant.admin.post("/shops", {"code": code, "platform": platform, **options})
    return shop


def member(tenant: Tenant, **profile: Any) -> dict[str, Any]:
    found: dict[str, Any] = tenant.admin.post("/members", profile)
    return found


def balance(tenant: Tenant, member_id: str) -> int:
    points: int = tenant.admin.get(f"/members/{member_id}/balance")["points"]
    return points


def purchase(tenant: Tenant, order: str) -> dict[str, Any]:
    found: dict[str, Any] = tenant.admin.get("/purchases", params={"external_order_id": order})
    return found


def no_purchase(tenant: Tenant, order: str) -> None:
    assert tenant.admin.request("GET", "/purchases", params={"external_order_id": order}).status_code == 404


# -- Shopify --------------------------------------------------------------------------------------------------
def test_shopify_order_earns_on_the_amount_paid_without_shipping(api: Api):
    a = api.tenant()
    shop = connect(a, "shopify", secret="shpss_0123456789abcdef")
    john = member(a, email="john@example.com")
    response = deliver(api, shop, raw("shopify_orders_paid.json"), topic="orders/paid", delivery="wh-1")
    assert response.status_code == 200, response.text
    step = response.json()["steps"][0]
    assert step["outcome"] == "recorded" and step["member_id"] == john["id"] and not step["member_created"]
    assert step["total"] == "228.10" and step["shipping"] == "4.90" and step["points"] == 228
    recorded = purchase(a, SHOPIFY_ORDER)
    assert recorded["total"] == "228.10" and recorded["member_id"] == john["id"] and recorded["channel"] == "online"
    assert recorded["store"] == "shop" and recorded["partner"] == "default"
    # Lines at their prices before the discount code; the discount is the difference to the total.
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in recorded["lines"]] == [
        ("IPOD2008BLACK", 1, "199.00"), ("CASE-LTHR", 2, "24.50")]  # fmt: skip
    assert balance(a, john["id"]) == 228


def test_shopify_signature_is_required_and_checked(api: Api):
    a = api.tenant()
    shop = connect(a, "shopify", secret="shpss_0123456789abcdef")
    member(a, email="john@example.com")
    body = raw("shopify_orders_paid.json")
    with api.unchanged(a.program_id):
        for kwargs in ({"signature": ""}, {"secret": "another-secret"}, {"signature": "bm90IGEgc2lnbmF0dXJl"}):
            response = deliver(api, shop, body, topic="orders/paid", **kwargs)
            assert response.status_code == 401 and response.json()["code"] == "signature_invalid", response.text
        no_key = api.client.post(shop["inbound_url"], content=body, headers={"x-shopify-topic": "orders/paid"})
        assert no_key.status_code == 401 and no_key.json()["code"] == "signature_invalid"
        # Signed right, but the body was changed on the way.
        response = deliver(api, shop, body, topic="orders/paid", signature=deliver_signature(shop, body + b" "))
        assert response.status_code == 401
        # An unknown connection, or the connection under another platform's path: the same 401.
        for url in (
            shop["inbound_url"].replace(shop["id"], "00000000-0000-4000-8000-000000000000"),
            shop["inbound_url"].replace("/shopify/", "/woocommerce/"),
            "/api/v1/inbound/shopify/not-an-id",
        ):
            response = api.client.post(url, content=body, headers={"x-shopify-hmac-sha256": "x"})
            assert response.status_code == 401 and response.json()["code"] == "signature_invalid"
    no_purchase(a, SHOPIFY_ORDER)


def deliver_signature(shop: dict[str, Any], body: bytes) -> str:
    from treue.domain.shops import Platform
    from treue.domain.shops.signatures import sign

    return sign(Platform(shop["platform"]), shop["secret"], body)


def test_shopify_malformed_payload_is_422_with_the_reason_and_stores_nothing(api: Api):
    a = api.tenant()
    shop = connect(a, "shopify")
    member(a, email="john@example.com")
    with api.unchanged(a.program_id):
        response = deliver(api, shop, b"{not json", topic="orders/paid")
        assert response.status_code == 422 and response.json()["code"] == "shop_payload_invalid"
        without_total = edited("shopify_orders_paid.json", lambda d: [d.pop("subtotal_price"),
                                                                      d.pop("subtotal_price_set")])  # fmt: skip
        response = deliver(api, shop, without_total, topic="orders/paid")
        assert response.status_code == 422 and "subtotal_price" in response.json()["detail"]
        bad_quantity = edited("shopify_orders_paid.json", lambda d: d["line_items"][0].update(quantity=0))
        response = deliver(api, shop, bad_quantity, topic="orders/paid")
        assert response.status_code == 422 and "line_items[0].quantity" in response.json()["detail"]
        in_dollars = edited("shopify_orders_paid.json", lambda d: d.update(currency="USD", subtotal_price_set=None))
        response = deliver(api, shop, in_dollars, topic="orders/paid")
        assert response.status_code == 422 and response.json()["code"] == "currency_mismatch"


def test_shopify_duplicates_are_idempotent(api: Api):
    a = api.tenant()
    shop = connect(a, "shopify")
    john = member(a, email="john@example.com")
    body = raw("shopify_orders_paid.json")
    first = deliver(api, shop, body, topic="orders/paid", delivery="wh-1").json()
    again = deliver(api, shop, body, topic="orders/paid", delivery="wh-1")
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["steps"] == first["steps"]
    # orders/create of the same (paid) order: another delivery, the same order - a duplicate.
    created = deliver(api, shop, body, topic="orders/create", delivery="wh-2").json()
    assert created["steps"][0]["outcome"] == "duplicate"
    assert created["steps"][0]["purchase_id"] == first["steps"][0]["purchase_id"]
    assert balance(a, john["id"]) == 228
    log = a.admin.get("/shops/shop/deliveries")
    assert [x["delivery_id"] for x in log] == ["wh-2", "wh-1"] or [x["delivery_id"] for x in log] == ["wh-1", "wh-2"]
    # An unpaid order (orders/create, pending) earns nothing and says why.
    pending = edited("shopify_orders_paid.json", lambda d: d.update(id=1, financial_status="pending"))
    response = deliver(api, shop, pending, topic="orders/create", delivery="wh-3")
    assert response.status_code == 202 and "not paid" in response.json()["reason"]
    no_purchase(a, "shop:1")


def test_shopify_partial_refunds_by_line_items_and_by_amount(api: Api):
    a = api.tenant()
    shop = connect(a, "shopify")
    john = member(a, email="john@example.com")
    deliver(api, shop, raw("shopify_orders_paid.json"), topic="orders/paid")
    by_lines = deliver(api, shop, raw("shopify_refunds_create.json"), topic="refunds/create", delivery="wh-r1")
    assert by_lines.status_code == 200, by_lines.text
    step = by_lines.json()["steps"][0]
    assert step["outcome"] == "refunded" and step["amount"] == "24.50" and step["points_taken_back"] == 24
    # 54.90 paid back, 4.90 of it shipping (which did not earn): 50.00 of goods.
    by_amount = deliver(api, shop, raw("shopify_refunds_create_amount.json"), topic="refunds/create").json()
    assert by_amount["steps"][0]["amount"] == "50.00" and by_amount["steps"][0]["points_taken_back"] == 50
    assert balance(a, john["id"]) == 228 - 74  # floor(228 * 74.50 / 228.10) = 74 in total
    assert purchase(a, SHOPIFY_ORDER)["refunded"] == "74.50"
    # The same refund delivered again under a new webhook id: a replay of the refund, nothing taken twice.
    again = deliver(api, shop, raw("shopify_refunds_create.json"), topic="refunds/create", delivery="wh-r9").json()
    assert again["steps"][0]["outcome"] == "replayed"
    assert balance(a, john["id"]) == 154 and api.verify(a.program_id) == []


def test_shopify_refund_before_its_order_is_409_then_applies_on_retry(api: Api):
    a = api.tenant()
    shop = connect(a, "shopify")
    john = member(a, email="john@example.com")
    with api.unchanged(a.program_id):
        early = deliver(api, shop, raw("shopify_refunds_create.json"), topic="refunds/create", delivery="wh-r1")
    assert early.status_code == 409 and early.json()["code"] == "shop_order_unknown"
    deliver(api, shop, raw("shopify_orders_paid.json"), topic="orders/paid")
    retried = deliver(api, shop, raw("shopify_refunds_create.json"), topic="refunds/create", delivery="wh-r1")
    assert retried.status_code == 200 and retried.json()["steps"][0]["points_taken_back"] == 24
    assert balance(a, john["id"]) == 204


def test_shipping_earns_when_the_connection_says_so(api: Api):
    a = api.tenant()
    shop = connect(a, "shopify", shipping_earns=True)
    john = member(a, email="john@example.com")
    step = deliver(api, shop, raw("shopify_orders_paid.json"), topic="orders/paid").json()["steps"][0]
    assert step["total"] == "233.00" and step["points"] == 233
    assert purchase(a, SHOPIFY_ORDER)["lines"][-1] == {"sku": "shipping", "category": None, "name": "Shipping",
                                                      "quantity": 1, "unit_price": "4.90"}  # fmt: skip
    # The shipping refund is taken back too.
    back = deliver(api, shop, raw("shopify_refunds_create_amount.json"), topic="refunds/create").json()
    assert back["steps"][0]["amount"] == "54.90"
    assert balance(a, john["id"]) == 233 - 54  # floor(233 * 54.90 / 233.00)


def test_unknown_customers_are_skipped_or_become_members_by_the_connections_policy(api: Api):
    a = api.tenant()
    strict = connect(a, "shopify", code="strict")
    skipped = deliver(api, strict, raw("shopify_orders_paid.json"), topic="orders/paid", delivery="wh-1")
    assert skipped.status_code == 202 and "unknown member" in skipped.json()["reason"], skipped.text
    no_purchase(a, "strict:820982911946154508")
    assert a.admin.get("/members", params={"email": "john@example.com"}) == []  # only the delivery log has a row
    assert a.admin.get("/shops/strict/deliveries")[0]["outcome"] == "skipped"
    # Its refund is skipped too (the order was skipped), rather than waiting for an order that never comes.
    refund = deliver(api, strict, raw("shopify_refunds_create.json"), topic="refunds/create")
    assert refund.status_code == 202 and "skipped" in refund.json()["reason"]

    welcoming = connect(a, "shopify", code="welcoming", create_members=True, match_by="customer_id")
    step = deliver(api, welcoming, raw("shopify_orders_paid.json"), topic="orders/paid").json()["steps"][0]
    assert step["outcome"] == "recorded" and step["member_created"] is True
    created = a.admin.get(f"/members/{step['member_id']}")
    assert created["email"] == "john@example.com" and created["external_ref"] == "115310627314723954"
    assert created["first_name"] == "John" and balance(a, created["id"]) == 228
    # Matched by customer id from now on: the next order finds the same member.
    second = edited("shopify_orders_paid.json", lambda d: d.update(id=2, email="other@example.com"))
    step = deliver(api, welcoming, second, topic="orders/paid").json()["steps"][0]
    assert step["member_id"] == created["id"] and step["member_created"] is False
    # A guest order without any email cannot create a member: skipped with the reason.
    guest = edited("shopify_orders_paid.json", lambda d: d.update(id=3, customer=None, email=None,
                                                                   contact_email=None))  # fmt: skip
    response = deliver(api, welcoming, guest, topic="orders/paid")
    assert response.status_code == 202 and "names no customer" in response.json()["reason"]


# -- WooCommerce ----------------------------------------------------------------------------------------------
def test_woocommerce_status_mapping_partial_and_full_refund(api: Api):
    a = api.tenant()
    shop = connect(a, "woocommerce", code="woo", secret="woo-webhook-secret")
    john = member(a, email="john.doe@example.com")
    created = deliver(api, shop, raw("woocommerce_order_created.json"), topic="order.created", delivery="1")
    assert created.status_code == 200, created.text
    step = created.json()["steps"][0]
    assert step["total"] == "53.99" and step["points"] == 53  # items after the coupon, net, without shipping
    lines = purchase(a, "woo:727")["lines"]
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in lines] == [("WOO-SINGLE-1", 2, "20.00"),
                                                                            ("product-23", 1, "19.99")]  # fmt: skip
    partial = deliver(api, shop, raw("woocommerce_order_updated_partial_refund.json"), topic="order.updated",
                      delivery="2").json()  # fmt: skip
    assert [s["outcome"] for s in partial["steps"]] == ["duplicate", "refunded"]
    assert partial["steps"][1]["points_taken_back"] == 17  # floor(53 * 17.99 / 53.99)
    # The same snapshot again (WooCommerce re-sends on every save): nothing changes.
    again = deliver(api, shop, raw("woocommerce_order_updated_partial_refund.json"), topic="order.updated",
                    delivery="3").json()  # fmt: skip
    assert [s["outcome"] for s in again["steps"]] == ["duplicate", "replayed"]
    refunded = deliver(api, shop, raw("woocommerce_order_updated_refunded.json"), topic="order.updated",
                       delivery="4").json()  # fmt: skip
    assert [s["outcome"] for s in refunded["steps"]] == ["duplicate", "replayed", "refunded", "nothing_to_refund"]
    assert refunded["steps"][2]["amount"] == "36.00"  # 52.09 paid back (with tax and shipping), 36.00 left
    assert balance(a, john["id"]) == 0 and purchase(a, "woo:727")["refunded"] == "53.99"
    assert api.verify(a.program_id) == []


def test_woocommerce_out_of_order_snapshots_and_signature(api: Api):
    a = api.tenant()
    shop = connect(a, "woocommerce", code="woo")
    john = member(a, email="john.doe@example.com")
    with api.unchanged(a.program_id):
        bad = deliver(api, shop, raw("woocommerce_order_created.json"), topic="order.created", secret="wrong-secret")
        assert bad.status_code == 401
        malformed = edited("woocommerce_order_created.json", lambda d: d["line_items"][0].update(total="36,00"))
        response = deliver(api, shop, malformed, topic="order.created")
        assert response.status_code == 422 and "line_items[0].total" in response.json()["detail"]
        # The ping WooCommerce sends when a webhook is saved (form-encoded, unsigned): answered, nothing stored.
        ping = api.client.post(shop["inbound_url"], content=b"webhook_id=12",
                               headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert ping.status_code == 200 and ping.json()["outcome"] == "ping"
    cancelled = edited("woocommerce_order_created.json", lambda d: d.update(status="cancelled"))
    response = deliver(api, shop, cancelled, topic="order.updated")
    assert response.status_code == 202 and "never recorded" in response.json()["reason"]
    no_purchase(a, "woo:727")
    # The `refunded` snapshot arrives before `processing`: recorded and refunded at once, nothing earned.
    first = deliver(api, shop, raw("woocommerce_order_updated_refunded.json"), topic="order.updated").json()
    assert [s["outcome"] for s in first["steps"]] == ["recorded", "refunded", "refunded", "nothing_to_refund"]
    late = deliver(api, shop, raw("woocommerce_order_created.json"), topic="order.created").json()
    assert late["steps"][0]["outcome"] == "duplicate"
    assert balance(a, john["id"]) == 0 and api.verify(a.program_id) == []


# -- Shopware 6 -----------------------------------------------------------------------------------------------
def test_shopware_paid_partial_and_full_refund_with_exact_json_numbers(api: Api):
    a = api.tenant()
    shop = connect(a, "shopware", code="sw", secret="sw-app-secret-0123")
    max_ = member(a, email="max.mustermann@example.de")
    paid = deliver(api, shop, raw("shopware_transaction_paid.json"))
    assert paid.status_code == 200, paid.text
    step = paid.json()["steps"][0]
    assert step["total"] == "83.97" and step["points"] == 83 and step["shipping"] == "4.89"
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in purchase(a, "sw:10060")["lines"]] == [
        ("SWDEMO10001", 3, "29.99")]  # fmt: skip
    assert deliver(api, shop, raw("shopware_transaction_paid.json")).json()["replayed"] is True  # same eventId
    partial = deliver(api, shop, raw("shopware_transaction_refunded_partially.json")).json()["steps"][0]
    assert partial["amount"] == "29.99" and partial["points_taken_back"] == 29  # the order edited to 2 items
    full = deliver(api, shop, raw("shopware_transaction_refunded.json")).json()["steps"][0]
    assert full["amount"] == "53.98" and full["points_taken_back"] == 54
    assert balance(a, max_["id"]) == 0 and api.verify(a.program_id) == []


def test_shopware_signature_malformed_and_refund_before_payment(api: Api):
    a = api.tenant()
    shop = connect(a, "shopware", code="sw")
    member(a, email="max.mustermann@example.de")
    with api.unchanged(a.program_id):
        bad = deliver(api, shop, raw("shopware_transaction_paid.json"), secret="not-the-app-secret")
        assert bad.status_code == 401 and bad.json()["code"] == "signature_invalid"

        def drop(d: dict[str, Any]) -> None:
            order = d["data"]["payload"]["order"]
            order.pop("positionPrice"), order["price"].pop("positionPrice")

        response = deliver(api, shop, edited("shopware_transaction_paid.json", drop))
        assert response.status_code == 422 and "positionPrice" in response.json()["detail"]
        early = deliver(api, shop, raw("shopware_transaction_refunded.json"))
        assert early.status_code == 409 and early.json()["code"] == "shop_order_unknown"
    other = edited("shopware_transaction_paid.json", lambda d: d["data"].update(event="checkout.order.placed"))
    ignored = deliver(api, shop, other)
    assert ignored.status_code == 202 and ignored.json()["outcome"] == "ignored"


# -- generic --------------------------------------------------------------------------------------------------
def test_generic_webhook_purchase_and_refund(api: Api):
    a = api.tenant()
    shop = connect(a, "generic", code="pos-web")
    ada = member(a, email="ada@example.com")
    bought = deliver(api, shop, raw("generic_purchase.json"))
    assert bought.status_code == 200 and bought.json()["steps"][0]["points"] == 45, bought.text
    assert deliver(api, shop, raw("generic_purchase.json")).json()["replayed"] is True  # the same id
    back = deliver(api, shop, raw("generic_refund.json")).json()["steps"][0]
    assert back["amount"] == "15.00" and back["points_taken_back"] == 15
    assert balance(a, ada["id"]) == 30
    # "sha256=" prefixed signatures are accepted; JSON numbers as amounts are not.
    body = edited("generic_purchase.json", lambda d: d.update(id="evt-2", order_id="G-2"))
    signed = deliver(api, shop, body, signature="sha256=" + deliver_signature(shop, body))
    assert signed.status_code == 200
    with api.unchanged(a.program_id):
        as_number = b'{"type": "purchase", "order_id": "G-3", "occurred_at": "2026-03-01T12:00:00Z", ' \
                    b'"currency": "EUR", "total": 45.0}'  # fmt: skip
        response = deliver(api, shop, as_number)
        assert response.status_code == 422 and "decimal strings" in response.json()["detail"]


# -- tenancy and management -----------------------------------------------------------------------------------
def test_a_connection_of_programme_b_never_records_into_programme_a(api: Api):
    a, b = api.tenant("A"), api.tenant("B")
    a_shop = connect(a, "shopify", secret="a-secret-shopify")
    b_shop = connect(b, "shopify", create_members=True, secret="b-secret-shopify")
    a_john = member(a, email="john@example.com")
    body = raw("shopify_orders_paid.json")
    with api.unchanged(a.program_id):
        # B's connection, with an order of A's customer: recorded in B, for a new member of B.
        step = deliver(api, b_shop, body, topic="orders/paid").json()["steps"][0]
        assert step["member_id"] != a_john["id"] and step["member_created"] is True
        # B's secret on A's connection URL, A's secret on B's: refused.
        assert deliver(api, a_shop, body, topic="orders/paid", secret="b-secret-shopify").status_code == 401
        # B's keys cannot see or change A's connection.
        assert b.admin.request("GET", "/shops/shop").json()["id"] == b_shop["id"]
        assert b.admin.request("PATCH", "/shops/shop", json={"active": False}).json()["id"] == b_shop["id"]
    assert b.admin.get(f"/members/{step['member_id']}")["email"] == "john@example.com"
    assert a.admin.request("GET", f"/members/{step['member_id']}").status_code == 404
    # A's own delivery still goes to A.
    assert deliver(api, a_shop, body, topic="orders/paid").json()["steps"][0]["member_id"] == a_john["id"]


def test_managing_connections(api: Api):
    a = api.tenant()
    created = connect(a, "woocommerce", code="woo", partner="default")
    assert len(created["secret"]) == 64 and created["inbound_url"] == f"/api/v1/inbound/woocommerce/{created['id']}"
    shown = a.admin.get("/shops/woo")
    assert "secret" not in shown and created["secret"] not in str(a.admin.get("/shops"))
    response = a.admin.request("POST", "/shops", json={"code": "woo", "platform": "shopify"})
    assert response.status_code == 409 and response.json()["code"] == "shop_connection_exists"
    response = a.admin.request("POST", "/shops", json={"code": "x", "platform": "magento"})
    assert response.status_code == 422
    assert a.pos.request("POST", "/shops", json={"code": "y", "platform": "generic"}).status_code == 403
    # Paused: deliveries are refused with 409 (the platform retries), nothing stored.
    a.admin.patch("/shops/woo", {"active": False, "secret": "a-new-secret-1"})
    member(a, email="john.doe@example.com")
    with api.unchanged(a.program_id):
        paused = deliver(api, created, raw("woocommerce_order_created.json"), topic="order.created",
                         secret="a-new-secret-1")  # fmt: skip
    assert paused.status_code == 409 and paused.json()["code"] == "shop_connection_paused"
    a.admin.patch("/shops/woo", {"active": True})
    # The old secret no longer works; the new one does.
    old = deliver(api, created, raw("woocommerce_order_created.json"), topic="order.created")
    assert old.status_code == 401
    ok = deliver(api, created, raw("woocommerce_order_created.json"), topic="order.created", secret="a-new-secret-1")
    assert ok.status_code == 200
    assert a.admin.get("/shops/woo/deliveries")[0]["outcome"] == "processed"


def test_concurrent_deliveries_of_one_order_record_it_once(api: Api, postgres_only, now):
    from concurrent.futures import ThreadPoolExecutor

    from treue.services.shops import receive_webhook
    from treue.store.unit_of_work import SqlUnitOfWorkFactory

    a = api.tenant()
    shop = connect(a, "shopify")
    john = member(a, email="john@example.com")
    body = raw("shopify_orders_paid.json")
    uows = SqlUnitOfWorkFactory(api.engine)

    def one(webhook: str) -> tuple[int, dict[str, Any]]:
        headers = {"x-shopify-topic": "orders/paid", "x-shopify-webhook-id": webhook,
                   "x-shopify-hmac-sha256": deliver_signature(shop, body)}  # fmt: skip
        return receive_webhook(uows, "shopify", shop["id"], headers, body, now)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, ["wh-1", "wh-2", "wh-1", "wh-3"]))
    assert all(status == 200 for status, _ in answers)
    assert sum(1 for _, x in answers if x["steps"][0]["outcome"] == "recorded" and not x.get("replayed")) == 1
    assert balance(a, john["id"]) == 228 and api.verify(a.program_id) == []
