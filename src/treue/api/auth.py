"""Who is calling: API keys (Authorization: Bearer ... or X-API-Key), their programme and scope."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from fastapi import Depends, Request

from treue.api.errors import ApiProblem
from treue.services.keys import Principal, Scope, authenticate
from treue.services.ports import UnitOfWorkFactory

_CACHE_SECONDS = 5.0  # a revoked key stops working within this time in every process
_cache: dict[str, tuple[float, Principal]] = {}
_lock = threading.Lock()

WRITE_SCOPES = {Scope.ADMIN, Scope.POS, Scope.SHOP, Scope.PARTNER}
TILL = {Scope.ADMIN, Scope.POS, Scope.SHOP, Scope.PARTNER}


@dataclass(frozen=True)
class Context:
    principal: Principal
    program_id: UUID
    uow: UnitOfWorkFactory
    clock: Callable[[], datetime]
    request: Request

    def now(self) -> datetime:
        return self.clock()


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


def principal(request: Request) -> Principal:
    token = _token(request)
    now = time.monotonic()
    if token:
        hit = _cache.get(token)
        if hit and hit[0] > now:
            request.app.state.limits.check_key(hit[1].key_id)
            return hit[1]
    found = authenticate(request.app.state.uow(), token, request.app.state.clock())
    with _lock:
        _cache[token or ""] = (now + _CACHE_SECONDS, found)
    request.app.state.limits.check_key(found.key_id)
    return found


def forget_cached_keys() -> None:
    with _lock:
        _cache.clear()


def allow(*scopes: Scope) -> Callable[..., Context]:
    """A dependency: the caller's key must be a programme key with one of these scopes."""
    allowed = set(scopes)

    def dependency(request: Request, who: Principal = Depends(principal)) -> Context:
        if who.scope is Scope.OPERATOR or who.program_id is None:
            raise ApiProblem(403, "forbidden", "operator keys manage programmes; use a programme key here")
        if who.scope not in allowed:
            raise ApiProblem(403, "forbidden", f"a {who.scope.value} key may not do this")
        member = request.path_params.get("member_id")
        if member is not None:  # a member's own allowance, whichever key asks for them
            request.app.state.limits.check_member(who.program_id, member)
        return Context(who, who.program_id, request.app.state.uow, request.app.state.clock, request)

    return dependency


def operator(request: Request, who: Principal = Depends(principal)) -> Principal:
    if who.scope is not Scope.OPERATOR:
        raise ApiProblem(403, "forbidden", "only an operator key may do this")
    return who


READ = allow(*Scope)  # every programme key may read
WRITE = allow(*WRITE_SCOPES)
ADMIN = allow(Scope.ADMIN)
