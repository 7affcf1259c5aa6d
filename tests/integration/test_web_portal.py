"""The member portal over HTTP on SQLite and PostgreSQL, with a REAL SMTP server (aiosmtpd) receiving the
sign-in codes: sign-in, wrong/used/expired codes, the card page with its QR code, sign-out."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from tests.integration.api_helpers import Clock
from tests.integration.helpers import buy, enrol
from tests.integration.web_helpers import Inbox, Web, csrf_of, smtp_server, text_of
from treue.services.mail import MailMessage, SmtpMailer, mailer_from_env
from treue.services.portal import MAX_CODES_PER_WINDOW

EMAIL = "mia.wolf@example.org"


@pytest.fixture
def mail() -> Iterator[tuple[Inbox, SmtpMailer]]:
    with smtp_server() as found:
        yield found


@pytest.fixture
def web(engine, now, mail) -> Web:
    return Web(engine, Clock(now), mailer=mail[1])


@pytest.fixture
def member(web: Web, program_id: UUID) -> UUID:
    member_id = enrol(web.uow, program_id, web.clock(), first_name="Mia", email=EMAIL, locale="de")
    buy(web.uow, program_id, member_id, "80.00", web.clock())
    return member_id


def ask_for_code(web: Web, client, program_id: UUID, email: str = EMAIL):
    form = client.get(f"/portal/{program_id}/sign-in")
    assert form.status_code == 200
    return client.post(f"/portal/{program_id}/sign-in", data={"email": email, "csrf_token": csrf_of(form.text)})


def enter_code(client, program_id: UUID, code: str, email: str = EMAIL):
    form = client.get(f"/portal/{program_id}/sign-in")
    return client.post(f"/portal/{program_id}/verify", data={"email": email, "code": code,
                                                             "csrf_token": csrf_of(form.text)})  # fmt: skip


def test_a_member_signs_in_with_the_emailed_code_and_sees_the_card(web: Web, program_id: UUID, member: UUID, mail):
    inbox, _ = mail
    client = web.client(**{"Accept-Language": "en"})
    sent = ask_for_code(web, client, program_id)
    assert sent.status_code == 200 and "a code is on its way" in sent.text
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == EMAIL and message["Subject"] == "Ihr Anmeldecode für Test"  # the member's language
    (code,) = inbox.codes_for(EMAIL)

    signed = enter_code(client, program_id, code)
    assert signed.status_code == 303 and signed.headers["location"] == "/portal/card"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("treue_member=") and "HttpOnly" in cookie and "SameSite=lax" in cookie

    card = client.get("/portal/card")
    assert card.status_code == 200
    with web.uow() as uow:
        number = uow.members.get(program_id, member)["card_number"]
    assert f'data-card="{number}"' in card.text
    assert "<svg" in card.text and "<path" in card.text and "<?xml" not in card.text  # the QR code, inline
    assert 'id="barcode_group"' in card.text and "<!DOCTYPE" not in card.text  # and the Code 128 barcode
    printable = client.get("/portal/card/print")
    assert printable.status_code == 200 and f'data-card="{number}"' in printable.text
    assert 'class="print-card"' in printable.text and 'id="barcode_group"' in printable.text
    assert "<path" in printable.text and 'href="/portal/card"' in printable.text
    assert web.client().get("/portal/card/print").status_code in (303, 307)  # no session: to the sign-in
    assert 'data-balance="available">80<' in card.text
    words = text_of(card.text)
    assert "Hallo Mia" in words and "Meine Karte" in words  # the member's own language wins over the browser's
    assert "Einkauf order-" in words and "0,80 €" in words

    # A code works once.
    other = web.client()
    assert enter_code(other, program_id, code).status_code == 401


def test_an_unknown_address_gets_the_same_page_and_no_mail(web: Web, program_id: UUID, member: UUID, mail):
    inbox, _ = mail
    client = web.client()
    known = ask_for_code(web, client, program_id, EMAIL)
    unknown = ask_for_code(web, client, program_id, "nobody@example.org")
    assert unknown.status_code == known.status_code == 200
    assert text_of(unknown.text).replace("nobody@example.org", "X") == text_of(known.text).replace(EMAIL, "X")
    assert [m["To"] for m in inbox.messages] == [EMAIL]
    assert ask_for_code(web, client, program_id, "not an address").status_code == 200


def test_wrong_codes_use_up_the_tries_and_then_even_the_right_code_fails(web: Web, program_id: UUID, member: UUID,
                                                                         mail):  # fmt: skip
    inbox, _ = mail
    client = web.client()
    ask_for_code(web, client, program_id)
    (code,) = inbox.codes_for(EMAIL)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        response = enter_code(client, program_id, wrong)
        assert response.status_code == 401 and "The code is wrong or has expired" in response.text
    assert enter_code(client, program_id, code).status_code == 401
    assert client.get("/portal/card").status_code == 303


def test_a_code_expires_after_ten_minutes(web: Web, program_id: UUID, member: UUID, mail):
    inbox, _ = mail
    client = web.client()
    ask_for_code(web, client, program_id)
    (code,) = inbox.codes_for(EMAIL)
    web.clock.advance(minutes=10)
    assert enter_code(client, program_id, code).status_code == 401


def test_codes_are_rate_limited_per_member(web: Web, program_id: UUID, member: UUID, mail):
    inbox, _ = mail
    client = web.client()
    for _ in range(MAX_CODES_PER_WINDOW + 2):
        assert ask_for_code(web, client, program_id).status_code == 200
    assert len(inbox.messages) == MAX_CODES_PER_WINDOW
    web.clock.advance(minutes=16)
    ask_for_code(web, client, program_id)
    assert len(inbox.messages) == MAX_CODES_PER_WINDOW + 1


def test_the_card_needs_a_session_and_sign_out_ends_it(web: Web, program_id: UUID, member: UUID, mail):
    inbox, _ = mail
    client = web.client()
    assert client.get("/portal/card").headers["location"] == "/portal"
    ask_for_code(web, client, program_id)
    enter_code(client, program_id, inbox.codes_for(EMAIL)[0])
    page = client.get("/portal/card")
    assert client.post("/portal/sign-out", data={}).status_code == 403  # no CSRF token
    out = client.post("/portal/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == f"/portal/{program_id}/sign-in"
    assert client.get("/portal/card").status_code == 303


def test_the_code_form_needs_its_csrf_token_and_sends_nothing_without(web: Web, program_id: UUID, member: UUID,
                                                                      mail):  # fmt: skip
    inbox, _ = mail
    client = web.client()
    response = client.post(f"/portal/{program_id}/sign-in", data={"email": EMAIL, "csrf_token": "x" * 43})
    assert response.status_code == 403 and inbox.messages == []


def test_an_unknown_programme_has_no_portal(web: Web):
    client = web.client()
    assert client.get("/portal/00000000-0000-0000-0000-000000000000/sign-in").status_code == 404
    assert client.get("/portal/not-a-programme/sign-in").status_code == 404


def test_the_smtp_mailer_delivers_to_a_real_server(mail):
    inbox, mailer = mail
    mailer.send(MailMessage("x@example.org", "Grüße", "Zeile eins\nCode 123456"))
    assert inbox.messages[0]["Subject"] == "Grüße" and inbox.codes_for("x@example.org") == ["123456"]
    configured = mailer_from_env({"TREUE_SMTP_HOST": "127.0.0.1", "TREUE_SMTP_PORT": str(mailer.port)})
    configured.send(MailMessage("y@example.org", "Hi", "Code 654321"))
    assert inbox.codes_for("y@example.org") == ["654321"]
