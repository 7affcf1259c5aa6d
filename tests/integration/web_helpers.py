"""Helpers for the web UI tests: an app on the test database with a movable clock, sign-in through the real
forms (CSRF tokens read from the page), and a real SMTP server (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import Message
from typing import Any
from uuid import UUID, uuid4

from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.integration.api_helpers import Clock
from treue.api.app import create_app
from treue.services.mail import MailMessage, SmtpMailer
from treue.services.staff import add_staff
from treue.store.unit_of_work import SqlUnitOfWorkFactory

PASSWORD = "correct-horse-battery"


class Outbox:
    """A mailer that keeps what it is given, for tests about what is sent rather than how (the SMTP path is
    tested against a real server: `smtp_server` below)."""

    def __init__(self) -> None:
        self.sent: list[MailMessage] = []

    def send(self, message: MailMessage) -> None:
        self.sent.append(message)

    def code(self) -> str:
        """The six-digit sign-in code of the last message."""
        return re.findall(r"\b(\d{6})\b", self.sent[-1].text)[-1]


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def text_of(html: str) -> str:
    """The page's visible text, whitespace collapsed (enough to assert on words)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


class Web:
    def __init__(self, engine: Engine, clock: Clock, mailer: Any = None, base_url: str = "http://testserver") -> None:
        self.uow = SqlUnitOfWorkFactory(engine)
        self.clock = clock
        self.app = create_app(engine, clock=clock)
        if mailer is not None:
            self.app.state.mailer = mailer
        self.base_url = base_url

    def client(self, **headers: str) -> TestClient:
        return TestClient(self.app, base_url=self.base_url, headers=headers, follow_redirects=False)

    def staff(self, program_id: UUID, role: str, partner: str | None = None, locale: str = "en",
              email: str | None = None) -> str:  # fmt: skip
        email = email or f"{role}-{uuid4().hex[:12]}@staff.example"
        add_staff(self.uow(), program_id, email, role, self.clock(), password=PASSWORD, partner=partner, locale=locale)
        return email

    def sign_in(self, client: TestClient, email: str, password: str = PASSWORD) -> Any:
        form = client.get("/admin/sign-in")
        assert form.status_code == 200, form.text
        return client.post("/admin/sign-in", data={"email": email, "password": password, "next": "/admin",
                                                    "csrf_token": csrf_of(form.text)})  # fmt: skip

    def signed_in(self, program_id: UUID, role: str, partner: str | None = None, locale: str = "en") -> TestClient:
        client = self.client()
        response = self.sign_in(client, self.staff(program_id, role, partner, locale))
        assert response.status_code == 303, response.text
        return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """An aiosmtpd handler: every message the server accepts, parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def codes_for(self, address: str) -> list[str]:
        found = []
        for message in self.messages:
            if message["To"] == address:
                body = message.get_content()  # type: ignore[attr-defined]  # an EmailMessage with policy.default
                found += re.findall(r"\b(\d{6})\b", body)
        return found


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, SmtpMailer]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpMailer(host="127.0.0.1", port=port, sender="treue@test.example")
    finally:
        controller.stop()
