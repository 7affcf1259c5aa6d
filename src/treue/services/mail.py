"""Sending email: the `Mailer` port the use cases ask for, and its SMTP implementation (smtplib).

Configured from the environment: either one URL, TREUE_SMTP_URL (`smtp://user:pass@host:587?starttls=1`, or
`smtps://user:pass@host:465` for TLS from the first byte), or TREUE_SMTP_HOST (default localhost),
TREUE_SMTP_PORT (25), and optionally TREUE_SMTP_USER / TREUE_SMTP_PASSWORD and TREUE_SMTP_STARTTLS=1 for a relay
that wants them. TREUE_MAIL_FROM (treue@localhost) is the sender either way.

A message is plain text, optionally with an HTML alternative, inline images (referenced as `cid:<id>` from the
HTML) and extra headers (List-Unsubscribe...).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class InlineImage:
    cid: str  # referenced from the HTML as src="cid:<cid>"
    data: bytes
    subtype: str = "png"


@dataclass(frozen=True)
class MailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    images: tuple[InlineImage, ...] = ()


def build_email(message: MailMessage, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">") or None)
    for name, value in message.headers.items():
        mail[name] = value
    mail.set_content(message.text)
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html")
        if message.images:
            html_part = next(p for p in mail.iter_parts() if p.get_content_type() == "text/html")
            assert isinstance(html_part, EmailMessage)
            for image in message.images:
                html_part.add_related(image.data, maintype="image", subtype=image.subtype, cid=f"<{image.cid}>")
    return mail


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
    tls: bool = False  # smtps: TLS from the first byte (port 465)

    def send(self, message: MailMessage) -> None:
        mail = build_email(message, self.sender)
        smtp: smtplib.SMTP
        if self.tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls and not self.tls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(mail)


def mailer_from_url(url: str, sender: str = "treue@localhost", timeout: float = 10.0) -> SmtpMailer:
    """`smtp://user:pass@host:587?starttls=1` or `smtps://user:pass@host:465` (user and password URL-encoded)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"TREUE_SMTP_URL must be smtp://host[:port] or smtps://host[:port], not {url!r}")
    query = parse_qs(parts.query)
    tls = parts.scheme == "smtps"
    return SmtpMailer(host=parts.hostname, port=parts.port or (465 if tls else 25), sender=sender,
                      user=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None,
                      starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"), timeout=timeout, tls=tls)  # fmt: skip


def mailer_from_env(env: dict[str, str] | None = None) -> SmtpMailer:
    values = os.environ if env is None else env
    if values.get("TREUE_SMTP_URL"):
        return mailer_from_url(values["TREUE_SMTP_URL"], values.get("TREUE_MAIL_FROM", "treue@localhost"))
    return SmtpMailer(
        host=values.get("TREUE_SMTP_HOST", "localhost"),
        port=int(values.get("TREUE_SMTP_PORT", "25")),
        sender=values.get("TREUE_MAIL_FROM", "treue@localhost"),
        user=values.get("TREUE_SMTP_USER") or None,
        password=values.get("TREUE_SMTP_PASSWORD") or None,
        starttls=values.get("TREUE_SMTP_STARTTLS") == "1",
    )
