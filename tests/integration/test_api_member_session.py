"""A member's portal session is no API credential. With a signed-in member's cookie (and the session's CSRF token
as a header, as a script in the portal would send it), every operation under /api/v1 answers 401 and changes
nothing — the member's own data included: members reach their data through the portal's pages only, which
read the member from the session, never from the request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.integration.api_helpers import Api
from tests.integration.test_api_tenancy import operations
from tests.integration.web_helpers import Outbox
from treue.services import portal as portal_cases
from treue.web.security import MEMBER_COOKIE


@pytest.fixture
def api(engine, now) -> Iterator[Api]:
    world = Api(engine, now)
    yield world
    world.client.close()


def signed_in_member(api: Api, program_id: str, email: str) -> tuple[TestClient, dict[str, str]]:
    mailer = Outbox()
    assert portal_cases.request_code(api.uow(), mailer, UUID(program_id), email, api.clock())
    found = re.search(r"\b(\d{6})\b", mailer.sent[-1].text)
    assert found, mailer.sent[-1].text
    signed = portal_cases.verify_code(api.uow(), UUID(program_id), email, found.group(1), api.clock())
    client = TestClient(api.app, cookies={MEMBER_COOKIE: signed["cookie"]})
    return client, signed


def test_a_member_session_opens_no_api_operation(api: Api):
    a = api.tenant("A", scopes=("admin", "pos"))
    member = a.pos.post("/members", {"email": "mia@example.org", "first_name": "Mia"})
    other = a.pos.post("/members", {"email": "ole@example.org", "first_name": "Ole"})
    client, signed = signed_in_member(api, a.program_id, "mia@example.org")
    card = client.get("/portal/card")
    assert card.status_code == 200 and member["card_number"] in card.text  # the session is real
    assert other["card_number"] not in card.text

    names = {"member_id": member["id"], "program_id": a.program_id}
    before = api.snapshot(a.program_id)
    ops = operations(api)
    for op in ops:
        path = re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), "x"), op.template)
        response = client.request(op.method, "/api/v1" + path, json={} if op.has_body else None,
                                  headers={"X-CSRF-Token": signed["csrf_token"]})  # fmt: skip
        assert response.status_code == 401, f"{op} with a member session: {response.status_code} {response.text}"
        assert response.json()["code"] == "unauthorized"
    assert api.snapshot(a.program_id) == before
    assert len(ops) > 150
