"""Card-linked earning over HTTP (issue 11): linking, the card-number refusal that writes and logs nothing, purchases
paid with a linked card, the feed import and offers."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import JSON, String, Text, select

from tests.integration.api_helpers import Api, luhn_ok
from treue.store import tables as t


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def fresh_pan() -> str:
    """A card number no other test uses: 16 random digits after '4', completed by the Luhn check digit."""
    body = "4" + "".join(secrets.choice("0123456789") for _ in range(14))
    pan = next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))
    assert luhn_ok(pan) and len(pan) == 16
    return pan


def database_text(engine) -> str:
    """Every text and JSON value of every table, as one string (the whole test database, all programmes)."""
    found: list[str] = []
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            columns = [c for c in table.c if isinstance(c.type, (String, Text, JSON))]
            if columns:
                for row in conn.execute(select(*columns)):
                    found.extend(str(value) for value in row if value is not None)
    return "\n".join(found)


CARD = {"token": "tok_api_visa_1", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2029}


def test_link_list_buy_with_the_card_and_unlink(api: Api, now):
    shop = api.tenant()
    member = shop.pos.post("/members", {"external_ref": "m-1"})
    card = shop.pos.post(f"/members/{member['id']}/cards", CARD, idem="link-1")
    assert (card["brand"], card["last4"], card["status"], card["created"]) == ("visa", "4242", "linked", True)
    again = shop.pos.post(f"/members/{member['id']}/cards", CARD, idem="link-1")  # a retry: the first answer
    assert again == card
    other = shop.pos.post("/members", {"external_ref": "m-2"})
    taken = shop.pos.request("POST", f"/members/{other['id']}/cards", json=CARD)
    assert taken.status_code == 409 and taken.json()["code"] == "card_token_taken"

    api.clock.advance(minutes=5)
    order = {"external_order_id": "T-1", "occurred_at": api.clock.now.isoformat(), "total": "25.00", "currency": "EUR",
             "payment": {"token": "tok_api_visa_1", "brand": "visa"}}  # fmt: skip
    preview = shop.pos.post("/purchases/preview", {k: v for k, v in order.items() if k != "external_order_id"},
                            status=200)  # fmt: skip
    assert preview["member_id"] == member["id"] and preview["points"] == 25
    bought = shop.pos.post("/purchases", order)
    assert bought["member_id"] == member["id"] and bought["points_earned"] == 25 and bought["payment"]["card_linked"]

    listed = shop.read_only.get(f"/members/{member['id']}/cards")
    assert [c["id"] for c in listed] == [card["id"]]
    gone = shop.pos.post(f"/members/{member['id']}/cards/{card['id']}/unlink", {"reason": "replaced"}, status=200)
    assert gone["status"] == "unlinked"
    assert shop.read_only.get(f"/members/{member['id']}/cards") == []
    assert len(shop.read_only.get(f"/members/{member['id']}/cards", params={"include_unlinked": True})) == 1
    api.clock.advance(minutes=5)
    anonymous = shop.pos.post("/purchases", {**order, "external_order_id": "T-2",
                                             "occurred_at": api.clock.now.isoformat()})  # fmt: skip
    assert anonymous["member_id"] is None and anonymous["points_earned"] == 0
    assert api.verify(shop.program_id) == []


@pytest.mark.parametrize("where", ["token", "last4", "fingerprint", "brand", "unknown_field", "spaced", "dashed"])
def test_a_card_number_is_refused_and_not_stored_logged_or_echoed(api: Api, engine, now, caplog, where):
    shop = api.tenant(scopes=("pos",))
    member = shop.pos.post("/members", {"external_ref": "pan-test"})
    pan = fresh_pan()
    groups = " ".join(pan[i : i + 4] for i in range(0, 16, 4))
    given = {"spaced": ("token", groups), "dashed": ("token", groups.replace(" ", "-")),
             "unknown_field": ("note", pan)}.get(where, (where, pan))  # fmt: skip
    body = {**CARD, "token": "tok_pan_test_1", given[0]: given[1]}
    caplog.set_level(logging.DEBUG)  # every logger, every level (SQLAlchemy would log statements and parameters)
    for idem in (None, "pan-key-1"):
        with api.unchanged(shop.program_id):
            response = shop.pos.request("POST", f"/members/{member['id']}/cards", json=body, idem=idem)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "card_number_refused" and "token" in problem["detail"]
        assert pan not in response.text and groups not in response.text and pan[-8:] not in response.text
    # A purchase whose payment token is a card number is refused the same way.
    order = {"external_order_id": "PAN-1", "occurred_at": now.isoformat(), "total": "1.00", "currency": "EUR",
             "payment": {"token": given[1]}}  # fmt: skip
    refused = shop.pos.request("POST", "/purchases", json=order, idem="pan-key-2")
    assert refused.status_code == 422 and refused.json()["code"] == "card_number_refused"
    assert pan not in refused.text

    stored = database_text(engine)
    assert pan not in stored and groups not in stored and groups.replace(" ", "-") not in stored
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "the capture must see the request's log lines"
    assert pan not in logged and groups not in logged and groups.replace(" ", "-") not in logged


def test_the_feed_over_http_is_idempotent_and_never_keeps_a_card_number(api: Api, engine, now):
    shop = api.tenant(scopes=("admin", "pos"))
    shop.admin.post("/partners", {"code": "px", "name": "Partner X"})
    assert shop.admin.post("/cards/merchants", {"merchant_id": "MID-1", "partner": "px"}) == {
        "merchant_id": "MID-1", "partner": "px"}  # fmt: skip
    member = shop.pos.post("/members", {"external_ref": "feed-1"})
    shop.pos.post(f"/members/{member['id']}/cards", {**CARD, "token": "tok_http_feed"})
    pan = fresh_pan()
    at = (now + timedelta(hours=1)).isoformat()
    content = ("merchant_id,token,amount,currency,occurred_at,authorisation_code,type,original_authorisation_code\n"
               f"MID-1,tok_http_feed,80.00,EUR,{at},H1,sale,\n"
               f"MID-1,{pan},10.00,EUR,{at},H2,sale,\n"
               f"MID-1,tok_http_feed,80.00,EUR,{at},H3,chargeback,H1\n")  # fmt: skip
    first = shop.admin.post("/cards/feeds", {"format": "csv", "content": content, "filename": "f.csv"})
    assert (first["sales"], first["chargebacks"], first["points_earned"], first["points_taken_back"]) == (1, 1, 80, 80)
    assert [e["code"] for e in first["errors"]] == ["card_number_refused"]
    second = shop.admin.post("/cards/feeds", {"format": "csv", "content": content})
    assert (second["sales"], second["chargebacks"], second["already_imported"]) == (0, 0, 2)
    assert pan not in first.__repr__() and pan not in database_text(engine)
    feeds = shop.admin.get("/cards/feeds")
    assert len(feeds) == 2 and feeds[-1]["summary"]["sales"] == 1
    refused = shop.admin.request("POST", "/cards/feeds", json={"format": "csv", "content": "a,b\n1,2\n"})
    assert refused.status_code == 422 and refused.json()["code"] == "card_feed_invalid"


def test_offers_over_http(api: Api, now):
    shop = api.tenant(scopes=("admin", "pos", "read_only"))
    offer = {"code": "spring", "name": {"de": "10 % Cashback im März", "en": "10 % cashback in March"},
             "starts": "2026-03-01", "ends": "2026-03-31", "effects": [{"type": "cashback_percent", "percent": "10"}],
             "limit_per_member": 1}  # fmt: skip
    created = shop.admin.post("/offers", offer)
    assert created["status"] == "running" and created["campaign_id"] == "offer-spring"
    duplicate = shop.admin.request("POST", "/offers", json=offer)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "offer_exists"
    member = shop.pos.post("/members", {"external_ref": "offer-1"})
    shop.pos.post(f"/members/{member['id']}/cards", {**CARD, "token": "tok_offer_http"})
    mine = shop.read_only.get(f"/members/{member['id']}/offers")
    assert [(o["code"], o["state"]) for o in mine] == [("spring", "available")]
    shown = shop.pos.post(f"/members/{member['id']}/offers/spring/shown", status=200)
    assert shown["state"] == "shown" and shown["shown_at"] is not None
    active = shop.pos.post(f"/members/{member['id']}/offers/spring/activation")
    assert active["state"] == "activated"
    missing = shop.pos.request("POST", f"/members/{member['id']}/offers/nope/activation")
    assert missing.status_code == 404 and missing.json()["code"] == "offer_not_found"
    api.clock.advance(minutes=1)
    order = {"external_order_id": "O-1", "occurred_at": api.clock.now.isoformat(), "total": "40.00",
             "currency": "EUR", "payment": {"token": "tok_offer_http"}}  # fmt: skip
    bought = shop.pos.post("/purchases", order)
    assert bought["cashback"]["amount"] == "4.00" and bought["payment"]["offers"] == ["spring"]
    second = shop.pos.post("/purchases", {**order, "external_order_id": "O-2"})
    assert "cashback" not in second  # once per member
    (listed,) = shop.read_only.get("/offers")
    assert (listed["members_activated"], listed["uses"]) == (1, 1)
    assert shop.read_only.get(f"/members/{member['id']}/offers")[0]["state"] == "exhausted"
    # German titles for the new problems.
    german = shop.pos.client.post(f"/api/v1/members/{member['id']}/cards", json={**CARD, "token": fresh_pan()},
                                  headers={"Authorization": f"Bearer {shop.pos.token}", "Accept-Language": "de"})  # fmt: skip
    assert german.json()["title"].startswith("Eine Kartennummer wird nicht angenommen")
