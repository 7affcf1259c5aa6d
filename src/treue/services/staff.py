"""Staff use cases: add a staff user, sign in and out of /admin, the signed-in session, the overview figures."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from treue.domain.errors import InvalidInput, SignInFailed, SignInLocked
from treue.domain.members import validate_locale
from treue.domain.staff import (
    Role,
    SignInState,
    check_partner,
    check_password,
    normalise_staff_email,
    parse_role,
)
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork
from treue.services.views import iso

SESSION_HOURS = 12  # a signed-in staff session lasts a working day, then asks again
_hasher = PasswordHasher()
_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _spend_equal_time(password: str) -> None:
    """Verify against a throw-away hash, so an unknown email takes as long as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    _verify(_dummy_hash, password)


def token_hash(token: str) -> str:
    # Session tokens carry 256 random bits: a fast hash suffices (as for API keys).
    return hashlib.sha256(token.encode()).hexdigest()


def split_cookie(value: str | None) -> tuple[UUID, str] | None:
    """A session cookie is "<programme id>.<token>"; anything else is no session."""
    if not value or "." not in value:
        return None
    program, _, token = value.partition(".")
    try:
        return UUID(program), token
    except ValueError:
        return None


def staff_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "program_id": str(row["program_id"]), "email": row["email"], "role": row["role"],
            "partner": row["partner"], "locale": row["locale"], "created_at": iso(row["created_at"]),
            "locked_until": iso(row["locked_until"])}  # fmt: skip


def add_staff(uow: UnitOfWork, program_id: UUID, email: str, role: str, now: datetime, *,
              password: str | None = None, partner: str | None = None, locale: str = "de",
              actor: str = "cli") -> dict[str, Any]:  # fmt: skip
    """Create a staff user; without a password one is generated and returned (shown once)."""
    email = normalise_staff_email(email)
    role_ = parse_role(role)
    partner = check_partner(role_, partner)
    validate_locale(locale)
    generated = password is None
    secret = password if password is not None else secrets.token_urlsafe(12)
    check_password(secret)
    staff_id = new_id()
    with uow:
        uow.programs.get(program_id)
        uow.staff.add_user({"program_id": program_id, "id": staff_id, "email": email, "role": role_.value,
                            "partner": partner, "locale": locale, "password_hash": hash_password(secret),
                            "created_at": now})  # fmt: skip
        record_audit(uow, program_id, actor, "staff.add", "staff", staff_id, None,
                     {"email": email, "role": role_.value, "partner": partner}, None, now)  # fmt: skip
        view = staff_view(uow.staff.user(program_id, staff_id))
        uow.commit()
    return {**view, "password": secret if generated else None}


def list_staff(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        uow.programs.get(program_id)
        return [staff_view(row) for row in uow.staff.users(program_id)]


@dataclass(frozen=True)
class StaffSession:
    program_id: UUID
    staff_id: UUID
    email: str
    role: Role
    partner: str | None
    locale: str
    csrf_token: str


def sign_in(uow: UnitOfWork, email: str, password: str, now: datetime) -> dict[str, Any]:
    """Check email and password; on success open a session and return its cookie value and CSRF token.

    Five failures within 15 minutes lock the account for 15 minutes (domain.staff.SignInState); the failure
    count is committed even though the request is refused."""
    try:
        email = normalise_staff_email(email)
    except InvalidInput:
        _spend_equal_time(password)
        raise SignInFailed("email or password is wrong") from None
    refusal: SignInFailed | SignInLocked
    with uow:
        found = [uow.staff.user(r["program_id"], r["id"], lock=True) for r in uow.staff.users_by_email(email)]
        rows = [r for r in found if r is not None]
        open_rows = [r for r in rows if not _state(r).locked(now)]
        if rows and not open_rows:
            until = min(r["locked_until"] for r in rows)
            raise SignInLocked("too many failed sign-ins: try again later", until=iso(until))
        if not rows:
            _spend_equal_time(password)
        for row in open_rows:
            if _verify(row["password_hash"], password):
                return _open_session(uow, row, now)
        locked = []
        for row in open_rows:
            state = _state(row).failed(now)
            uow.staff.set_sign_in_state(row["program_id"], row["id"], state)
            if state.locked(now):
                locked.append(row)
                record_audit(uow, row["program_id"], f"staff:{email}", "staff.locked", "staff", row["id"], None,
                             {"locked_until": iso(state.locked_until)}, "too many failed sign-ins", now)  # fmt: skip
        uow.commit()
        if open_rows and len(locked) == len(open_rows):
            refusal = SignInLocked("too many failed sign-ins: try again later")
        else:
            refusal = SignInFailed("email or password is wrong")
    raise refusal


def _state(row: dict[str, Any]) -> SignInState:
    return SignInState(row["failures"], row["failure_window_start"], row["locked_until"])


def _open_session(uow: UnitOfWork, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    program_id = row["program_id"]
    uow.staff.set_sign_in_state(program_id, row["id"], SignInState.succeeded())
    uow.staff.add_session({"program_id": program_id, "token_hash": token_hash(token), "staff_id": row["id"],
                           "csrf_token": csrf, "created_at": now,
                           "expires_at": now + timedelta(hours=SESSION_HOURS)})  # fmt: skip
    uow.commit()
    return {"cookie": f"{program_id}.{token}", "csrf_token": csrf, "program_id": str(program_id),
            "staff_id": str(row["id"]), "role": row["role"], "locale": row["locale"]}  # fmt: skip


def session_of(uow: UnitOfWork, cookie: str | None, now: datetime) -> StaffSession | None:
    """The signed-in staff user behind a session cookie, or None."""
    parts = split_cookie(cookie)
    if parts is None:
        return None
    program_id, token = parts
    with uow:
        row = uow.staff.session(program_id, token_hash(token), now)
    if row is None:
        return None
    return StaffSession(program_id, row["id"], row["email"], Role(row["role"]), row["partner"], row["locale"],
                        row["csrf_token"])  # fmt: skip


def sign_out(uow: UnitOfWork, cookie: str | None) -> None:
    parts = split_cookie(cookie)
    if parts is None:
        return
    with uow:
        uow.staff.end_session(parts[0], token_hash(parts[1]))
        uow.commit()


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def overview(uow: UnitOfWork, program_id: UUID, start: datetime, end: datetime,
             partner: str | None = None) -> dict[str, Any]:  # fmt: skip
    """What /admin shows first: members, purchases and points issued/redeemed/expired in [start, end).

    A partner's overview counts only its own purchases and the points they earned."""
    if end <= start:
        raise InvalidInput("the period must end after it starts")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        flows = uow.staff.points_by_kind(program_id, start, end, partner)
        view = {
            "currency": program.currency, "timezone": program.timezone, "start": iso(start), "end": iso(end),
            "partner": partner, "purchases": uow.staff.count_purchases(program_id, start, end, partner),
            "points_issued": flows.get("earn", 0),
            "points_redeemed": -flows.get("redeem", 0) - flows.get("pay", 0),
            "points_expired": -flows.get("expire", 0),
            "points_adjusted": flows.get("adjust", 0), "points_reversed": flows.get("reverse", 0),
        }  # fmt: skip
        view["members"] = None if partner else uow.staff.count_members(program_id)
    return view
