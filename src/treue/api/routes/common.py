"""Helpers shared by the route modules."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel

from treue.api.errors import ApiProblem


def canonical(model: BaseModel | None) -> bytes:
    """The request as the idempotency fingerprint sees it: what was sent, keys sorted."""
    if model is None:
        return b""
    sent = model.model_dump(mode="json", exclude_unset=True)
    try:
        return orjson.dumps(sent, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits (found by fuzzing): the stdlib encoder takes any size
        return json.dumps(sent, sort_keys=True, separators=(",", ":")).encode()


def given(model: BaseModel) -> dict[str, Any]:
    """The fields the client actually sent (so PATCH can tell "unset" from "set to null")."""
    return model.model_dump(exclude_unset=True)


def uuid_of(value: str | None, field: str) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise ApiProblem(422, "validation_error", f"{field}: not a valid id") from None
