"""The notifications API over HTTP on SQLite and PostgreSQL: settings, templates (preview, sandbox refusals as
422 problems), consents with the double opt-in link, one-click unsubscribe (RFC 8058), inbox, log and bounces."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.integration.api_helpers import Api
from tests.integration.web_helpers import Outbox
from treue.services import notifications as cases
from treue.services.webhooks import relay_outbox

BASE = "https://loyalty.example"


@pytest.fixture(autouse=True)
def public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREUE_PUBLIC_URL", BASE)


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def flush(api: Api, mailer: Outbox) -> None:
    relay_outbox(api.uow, api.clock())
    cases.send_due(api.uow, api.clock, "w1", mailer)


def test_settings_are_read_and_merged(api: Api):
    a = api.tenant()
    settings = a.read_only.get("/notifications/settings")
    assert settings["quiet_hours"] == {"start": "21:00", "end": "08:00"} and settings["weekly_marketing_cap"] == 3
    assert settings["triggers"]["points_expiring"]["days"] == [30, 7]
    assert settings["triggers"]["monthly_statement"]["purpose"] == "marketing"
    changed = a.admin.ok("PUT", "/notifications/settings", json={
        "quiet_hours": {"start": "22:00", "end": "07:30"},
        "triggers": {"points_expiring": {"days": [14, 3]}, "points_earned": {"mode": "digest"}}})  # fmt: skip
    assert changed["quiet_hours"] == {"start": "22:00", "end": "07:30"}
    assert changed["triggers"]["points_expiring"]["days"] == [14, 3]
    assert changed["weekly_marketing_cap"] == 3  # untouched
    again = a.admin.ok("PUT", "/notifications/settings", json={"weekly_marketing_cap": 1})
    assert again["triggers"]["points_earned"]["mode"] == "digest" and again["weekly_marketing_cap"] == 1
    api.refused(a.admin, "PUT", "/notifications/settings", 422, "invalid_input", a.program_id,
                json={"triggers": {"welcome": {"mode": "digest"}}})  # fmt: skip
    api.refused(a.admin, "PUT", "/notifications/settings", 422, "invalid_input", a.program_id,
                json={"triggers": {"nonsense": {"enabled": False}}})  # fmt: skip
    api.refused(a.admin, "PUT", "/notifications/settings", 422, "invalid_input", a.program_id,
                json={"quiet_hours": {"start": "25:00", "end": "07:00"}})  # fmt: skip
    api.refused(a.pos, "PUT", "/notifications/settings", 403, "forbidden", a.program_id, json={})


def test_templates_are_previewed_saved_and_the_sandbox_refuses_unsafe_code(api: Api):
    a = api.tenant()
    listed = a.read_only.get("/notifications/templates")
    welcome = next(t for t in listed if t["trigger"] == "welcome")
    assert "card_number" in welcome["variables"] and len(welcome["templates"]) == 6  # 3 channels x 2 locales
    shown = a.admin.ok("POST", "/notifications/templates/preview", status=200,
                       json={"trigger": "points_expiring", "channel": "email", "locale": "en",
                             "data": {"points": 1500}})  # fmt: skip
    assert shown["subject"] == "1.500 points valid only until 2026-12-31" and "Hello Alex," in shown["text"]
    assert "<p>" in shown["html"]
    # A draft: HTML is autoescaped, text is not.
    draft = a.admin.ok("POST", "/notifications/templates/preview", status=200, json={
        "trigger": "welcome", "locale": "de", "data": {"member": {"first_name": "<script>x</script>"}},
        "template": {"subject": "Hi {{ member.first_name }}", "text": "{{ member.first_name }}",
                     "html": "<p>{{ member.first_name }}</p>"}})  # fmt: skip
    assert draft["html"] == "<p>&lt;script&gt;x&lt;/script&gt;</p>" and draft["text"] == "<script>x</script>\n"

    unsafe = [
        "{{ member.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__.__base__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{% set x = program.update({'name': 'evil'}) %}",
    ]
    for text in unsafe:
        body = api.refused(a.admin, "PUT", "/notifications/templates", 422, "template_unsafe", a.program_id,
                           json={"trigger": "welcome", "subject": "x", "text": text})  # fmt: skip
        assert "sandbox" in body["detail"]
    german = a.admin.client.request("PUT", "/api/v1/notifications/templates", headers={
        "Authorization": f"Bearer {a.admin.token}", "Accept-Language": "de"},
        json={"trigger": "welcome", "subject": "x", "text": "{{ ''.__class__ }}"})  # fmt: skip
    assert german.status_code == 422 and german.json()["title"] == "Die Vorlage enthält nicht erlaubten Code"
    for text in ("{% if %}", "{{ no_such_variable }}", "{{ points | nofilter }}"):
        api.refused(a.admin, "PUT", "/notifications/templates", 422, "template_invalid", a.program_id,
                    json={"trigger": "welcome", "subject": "x", "text": text})  # fmt: skip
    api.refused(a.admin, "POST", "/notifications/templates/preview", 422, "template_unsafe", a.program_id,
                json={"trigger": "welcome", "template": {"subject": "{{ ''.__class__ }}", "text": "x"}})  # fmt: skip

    saved = a.admin.ok("PUT", "/notifications/templates", json={
        "trigger": "welcome", "channel": "inbox", "locale": "en", "subject": "Hey {{ member.first_name }}",
        "text": "Card {{ card_number }} at {{ program.name }}"})  # fmt: skip
    assert saved["custom"] is True and saved["preview"]["subject"] == "Hey Alex"
    member = a.pos.post("/members", {"first_name": "Ida", "locale": "en"})
    flush(api, Outbox())
    [note] = a.read_only.get(f"/members/{member['id']}/inbox")["messages"]
    assert note["subject"] == "Hey Ida" and note["text"].startswith("Card 9276 ") and "Programme" in note["text"]
    reset = a.admin.ok("POST", "/notifications/templates/reset", status=200,
                       json={"trigger": "welcome", "channel": "inbox", "locale": "en"})  # fmt: skip
    assert reset["custom"] is False and reset["subject"] == "Welcome to {{ program.name }}"


def test_double_opt_in_and_one_click_unsubscribe_over_http(api: Api):
    a = api.tenant()
    mailer = Outbox()
    member = a.pos.post("/members", {"email": "opt@example.org", "locale": "de"})
    flush(api, mailer)
    mailer.sent.clear()
    view = a.pos.ok("POST", f"/members/{member['id']}/notifications/consents", status=200,
                    json={"channel": "email", "granted": True, "source": "checkout"})  # fmt: skip
    assert view["channels"]["email"] == view["channels"]["email"] | {"granted": True, "confirmed": False,
                                                                     "effective": False, "source": "checkout"}  # fmt: skip
    flush(api, mailer)
    [confirmation] = mailer.sent
    assert confirmation.subject == "Bitte bestätigen Sie Ihre E-Mail-Adresse" and not confirmation.headers
    url = re.search(rf"{BASE}(/api/v1/inbound/notifications/confirm/\S+)", confirmation.text)
    assert url, confirmation.text
    page = api.client.get(url.group(1))
    assert page.status_code == 200 and "bestätigt" in page.text
    assert api.client.get(url.group(1)).status_code == 200  # following it twice is fine
    assert api.client.get("/api/v1/inbound/notifications/confirm/0123.nonsense").status_code == 404
    assert api.client.get("/api/v1/inbound/notifications/confirm/garbage").status_code == 404
    consents = a.read_only.get(f"/members/{member['id']}/notifications/consents")
    assert consents["channels"]["email"]["effective"] is True and consents["channels"]["push"]["granted"] is False

    # A marketing mail carries the one-click unsubscribe; the mail client POSTs to it.
    a.admin.ok("PUT", "/notifications/settings", json={"triggers": {"points_earned": {
        "purpose": "marketing", "channels": ["email"]}}})  # fmt: skip
    a.pos.post("/purchases", {"member_id": member["id"], "external_order_id": "O-1", "total": "20.00",
                              "currency": "EUR", "occurred_at": api.clock().isoformat()})  # fmt: skip
    flush(api, mailer)
    marketing = mailer.sent[-1]
    assert marketing.subject == "Sie haben 20 Punkte gesammelt"
    target = marketing.headers["List-Unsubscribe"].strip("<>")
    assert target.startswith(f"{BASE}/api/v1/inbound/notifications/unsubscribe/")
    assert marketing.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = target.removeprefix(BASE)
    assert "Abmelden" in api.client.get(path).text  # a GET only shows the button
    assert api.client.get(path + "x").status_code == 404
    assert a.read_only.get(f"/members/{member['id']}/notifications/consents")["channels"]["email"]["granted"]
    done = api.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "keine Werbung" in done.text
    after = a.read_only.get(f"/members/{member['id']}/notifications/consents")["channels"]["email"]
    assert after["granted"] is False and after["confirmed"] is False and after["source"] == "unsubscribe"
    a.pos.post("/purchases", {"member_id": member["id"], "external_order_id": "O-2", "total": "20.00",
                              "currency": "EUR", "occurred_at": api.clock().isoformat()})  # fmt: skip
    count = len(mailer.sent)
    flush(api, mailer)
    assert len(mailer.sent) == count  # nothing more: no consent


def test_inbox_read_state_log_and_bounces(api: Api):
    a = api.tenant()
    b = api.tenant("B")
    mailer = Outbox()
    member = a.pos.post("/members", {"email": "box@example.org"})
    other = a.pos.post("/members", {"email": "other@example.org"})
    flush(api, mailer)
    box = a.read_only.get(f"/members/{member['id']}/inbox")
    assert box["unread"] == 1
    note = box["messages"][0]
    api.refused(a.pos, "POST", f"/members/{other['id']}/inbox/{note['id']}/read", 404, "not_found", a.program_id)
    read = a.pos.ok("POST", f"/members/{member['id']}/inbox/{note['id']}/read", status=200)
    assert read == read | {"read": True, "unread": 0}
    assert a.read_only.get(f"/members/{member['id']}/inbox", params={"unread": "true"})["messages"] == []

    log = a.admin.get("/notifications/messages", params={"member_id": member["id"], "channel": "email"})
    [sent] = log
    assert sent["status"] == "sent" and sent["recipient"] == "box@example.org" and sent["trigger"] == "welcome"
    api.refused(a.admin, "POST", f"/notifications/messages/{note['id']}/bounce", 404, "not_found", a.program_id,
                json={"reason": "inbox messages do not bounce"})  # fmt: skip
    api.refused(b.admin, "POST", f"/notifications/messages/{sent['id']}/bounce", 404, "not_found", b.program_id,
                json={})  # fmt: skip
    bounced = a.admin.ok("POST", f"/notifications/messages/{sent['id']}/bounce", status=200,
                         json={"reason": "550 5.1.1 user unknown", "permanent": True})  # fmt: skip
    assert bounced["status"] == "bounced" and bounced["reason"] == "permanent"
    assert a.admin.get("/notifications/messages", params={"status": "bounced"})[0]["id"] == sent["id"]
    api.refused(a.admin, "GET", "/notifications/messages", 422, "invalid_input", a.program_id,
                params={"status": "lost"})  # fmt: skip
    api.refused(a.read_only, "GET", "/notifications/messages", 403, "forbidden", a.program_id)

    # Support sends the bounced email again once the address is corrected: a new message, the original kept.
    api.refused(a.admin, "POST", f"/notifications/messages/{note['id']}/resend", 404, "not_found", a.program_id,
                json={})  # fmt: skip
    api.refused(b.admin, "POST", f"/notifications/messages/{sent['id']}/resend", 404, "not_found", b.program_id,
                json={})  # fmt: skip
    a.pos.ok("PATCH", f"/members/{member['id']}", status=200, json={"email": "box2@example.org"})
    copy = a.admin.ok("POST", f"/notifications/messages/{sent['id']}/resend", status=201,
                      json={"reason": "address corrected"})  # fmt: skip
    assert copy["status"] == "queued" and copy["recipient"] == "box2@example.org" and copy["id"] != sent["id"]
    flush(api, mailer)
    assert mailer.sent[-1].to == "box2@example.org" and mailer.sent[-1].subject == sent["subject"]
    assert a.admin.get("/notifications/messages", params={"status": "bounced"})[0]["id"] == sent["id"]
