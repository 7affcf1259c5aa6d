"""Programme set-up in the admin over HTTP on SQLite and PostgreSQL: rewards (with stock), the tier ladder and
campaigns; server-side errors next to their fields; audited changes; only managers and owners."""

from __future__ import annotations

import re
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.web_helpers import Web, csrf_of, text_of
from treue.services.audit import list_audit
from treue.services.rewards import list_rewards
from treue.services.rules import get_campaign
from treue.services.tiers import get_ladder

PAGES = ("/admin/rewards", "/admin/rewards/new", "/admin/tiers", "/admin/campaigns", "/admin/campaigns/new")


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


def field_error(html: str, name: str) -> str:
    found = re.search(rf'id="f-{name}-error">([^<]*)<', html)
    assert found, f"no error next to {name}"
    return found.group(1)


def post(client, path: str, data: dict[str, str]):
    token = csrf_of(client.get("/admin/rewards/new").text)
    return client.post(path, data={"csrf_token": token, **data})


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("manager", True), ("support", False),
                                               ("analyst", False), ("partner", False)])  # fmt: skip
def test_only_managers_and_owners_set_the_programme_up(web: Web, program_id: UUID, role: str, allowed: bool):
    client = web.signed_in(program_id, role, partner="default" if role == "partner" else None)
    for path in PAGES:
        assert client.get(path).status_code == (200 if allowed else 403), (role, path)
    assert ('href="/admin/rewards"' in client.get("/admin").text) is allowed


