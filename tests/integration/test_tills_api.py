"""The till through HTTP: identifying a member by anything the cashier has, the card's codes as images and a
printable page, and the store and cashier recorded through the checkout flow and plain purchases."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from uuid import UUID

import pytest
from sqlalchemy import select, update

from tests.integration.api_helpers import Api
from treue.domain.tills import ean13_of
from treue.store import tables as t
from treue.web.portal import qr_svg

PNG = b"\x89PNG\r\n\x1a\n"
LADDER = {"basis": "spend", "tiers": [{"code": "basis", "name": {"de": "Basis", "en": "Basic"}, "threshold": "0"},
                                      {"code": "gold", "name": {"de": "Gold"}, "threshold": "100.00"}]}  # fmt: skip


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def _set_card(api: Api, program_id: str, member_id: str, number: str) -> None:
    """A card number from an earlier system (an import): 12 or 13 digits."""
    with api.engine.begin() as conn:
        conn.execute(update(t.members).where(t.members.c.program_id == UUID(program_id),
                                             t.members.c.id == UUID(member_id)).values(card_number=number))  # fmt: skip


def test_identify_by_card_scan_ean13_phone_and_email(api: Api, now):
    shop = api.tenant("Möbel Mayer")
    other = api.tenant("Other")
    shop.admin.ok("PUT", "/tiers", json=LADDER)
    anna = shop.pos.post("/members", {"first_name": "Anna", "last_name": "Berg", "email": "anna@example.org",
                                      "phone": "+49 170 1111 2222"})  # fmt: skip
    ben = shop.pos.post("/members", {"first_name": "Ben", "email": "family@example.org"})
    cleo = shop.pos.post("/members", {"first_name": "Cleo", "email": "family@example.org"})
    shop.pos.post("/purchases", {"member_id": anna["id"], "external_order_id": "o-1", "occurred_at": now.isoformat(),
                                 "total": "120.00", "currency": "EUR"})  # fmt: skip

    def ids(params: dict[str, str]) -> list[str]:
        return [m["id"] for m in shop.pos.get("/till/identify", params=params)]

    card = anna["card_number"]
    found = shop.pos.get("/till/identify", params={"card_number": f"{card[:4]} {card[4:8]} {card[8:]}"})
    assert len(found) == 1
    got = found[0]
    assert (got["id"], got["card_number"], got["name"], got["matched_by"]) == (anna["id"], card, "Anna Berg",
                                                                                "card_number")  # fmt: skip
    assert got["balance"]["points"] == 120 and got["balance"]["currency"] == "EUR"
    assert got["tier"] == {"code": "gold", "name": {"de": "Gold"}}  # 120.00 spent: gold at once
    assert shop.read_only.get("/till/identify", params={"scan": card})[0]["id"] == anna["id"]  # the QR/barcode payload
    assert ids({"scan": "0170 1111 2222"}) == []  # a national number is not the stored +49... one
    assert ids({"phone": "+49 (170) 1111-2222"}) == [anna["id"]]
    assert ids({"scan": "+4917011112222"}) == [anna["id"]]
    assert ids({"email": "ANNA@example.org"}) == [anna["id"]]
    assert sorted(ids({"scan": "family@example.org"})) == sorted([ben["id"], cleo["id"]])  # shared: the till picks
    assert ben["id"] in ids({"email": "family@example.org"})
    assert shop.pos.get("/till/identify", params={"email": "family@example.org"})[0]["tier"]["code"] == "basis"
    assert ids({}) == []  # nothing given, nothing matches

    # A card number of 12 digits (from an earlier system) is found typed, and by its EAN-13 read back.
    _set_card(api, shop.program_id, ben["id"], "400638133393")
    assert ids({"card_number": "400638133393"}) == [ben["id"]]
    assert ids({"scan": "4006381333931"}) == [ben["id"]]
    assert ids({"card_number": "4006381333931"}) == [ben["id"]]

    pid = shop.program_id
    api.refused(shop.pos, "GET", "/till/identify", 422, "scan_unrecognised", pid, params={"scan": "hello"})
    api.refused(shop.pos, "GET", "/till/identify", 422, "invalid_input", pid, params={"card_number": card[:-1] + "x"})
    api.refused(shop.pos, "GET", "/till/identify", 422, "invalid_input", pid, params={"card_number": card,
                                                                                      "email": "anna@example.org"})  # fmt: skip
    # Another programme finds nothing of this one.
    assert other.pos.get("/till/identify", params={"scan": card}) == []
    assert other.pos.get("/till/identify", params={"email": "anna@example.org"}) == []


def test_card_images_png_svg_ean13_and_the_printable_card(api: Api):
    shop = api.tenant("Möbel Mayer")
    other = api.tenant("Other")
    anna = shop.pos.post("/members", {"first_name": "Anna", "locale": "de"})
    path = f"/members/{anna['id']}"
    card = anna["card_number"]

    for symbology in ("qr", "code128"):
        png = shop.read_only.client.get(f"/api/v1{path}/card.png", params={"symbology": symbology},
                                        headers={"Authorization": f"Bearer {shop.read_only.token}"})  # fmt: skip
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(PNG) and len(png.content) > 200
        svg = shop.pos.request("GET", f"{path}/card.svg", params={"symbology": symbology})
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        root = ET.fromstring(svg.content)
        assert root.tag.endswith("svg")
    # The QR code carries what the member portal's QR code carries: the card number.
    qr = shop.pos.request("GET", f"{path}/card.svg").text
    assert qr[qr.index("<svg") :].strip() == str(qr_svg(card)).strip()
    # Code 128 prints the number in clear text under the bars.
    assert card in shop.pos.request("GET", f"{path}/card.svg", params={"symbology": "code128"}).text

    # EAN-13 holds 13 digits: a 19-digit card is refused with a stable code, nothing changes.
    for image in ("png", "svg"):
        body = api.refused(shop.pos, "GET", f"{path}/card.{image}", 422, "card_not_ean13", shop.program_id,
                           params={"symbology": "ean13"})  # fmt: skip
        assert body["reason"] == "length"
    api.refused(shop.pos, "GET", f"{path}/card.svg", 422, "validation_error", shop.program_id,
                params={"symbology": "pdf417"})  # fmt: skip
    _set_card(api, shop.program_id, anna["id"], "4006381333932")  # 13 digits, wrong check digit
    body = api.refused(shop.pos, "GET", f"{path}/card.svg", 422, "card_not_ean13", shop.program_id,
                       params={"symbology": "ean13"})  # fmt: skip
    assert body["reason"] == "check_digit"
    _set_card(api, shop.program_id, anna["id"], "400638133393")  # 12 digits: the check digit is appended
    ean = shop.pos.request("GET", f"{path}/card.svg", params={"symbology": "ean13"})
    assert ean.status_code == 200 and ET.fromstring(ean.content).tag.endswith("svg")
    assert ean13_of("400638133393") == "4006381333931"
    assert "4006381333931"[1:7] in ean.text  # the human-readable digits under the bars
    assert shop.pos.request("GET", f"{path}/card.png", params={"symbology": "ean13"}).content.startswith(PNG)

    page = shop.pos.request("GET", f"{path}/card.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Möbel Mayer" in html and "Kundenkarte" in html and "4006 3813 3393" in html
    assert html.count("<svg") == 2 and "@media print" in html and "@page" in html
    assert 'aria-label="ean13 400638133393"' in html  # EAN-13 where the number allows it
    english = shop.pos.request("GET", f"{path}/card.html", params={"lang": "en"}).text
    assert "Loyalty card" in english
    # The member's name is escaped.
    shop.pos.patch(path, {"first_name": "<script>alert(1)</script>"})
    assert "<script>alert" not in shop.pos.request("GET", f"{path}/card.html").text

    # Another programme's key sees no card of this one.
    for image in ("card.svg", "card.png", "card.html"):
        api.refused(other.pos, "GET", f"{path}/{image}", 404, "not_found", shop.program_id)


def test_store_and_cashier_recorded_through_preview_reserve_capture_release_and_purchases(api: Api, now):
    shop = api.tenant("Möbel")
    member = shop.pos.post("/members", {})
    mid = member["id"]
    shop.admin.post(f"/members/{mid}/adjustments", {"points": 800, "reason": "start"})
    till = {"store": "berlin-1", "cashier": "c-17"}

    preview = shop.pos.post("/checkout/preview", {"member_id": mid, "total": "20.00", "currency": "EUR", **till},
                            status=200)  # fmt: skip
    assert (preview["store"], preview["cashier"]) == ("berlin-1", "c-17")

    hold = shop.pos.post("/holds", {"member_id": mid, "points": 200, **till})
    assert (hold["store"], hold["cashier"], hold["finished_store"], hold["finished_cashier"]) == (
        "berlin-1", "c-17", None, None)  # fmt: skip
    captured = shop.pos.post(f"/holds/{hold['id']}/capture", {"external_order_id": "T-1", "total": "20.00",
                                                              "currency": "EUR", "store": "berlin-1",
                                                              "cashier": "c-9"}, status=200)  # fmt: skip
    assert (captured["store"], captured["cashier"]) == ("berlin-1", "c-17")  # who reserved
    assert (captured["finished_store"], captured["finished_cashier"]) == ("berlin-1", "c-9")  # who captured
    purchase = shop.read_only.get(f"/purchases/{captured['purchase']['id']}")
    assert (purchase["store"], purchase["cashier"]) == ("berlin-1", "c-9")
    assert shop.read_only.get(f"/holds/{hold['id']}")["finished_cashier"] == "c-9"
    with api.engine.connect() as conn:
        explanation = conn.execute(select(t.transfers.c.explanation).where(
            t.transfers.c.id == UUID(captured["points_transfer_id"]))).scalar_one()  # fmt: skip
    assert (explanation["store"], explanation["cashier"], explanation["reason"]) == ("berlin-1", "c-9", "checkout")

    other = shop.pos.post("/holds", {"member_id": mid, "points": 100, "store": "hamburg", "cashier": "c-1"})
    released = shop.pos.post(f"/holds/{other['id']}/release", {"store": "hamburg", "cashier": "c-2"}, status=200)
    assert (released["state"], released["finished_store"], released["finished_cashier"]) == ("released", "hamburg",
                                                                                            "c-2")  # fmt: skip
    bare = shop.pos.post("/holds", {"member_id": mid, "points": 100})
    assert shop.pos.post(f"/holds/{bare['id']}/release", status=200)["finished_cashier"] is None  # the body is optional
    api.refused(shop.pos, "POST", f"/holds/{bare['id']}/release", 422, "validation_error", shop.program_id,
                json={"cashier": "x" * 65})  # fmt: skip

    plain = shop.pos.post("/purchases", {"member_id": mid, "external_order_id": "T-2", "occurred_at": now.isoformat(),
                                         "total": "5.00", "currency": "EUR", **till})  # fmt: skip
    assert (plain["store"], plain["cashier"]) == ("berlin-1", "c-17")
    assert shop.read_only.get("/purchases", params={"external_order_id": "T-2"})["cashier"] == "c-17"
    with api.engine.connect() as conn:
        row = conn.execute(select(t.purchases.c.store, t.purchases.c.cashier).where(
            t.purchases.c.id == UUID(plain["id"]))).one()  # fmt: skip
        holds = conn.execute(select(t.checkout_holds.c.cashier, t.checkout_holds.c.finished_cashier).where(
            t.checkout_holds.c.program_id == UUID(shop.program_id)).order_by(t.checkout_holds.c.created_at,
                                                                              t.checkout_holds.c.cashier)).all()  # fmt: skip
    assert tuple(row) == ("berlin-1", "c-17")
    assert sorted(map(tuple, holds), key=str) == sorted([("c-17", "c-9"), ("c-1", "c-2"), (None, None)], key=str)
    assert api.verify(shop.program_id) == []
