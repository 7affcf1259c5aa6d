"""The fraud review page (issue 10): held transactions approved and rejected in place (HTMX, CSRF), alerts
acknowledged, German and English, and only for staff allowed to review fraud."""

from __future__ import annotations

from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Web, csrf_of, text_of
from treue.services import fraud
from treue.services.audit import list_audit
from treue.services.points import get_balance


@pytest.fixture
def web(engine, now) -> Web:
    return Web(engine, Clock(now))


def held_purchases(web: Web, program_id: UUID) -> tuple[UUID, list[dict]]:
    fraud.save_settings(web.uow(), program_id, {"caps": [{"action": "earn", "subject": "member", "window": "day",
                                                          "max_count": 1}], "alerts": {"cap_hits": 2}},
                        web.clock())  # fmt: skip
    member = enrol(web.uow, program_id, web.clock(), first_name="Jonas", last_name="Kurz")
    for total in ("10.00", "25.00", "40.00"):
        buy(web.uow, program_id, member, total, web.clock())
    return member, fraud.list_holds(web.uow(), program_id)


def test_staff_approve_and_reject_held_points_in_place(web: Web, program_id: UUID):
    member, held = held_purchases(web, program_id)
    fraud.scan(web.uow, web.clock(), program_id)
    client = web.signed_in(program_id, "support")
    page = client.get("/admin/fraud")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Jonas Kurz" in text and "Earning · per member · per day: 2 times (at most 1)" in text
    assert "Repeated cap hits" in text and "2 held transactions in 7 days" in text
    csrf = csrf_of(page.text)
    by_points = {h["points"]: h["id"] for h in held}

    forged = client.post(f"/admin/fraud/held/{by_points[25]}/approve", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    approved = client.post(f"/admin/fraud/held/{by_points[25]}/approve", data={"csrf_token": csrf, "reason": "ok"},
                           headers={"HX-Request": "true"})  # fmt: skip
    assert approved.status_code == 200 and "<tr" in approved.text and "<html" not in approved.text
    assert "approved" in text_of(approved.text)
    rejected = client.post(f"/admin/fraud/held/{by_points[40]}/reject", data={"csrf_token": csrf, "reason": "abuse"})
    assert rejected.status_code == 303 and rejected.headers["location"] == "/admin/fraud"
    again = client.post(f"/admin/fraud/held/{by_points[40]}/approve", data={"csrf_token": csrf},
                        headers={"HX-Request": "true"})  # fmt: skip
    assert again.status_code == 200 and "decided already" in text_of(again.text)  # the row, with why
    again = client.post(f"/admin/fraud/held/{by_points[40]}/approve", data={"csrf_token": csrf})
    assert again.status_code == 409 and "decided already" in text_of(again.text)  # the page, with why
    balance = get_balance(web.uow(), program_id, member, web.clock())
    assert (balance["points"], balance["available"]) == (35, 35)
    actions = [e["action"] for e in list_audit(web.uow(), program_id)]
    assert {"fraud.hold.approve", "fraud.hold.reject"} <= set(actions)

    alert = fraud.list_alerts(web.uow(), program_id)[0]
    done = client.post(f"/admin/fraud/alerts/{alert['id']}/acknowledge", data={"csrf_token": csrf, "note": "seen"},
                       headers={"HX-Request": "true"})  # fmt: skip
    assert done.status_code == 200 and "acknowledged" in done.text
    assert fraud.list_alerts(web.uow(), program_id) == []
    assert client.post("/admin/fraud/alerts/not-an-id/acknowledge", data={"csrf_token": csrf}).status_code == 404
    assert "No open alerts." in client.get("/admin/fraud").text


def test_the_page_speaks_german_and_is_closed_to_analysts(web: Web, program_id: UUID):
    held_purchases(web, program_id)
    german = web.signed_in(program_id, "manager", locale="de").get("/admin/fraud")
    text = text_of(german.text)
    assert german.status_code == 200
    assert "Zurückgehaltene Buchungen" in text and "Sammeln · je Mitglied · pro Tag" in text and "Freigeben" in text
    analyst = web.signed_in(program_id, "analyst")
    assert analyst.get("/admin/fraud").status_code == 403
    anonymous = web.client().get("/admin/fraud")
    assert anonymous.status_code in (303, 401)
