"""API keys: scoped to one programme (or the operator), stored hashed, shown once."""

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
from treue.services.ports import UnitOfWork
from treue.services.views import iso

PREFIX = "trk"
TOUCH_EVERY = timedelta(minutes=5)  # last-used time is kept to this precision: no write per request


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
                   partner: str | None = None) -> dict[str, Any]:  # fmt: skip
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
    with uow:
        if program_id is not None:
            uow.programs.get(program_id)
        uow.keys.add({"id": key_id, "program_id": program_id, "partner": partner, "name": name or scope_.value,
                      "prefix": prefix, "secret_hash": _hash(secret), "scope": scope_.value, "created_at": now})  # fmt: skip
        uow.commit()
    return {"id": str(key_id), "program_id": str(program_id) if program_id else None, "scope": scope_.value,
            "partner": partner, "name": name or scope_.value, "key": f"{PREFIX}_{prefix}_{secret}",
            "created_at": iso(now), "note": "store this key now: it is shown only once"}  # fmt: skip


def authenticate(uow: UnitOfWork, token: str | None, now: datetime) -> Principal:
    if not token:
        raise Unauthorized("an API key is required (Authorization: Bearer <key>)")
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise Unauthorized("malformed API key")
    with uow:
        row = uow.keys.by_prefix(parts[1])
        if row is None or row["revoked_at"] is not None or not hmac.compare_digest(row["secret_hash"], _hash(parts[2])):
            raise Unauthorized("unknown or revoked API key")
        if row["last_used_at"] is None or now - row["last_used_at"] > TOUCH_EVERY:
            uow.keys.touch(row["id"], now)
            uow.commit()
    return Principal(row["id"], row["program_id"], Scope(row["scope"]), row["partner"], row["name"])


def list_api_keys(uow: UnitOfWork, program_id: UUID | None) -> list[dict[str, Any]]:
    with uow:
        rows = uow.keys.list(program_id)
    return [{"id": str(r["id"]), "program_id": str(r["program_id"]) if r["program_id"] else None,
             "scope": r["scope"], "partner": r["partner"], "name": r["name"], "prefix": r["prefix"],
             "created_at": iso(r["created_at"]), "last_used_at": iso(r["last_used_at"]),
             "revoked_at": iso(r["revoked_at"])} for r in rows]  # fmt: skip


def revoke_api_key(uow: UnitOfWork, key_id: UUID, program_id: UUID | None, now: datetime) -> None:
    with uow:
        if not uow.keys.revoke(key_id, program_id, now):
            raise NotFound("no such active key", resource="api_key")
        uow.commit()
