"""Sending email: the `Mailer` port the use cases ask for, and its SMTP implementation (smtplib).

Configured from the environment: TREUE_SMTP_HOST (default localhost), TREUE_SMTP_PORT (25),
TREUE_MAIL_FROM (treue@localhost), and optionally TREUE_SMTP_USER / TREUE_SMTP_PASSWORD and
TREUE_SMTP_STARTTLS=1 for a relay that wants them.
"""

from __future__ import annotations

import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol


@dataclass(frozen=True)
class MailMessage:
    to: str
    subject: str
    text: str


class Mailer(Protocol):
    def send(self, message: MailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    host: str = "localhost"
    port: int = 25
    sender: str = "treue@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0

    def send(self, message: MailMessage) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(mail)


def mailer_from_env(env: dict[str, str] | None = None) -> SmtpMailer:
    values = os.environ if env is None else env
    return SmtpMailer(
        host=values.get("TREUE_SMTP_HOST", "localhost"),
        port=int(values.get("TREUE_SMTP_PORT", "25")),
        sender=values.get("TREUE_MAIL_FROM", "treue@localhost"),
        user=values.get("TREUE_SMTP_USER") or None,
        password=values.get("TREUE_SMTP_PASSWORD") or None,
        starttls=values.get("TREUE_SMTP_STARTTLS") == "1",
    )
