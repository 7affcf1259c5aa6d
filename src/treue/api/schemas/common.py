"""Shared request/response building blocks."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

# Money in requests is a decimal string in major units ("12.50"); integers are accepted, floats never.
Amount = Annotated[StrictStr | StrictInt, Field(examples=["49.90"])]
Locale = Annotated[str, Field(pattern="^(de|en)$")]


class Input(BaseModel):
    """Requests reject unknown fields: nobody can smuggle in a balance, a tier or a programme id."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _integers_in_range(self) -> Input:
        # Found by fuzzing: a 70-bit integer reached the database (500). No count of points, days or minor
        # units in a request needs more than 32 bits; larger ones are refused with 422.
        for name in type(self).model_fields:
            _check_integers(getattr(self, name), name)
        return self


INT_LIMIT = 2**31 - 1


def _check_integers(value: Any, where: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        if not -INT_LIMIT <= value <= INT_LIMIT:
            raise ValueError(f"{where}: integers must lie between -{INT_LIMIT} and {INT_LIMIT}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_integers(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            _check_integers(item, where)


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
