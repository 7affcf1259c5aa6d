"""RFC 9457 problem details: every 4xx/5xx is application/problem+json with a stable `code`."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from treue.api.i18n import negotiate, title
from treue.domain.errors import DomainError

log = logging.getLogger("treue.api")
PROBLEM = "application/problem+json"

# Stable codes for errors that do not come from the domain.
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
              422: "validation_error", 429: "rate_limited"}  # fmt: skip


# A lost or refused database connection (a restart, a failover, a network cut) is temporary: 503 with Retry-After,
# so clients and proxies retry instead of treating it as a bug. Connection-class SQLSTATEs: 08xxx (connection
# exception), 57P01-57P03 (admin/crash shutdown, cannot connect now).
RETRY_AFTER_SECONDS = 5
_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")


def database_unavailable(error: BaseException) -> bool:
    """Whether an exception means the database cannot be reached now (rather than a bug or a refused statement)."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection became free in time
        return True
    cause: BaseException | None = error
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        cause = error.orig
    if isinstance(cause, psycopg.OperationalError):
        state = getattr(cause, "sqlstate", None)
        # no SQLSTATE: the client library failed to connect or lost the socket; a server answer has one
        return state is None or state.startswith(_CONNECTION_STATES)
    return False


def problem(status: int, code: str, detail: str, instance: str | None = None, language: str = "en",
            **extra: Any) -> JSONResponse:  # fmt: skip
    heading = title(code, language, HTTPStatus(status).phrase)
    body = {"type": f"/problems/{code}", "title": heading, "status": status, "detail": detail,
            "code": code, **({"instance": instance} if instance else {}), **extra}  # fmt: skip
    headers = {"Content-Language": language}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class ApiProblem(Exception):
    """An HTTP-level refusal raised by adapters (idempotency, auth scopes)."""

    def __init__(self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:  # fmt: skip
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra
        self.headers = headers or {}


def domain_problem(error: DomainError, request: Request) -> JSONResponse:
    extra = {k: v for k, v in error.extra.items() if k != "code"}
    return problem(error.status, error.code, error.detail, request.url.path, language_of(request), **extra)


def language_of(request: Request) -> str:
    return negotiate(request.headers.get("accept-language"))


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> JSONResponse:
        return domain_problem(error, request)

    @app.exception_handler(ApiProblem)
    async def _api(request: Request, error: ApiProblem) -> JSONResponse:
        response = problem(
            error.status, error.code, error.detail, request.url.path, language_of(request), **error.extra
        )
        response.headers.update(error.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in error.errors()]  # fmt: skip
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"][1:]) or "request"
        return problem(422, "validation_error", f"{where}: {first['msg']}", request.url.path, language_of(request),
                       errors=errors)  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(error.status_code, "http_error")
        return problem(error.status_code, code, str(error.detail), request.url.path, language_of(request))

    def crashed(request: Request, error: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        return problem(500, "internal_error", "an unexpected error occurred; nothing was changed", request.url.path,
                       language_of(request))  # fmt: skip

    # Database errors are handled here rather than by the catch-all below: Starlette's handler for Exception
    # answers and then re-raises to the server, which closes the client's connection.
    async def _database(request: Request, error: Exception) -> JSONResponse:
        if not database_unavailable(error):
            return crashed(request, error)
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    str(error).splitlines()[0] if str(error) else type(error).__name__)  # fmt: skip
        response = problem(503, "database_unavailable", "the database cannot be reached; retry the request "
                           "(with the same Idempotency-Key)", request.url.path, language_of(request))  # fmt: skip
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    app.add_exception_handler(sa_exc.DBAPIError, _database)
    app.add_exception_handler(sa_exc.TimeoutError, _database)

    @app.exception_handler(Exception)
    async def _crash(request: Request, error: Exception) -> JSONResponse:
        return crashed(request, error)
