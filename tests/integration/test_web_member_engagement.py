"""The member profile's engagement section over HTTP on SQLite and PostgreSQL: missions, badges, referrals,
consents and messages as the services hold them, and the support action "send again" (audited)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import enrol
from tests.integration.web_helpers import Outbox, Web, csrf_of, text_of
from treue.services import gamification
from treue.services import notifications as notification_cases
from treue.services.audit import list_audit
from treue.services.referrals import member_referrals
from treue.services.webhooks import relay_outbox


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


@pytest.fixture
def member(web: Web, program_id: UUID) -> UUID:
    member_id = enrol(web.uow, program_id, web.clock(), first_name="Anna", email="anna@example.org")
    gamification.create_mission(web.uow(), program_id, {
        "code": "three", "name": {"de": "Drei Einkäufe", "en": "Three purchases"},
        "goal": {"type": "count", "target": 3, "event": "purchase"}, "window": {"type": "month"},
        "reward": {"points": 500}}, web.clock())  # fmt: skip
    gamification.create_badge(web.uow(), program_id, {"code": "early", "name": {"en": "Early bird"}}, web.clock())
    gamification.grant_badge(web.uow(), program_id, member_id, "early", web.clock())
    notification_cases.set_consent(web.uow(), program_id, member_id, "push", True, "test", web.clock())
    relay_outbox(web.uow, web.clock())  # the welcome message is queued from the enrolment's event
    notification_cases.send_due(web.uow, web.clock, "w1", Outbox(), program_id=program_id)
    return member_id


def sent_email(web: Web, program_id: UUID, member: UUID) -> dict[str, Any]:
    emails = [m for m in notification_cases.list_messages(web.uow(), program_id, member_id=member)
              if m["channel"] == "email" and m["status"] == "sent"]  # fmt: skip
    assert emails, "the welcome email was not sent"
    return emails[0]


def test_the_section_shows_what_the_services_hold(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "support")
    profile = client.get(f"/admin/members/{member}")
    assert f'hx-get="/admin/members/{member}/engagement"' in profile.text  # loaded into the profile by HTMX
    part = client.get(f"/admin/members/{member}/engagement", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.text
    text = text_of(part.text)
    assert 'data-mission="three"' in part.text and "Three purchases" in text and "0 of 3" in text
    assert 'data-badge="early"' in part.text and "Early bird" in text
    code = member_referrals(web.uow(), program_id, member, web.clock())["code"]
    assert f'data-referrals="{code}"' in part.text
    assert 'data-consent="push" data-granted="yes"' in part.text
    assert 'data-consent="sms" data-granted="no"' in part.text
    email = sent_email(web, program_id, member)
    assert f'data-message="{email["id"]}"' in part.text and "Send again" in text
    # Without HTMX: a whole page with the way back.
    whole = client.get(f"/admin/members/{member}/engagement")
    assert "<html" in whole.text and f'href="/admin/members/{member}"' in whole.text


def test_an_analyst_sees_no_member_data(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "analyst")
    assert client.get(f"/admin/members/{member}/engagement").status_code == 403


def test_support_sends_a_message_again_with_a_reason_and_it_is_audited(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "support")
    email = sent_email(web, program_id, member)
    token = csrf_of(client.get(f"/admin/members/{member}/engagement").text)
    path = f"/admin/members/{member}/messages/{email['id']}/resend"
    before = len(notification_cases.list_messages(web.uow(), program_id, member_id=member))

    refused = client.post(path, data={"csrf_token": token, "reason": " "}, follow_redirects=True)
    assert refused.status_code == 200 and "a reason is needed" in refused.text  # after the redirect
    assert len(notification_cases.list_messages(web.uow(), program_id, member_id=member)) == before

    done = client.post(path, data={"csrf_token": token, "reason": "not in the inbox"}, follow_redirects=True)
    assert done.status_code == 200 and "The message is queued to be sent again." in done.text
    messages = notification_cases.list_messages(web.uow(), program_id, member_id=member)
    copy = next(m for m in messages if m["status"] == "queued" and m["channel"] == "email")
    assert len(messages) == before + 1
    assert (copy["subject"], copy["text"], copy["recipient"]) == (email["subject"], email["text"], "anna@example.org")
    audit = [a for a in list_audit(web.uow(), program_id) if a["action"] == "notifications.resend"]
    assert audit and audit[0]["reason"] == "not in the inbox" and audit[0]["target_id"] == email["id"]
    assert audit[0]["after"] == {"resent_as": copy["id"]}

    # A message still queued cannot be sent again.
    queued = client.post(f"/admin/members/{member}/messages/{copy['id']}/resend",
                         data={"csrf_token": token, "reason": "again"}, follow_redirects=True)  # fmt: skip
    assert "only a sent, failed or bounced message" in queued.text
    # The worker sends the copy; the original stays as it was.
    recorder = Outbox()
    notification_cases.send_due(web.uow, web.clock, "w1", recorder, program_id=program_id)
    assert [m.to for m in recorder.sent] == ["anna@example.org"]

    # Another member's message through this member's page: not found.
    other = enrol(web.uow, program_id, web.clock(), first_name="Ben")
    assert client.post(f"/admin/members/{other}/messages/{email['id']}/resend",
                       data={"csrf_token": token, "reason": "x"}).status_code == 404  # fmt: skip


def test_an_analyst_cannot_send_again(web: Web, program_id: UUID, member: UUID):
    client = web.signed_in(program_id, "analyst")
    email = sent_email(web, program_id, member)
    response = client.post(f"/admin/members/{member}/messages/{email['id']}/resend", data={"reason": "x"})
    assert response.status_code == 403
