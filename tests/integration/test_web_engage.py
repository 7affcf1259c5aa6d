"""Set-up of engagement in the admin over HTTP on SQLite and PostgreSQL: missions, badges, segments, offers and the
notification templates with a live preview. Saved changes are what the services return afterwards (and audited
as the staff member); refused input shows the message next to its field and changes nothing; only managers and
owners get in."""

from __future__ import annotations

import html
import re
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Web, csrf_of, text_of
from treue.services import gamification, notifications, offers, segments
from treue.services.audit import list_audit

PAGES = ("/admin/missions", "/admin/missions/new", "/admin/badges", "/admin/badges/new", "/admin/segments",
         "/admin/segments/new", "/admin/offers", "/admin/offers/new", "/admin/templates",
         "/admin/templates/welcome/email/de")  # fmt: skip


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


def field_error(html: str, name: str) -> str:
    found = re.search(rf'id="f-{name}-error">([^<]*)<', html)
    assert found, f"no error next to {name}"
    return found.group(1)


def post(client, path: str, data: dict[str, str]):
    token = csrf_of(client.get("/admin/missions/new").text)
    return client.post(path, data={"csrf_token": token, **data})


def actors(web: Web, program_id: UUID) -> list[tuple[str, str]]:
    return [(a["action"], a["actor"]) for a in list_audit(web.uow(), program_id)]


def email_of(client) -> str:
    found = re.search(r"<span>([^<\s]+@staff\.example)", client.get("/admin/missions").text)
    assert found
    return found.group(1)


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("manager", True), ("support", False),
                                               ("analyst", False), ("partner", False)])  # fmt: skip
def test_only_managers_and_owners_set_up_engagement(web: Web, program_id: UUID, role: str, allowed: bool):
    client = web.signed_in(program_id, role, partner="default" if role == "partner" else None)
    for path in PAGES:
        assert client.get(path).status_code == (200 if allowed else 403), (role, path)
    if not allowed:  # nor can they post
        token = csrf_of(client.get("/admin").text)
        response = client.post("/admin/badges/save", data={"csrf_token": token, "new": "1", "code": "x",
                                                            "name_en": "X"})  # fmt: skip
        assert response.status_code == 403
        assert gamification.list_badges(web.uow(), program_id) == []


MISSION = {"new": "1", "code": "may-3x", "name_de": "3 Einkäufe im Mai", "name_en": "3 purchases in May",
           "description_de": "", "description_en": "", "kind": "count", "target": "3", "event": "purchase",
           "filter": "purchase.total >= 2000", "window": "month", "days": "", "starts": "2026-05-01",
           "ends": "2026-05-31", "opt_in": "1", "audience": "", "reward_points": "500", "reward_coupon": "",
           "reward_badge": "", "active": "1"}  # fmt: skip


