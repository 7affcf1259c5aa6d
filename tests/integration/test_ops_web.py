"""The admin's operations pages over HTTP on SQLite and PostgreSQL: API keys (create, rotate, revoke; the secret
shown once), webhooks with their delivery log and redelivery, the background import with its progress fragment,
and the audit log with filters and pages. Only roles with the permission get in; bad input changes nothing."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta
from uuid import UUID

import httpx
import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import enrol
from tests.integration.web_helpers import Web, csrf_of, text_of
from treue.domain.webhooks import DeliveryPolicy
from treue.services import webhooks as hooks
from treue.services.audit import list_audit, record_audit
from treue.services.keys import Unauthorized, authenticate, create_api_key, list_api_keys
from treue.services.members import get_member
from treue.services.points import get_balance
from treue.services.programs import create_program

PAGES = ("/admin/operations/keys", "/admin/operations/webhooks", "/admin/operations/import")
_SECRET = re.compile(r'value="(trk_[A-Za-z0-9_-]+)" data-secret')


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


def field_error(html: str, name: str) -> str:
    found = re.search(rf'id="f-{name}-error">([^<]*)<', html)
    assert found, f"no error next to {name}: {text_of(html)[-600:]}"
    return found.group(1)


def post(client, path: str, data: dict[str, str], **kw):
    token = csrf_of(client.get("/admin/operations/audit").text)
    return client.post(path, data={"csrf_token": token, **data}, **kw)


def secret_of(html: str) -> str:
    found = _SECRET.search(html)
    assert found, "the page shows no secret"
    return found.group(1)


@pytest.mark.parametrize(("role", "allowed"), [("owner", True), ("manager", True), ("support", False),
                                               ("analyst", False), ("partner", False)])  # fmt: skip
def test_only_roles_with_the_permissions_reach_the_operations_pages(web: Web, program_id: UUID, role: str,
                                                                     allowed: bool):  # fmt: skip
    client = web.signed_in(program_id, role, partner="acme" if role == "partner" else None)
    for path in (*PAGES, "/admin/operations/audit"):
        assert client.get(path).status_code == (200 if allowed else 403), (role, path)
    response = client.get("/admin/operations")
    assert response.status_code == (303 if allowed else 403)
    if allowed:
        assert response.headers["location"] == "/admin/operations/keys"
    assert ('href="/admin/operations"' in client.get("/admin").text) is allowed
    if not allowed:  # and a form posted anyway changes nothing
        before = list_api_keys(web.uow(), program_id)
        assert client.post("/admin/operations/keys", data={"scope": "admin", "csrf_token": "x"}).status_code == 403
        assert list_api_keys(web.uow(), program_id) == before


def test_a_key_is_created_shown_once_rotated_with_grace_and_revoked_after_confirmation(web: Web, program_id: UUID):
    client = web.signed_in(program_id, "owner")
    response = post(client, "/admin/operations/keys", {"name": "Till 3", "scope": "pos", "partner": ""})
    assert response.status_code == 201, text_of(response.text)[-500:]
    first = secret_of(response.text)
    assert "shown only once" in response.text
    (key,) = [k for k in list_api_keys(web.uow(), program_id) if k["name"] == "Till 3"]
    assert key["scope"] == "pos" and first.startswith(f"trk_{key['prefix']}_")
    assert str(authenticate(web.uow(), first, web.clock()).key_id) == key["id"]
    listing = client.get("/admin/operations/keys").text
    assert first not in listing and f"trk_{key['prefix']}_" in listing  # the list shows the prefix only
    assert "Till 3" in text_of(listing) and "never" not in text_of(listing)  # authenticated above: last used

    form = client.get(f"/admin/operations/keys/{key['id']}/rotate")
    assert form.status_code == 200 and "Grace period for the old secret" in form.text
    response = post(client, f"/admin/operations/keys/{key['id']}/rotate", {"grace_hours": "1"})
    assert response.status_code == 200
    second = secret_of(response.text)
    assert second != first and "works until" in text_of(response.text)
    assert str(authenticate(web.uow(), first, web.clock() + timedelta(minutes=59)).key_id) == key["id"]
    with pytest.raises(Unauthorized):
        authenticate(web.uow(), first, web.clock() + timedelta(hours=1))
    assert str(authenticate(web.uow(), second, web.clock() + timedelta(hours=2)).key_id) == key["id"]
    listing = text_of(client.get("/admin/operations/keys").text)
    assert "rotated" in listing and "old secret valid until" in listing

    confirm = client.get(f"/admin/operations/keys/{key['id']}/revoke")
    assert confirm.status_code == 200 and "Yes, revoke the key" in confirm.text
    assert list_api_keys(web.uow(), program_id)[0]["revoked_at"] is None  # asking changed nothing
    response = post(client, f"/admin/operations/keys/{key['id']}/revoke", {})
    assert response.status_code == 303 and response.headers["location"] == "/admin/operations/keys?revoked=1"
    with pytest.raises(Unauthorized):
        authenticate(web.uow(), second, web.clock())
    assert "revoked" in text_of(client.get("/admin/operations/keys?revoked=1").text)
    actions = [a["action"] for a in list_audit(web.uow(), program_id) if a["target_type"] == "api_key"]
    assert sorted(actions) == ["api_key.create", "api_key.revoke", "api_key.rotate"]
    assert post(client, f"/admin/operations/keys/{key['id']}/rotate", {"grace_hours": "0"}).status_code == 404


def test_bad_key_input_shows_the_message_and_creates_or_rotates_nothing(web: Web, program_id: UUID, now):
    client = web.signed_in(program_id, "manager")
    before = list_api_keys(web.uow(), program_id)
    response = post(client, "/admin/operations/keys", {"name": "x", "scope": "operator"})
    assert response.status_code == 422 and field_error(response.text, "scope") == "Choose a scope."
    response = post(client, "/admin/operations/keys", {"name": "Acme till", "scope": "partner", "partner": ""})
    assert response.status_code == 422 and "partner" in field_error(response.text, "partner")
    assert 'value="Acme till"' in response.text  # the input is kept
    assert list_api_keys(web.uow(), program_id) == before

    mine = create_api_key(web.uow(), program_id, "pos", "", now)
    response = post(client, f"/admin/operations/keys/{mine['id']}/rotate", {"grace_hours": "-3"})
    assert response.status_code == 422 and "grace period" in field_error(response.text, "grace_hours")
    response = post(client, f"/admin/operations/keys/{mine['id']}/rotate", {"grace_hours": "soon"})
    assert response.status_code == 422 and field_error(response.text, "grace_hours") == "A whole number, please."
    assert authenticate(web.uow(), mine["key"], now).name == "pos"  # still the old secret, no grace needed

    other = UUID(create_program(web.uow(), "Other", "EUR", "Europe/Berlin", {}, now)["id"])
    theirs = create_api_key(web.uow(), other, "admin", "", now)
    for path in (f"/admin/operations/keys/{theirs['id']}/rotate", f"/admin/operations/keys/{theirs['id']}/revoke"):
        assert client.get(path).status_code == 404
        assert post(client, path, {"grace_hours": "0"}).status_code == 404
    assert authenticate(web.uow(), theirs["key"], now).program_id == other


def test_webhooks_are_added_switched_off_and_their_deliveries_logged_and_redelivered(web: Web, program_id: UUID,
                                                                                      now):  # fmt: skip
    client = web.signed_in(program_id, "owner")
    response = post(client, "/admin/operations/webhooks", {"url": "ftp://shop.example/hook", "events": "*"})
    assert response.status_code == 422 and "http(s)" in field_error(response.text, "url")
    response = post(client, "/admin/operations/webhooks", {"url": "https://shop.example/hook", "events": "no such"})
    assert response.status_code == 422 and "event filter" in field_error(response.text, "events")
    assert hooks.list_endpoints(web.uow(), program_id) == []

    response = post(client, "/admin/operations/webhooks", {"url": "https://shop.example/hook",
                                                            "events": "member.*, points.earned", "description": "CRM"})  # fmt: skip
    assert response.status_code == 303
    (endpoint,) = hooks.list_endpoints(web.uow(), program_id)
    assert endpoint["events"] == ["member.*", "points.earned"] and endpoint["description"] == "CRM"
    assert response.headers["location"] == f"/admin/operations/webhooks/{endpoint['id']}?created=1"
    assert "https://shop.example/hook" in client.get("/admin/operations/webhooks").text

    # Two events: the receiver refuses the first and accepts the second.
    enrol(web.uow, program_id, now, email="a@example.org")
    enrol(web.uow, program_id, now, email="b@example.org")
    hooks.relay_outbox(web.uow, now)
    answers = iter([500, 200])
    transport = httpx.MockTransport(lambda request: httpx.Response(next(answers), text="busy"))
    with httpx.Client(transport=transport) as http:
        done = hooks.deliver_due(web.uow, web.clock, "w1", DeliveryPolicy(), client=http, program_id=program_id)
    assert done["attempted"] == 2
    page = client.get(f"/admin/operations/webhooks/{endpoint['id']}")
    rows = re.findall(r'data-delivery="([^"]+)" data-status="(\w+)"', page.text)
    assert sorted(status for _, status in rows) == ["pending", "succeeded"]
    text = text_of(page.text)
    assert "HTTP 500" in text and "HTTP 200" in text and "member.enrolled" in text
    assert text.count("Redeliver") == 1  # a pending delivery is retried anyway
    delivered = next(d for d, status in rows if status == "succeeded")
    failing = text_of(client.get(f"/admin/operations/webhooks/{endpoint['id']}?status=pending").text)
    assert "HTTP 500" in failing and "HTTP 200" not in failing

    response = post(client, f"/admin/operations/webhooks/{endpoint['id']}/redeliver", {"delivery_id": delivered})
    assert response.status_code == 303 and "requeued=1" in response.headers["location"]
    statuses = {d["id"]: d["status"] for d in hooks.list_deliveries(web.uow(), program_id, UUID(endpoint["id"]))}
    assert statuses[delivered] == "pending"
    assert any(a["action"] == "webhook.redeliver" and a["actor"].startswith("staff:")
               for a in list_audit(web.uow(), program_id))  # fmt: skip

    response = post(client, f"/admin/operations/webhooks/{endpoint['id']}/enabled", {"enabled": "0"})
    assert response.status_code == 303
    assert hooks.list_endpoints(web.uow(), program_id)[0]["enabled"] is False
    assert 'data-enabled="no"' in client.get(f"/admin/operations/webhooks/{endpoint['id']}").text
    other = UUID(create_program(web.uow(), "Other", "EUR", "Europe/Berlin", {}, now)["id"])
    theirs = hooks.create_endpoint(web.uow(), other, {"url": "https://other.example/x", "events": ["*"]}, now)
    assert client.get(f"/admin/operations/webhooks/{theirs['id']}").status_code == 404
    assert post(client, f"/admin/operations/webhooks/{theirs['id']}/enabled", {"enabled": "0"}).status_code == 404
    assert hooks.list_endpoints(web.uow(), other)[0]["enabled"] is True


def _wait_for_import(client, location: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fragment = client.get(f"{location}/progress", headers={"HX-Request": "true"}).text
        if 'data-import="finished"' in fragment or 'data-import="failed"' in fragment:
            return fragment
        assert 'hx-trigger="every 1s"' in fragment  # still running: the fragment asks to be polled again
        time.sleep(0.05)
    raise AssertionError("the import did not finish within 30 s")


def test_an_uploaded_csv_is_imported_in_the_background_with_progress_and_refused_lines(web: Web, program_id: UUID,
                                                                                        now):  # fmt: skip
    member = enrol(web.uow, program_id, now, external_ref="crm-1")
    card = get_member(web.uow(), program_id, member)["card_number"]
    at = (now - timedelta(days=1)).isoformat()
    csv_text = ("member,order_id,occurred_at,total,currency\n"
                f"{card},IMP-1,{at},25.00,EUR\n"
                f"crm-1,IMP-2,{at},10.50,EUR\n"
                f"crm-1,IMP-3,{at},zehn,EUR\n"
                f"nobody,IMP-4,{at},5.00,EUR\n")  # fmt: skip
    client = web.signed_in(program_id, "manager")
    response = post(client, "/admin/operations/import", {"on_error": "skip"},
                    files={"file": ("march.csv", csv_text.encode(), "text/csv")})  # fmt: skip
    assert response.status_code == 303, text_of(response.text)[-500:]
    location = response.headers["location"]
    assert client.get(location).status_code == 200
    fragment = _wait_for_import(client, location)
    assert 'data-import="finished"' in fragment and "hx-get" not in fragment  # finished: the polling stops
    counts = dict(re.findall(r'data-count="(\w+)">([^<]+)<', fragment))
    assert (counts["rows"], counts["imported"], counts["refused"]) == ("4", "2", "2")
    refused = html.unescape(text_of(fragment))
    assert "4 'zehn' is not a decimal amount" in refused and "5 no member 'nobody'" in refused
    assert get_balance(web.uow(), program_id, member, now)["points"] == 35  # 25 + 10 (1 point per 1.00 EUR)
    (entry,) = [a for a in list_audit(web.uow(), program_id) if a["action"] == "purchases.import"]
    assert entry["target_id"] == "march.csv" and entry["after"]["imported"] == 2 and entry["after"]["refused"] == 2
    assert "march.csv" in client.get("/admin/operations/import").text  # listed among the recent imports

    # Again: the orders are known, nothing is recorded twice.
    response = post(client, "/admin/operations/import", {"on_error": "skip"},
                    files={"file": ("march.csv", csv_text.encode(), "text/csv")})  # fmt: skip
    counts = dict(re.findall(r'data-count="(\w+)">([^<]+)<', _wait_for_import(client, response.headers["location"])))
    assert (counts["imported"], counts["already_imported"]) == ("0", "2")
    assert get_balance(web.uow(), program_id, member, now)["points"] == 35

    other = UUID(create_program(web.uow(), "Other", "EUR", "Europe/Berlin", {}, now)["id"])
    stranger = web.signed_in(other, "owner")
    assert stranger.get(location).status_code == 404 and stranger.get(f"{location}/progress").status_code == 404


def test_a_bad_upload_shows_the_message_and_imports_nothing(web: Web, program_id: UUID, now):
    member = enrol(web.uow, program_id, now, external_ref="crm-9")
    client = web.signed_in(program_id, "owner")
    response = post(client, "/admin/operations/import", {"on_error": "skip"},
                    files={"file": ("bad.csv", b"member,total\ncrm-9,10.00\n", "text/csv")})  # fmt: skip
    assert response.status_code == 422
    assert field_error(response.text, "file") == "The header lacks the columns: order_id, occurred_at, currency."
    response = post(client, "/admin/operations/import", {"on_error": "skip"},
                    files={"file": ("bin.csv", b"\xff\xfe\x00bad", "text/csv")})  # fmt: skip
    assert response.status_code == 422 and field_error(response.text, "file") == "The file is not UTF-8 text."
    response = post(client, "/admin/operations/import", {"on_error": "skip"})
    assert response.status_code == 422 and field_error(response.text, "file") == "Choose a CSV file."
    assert get_balance(web.uow(), program_id, member, now)["points"] == 0
    assert not [a for a in list_audit(web.uow(), program_id) if a["action"] == "purchases.import"]

    at = now.isoformat()
    aborting = (f"member,order_id,occurred_at,total,currency\ncrm-9,ABORT-1,{at},10.00,EUR\n"
                f"crm-9,ABORT-2,{at},x,EUR\n")  # fmt: skip
    response = post(client, "/admin/operations/import", {"on_error": "abort"},
                    files={"file": ("abort.csv", aborting.encode(), "text/csv")})  # fmt: skip
    fragment = _wait_for_import(client, response.headers["location"])
    assert "nothing was imported" in fragment
    assert get_balance(web.uow(), program_id, member, now)["points"] == 0


def test_the_audit_log_filters_pages_and_shows_before_and_after(web: Web, program_id: UUID, now):
    client = web.signed_in(program_id, "owner")
    with web.uow() as uow:
        for number in range(60):
            record_audit(uow, program_id, f"staff:bulk-{number % 2}@example.org", "reward.update", "reward",
                         f"reward-{number}", {"cost_points": number}, {"cost_points": number + 1}, None,
                         now + timedelta(seconds=number))  # fmt: skip
        record_audit(uow, program_id, "key:admin", "program.update", "program", program_id,
                     {"pending_days": 0, "name": "Test"}, {"pending_days": 14, "name": "Test"}, "return window",
                     now + timedelta(minutes=5))  # fmt: skip
        uow.commit()
    first = client.get("/admin/operations/audit")
    assert first.status_code == 200
    actions = re.findall(r'<tr data-action="([^"]+)"', first.text)
    assert actions[0] == "program.update" and len(actions) == 50  # newest first, 50 a page
    text = text_of(first.text)
    assert "pending_days 0 14" in text and "Reason: return window" in text and "1 unchanged fields" in text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    total = len(list_audit(web.uow(), program_id, 1000))
    second = client.get("/admin/operations/audit?page=2")
    assert len(re.findall(r'<tr data-action="', second.text)) == total - 50 and 'rel="prev"' in second.text

    filtered = client.get(
        "/admin/operations/audit", params={"actor": "BULK-1", "action": "reward", "target": "reward-5"}
    )
    found = re.findall(r'<span class="mono small">([^<]+)</span>', filtered.text)
    assert found == ["reward-59", "reward-57", "reward-55", "reward-53", "reward-51", "reward-5"]  # newest first
    assert 'data-matched="6"' in filtered.text and 'rel="next"' not in filtered.text
    fragment = client.get("/admin/operations/audit", params={"action": "program."}, headers={"HX-Request": "true"})
    assert (
        "<html" not in fragment.text and re.findall(r'<tr data-action="([^"]+)"', fragment.text)[0] == "program.update"
    )
    assert (
        client.get("/admin/operations/audit", params={"action": "nothing-like-it"}).text.count("No entries match.") == 1
    )
