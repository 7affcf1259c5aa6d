"""Idempotency-Key (Stripe / IETF draft semantics) for every POST.

- first request: runs, and its response is stored in the SAME transaction as the change it made;
- a retry with the same key and body: the stored response, nothing changes;
- the same key with another body: 422 idempotency_key_reused;
- a retry while the first is still running: 409 idempotency_in_progress.

Keys are scoped to the API key. Business refusals (4xx from the domain) are stored too, in their own
transaction after the rollback, so a retry gets the same answer.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from treue.api.auth import Context
from treue.api.errors import PROBLEM, ApiProblem, domain_problem
from treue.domain.errors import DomainError
from treue.jsoncodec import dumps_bytes
from treue.services.ports import UnitOfWork


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps_bytes(content)


_in_flight: set[tuple[str, str]] = set()
_lock = threading.Lock()
Handler = Callable[[UnitOfWork], dict[str, Any]]


def _fingerprint(ctx: Context, body: bytes) -> str:
    request = ctx.request
    digest = hashlib.sha256(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def run(ctx: Context, body: bytes, handler: Handler, status: int = 201) -> JSONResponse:
    key = ctx.request.headers.get("idempotency-key")
    if key is None:
        return FastJSONResponse(handler(ctx.uow()), status_code=status)  # the use case commits itself
    if not 1 <= len(key) <= 255:
        raise ApiProblem(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters")
    key_id = ctx.principal.key_id
    token = (str(key_id), key)
    with _lock:
        if token in _in_flight:
            raise _in_progress()
        _in_flight.add(token)
    fingerprint = _fingerprint(ctx, body)
    try:
        with ctx.uow() as uow:
            locked, stored = uow.idempotency.claim(key_id, key)
            if not locked:  # another process is running this key right now
                raise _in_progress()
            if stored is not None:
                return _replay(stored, fingerprint)
            try:
                result = handler(uow)  # the use case joins this transaction
            except DomainError as refused:
                failure = refused
            else:
                uow.idempotency.add(_row(ctx, key, fingerprint, status, result))
                uow.commit()
                _crash_after_commit()
                return FastJSONResponse(result, status_code=status)
        # The use case refused: its transaction is rolled back; remember the refusal.
        response = domain_problem(failure, ctx.request)
        with ctx.uow() as uow:
            if uow.idempotency.get(key_id, key) is None:
                uow.idempotency.add(_row(ctx, key, fingerprint, response.status_code, orjson.loads(response.body)))
                uow.commit()
        return response
    finally:
        with _lock:
            _in_flight.discard(token)


def _crash_after_commit() -> None:
    """Test hook (off unless TREUE_TEST_CRASH_AFTER_COMMIT names a file): if that file exists, delete it and die
    at once, after the commit and before the response, as a crashed server would (tests/reliability)."""
    flag = os.environ.get("TREUE_TEST_CRASH_AFTER_COMMIT")
    if flag and os.path.exists(flag):
        os.remove(flag)
        os._exit(86)


def _row(ctx: Context, key: str, fingerprint: str, status: int, body: Any) -> dict[str, Any]:
    return {"api_key_id": ctx.principal.key_id, "key": key, "program_id": ctx.program_id,
            "request_hash": fingerprint, "status_code": status, "response": body, "created_at": ctx.now()}  # fmt: skip


def _replay(stored: dict[str, Any], fingerprint: str) -> JSONResponse:
    if stored["request_hash"] != fingerprint:
        raise ApiProblem(422, "idempotency_key_reused",
                         "this Idempotency-Key was used with a different request; use a new key")  # fmt: skip
    status = stored["status_code"]
    media = PROBLEM if status >= 400 else "application/json"
    return FastJSONResponse(stored["response"], status_code=status, media_type=media,
                        headers={"Idempotent-Replayed": "true"})  # fmt: skip


def _in_progress() -> ApiProblem:
    return ApiProblem(409, "idempotency_in_progress",
                      "a request with this Idempotency-Key is still being processed; retry later")  # fmt: skip