def test_a_mission_is_created_then_edited_and_audited(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager")
    created = post(client, "/admin/badges/save", {"new": "1", "code": "may-hero", "name_en": "May hero",
                                                   "name_de": "Mai-Held", "active": "1"})  # fmt: skip
    assert created.status_code == 303
    response = post(client, "/admin/missions/save", MISSION | {"reward_badge": "may-hero"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/admin/missions/may-3x?saved=1"
    mission = gamification.get_mission(web.uow(), program_id, "may-3x")
    assert mission["goal"] == {"type": "count", "target": 3, "event": "purchase", "filter": "purchase.total >= 2000",
                               "unit": {}}  # fmt: skip
    assert mission["window"]["type"] == "month" and mission["opt_in"] is True
    assert mission["reward"] == {"points": 500, "coupon": None, "badge": "may-hero"}
    listing = text_of(client.get("/admin/missions").text)
    assert "3 purchases in May may-3x Count of events: 3" in listing and "500 points, badge may-hero" in listing

    form = client.get("/admin/missions/may-3x").text
    assert 'value="2026-05-01"' in form and 'value="2026-05-31"' in form  # local dates, the end inclusive
    assert 'name="kind" disabled' in form.replace("\n", " ") or "disabled" in form
    edited = post(client, "/admin/missions/save", {
        "new": "0", "code": "may-3x", "name_de": "3 Einkäufe im Mai", "name_en": "Three purchases in May",
        "starts": "2026-05-01", "ends": "2026-06-07", "reward_points": "750", "reward_badge": "may-hero"})  # fmt: skip
    assert edited.status_code == 303, edited.text
    mission = gamification.get_mission(web.uow(), program_id, "may-3x")
    assert mission["name"]["en"] == "Three purchases in May" and mission["reward"]["points"] == 750
    assert mission["active"] is False  # the box was not ticked
    assert mission["goal"]["target"] == 3  # the goal stays as created
    me = "staff:" + email_of(client)
    assert ("mission.create", me) in actors(web, program_id) and ("mission.update", me) in actors(web, program_id)


def test_a_refused_mission_shows_the_message_next_to_the_field_and_saves_nothing(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "owner")
    missing = post(client, "/admin/missions/save", MISSION | {"name_de": "", "name_en": "", "target": "drei"})
    assert missing.status_code == 422
    assert field_error(missing.text, "name_de") == "A name in at least one language, please."
    assert field_error(missing.text, "target") == "A whole number, please."
    bad_cel = post(client, "/admin/missions/save", MISSION | {"filter": "purchase.totl >= 2000"})
    assert bad_cel.status_code == 422
    assert "totl" in field_error(bad_cel.text, "filter")
    assert "purchase.totl &gt;= 2000" in bad_cel.text  # what was typed stays
    no_badge = post(client, "/admin/missions/save", MISSION | {"reward_badge": "nobody-has-it"})
    assert no_badge.status_code == 422 and "nobody-has-it" in field_error(no_badge.text, "reward_badge")
    assert gamification.list_missions(web.uow(), program_id) == []


def test_the_mission_filter_is_checked_as_it_is_typed(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager")
    good = post(client, "/admin/missions/check", {"event": "purchase", "filter": "purchase.total >= 2000"})
    assert good.status_code == 200 and 'data-check="valid"' in good.text and "purchase (total)" in good.text
    bad = post(client, "/admin/missions/check", {"event": "purchase", "filter": "purchase.total >= "})
    assert 'data-check="invalid"' in bad.text and "^" in bad.text


def test_a_badge_is_listed_with_its_holders_and_edited(web: Web, program_id: UUID, now):
    client = web.signed_in(program_id, "manager")
    refused = post(client, "/admin/badges/save", {"new": "1", "code": "Bad Code", "name_en": "X"})
    assert refused.status_code == 422 and "lower-case" in field_error(refused.text, "code")
    refused = post(client, "/admin/badges/save", {"new": "1", "code": "x", "name_en": "X", "rare_below_percent": "500"})
    assert refused.status_code == 422 and "at most 100" in field_error(refused.text, "rare_below_percent")
    assert gamification.list_badges(web.uow(), program_id) == []
    created = post(client, "/admin/badges/save", {"new": "1", "code": "early-bird", "name_en": "Early bird",
                                                   "rare_below_percent": "10", "active": "1"})  # fmt: skip
    assert created.status_code == 303
    members = [enrol(web.uow, program_id, now) for _ in range(3)]
    gamification.grant_badge(web.uow(), program_id, members[0], "early-bird", now)
    (badge,) = gamification.list_badges(web.uow(), program_id)
    row = text_of(client.get("/admin/badges").text)
    assert f"Early bird early-bird {badge['holders']} {badge['held_by_percent']} %" in row
    edited = post(client, "/admin/badges/save", {"new": "0", "code": "early-bird", "name_en": "Early bird",
                                                  "name_de": "Frühaufsteher", "rare_below_percent": "50"})  # fmt: skip
    assert edited.status_code == 303
    (badge,) = gamification.list_badges(web.uow(), program_id)
    assert badge["name"] == {"en": "Early bird", "de": "Frühaufsteher"} and badge["active"] is False
    assert badge["rare"] is True  # 1 of 3 members is below 50 %
    assert "rare" in client.get("/admin/badges").text
    assert ("badge.update", "staff:" + email_of(client)) in actors(web, program_id)


def test_a_dynamic_segment_is_created_refreshed_and_its_members_paged(web: Web, program_id: UUID, now):
    client = web.signed_in(program_id, "manager")
    big = [enrol(web.uow, program_id, now) for _ in range(3)]
    enrol(web.uow, program_id, now)  # buys nothing
    for member in big:
        buy(web.uow, program_id, member, "80.00", now)
    bad = post(client, "/admin/segments/save", {"code": "spenders", "kind": "dynamic", "name_en": "Spenders",
                                                 "condition": "member.monetry >= 5000"})  # fmt: skip
    assert bad.status_code == 422 and "monetry" in field_error(bad.text, "condition")
    nameless = post(client, "/admin/segments/save", {"code": "spenders", "kind": "dynamic",
                                                      "condition": "member.monetary >= 5000"})  # fmt: skip
    assert field_error(nameless.text, "name_de") == "A name in at least one language, please."
    assert segments.list_segments(web.uow(), program_id) == []

    check = post(client, "/admin/segments/check", {"condition": "member.monetary >= 5000"})
    assert 'data-check="valid"' in check.text
    created = post(client, "/admin/segments/save", {"code": "spenders", "kind": "dynamic", "name_en": "Spenders",
                                                     "condition": "member.monetary >= 5000"})  # fmt: skip
    assert created.status_code == 303 and created.headers["location"] == "/admin/segments/spenders?saved=1"
    stored = segments.get_segment(web.uow(), program_id, "spenders")
    assert stored["members"] == len(big)
    listing = html.unescape(text_of(client.get("/admin/segments").text))
    assert f"Spenders spenders Dynamic (a condition) member.monetary >= 5000 {len(big)}" in listing

    buy(web.uow, program_id, enrol(web.uow, program_id, now), "99.00", now)
    refreshed = post(client, "/admin/segments/spenders/refresh", {})
    assert refreshed.status_code == 200
    after = segments.get_segment(web.uow(), program_id, "spenders")["members"]
    assert after == len(big) + 1 and f'data-refreshed="{after}"' in refreshed.text
    listed = segments.segment_members(web.uow(), program_id, "spenders", limit=50)["members"]
    page = client.get("/admin/segments/spenders").text
    assert all(m["card_number"] in page for m in listed)
    assert "Next page" not in page


def test_a_static_segment_takes_an_imported_list(web: Web, program_id: UUID, now):
    client = web.signed_in(program_id, "owner")
    assert post(client, "/admin/segments/save", {"code": "press", "kind": "static", "name_en": "Press",
                                                  "condition": ""}).status_code == 303  # fmt: skip
    member = enrol(web.uow, program_id, now, email="press@example.org")
    done = post(client, "/admin/segments/press/import", {"identifiers": "press@example.org\nnobody@example.org",
                                                          "mode": "add"})  # fmt: skip
    assert done.status_code == 200 and "1 added, 0 removed, 1 not found" in text_of(done.text)
    members = segments.segment_members(web.uow(), program_id, "press")["members"]
    assert [m["member_id"] for m in members] == [str(member)]


def test_a_targeted_offer_for_a_segment_is_created_and_listed_with_its_funnel(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager")
    post(client, "/admin/segments/save", {"code": "vip", "kind": "static", "name_en": "VIP"})
    offer = {"code": "xmas5", "kind": "targeted", "name_en": "5 % cashback in December", "name_de": "",
             "starts": "2026-12-01", "ends": "2026-12-31", "segment": "vip", "partners": "",
             "effects": '[{"type": "fixed_points", "points": 200}]', "limit_per_member": "2",
             "activation_required": "1"}  # fmt: skip
    bad = post(client, "/admin/offers/save", offer | {"effects": '[{"type": "teleport"}]', "name_en": ""})
    assert bad.status_code == 422
    assert field_error(bad.text, "name_de") == "A name in at least one language, please."
    bad = post(client, "/admin/offers/save", offer | {"effects": '[{"type": "teleport"}]'})
    assert "effects" in field_error(bad.text, "effects")
    unknown = post(client, "/admin/offers/save", offer | {"segment": "nobody"})
    assert unknown.status_code == 422 and "nobody" in field_error(unknown.text, "segment")
    assert offers.list_offers(web.uow(), program_id, web.clock()) == []

    created = post(client, "/admin/offers/save", offer)
    assert created.status_code == 303, created.text
    (stored,) = offers.list_offers(web.uow(), program_id, web.clock())
    assert (stored["kind"], stored["segment"], stored["limit_per_member"]) == ("targeted", "vip", 2)
    assert stored["status"] == "upcoming" and stored["effects"] == [{"type": "fixed_points", "points": 200}]
    listing = text_of(client.get("/admin/offers").text)
    assert "5 % cashback in December Targeted (a segment) vip" in listing and "Upcoming" in listing
    detail = client.get("/admin/offers/xmas5").text
    assert 'data-funnel="shown">0<' in detail and "offer-xmas5" in detail
    assert ("offer.create", "staff:" + email_of(client)) in actors(web, program_id)


def test_a_template_is_previewed_saved_and_reset(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager")
    form = client.get("/admin/templates/welcome/email/en").text
    default = notifications.preview(web.uow(), program_id, "welcome", "email", "en")
    assert default["subject"] in text_of(form)  # the default rendered with sample data

    draft = {"trigger": "welcome", "channel": "email", "locale": "en", "subject": "Hi {{ member.first_name }}!",
             "text": "Welcome to {{ program.name }}, {{ member.first_name }}.", "html": ""}  # fmt: skip
    shown = post(client, "/admin/templates/preview", draft)
    expected = notifications.preview(web.uow(), program_id, "welcome", "email", "en",
                                     {"subject": draft["subject"], "text": draft["text"]})  # fmt: skip
    assert shown.status_code == 200 and 'data-preview="valid"' in shown.text
    assert expected["subject"] in text_of(shown.text) and expected["text"] in shown.text
    broken = post(client, "/admin/templates/preview", draft | {"text": "{{ member.nickname_unknown }"})
    assert 'data-preview="invalid"' in broken.text

    refused = post(client, "/admin/templates/save", draft | {"text": "{% for %}"})
    assert refused.status_code == 422 and field_error(refused.text, "text")
    assert not _custom(web, program_id)
    saved = post(client, "/admin/templates/save", draft)
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/templates/welcome/email/en?saved=1"
    assert _custom(web, program_id) == {"subject": draft["subject"], "text": draft["text"]}
    assert "own" in text_of(client.get("/admin/templates").text)
    assert ("notifications.template", "staff:" + email_of(client)) in actors(web, program_id)

    reset = post(client, "/admin/templates/reset", {"trigger": "welcome", "channel": "email", "locale": "en"})
    assert reset.status_code == 303 and not _custom(web, program_id)
    assert "Back to the default wording." in client.get(reset.headers["location"]).text


def _custom(web: Web, program_id: UUID) -> dict[str, str] | None:
    for item in notifications.list_templates(web.uow(), program_id):
        if item["trigger"] == "welcome":
            for tpl in item["templates"]:
                if (tpl["channel"], tpl["locale"]) == ("email", "en") and tpl["custom"]:
                    return {"subject": tpl["subject"], "text": tpl["text"]}
    return None


def test_the_pages_speak_german(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "manager", locale="de")
    assert "Neue Mission" in client.get("/admin/missions").text
    assert "Abzeichen" in client.get("/admin/badges").text
    assert "Vorschau mit Beispieldaten" in client.get("/admin/templates/welcome/email/de").text
