"""GDPR in the web UI (issue 10), on SQLite and PostgreSQL: the member downloads their data and deletes their
account in the portal (confirmation box, CSRF, signed out afterwards, no sign-in possible any more); staff export
a member and erase one in two steps, with the erase permission only."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Outbox, Web, csrf_of, text_of
from treue.services.members import get_member


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def web(engine, now, outbox) -> Web:
    return Web(engine, Clock(now), mailer=outbox)


def sign_in(web: Web, outbox: Outbox, program_id: UUID, email: str):
    client = web.client()
    form = client.get(f"/portal/{program_id}/sign-in")
    client.post(f"/portal/{program_id}/sign-in", data={"email": email, "csrf_token": csrf_of(form.text)})
    form = client.get(f"/portal/{program_id}/sign-in")
    return client, client.post(f"/portal/{program_id}/verify", data={"email": email, "code": outbox.code(),
                                                                      "csrf_token": csrf_of(form.text)})  # fmt: skip


def test_the_member_downloads_their_data_and_deletes_the_account(web: Web, program_id: UUID, outbox):
    email = "lena.portal@privacy.example"
    member_id = enrol(web.uow, program_id, web.clock(), first_name="Lena", last_name="Portalova", email=email,
                      locale="de")  # fmt: skip
    buy(web.uow, program_id, member_id, "80.00", web.clock())
    client, signed = sign_in(web, outbox, program_id, email)
    assert signed.status_code == 303

    page = client.get("/portal/my-data")
    assert page.status_code == 200 and "Meine Daten herunterladen" in text_of(page.text)
    download = client.get("/portal/my-data/export.json")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    doc = json.loads(download.text)
    assert doc["member"]["email"] == email and doc["purchases"][0]["total_minor"] == 8000
    assert doc["exported_by"] == f"member:{member_id}"

    csrf = csrf_of(page.text)
    assert client.post("/portal/my-data/delete", data={"confirm": "yes"}).status_code == 403  # no CSRF token
    unconfirmed = client.post("/portal/my-data/delete", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 422 and "Häkchen" in text_of(unconfirmed.text)
    assert get_member(web.uow(), program_id, member_id)["status"] == "active"

    deleted = client.post("/portal/my-data/delete", data={"csrf_token": csrf, "confirm": "yes"})
    assert deleted.status_code == 200 and "Konto gelöscht" in text_of(deleted.text)
    assert "max-age=0" in deleted.headers["set-cookie"].lower()  # the session cookie is cleared
    gone = get_member(web.uow(), program_id, member_id)
    assert (gone["status"], gone["email"], gone["first_name"]) == ("erased", None, None)
    assert client.get("/portal/my-data").status_code == 303  # signed out: to the sign-in
    sent = len(outbox.sent)
    form = web.client().get(f"/portal/{program_id}/sign-in")
    web.client().post(f"/portal/{program_id}/sign-in", data={"email": email, "csrf_token": csrf_of(form.text)})
    assert len(outbox.sent) == sent  # the address belongs to nobody now: no code is mailed


def test_staff_export_and_erase_in_two_steps(web: Web, program_id: UUID):
    member_id = enrol(web.uow, program_id, web.clock(), first_name="Otto", email="otto.staff@privacy.example")
    buy(web.uow, program_id, member_id, "50.00", web.clock())
    support = web.signed_in(program_id, "support")
    profile = support.get(f"/admin/members/{member_id}")
    assert profile.status_code == 200 and 'data-erase="request"' not in profile.text  # support may not erase
    assert support.get(f"/admin/members/{member_id}/export.json").json()["member"]["first_name"] == "Otto"
    refused = support.post(f"/admin/members/{member_id}/erase", data={"csrf_token": csrf_of(profile.text),
                                                                       "reason": "x", "confirmed": "yes"})  # fmt: skip
    assert refused.status_code == 403 and get_member(web.uow(), program_id, member_id)["status"] == "active"

    owner = web.signed_in(program_id, "owner")
    profile = owner.get(f"/admin/members/{member_id}")
    assert 'data-erase="request"' in profile.text
    csrf = csrf_of(profile.text)
    step = owner.post(f"/admin/members/{member_id}/erase", data={"csrf_token": csrf, "reason": "asked by letter"})
    assert step.status_code == 200 and 'data-erase="confirm"' in step.text  # the confirmation, nothing erased yet
    assert get_member(web.uow(), program_id, member_id)["status"] == "active"
    assert owner.post(f"/admin/members/{member_id}/erase", data={"csrf_token": csrf, "reason": " "}).status_code == 422
    done = owner.post(f"/admin/members/{member_id}/erase", data={"csrf_token": csrf, "reason": "asked by letter",
                                                                 "confirmed": "yes"})  # fmt: skip
    assert done.status_code == 200 and "Member erased; 50 points written off." in text_of(done.text)
    assert 'data-erased="true"' in done.text and "otto.staff@" not in done.text
    again = owner.post(f"/admin/members/{member_id}/erase", data={"csrf_token": csrf, "reason": "again",
                                                                  "confirmed": "yes"})  # fmt: skip
    assert "The member was erased already." in text_of(again.text)
