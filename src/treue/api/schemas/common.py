"""Shared request/response building blocks."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

# Money in requests is a decimal string in major units ("12.50"); integers are accepted, floats never.
Amount = Annotated[StrictStr | StrictInt, Field(examples=["49.90"])]
Locale = Annotated[str, Field(pattern="^(de|en)$")]


class Input(BaseModel):
    """Requests reject unknown fields: nobody can smuggle in a balance, a tier or a programme id."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}} for code in (400, 401, 403, 404, 409, 422)
}
