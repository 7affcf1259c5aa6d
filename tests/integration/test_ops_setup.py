"""Set-up pages in the admin over HTTP on SQLite and PostgreSQL: programme settings (what PATCH /program takes),
club plans and partners. Errors sit next to their fields and change nothing; the services audit every save."""

from __future__ import annotations

import re
from html import unescape
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.web_helpers import Web, csrf_of, text_of
from treue.services.audit import list_audit
from treue.services.club import list_plans
from treue.services.partners import list_partners
from treue.services.programs import get_program
from treue.services.rewards import create_reward

PAGES = ("/admin/programme", "/admin/club-plans", "/admin/club-plans/new", "/admin/partners", "/admin/partners/new")


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


def field_error(html: str, name: str) -> str:
    found = re.search(rf'id="f-{name}-error">([^<]*)<', html)
    assert found, f"no error next to {name}: {text_of(html)[-600:]}"
    return unescape(found.group(1))


def post(client, path: str, data: dict[str, str]):
    token = csrf_of(client.get("/admin/programme").text)
    return client.post(path, data={"csrf_token": token, **data})


def form_values(html: str) -> dict[str, str]:
    """The form as the browser would post it: text inputs, the selected options and the checked boxes."""
    values = dict(re.findall(r'<input id="f-(\w+)" name="\w+" type="(?:text|number|url)" value="([^"]*)"', html))
    for name, options in re.findall(r'<select id="f-(\w+)" name="\w+"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        values[name] = chosen.group(1) if chosen else ""
    for name in re.findall(r'<input type="checkbox" name="(\w+)" value="1" checked', html):
        values[name] = "1"
    return values


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("manager", True), ("support", False),
                                               ("analyst", False), ("partner", False)])  # fmt: skip
def test_only_managers_and_owners_open_the_set_up_pages(web: Web, program_id: UUID, role: str, allowed: bool):
    client = web.signed_in(program_id, role, partner="acme" if role == "partner" else None)
    for path in PAGES:
        assert client.get(path).status_code == (200 if allowed else 403), (role, path)
    if not allowed:
        assert client.post("/admin/programme", data={"name": "Mine", "csrf_token": "x"}).status_code == 403
        assert get_program(web.uow(), program_id)["name"] == "Test"


