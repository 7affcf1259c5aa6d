"""Request limits: a rate per API key and per member, and a size per request body.

Rates are token buckets kept in this process (a burst of up to a minute's allowance, refilled continuously): with
several API processes behind a proxy each keeps its own buckets, so the effective limit is the configured one
times the processes - set it accordingly (docs/operations.md). A refused request gets 429 with `Retry-After`.

Settings (environment): TREUE_RATE_LIMIT_KEY and TREUE_RATE_LIMIT_MEMBER are requests per minute (0: off);
TREUE_MAX_BODY_BYTES limits request bodies, TREUE_MAX_UPLOAD_BYTES the bulk uploads (till batches, card feeds,
imports) named in UPLOAD_PATHS.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from treue.api.errors import ApiProblem

UPLOAD_PATHS = ("/api/v1/till/batches", "/api/v1/cards/feeds", "/api/v1/imports")
MAX_BUCKETS = 100_000  # the least recently used bucket goes first beyond this


class RateLimiter:
    """`take(key)` spends one request of `key`'s allowance: None when allowed, else the seconds to wait."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.clock = per_minute, clock
        self.rate = per_minute / 60.0  # tokens per second
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> float | None:
        if self.per_minute <= 0:
            return None
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.rate


@dataclass
class Limits:
    per_key: RateLimiter
    per_member: RateLimiter
    max_body: int
    max_upload: int

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Limits:
        env = os.environ if environ is None else environ
        return cls(RateLimiter(_int(env, "TREUE_RATE_LIMIT_KEY", 12_000)),
                   RateLimiter(_int(env, "TREUE_RATE_LIMIT_MEMBER", 600)),
                   _int(env, "TREUE_MAX_BODY_BYTES", 1 << 20), _int(env, "TREUE_MAX_UPLOAD_BYTES", 64 << 20))  # fmt: skip

    def check_key(self, key_id: Hashable) -> None:
        _refuse_after(self.per_key.take(key_id), "this API key")

    def check_member(self, program_id: Hashable, member_id: str) -> None:
        _refuse_after(self.per_member.take((program_id, member_id)), "this member")


def _refuse_after(wait: float | None, who: str) -> None:
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise ApiProblem(429, "rate_limited", f"too many requests for {who}; retry in {seconds} s",
                         headers={"Retry-After": str(seconds)})  # fmt: skip


def _int(env: Any, name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must not be negative")
    return number


class BodyLimit:
    """ASGI middleware: a request whose body is larger than allowed is answered 413 (problem+json) before the
    application reads it - by its Content-Length, or while it streams in without one."""

    def __init__(self, app: ASGIApp, limits: Callable[[], Limits]) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits()
        path: str = scope.get("path", "")
        allowed = limits.max_upload if path.startswith(UPLOAD_PATHS) else limits.max_body
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > allowed:
            await _too_large(scope, send, allowed)
            return
        if length is not None:  # the server holds the client to its Content-Length
            await self.app(scope, receive, send)
            return
        # Without a length (chunked): read the body first, at most the allowance, then hand it on.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > allowed:
                await _too_large(scope, send, allowed)
                return
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


async def _too_large(scope: Scope, send: Send, allowed: int) -> None:
    from treue.api.errors import problem  # the problem+json body, as every other refusal
    from treue.api.i18n import negotiate

    language = negotiate(dict(scope.get("headers") or ()).get(b"accept-language", b"").decode("latin-1") or None)
    response = problem(413, "payload_too_large", f"the request body is larger than {allowed} bytes",
                       scope.get("path", ""), language)  # fmt: skip
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
