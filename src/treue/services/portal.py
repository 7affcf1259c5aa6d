"""Member portal use cases: passwordless sign-in by an emailed one-time code, the portal session, the card page.

A code is six digits, stored only as a hash, valid for CODE_MINUTES, with MAX_TRIES wrong tries over all of a
member's open codes; at most MAX_CODES_PER_WINDOW codes are sent per member in CODE_WINDOW. Whether an email
belongs to a member is never told: an unknown address gets the same answer and no mail.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from treue.domain.errors import SignInCodeInvalid
from treue.domain.members import normalise_email
from treue.ids import new_id, random_digits
from treue.services import points
from treue.services.mail import Mailer, MailMessage
from treue.services.ports import UnitOfWork
from treue.services.staff import split_cookie, token_hash
from treue.services.views import member_view

CODE_DIGITS = 6
CODE_MINUTES = 10
MAX_TRIES = 5
MAX_CODES_PER_WINDOW = 5
CODE_WINDOW = timedelta(minutes=15)
SESSION_DAYS = 30  # a phone stays signed in to its card for a month

MAIL: dict[str, dict[str, str]] = {
    "subject": {"de": "Ihr Anmeldecode für {program}", "en": "Your sign-in code for {program}"},
    "text": {
        "de": "Guten Tag,\n\nIhr Anmeldecode lautet: {code}\n\nEr gilt {minutes} Minuten. Wenn Sie sich nicht "
              "anmelden wollten, können Sie diese Nachricht ignorieren.\n\n{program}",
        "en": "Hello,\n\nyour sign-in code is: {code}\n\nIt is valid for {minutes} minutes. If you did not try to "
              "sign in, you can ignore this message.\n\n{program}",
    },
}  # fmt: skip


def _code_hash(code_id: UUID, code: str) -> str:
    # The id salts the hash, so equal codes of different members hash differently.
    return hashlib.sha256(f"{code_id}:{code}".encode()).hexdigest()


def _member_by_email(uow: UnitOfWork, program_id: UUID, email: str) -> dict[str, Any] | None:
    found = [m for m in uow.members.find(program_id, email=email) if m["status"] == "active"]
    return found[0] if found else None


def request_code(uow: UnitOfWork, mailer: Mailer, program_id: UUID, email: str, now: datetime) -> bool:
    """Email a sign-in code to the member with this address. Returns whether a mail went out (for tests and
    logs; the page says the same either way). The mail is sent after the commit: a lost mail is a new try."""
    try:
        address = normalise_email(email)
    except Exception:  # an invalid address is treated like an unknown one
        return False
    if not address:
        return False
    code = random_digits(CODE_DIGITS)
    with uow:
        program = uow.programs.get(program_id, cached=True)
        member = _member_by_email(uow, program_id, address)
        if member is None or uow.staff.count_codes_since(program_id, member["id"], now - CODE_WINDOW) >= \
                MAX_CODES_PER_WINDOW:  # fmt: skip
            return False
        code_id = new_id()
        uow.staff.add_code({"program_id": program_id, "id": code_id, "member_id": member["id"],
                            "code_hash": _code_hash(code_id, code), "attempts": 0, "created_at": now,
                            "expires_at": now + timedelta(minutes=CODE_MINUTES)})  # fmt: skip
        uow.commit()
    language = member["locale"] if member["locale"] in ("de", "en") else "de"
    values = {"program": program.name, "code": code, "minutes": CODE_MINUTES}
    mailer.send(MailMessage(address, MAIL["subject"][language].format(**values),
                            MAIL["text"][language].format(**values)))  # fmt: skip
    return True


def verify_code(uow: UnitOfWork, program_id: UUID, email: str, code: str, now: datetime) -> dict[str, Any]:
    """Check a code; on success open a portal session and return its cookie value and CSRF token."""
    address = normalise_email(email) if email and "@" in email else None
    given = (code or "").strip().replace(" ", "")
    with uow:
        member = _member_by_email(uow, program_id, address) if address else None
        if member is None:
            raise SignInCodeInvalid("the code is wrong or has expired")
        codes = [c for c in uow.staff.open_codes(program_id, member["id"], now) if c["attempts"] < MAX_TRIES]
        match = next((c for c in codes if hmac.compare_digest(c["code_hash"], _code_hash(c["id"], given))), None)
        if match is None:
            for c in codes:  # every open code pays for a wrong try: guessing across codes gains nothing
                uow.staff.update_code(program_id, c["id"], attempts=c["attempts"] + 1)
            uow.commit()
            raise SignInCodeInvalid("the code is wrong or has expired")
        for c in codes:  # one successful sign-in uses up every open code
            uow.staff.update_code(program_id, c["id"], used_at=now)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        uow.staff.add_member_session({"program_id": program_id, "token_hash": token_hash(token),
                                      "member_id": member["id"], "csrf_token": csrf, "created_at": now,
                                      "expires_at": now + timedelta(days=SESSION_DAYS)})  # fmt: skip
        uow.commit()
    return {"cookie": f"{program_id}.{token}", "csrf_token": csrf, "member_id": str(member["id"]),
            "locale": member["locale"]}  # fmt: skip


@dataclass(frozen=True)
class MemberSession:
    program_id: UUID
    member_id: UUID
    csrf_token: str


def member_session_of(uow: UnitOfWork, cookie: str | None, now: datetime) -> MemberSession | None:
    parts = split_cookie(cookie)
    if parts is None:
        return None
    with uow:
        row = uow.staff.member_session(parts[0], token_hash(parts[1]), now)
    return MemberSession(row["program_id"], row["member_id"], row["csrf_token"]) if row else None


def sign_out_member(uow: UnitOfWork, cookie: str | None) -> None:
    parts = split_cookie(cookie)
    if parts is None:
        return
    with uow:
        uow.staff.end_member_session(parts[0], token_hash(parts[1]))
        uow.commit()


def card_page(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime, history: int = 20) -> dict[str, Any]:
    """What the member's card page shows, read in one transaction: profile, balance, open lots, history."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        member = member_view(uow.members.get(program_id, member_id))
        view = {
            "program": {"name": program.name, "currency": program.currency, "timezone": program.timezone},
            "member": member, "balance": points.get_balance(uow, program_id, member_id, now),
            "lots": [lot for lot in points.get_lots(uow, program_id, member_id, now) if lot["points"] > 0],
            "history": points.get_history(uow, program_id, member_id, history),
        }  # fmt: skip
    return view