def test_programme_settings_are_shown_saved_and_audited(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager")
    values = form_values(client.get("/admin/programme").text)
    assert values["name"] == "Test" and values["timezone"] == "Europe/Berlin" and values["earn_per_amount"] == "1.00"
    assert values["rounding"] == "floor" and values["expiry_policy"] == "none"
    response = post(client, "/admin/programme", values | {
        "name": "Möbelhaus Nord", "pending_days": "14", "expiry_policy": "rolling", "expiry_months": "24",
        "earn_points": "2", "earn_per_amount": "5.00", "return_policy": "only_pending", "earn_on_money_only": "1",
        "control_percent": "10"})  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == "/admin/programme?saved=1"
    program = get_program(web.uow(), program_id)
    assert (program["name"], program["pending_days"], program["expiry"]["policy"], program["expiry"]["months"]) == (
        "Möbelhaus Nord",
        14,
        "rolling",
        24,
    )
    assert program["earning"] == {"basis": "per_amount", "points": 2, "per_amount": "5.00"}
    assert program["return_policy"] == "only_pending" and program["checkout"]["earn_on_money_only"] is True
    assert program["control_percent"] in ("10", "10.00", "10.0")
    page = client.get("/admin/programme?saved=1")
    assert "Saved." in page.text and form_values(page.text)["pending_days"] == "14"
    (entry,) = [a for a in list_audit(web.uow(), program_id) if a["action"] == "program.update"]
    assert entry["actor"].startswith("staff:manager-") and entry["before"]["pending_days"] == 0
    assert entry["after"]["pending_days"] == 14


def test_bad_programme_settings_show_the_message_next_to_the_field_and_change_nothing(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "owner")
    values = form_values(client.get("/admin/programme").text)
    before = get_program(web.uow(), program_id)
    audit_before = len(list_audit(web.uow(), program_id))
    response = post(client, "/admin/programme", values | {"pending_days": "zwei", "earn_per_amount": "1.234",
                                                          "hold_minutes": "0", "rounding": "sometimes"})  # fmt: skip
    assert response.status_code == 422
    assert field_error(response.text, "pending_days") == "A whole number, please."
    assert field_error(response.text, "earn_per_amount") == "An amount such as 12.50, please."
    assert field_error(response.text, "hold_minutes") == "At least 1."
    assert field_error(response.text, "rounding") == "Choose one of the options."
    assert 'value="zwei"' in response.text  # the input is kept
    response = post(client, "/admin/programme", values | {"timezone": "Mars/Olympus_Mons"})
    assert response.status_code == 422 and "Mars/Olympus_Mons" in field_error(response.text, "timezone")
    response = post(client, "/admin/programme", values | {"expiry_policy": "rolling", "expiry_months": "0"})
    assert response.status_code == 422 and "expiry_months" in field_error(response.text, "expiry_months")
    assert get_program(web.uow(), program_id) == before
    assert len(list_audit(web.uow(), program_id)) == audit_before


def test_a_club_plan_is_created_edited_and_deactivated(web: Web, program_id: UUID, now):
    voucher = create_reward(web.uow(), program_id, {"name": {"de": "Versandgutschein"}, "type": "discount_fixed",
                                                    "cost_points": 100, "value": "4.90"}, now)  # fmt: skip
    client = web.signed_in(program_id, "owner")
    new = form_values(client.get("/admin/club-plans/new").text)
    response = post(client, "/admin/club-plans/save", new | {
        "new": "1", "code": "plus", "name_de": "Plus", "name_en": "Plus", "price": "9.90", "interval": "month",
        "trial_days": "14", "earn_multiplier": "2", "perks": "free_shipping, early_access", "bonus_points": "50",
        "voucher_reward_id": voucher["id"]})  # fmt: skip
    assert response.status_code == 303, text_of(response.text)[-500:]
    (plan,) = list_plans(web.uow(), program_id)
    assert (plan["code"], plan["price"], plan["interval"], plan["trial_days"], plan["bonus_points"]) == (
        "plus",
        "9.90",
        "month",
        14,
        50,
    )
    assert plan["benefits"]["earn_multiplier"] == "2" and plan["benefits"]["perks"] == ["early_access", "free_shipping"]
    assert plan["voucher_reward_id"] == voucher["id"] and plan["active"] is True
    assert "Plus" in text_of(client.get("/admin/club-plans").text)

    form = client.get("/admin/club-plans/plus").text
    values = form_values(form)
    assert values["trial_days"] == "14" and values["voucher_reward_id"] == voucher["id"] and "active" in values
    values.pop("active")  # unticked: the plan takes no new members
    response = post(client, "/admin/club-plans/save", values | {"code": "plus", "bonus_points": "100"})
    assert response.status_code == 303
    (plan,) = list_plans(web.uow(), program_id)
    assert (plan["active"], plan["bonus_points"], plan["price"]) == (False, 100, "9.90")
    actions = [a["action"] for a in list_audit(web.uow(), program_id) if a["target_type"] == "club_plan"]
    assert sorted(actions) == ["club_plan.create", "club_plan.update"]
    assert client.get("/admin/club-plans/gold").status_code == 404


def test_a_bad_club_plan_shows_the_message_and_creates_nothing(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager")
    new = form_values(client.get("/admin/club-plans/new").text)
    response = post(client, "/admin/club-plans/save", new | {"new": "1", "code": "plus", "name_de": "Plus",
                                                             "price": "neun", "trial_days": "-1"})  # fmt: skip
    assert response.status_code == 422
    assert field_error(response.text, "price") == "An amount such as 12.50, please."
    assert field_error(response.text, "trial_days") == "At least 0."
    response = post(client, "/admin/club-plans/save", new | {"new": "1", "code": "Plus Club!", "name_de": "Plus",
                                                             "price": "9.90"})  # fmt: skip
    assert response.status_code == 422 and "plan code" in field_error(response.text, "code")
    response = post(client, "/admin/club-plans/save", new | {"new": "1", "code": "plus", "name_de": "", "name_en": "",
                                                             "price": "9.90"})  # fmt: skip
    assert response.status_code == 422 and "at least one language" in field_error(response.text, "name_de")
    response = post(client, "/admin/club-plans/save", new | {"new": "1", "code": "plus", "name_de": "Plus",
                                                             "price": "9.90", "earn_multiplier": "99"})  # fmt: skip
    assert response.status_code == 422 and "earn_multiplier" in field_error(response.text, "earn_multiplier")
    assert list_plans(web.uow(), program_id) == []


def test_a_partner_is_created_and_its_terms_edited(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "owner")
    new = form_values(client.get("/admin/partners/new").text)
    response = post(client, "/admin/partners/save", new | {
        "new": "1", "code": "baeckerei-schmidt", "name": "Bäckerei Schmidt", "issue_price": "0.01",
        "issue_points": "1", "redeem_price": "0.80", "redeem_points": "100", "billing": "prepaid",
        "stores": "Markt 1, Bahnhof", "channels": "store"})  # fmt: skip
    assert response.status_code == 303, text_of(response.text)[-500:]
    (partner,) = list_partners(web.uow(), program_id)
    assert (partner["issue_price"], partner["redeem_price"], partner["redeem_points"], partner["billing"]) == (
        "0.01",
        "0.80",
        100,
        "prepaid",
    )
    assert partner["stores"] == ["Markt 1", "Bahnhof"] and partner["channels"] == ["store"]
    assert "Bäckerei Schmidt" in text_of(client.get("/admin/partners").text)

    values = form_values(client.get("/admin/partners/baeckerei-schmidt").text)
    assert values["redeem_points"] == "100" and values["billing"] == "prepaid"
    response = post(client, "/admin/partners/save", values | {"code": "baeckerei-schmidt", "issue_price": "0.02",
                                                              "billing": "postpaid"})  # fmt: skip
    assert response.status_code == 303
    (partner,) = list_partners(web.uow(), program_id)
    assert (partner["issue_price"], partner["billing"], partner["redeem_price"]) == ("0.02", "postpaid", "0.80")
    (entry,) = [a for a in list_audit(web.uow(), program_id) if a["action"] == "partner.update"]
    assert entry["before"]["issue_price"] == "0.01" and entry["after"]["issue_price"] == "0.02"
    assert client.get("/admin/partners/nobody").status_code == 404


def test_a_bad_partner_shows_the_message_and_changes_nothing(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager")
    new = form_values(client.get("/admin/partners/new").text)
    response = post(client, "/admin/partners/save", new | {"new": "1", "code": "default", "name": "Wir"})
    assert response.status_code == 422 and "'default'" in field_error(response.text, "code")
    response = post(client, "/admin/partners/save", new | {"new": "1", "code": "acme", "name": "Acme",
                                                           "issue_price": "x", "redeem_points": "0"})  # fmt: skip
    assert response.status_code == 422
    assert field_error(response.text, "issue_price") == "An amount such as 12.50, please."
    assert field_error(response.text, "redeem_points") == "At least 1."
    assert list_partners(web.uow(), program_id) == []
    assert post(client, "/admin/partners/save", new | {"new": "1", "code": "acme", "name": "Acme"}).status_code == 303
    response = post(client, "/admin/partners/save", new | {"new": "1", "code": "acme", "name": "Acme again"})
    assert response.status_code == 422 and "exists" in field_error(response.text, "code")
    assert [p["name"] for p in list_partners(web.uow(), program_id)] == ["Acme"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/admin/programme", "Programmeinstellungen"),
        ("/admin/club-plans/new", "Kostenlose Probetage"),
        ("/admin/partners/new", "Neuer Partner"),
        ("/admin/operations/keys", "Neuer Schlüssel"),
        ("/admin/operations/webhooks", "Neuer Webhook"),
        ("/admin/operations/import", "Einkäufe importieren"),
        ("/admin/operations/audit", "Prüfprotokoll"),
    ],
)
def test_the_pages_speak_german(web: Web, program_id: UUID, path: str, words: str):
    client = web.signed_in(program_id, "owner", locale="de")
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-language"] == "de"
    assert words in response.text
