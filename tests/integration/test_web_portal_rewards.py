"""The portal's rewards catalogue over HTTP on SQLite and PostgreSQL: what the member can afford, redeeming a
reward into a coupon with a QR code, the member's coupons, and that nobody sees another member's coupon."""

from __future__ import annotations

import re
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Outbox, Web, csrf_of, text_of
from treue.services.points import get_balance
from treue.services.rewards import create_reward, get_reward, list_redemptions


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def web(engine, now, outbox) -> Web:
    return Web(engine, Clock(now), mailer=outbox)


@pytest.fixture
def catalogue(web: Web, program_id: UUID) -> dict[str, str]:
    at = web.clock()
    rewards = {"cheap": {"name": {"de": "Kaffee", "en": "Coffee"}, "type": "free_product", "cost_points": 50,
                         "sku": "COFFEE", "stock": 2},
               "dear": {"name": {"de": "Wochenende", "en": "Weekend away"}, "type": "experience",
                        "cost_points": 5000}}  # fmt: skip
    return {key: create_reward(web.uow(), program_id, values, at)["id"] for key, values in rewards.items()}


def signed_in_member(web: Web, outbox: Outbox, program_id: UUID, email: str, locale: str = "en"):
    member_id = enrol(web.uow, program_id, web.clock(), first_name="Mia", email=email, locale=locale)
    buy(web.uow, program_id, member_id, "120.00", web.clock())
    client = web.client()
    form = client.get(f"/portal/{program_id}/sign-in")
    client.post(f"/portal/{program_id}/sign-in", data={"email": email, "csrf_token": csrf_of(form.text)})
    form = client.get(f"/portal/{program_id}/sign-in")
    signed = client.post(f"/portal/{program_id}/verify", data={"email": email, "code": outbox.code(),
                                                               "csrf_token": csrf_of(form.text)})  # fmt: skip
    assert signed.status_code == 303, signed.text
    return client, member_id


def test_the_catalogue_shows_what_the_member_can_afford_first(web: Web, program_id: UUID, catalogue, outbox):
    client, _ = signed_in_member(web, outbox, program_id, "mia@example.org")
    page = client.get("/portal/rewards")
    assert page.status_code == 200
    assert "You have 120 points to spend." in text_of(page.text)
    order = re.findall(r'data-reward="([^"]+)" data-affordable="(yes|no)"', page.text)
    assert order == [(catalogue["cheap"], "yes"), (catalogue["dear"], "no")]
    assert "4,880 more points needed." in text_of(page.text)
    assert page.text.count("/redeem") == 1  # only the affordable one has a button


def test_redeeming_gives_a_coupon_with_a_qr_code(web: Web, program_id: UUID, catalogue, outbox):
    client, member_id = signed_in_member(web, outbox, program_id, "mia@example.org")
    page = client.get("/portal/rewards")
    response = client.post(f"/portal/rewards/{catalogue['cheap']}/redeem", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    (redemption,) = list_redemptions(web.uow(), program_id, member_id)
    code = redemption["coupon_code"]
    assert response.headers["location"] == f"/portal/coupons/{code}?new=1"
    coupon = client.get(response.headers["location"])
    assert coupon.status_code == 200
    assert f'data-coupon="{code}"' in coupon.text and "<svg" in coupon.text
    assert "Redeemed. Show this coupon at the till." in coupon.text
    assert get_balance(web.uow(), program_id, member_id, web.clock())["available"] == 70
    assert get_reward(web.uow(), program_id, UUID(catalogue["cheap"]))["stock"] == 1
    mine = text_of(client.get("/portal/coupons").text)
    assert "Coffee" in mine and code in mine and "Valid" in mine


def test_a_refused_redemption_is_explained_and_costs_nothing(web: Web, program_id: UUID, catalogue, outbox):
    client, member_id = signed_in_member(web, outbox, program_id, "mia@example.org", locale="de")
    page = client.get("/portal/rewards")
    assert "Sie haben 120 Punkte" in text_of(page.text)
    response = client.post(f"/portal/rewards/{catalogue['dear']}/redeem", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert get_balance(web.uow(), program_id, member_id, web.clock())["available"] == 120
    assert client.post(f"/portal/rewards/{catalogue['cheap']}/redeem", data={}).status_code == 403  # no CSRF token


def test_a_member_cannot_open_another_members_coupon(web: Web, program_id: UUID, catalogue, outbox):
    first, _ = signed_in_member(web, outbox, program_id, "mia@example.org")
    page = first.get("/portal/rewards")
    location = first.post(f"/portal/rewards/{catalogue['cheap']}/redeem",
                          data={"csrf_token": csrf_of(page.text)}).headers["location"]  # fmt: skip
    other, _ = signed_in_member(web, outbox, program_id, "tom@example.org")
    assert other.get(location).status_code == 404
    assert web.client().get("/portal/rewards").status_code == 303  # signed out: to the sign-in
