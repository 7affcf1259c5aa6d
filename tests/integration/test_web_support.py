"""Support actions on the member profile over HTTP on SQLite and PostgreSQL: tier progress and assigning a
tier, redemptions with their coupons and cancelling one, and the GDPR data export; each audited."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Web, csrf_of, text_of
from treue.services.audit import list_audit
from treue.services.points import get_balance
from treue.services.rewards import create_reward, list_redemptions, redeem_reward
from treue.services.tiers import member_tier, set_ladder

LADDER = {"basis": "spend", "tiers": [{"code": "basis", "name": {"de": "Basis", "en": "Basic"}, "threshold": "0"},
                                     {"code": "gold", "name": {"de": "Gold", "en": "Gold"}, "threshold": "500.00"}]}  # fmt: skip


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


@pytest.fixture
def member(web: Web, program_id: UUID) -> UUID:
    set_ladder(web.uow(), program_id, LADDER, web.clock())
    member_id = enrol(web.uow, program_id, web.clock(), first_name="Anna", last_name="Berg", email="anna@example.org")
    buy(web.uow, program_id, member_id, "120.00", web.clock())
    return member_id


@pytest.fixture
def redemption(web: Web, program_id: UUID, member: UUID) -> dict:
    reward = create_reward(web.uow(), program_id, {"name": {"en": "Mug"}, "type": "merchandise", "cost_points": 100,
                                                   "stock": 5}, web.clock())  # fmt: skip
    web.clock.advance(days=15)  # past the pending period
    return redeem_reward(web.uow(), program_id, member, UUID(reward["id"]), web.clock())


def test_the_profile_shows_tier_progress_and_coupons(web: Web, program_id: UUID, member: UUID, redemption):
    client = web.signed_in(program_id, "support")
    page = client.get(f"/admin/members/{member}")
    text = text_of(page.text)
    assert 'data-tier="basis"' in page.text
    assert "Next tier: Gold · €380.00 still to spend" in text
    assert "Mug" in text and redemption["coupon"]["code"] in text and "Valid" in text


def test_support_cancels_a_redemption_with_a_reason(web: Web, program_id: UUID, member: UUID, redemption):
    client = web.signed_in(program_id, "support")
    token = csrf_of(client.get(f"/admin/members/{member}").text)
    path = f"/admin/members/{member}/redemptions/{redemption['id']}/cancel"
    refused = client.post(path, data={"csrf_token": token, "reason": " "})
    assert refused.status_code == 422 and "a reason is needed" in refused.text
    done = client.post(path, data={"csrf_token": token, "reason": "wrong mug"})
    assert done.status_code == 200 and "Redemption cancelled; 100 points are back." in done.text
    assert get_balance(web.uow(), program_id, member, web.clock())["available"] == 120
    assert list_redemptions(web.uow(), program_id, member)[0]["status"] == "cancelled"
    audit = [a for a in list_audit(web.uow(), program_id) if a["action"] == "redemption.cancel"]
    assert audit and audit[0]["reason"] == "wrong mug" and audit[0]["actor"].startswith("staff:support-")
    # Another member's redemption id through this member's profile: not found.
    other = enrol(web.uow, program_id, web.clock(), first_name="Ben")
    assert client.post(f"/admin/members/{other}/redemptions/{redemption['id']}/cancel",
                       data={"csrf_token": token, "reason": "x"}).status_code == 404  # fmt: skip


def test_support_assigns_a_tier_until_a_date(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "support")
    token = csrf_of(client.get(f"/admin/members/{member}").text)
    unknown = client.post(f"/admin/members/{member}/tier", data={"csrf_token": token, "code": "platinum",
                                                                "reason": "VIP"})  # fmt: skip
    assert unknown.status_code == 422 and 'role="alert"' in unknown.text
    done = client.post(f"/admin/members/{member}/tier", data={"csrf_token": token, "code": "gold",
                                                             "until": "2026-12-31", "reason": "VIP"})  # fmt: skip
    assert done.status_code == 200 and "Tier assigned." in done.text
    tier = member_tier(web.uow(), program_id, member, web.clock())
    assert tier["tier"]["code"] == "gold" and tier["manual"]["until"].startswith("2026-12-31T23:00")
    assert 'data-tier="gold"' in done.text and "assigned by hand" in done.text
    assert any(a["action"] == "tier.assign" for a in list_audit(web.uow(), program_id))

    # Removing the assignment needs a reason; then the earned tier is in force again.
    path = f"/admin/members/{member}/tier/remove"
    refused = client.post(path, data={"csrf_token": token, "reason": ""})
    assert refused.status_code == 422 and member_tier(web.uow(), program_id, member, web.clock())["manual"]
    removed = client.post(path, data={"csrf_token": token, "reason": "VIP period over"})
    assert removed.status_code == 200 and "The manual assignment is removed." in removed.text
    tier = member_tier(web.uow(), program_id, member, web.clock())
    assert tier["tier"]["code"] == "basis" and tier["manual"] is None and "assigned by hand" not in removed.text
    (audit,) = [a for a in list_audit(web.uow(), program_id) if a["action"] == "tier.unassign"]
    assert audit["reason"] == "VIP period over" and audit["actor"].startswith("staff:support-")
    # Nothing left to remove: the refusal is shown on the profile.
    again = client.post(path, data={"csrf_token": token, "reason": "again"})
    assert again.status_code == 422 and "no manual tier assignment" in again.text


def test_the_gdpr_export_is_a_json_download_and_is_audited(web: Web, program_id: UUID, member: UUID, redemption):
    client = web.signed_in(program_id, "support")
    response = client.get(f"/admin/members/{member}/export.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert f"member-{member}.json" in response.headers["content-disposition"]
    document = json.loads(response.text)
    assert document["member"]["email"] == "anna@example.org"
    assert {t["kind"] for t in document["history"]} == {"earn", "redeem"}
    assert document["redemptions"][0]["coupon_code"] == redemption["coupon"]["code"]
    assert document["tier"]["tier"]["code"] == "basis"
    (audit,) = [a for a in list_audit(web.uow(), program_id) if a["action"] == "member.export"]
    assert audit["target_id"] == str(member) and audit["actor"].startswith("staff:support-")


@pytest.mark.parametrize("role", ["analyst", "partner"])
def test_roles_without_support_rights_cannot_act(web: Web, program_id: UUID, member: UUID, role: str):
    client = web.signed_in(program_id, role, partner="default" if role == "partner" else None)
    assert client.get(f"/admin/members/{member}/export.json").status_code == 403
    assert client.post(f"/admin/members/{member}/tier", data={"code": "gold", "reason": "x"}).status_code == 403