def test_a_reward_is_created_with_stock_edited_and_audited(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager")
    response = post(client, "/admin/rewards/save", {
        "id": "", "name_de": "5-€-Gutschein", "name_en": "€5 voucher", "type": "discount_fixed", "cost_points": "500",
        "stock": "3", "value": "5.00", "active": "1"})  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == "/admin/rewards?saved=1"
    (reward,) = list_rewards(web.uow(), program_id)
    assert reward["name"] == {"de": "5-€-Gutschein", "en": "€5 voucher"} and reward["stock"] == 3
    assert reward["value"] == "5.00" and reward["active"] is True
    listing = text_of(client.get("/admin/rewards").text)
    assert "€5 voucher Fixed discount 500 3 yes" in listing

    form = client.get(f"/admin/rewards/{reward['id']}").text
    assert 'value="€5 voucher"' in form and 'name="stock" type="number" value="3"' in form
    response = post(client, "/admin/rewards/save", {
        "id": reward["id"], "name_en": "€5 voucher", "name_de": "5-€-Gutschein", "type": "discount_fixed",
        "cost_points": "450", "stock": "10", "value": "5.00"})  # fmt: skip
    assert response.status_code == 303
    (reward,) = list_rewards(web.uow(), program_id)
    assert (reward["cost_points"], reward["stock"], reward["active"]) == (450, 10, False)
    actions = [(a["action"], a["actor"]) for a in list_audit(web.uow(), program_id)]
    assert ("reward.create", "staff:" + client_email(client)) in actions
    assert ("reward.update", "staff:" + client_email(client)) in actions


def client_email(client) -> str:
    found = re.search(r"<span>([^<\s]+@staff\.example)", client.get("/admin/rewards").text)
    assert found
    return found.group(1)


def test_a_refused_reward_shows_the_errors_next_to_the_fields_and_keeps_the_input(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "owner")
    response = post(client, "/admin/rewards/save", {"id": "", "name_de": "", "name_en": "", "type": "gift_card",
                                                     "cost_points": "zehn", "stock": "-1", "value": "20.00"})  # fmt: skip
    assert response.status_code == 422
    assert field_error(response.text, "name_de") == "A name in at least one language, please."
    assert field_error(response.text, "cost_points") == "A whole number, please."
    assert field_error(response.text, "stock") == "At least 0."
    assert 'aria-invalid="true" aria-describedby="f-stock-error"' in response.text
    assert 'value="20.00"' in response.text  # what was typed stays
    # The service's own check (a gift card needs a value) lands next to the value field.
    response = post(client, "/admin/rewards/save", {"id": "", "name_en": "Card", "type": "gift_card",
                                                     "cost_points": "100"})  # fmt: skip
    assert response.status_code == 422
    assert "needs a positive value" in field_error(response.text, "value")
    assert list_rewards(web.uow(), program_id) == []


def test_the_tier_ladder_is_set_row_by_row_and_errors_land_on_the_row(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager", locale="de")
    page = client.get("/admin/tiers")
    assert 'name="code_0"' in page.text and 'name="code_1"' in page.text  # two empty rows to start with
    rows = {"basis": "spend", "review": "window_end", "grace_days": "14", "notice_days": "0",
            "code_0": "basis", "name_de_0": "Basis", "name_en_0": "Basic", "threshold_0": "0", "window_0": "12M",
            "benefits_0": "",
            "code_1": "gold", "name_de_1": "Gold", "name_en_1": "Gold", "threshold_1": "abc", "window_1": "12M",
            "benefits_1": '{"earn_multiplier": "2"}'}  # fmt: skip
    refused = post(client, "/admin/tiers", rows)
    assert refused.status_code == 422
    assert "threshold" in field_error(refused.text, "threshold_1")
    assert get_ladder(web.uow(), program_id)["tiers"] == []

    saved = post(client, "/admin/tiers", rows | {"threshold_1": "1000.00"})
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/tiers?saved=1"
    ladder = get_ladder(web.uow(), program_id)
    assert [(t["code"], t["threshold"]) for t in ladder["tiers"]] == [("basis", "0.00"), ("gold", "1000.00")]
    assert ladder["grace_days"] == 14 and ladder["tiers"][1]["benefits"]["earn_multiplier"] == "2"
    page = client.get("/admin/tiers?saved=1")
    assert "Gespeichert." in page.text and 'value="1000.00"' in page.text and 'name="code_3"' in page.text
    assert any(a["action"] == "tier_ladder.set" for a in list_audit(web.uow(), program_id))


def test_a_campaign_is_created_with_its_rules_then_its_budget_changed(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "owner")
    rules = '[{"id": "spring-x2", "trigger": "purchase", "effects": [{"type": "multiplier", "factor": "2"}]}]'
    bad = post(client, "/admin/campaigns/save", {"new": "1", "id": "spring", "name": "Spring", "starts": "",
                                                  "ends": "2026-04-30", "status": "active", "rules": "[{"})  # fmt: skip
    assert bad.status_code == 422
    assert field_error(bad.text, "starts") == "Required."
    assert field_error(bad.text, "rules").startswith("Not valid JSON.")
    created = post(client, "/admin/campaigns/save", {
        "new": "1", "id": "spring", "name": "Spring double points", "starts": "2026-03-01", "ends": "2026-04-30",
        "status": "active", "audience": "", "budget": "10000", "rules": rules})  # fmt: skip
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/admin/campaigns/spring?saved=1"
    assert get_campaign(web.uow(), program_id, "spring")["rules"][0]["id"] == "spring-x2"
    assert "Spring double points" in client.get("/admin/campaigns").text

    taken = post(client, "/admin/campaigns/save", {"new": "1", "id": "spring", "name": "Again", "starts": "2026-03-01",
                                                    "ends": "2026-03-31", "status": "draft", "rules": "[]"})  # fmt: skip
    assert taken.status_code == 422 and "exists already" in field_error(taken.text, "id")
    changed = post(client, "/admin/campaigns/save", {"new": "0", "id": "spring", "name": "Spring", "starts": "2026-03-01",
                                                      "ends": "2026-05-31", "status": "active", "budget": "20000"})  # fmt: skip
    assert changed.status_code == 303
    campaign = get_campaign(web.uow(), program_id, "spring")
    assert campaign["budget"]["points"] == 20000 and campaign["ends"] == "2026-05-31"
    actions = [a["action"] for a in list_audit(web.uow(), program_id)]
    assert "campaign.create" in actions and "campaign.update" in actions


def test_set_up_posts_need_the_csrf_token(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "owner")
    response = client.post("/admin/rewards/save", data={"name_en": "X", "type": "experience", "cost_points": "5"})
    assert response.status_code == 403
    assert list_rewards(web.uow(), program_id) == []
