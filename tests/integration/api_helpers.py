"""Helpers for the HTTP API tests: a movable clock, a caller that checks every error is problem+json,
programme set-up through the operator API, and a snapshot of everything a programme owns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from treue.api.app import create_app
from treue.services.keys import create_api_key
from treue.services.verify import verify
from treue.store import tables as t
from treue.store.unit_of_work import SqlUnitOfWorkFactory

PROBLEM = "application/problem+json"
PROGRAM_SCOPES = ("admin", "pos", "shop", "read_only")


class Clock:
    """The app's clock; tests move it forward to see pending points become available."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def assert_problem(response: httpx.Response) -> dict[str, Any]:
    """Every 4xx/5xx is RFC 9457 problem+json with a stable `code` and the status repeated in the body."""
    assert response.headers.get("content-type", "").startswith(PROBLEM), (
        f"{response.request.method} {response.request.url.path} -> {response.status_code} "
        f"with content-type {response.headers.get('content-type')!r}: {response.text}"
    )
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"], body
    assert body.get("status") == response.status_code, body
    assert isinstance(body.get("detail"), str), body
    return body  # type: ignore[no-any-return]


class Caller:
    """One API key talking to the app. Every error response it sees is checked to be a problem."""

    def __init__(self, client: TestClient, token: str | None, key_id: str | None = None) -> None:
        self.client, self.token, self.key_id = client, token, key_id

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                idem: str | None = None, content: bytes | None = None) -> httpx.Response:  # fmt: skip
        headers = {}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if idem is not None:
            headers["Idempotency-Key"] = idem
        if content is not None:
            headers["Content-Type"] = "application/json"
        response = self.client.request(method, "/api/v1" + path, json=json, params=params, headers=headers,
                                       content=content)  # fmt: skip
        if response.status_code >= 400:
            assert_problem(response)
        return response

    def ok(self, method: str, path: str, status: int | None = None, **kw: Any) -> Any:
        response = self.request(method, path, **kw)
        expected = status or (201 if method == "POST" else 200)
        assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def get(self, path: str, **kw: Any) -> Any:
        return self.ok("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.ok("POST", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.ok("PATCH", path, json=json, **kw)


def snapshot(engine: Engine, program_id: str | UUID) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a programme owns, table by table (api keys without their last-used time; the
    idempotency records are left out: storing a refusal for replay is their job)."""
    pid = UUID(str(program_id))
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            if table.name == "idempotency_keys":
                continue
            column = table.c.id if table.name == "programs" else table.c.get("program_id")
            if column is None:
                continue
            columns = [c for c in table.c if c.name != "last_used_at"]
            rows = conn.execute(select(*columns).where(column == pid).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(row) for row in rows]
    return out


@dataclass
class Tenant:
    """A programme created through the operator API, with one caller per scope."""

    program_id: str
    callers: dict[str, Caller] = field(default_factory=dict)

    def __getattr__(self, scope: str) -> Caller:
        try:
            return self.__dict__["callers"][scope]
        except KeyError:
            raise AttributeError(scope) from None


class Api:
    """The app on one backend with a movable clock and an operator key."""

    def __init__(self, engine: Engine, now: datetime) -> None:
        self.engine = engine
        self.uow = SqlUnitOfWorkFactory(engine)
        self.clock = Clock(now)
        self.app = create_app(engine, clock=self.clock)
        self.client = TestClient(self.app)
        op = create_api_key(self.uow(), None, "operator", "operator", now)
        self.operator = Caller(self.client, op["key"], op["id"])
        self.anonymous = Caller(self.client, None)

    def tenant(self, name: str = "Programme", scopes: tuple[str, ...] = PROGRAM_SCOPES,
               **settings: Any) -> Tenant:  # fmt: skip
        program = self.operator.post("/programs", {"name": name, "currency": "EUR", "timezone": "Europe/Berlin",
                                                   **settings})  # fmt: skip
        tenant = Tenant(program["id"])
        for scope in scopes:
            tenant.callers[scope] = self.key(program["id"], scope)
        return tenant

    def key(self, program_id: str, scope: str, partner: str | None = None, name: str = "") -> Caller:
        body = {"scope": scope, "name": name or scope, **({"partner": partner} if partner else {})}
        view = self.operator.post(f"/programs/{program_id}/keys", body)
        assert view["key"].startswith("trk_") and view["scope"] == scope
        return Caller(self.client, view["key"], view["id"])

    def snapshot(self, program_id: str | UUID) -> dict[str, list[tuple[Any, ...]]]:
        return snapshot(self.engine, program_id)

    def verify(self, program_id: str | UUID) -> list[Any]:
        return verify(self.uow(), UUID(str(program_id)))

    @contextmanager
    def unchanged(self, *program_ids: str) -> Iterator[None]:
        """Whatever happens inside changes nothing any of these programmes owns."""
        before = {pid: self.snapshot(pid) for pid in program_ids}
        yield
        for pid in program_ids:
            after = self.snapshot(pid)
            changed = [name for name in before[pid] if before[pid][name] != after[name]]
            assert not changed, f"programme {pid}: rows of {changed} changed"

    def refused(self, caller: Caller, method: str, path: str, status: int, code: str | None, program_id: str,
                **kw: Any) -> dict[str, Any]:  # fmt: skip
        """The request is refused with this status (and code), as a problem, and changes nothing."""
        with self.unchanged(program_id):
            response = caller.request(method, path, **kw)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        body = assert_problem(response)
        if code is not None:
            assert body["code"] == code, body
        return body


def luhn_ok(number: str) -> bool:
    """An independent Luhn check (not the one under test)."""
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
