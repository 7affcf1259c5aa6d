"""API keys: scoped to one programme (or the operator), stored hashed, shown once, rotatable.

Rotating a key gives it a new secret and keeps its id, prefix, scope and name; the replaced secret keeps working
for a grace period (default 24 hours, 0: refused at once), so an integration switches without downtime. Only
hashes are stored: of the current secret and, during the grace period, of the replaced one.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from treue.domain.errors import DomainError, InvalidInput, NotFound
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork
from treue.services.views import iso

PREFIX = "trk"
TOUCH_EVERY = timedelta(minutes=5)  # last-used time is kept to this precision: no write per request
DEFAULT_GRACE = timedelta(hours=24)  # how long a rotated key's old secret keeps working
MAX_GRACE = timedelta(days=30)


class Scope(enum.StrEnum):
    OPERATOR = "operator"  # creates programmes and their keys; no programme of its own
    ADMIN = "admin"  # everything within its programme
    POS = "pos"  # tills: members, purchases, redemptions, coupons
    SHOP = "shop"  # shop systems: the same as a till
    READ_ONLY = "read_only"  # reads only
    PARTNER = "partner"  # a coalition partner's till/shop: like pos, bound to the partner


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


@dataclass(frozen=True)
class Principal:
    key_id: UUID
    program_id: UUID | None
    scope: Scope
    partner: str | None
    name: str

    @property
    def actor(self) -> str:
        return f"key:{self.name}"


def _hash(secret: str) -> str:
    # API keys carry 192 random bits, so a fast hash is enough (passwords, with little entropy, use argon2).
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(uow: UnitOfWork, program_id: UUID | None, scope: str, name: str, now: datetime,
                   partner: str | None = None, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    try:
        scope_ = Scope(scope)
    except ValueError:
        raise InvalidInput("scope must be one of: " + ", ".join(s.value for s in Scope)) from None
    if (scope_ is Scope.OPERATOR) != (program_id is None):
        raise InvalidInput("operator keys have no programme; every other key belongs to one")
    if (scope_ is Scope.PARTNER) != bool(partner):
        raise InvalidInput("partner keys, and only they, name a partner")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    key_id = new_id()
    row = {"id": key_id, "program_id": program_id, "partner": partner, "name": name or scope_.value, "prefix": prefix,
           "secret_hash": _hash(secret), "scope": scope_.value, "created_at": now}  # fmt: skip
    with uow:
        if program_id is not None:
            uow.programs.get(program_id)
        uow.keys.add(row)
        if program_id is not None:
            record_audit(uow, program_id, actor, "api_key.create", "api_key", key_id, None, _audited(row), None, now)
        uow.commit()
    return {"id": str(key_id), "program_id": str(program_id) if program_id else None, "scope": scope_.value,
            "partner": partner, "name": name or scope_.value, "key": f"{PREFIX}_{prefix}_{secret}",
            "prefix": prefix, "created_at": iso(now), "note": "store this key now: it is shown only once"}  # fmt: skip


def _audited(row: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a key: never a secret or a hash of one."""
    return {"name": row["name"], "scope": row["scope"], "partner": row["partner"], "prefix": row["prefix"],
            "previous_valid_until": iso(row.get("previous_valid_until")), "revoked_at": iso(row.get("revoked_at"))}  # fmt: skip


def authenticate(uow: UnitOfWork, token: str | None, now: datetime) -> Principal:
    if not token:
        raise Unauthorized("an API key is required (Authorization: Bearer <key>)")
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise Unauthorized("malformed API key")
    with uow:
        row = uow.keys.by_prefix(parts[1])
        if row is None or row["revoked_at"] is not None or not _secret_matches(row, _hash(parts[2]), now):
            raise Unauthorized("unknown or revoked API key")
        if row["last_used_at"] is None or now - row["last_used_at"] > TOUCH_EVERY:
            uow.keys.touch(row["id"], now)
            uow.commit()
    return Principal(row["id"], row["program_id"], Scope(row["scope"]), row["partner"], row["name"])


def _secret_matches(row: dict[str, Any], digest: str, now: datetime) -> bool:
    """The current secret, or a rotated key's previous one while its grace period lasts."""
    if hmac.compare_digest(row["secret_hash"], digest):
        return True
    previous, until = row.get("previous_secret_hash"), row.get("previous_valid_until")
    return bool(previous and until and now < until and hmac.compare_digest(previous, digest))


def list_api_keys(uow: UnitOfWork, program_id: UUID | None) -> list[dict[str, Any]]:
    with uow:
        rows = uow.keys.list(program_id)
    return [{"id": str(r["id"]), "program_id": str(r["program_id"]) if r["program_id"] else None,
             "scope": r["scope"], "partner": r["partner"], "name": r["name"], "prefix": r["prefix"],
             "created_at": iso(r["created_at"]), "last_used_at": iso(r["last_used_at"]),
             "revoked_at": iso(r["revoked_at"]), "rotated_at": iso(r.get("rotated_at")),
             "previous_valid_until": iso(r.get("previous_valid_until"))} for r in rows]  # fmt: skip


def revoke_api_key(uow: UnitOfWork, key_id: UUID, program_id: UUID | None, now: datetime,
                   actor: str = "api") -> None:  # fmt: skip
    with uow:
        row = uow.keys.get(key_id, program_id, lock=True)
        if row is None or not uow.keys.revoke(key_id, program_id, now):
            raise NotFound("no such active key", resource="api_key")
        if row["program_id"] is not None:
            record_audit(uow, row["program_id"], actor, "api_key.revoke", "api_key", key_id, _audited(row),
                         _audited(row | {"revoked_at": now}), None, now)  # fmt: skip
        uow.commit()


def rotate_api_key(uow: UnitOfWork, key_id: UUID, program_id: UUID | None, now: datetime,
                   grace: timedelta = DEFAULT_GRACE, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Issue a new secret for a key (same id, prefix, scope and name), shown once in the answer.

    The replaced secret keeps working until `now + grace` (0: refused at once). A key rotated again within its
    grace period drops the oldest secret at once: only the current and the one before it are ever accepted.
    `program_id` None finds any key (the operator's CLI); otherwise only that programme's keys.
    """
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise InvalidInput(f"the grace period is between 0 and {MAX_GRACE.days * 24} hours", field="grace_hours")
    secret = secrets.token_urlsafe(24)
    with uow:
        row = uow.keys.get(key_id, program_id, lock=True)
        if row is None or row["revoked_at"] is not None:
            raise NotFound("no such active key", resource="api_key")
        until = now + grace if grace > timedelta(0) else None
        if not uow.keys.rotate(key_id, _hash(secret), row["secret_hash"] if until else None, until, now):
            raise NotFound("no such active key", resource="api_key")
        if row["program_id"] is not None:
            record_audit(uow, row["program_id"], actor, "api_key.rotate", "api_key", key_id, _audited(row),
                         _audited(row | {"previous_valid_until": until}), None, now)  # fmt: skip
        uow.commit()
    return {"id": str(key_id), "program_id": str(row["program_id"]) if row["program_id"] else None,
            "scope": row["scope"], "partner": row["partner"], "name": row["name"], "prefix": row["prefix"],
            "key": f"{PREFIX}_{row['prefix']}_{secret}", "created_at": iso(row["created_at"]), "rotated_at": iso(now),
            "previous_valid_until": iso(until),
            "note": "store this key now: it is shown only once"}  # fmt: skip
