"""ASGI middleware around every request: Prometheus request count and latency by route template, and the
security headers every response carries (a content security policy on HTML pages)."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from treue.metrics import LATENCY, REQUESTS

ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
          (b"x-frame-options", b"DENY")]  # fmt: skip
# The admin and the portal load their scripts (HTMX, charts) from /static; htmx inserts one style element.
HTML = [(b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                     b"script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; "
                                     b"object-src 'none'")]  # fmt: skip


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers") or ())
                present = {name.lower() for name, _ in headers}
                added = ALWAYS + (HTML if _is_html(headers) else [])
                headers += [(name, value) for name, value in added if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _route(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def _is_html(headers: list[Any]) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers)


def _route(scope: Scope) -> str:
    """The matched route's template (/api/v1/members/{member_id}), never the raw path (unbounded labels): the
    path with each path parameter's segment put back as its name."""
    if scope.get("route") is None:
        return "unmatched"
    values = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    segments = str(scope.get("path", "")).split("/")
    return "/".join(f"{{{values[s]}}}" if s in values else s for s in segments)
