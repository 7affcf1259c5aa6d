"""What every command shares: the database, the clock, JSON output, one-line errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import typer

from treue.domain.errors import DomainError
from treue.store.database import make_engine
from treue.store.unit_of_work import SqlUnitOfWorkFactory

F = TypeVar("F", bound=Callable[..., Any])
_factory: SqlUnitOfWorkFactory | None = None


def uow() -> SqlUnitOfWorkFactory:
    global _factory
    if _factory is None:
        _factory = SqlUnitOfWorkFactory(make_engine())
    return _factory


def now() -> datetime:
    return datetime.now(UTC)


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def friendly(fn: F) -> F:
    """Domain refusals become one line on stderr and exit code 1; nothing was changed."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as error:
            fail(f"{error.code}: {error.detail}")
        except ValueError as error:
            fail(f"invalid_input: {error}")

    return wrapper  # type: ignore[return-value]


def program_uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        fail(f"invalid_input: '{value}' is not a programme id")
        raise AssertionError from None  # unreachable; fail() exits


def uuid_arg(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        fail(f"invalid_input: '{value}' is not a {what} id")
        raise AssertionError from None


def emit(data: Any, as_json: bool = True, text: str | None = None) -> None:
    if as_json or text is None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        typer.echo(text)
