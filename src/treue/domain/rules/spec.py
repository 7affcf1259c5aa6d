"""Reading rule definitions from plain data (the YAML/JSON/API format), with the location of every value.

Every refusal is a `RuleInvalid` whose `location` extra points at the offending value, such as
`effects[1].per` or `limits.per_member[0].points`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from treue.domain.errors import RuleInvalid

_MISSING: Any = object()


def join(location: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{location}[{key}]"
    return f"{location}.{key}" if location else key


def refuse(location: str, detail: str, **extra: Any) -> RuleInvalid:
    where = f"{location}: " if location else ""
    return RuleInvalid(f"{where}{detail}", location=location or "(definition)", **extra)


class Spec:
    """A mapping being read. Unknown keys are refused (a typo such as `pionts` must not pass silently)."""

    def __init__(self, data: Any, location: str = "") -> None:
        if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
            raise refuse(location, "must be an object with named fields")
        self.data: Mapping[str, Any] = data
        self.location = location

    def at(self, key: str | int) -> str:
        return join(self.location, key)

    def only(self, *allowed: str) -> Spec:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            raise refuse(self.at(unknown[0]), f"unknown field (allowed: {', '.join(sorted(allowed))})")
        return self

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                raise refuse(self.at(key), "is required")
            return default
        return value

    def text(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value.strip():
            raise refuse(self.at(key), "must be a non-empty string")
        return value.strip()

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int | None = None,
                maximum: int | None = None) -> Any:  # fmt: skip
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise refuse(self.at(key), f"must be a whole number, not {value!r}")
        if minimum is not None and value < minimum:
            what = "negative" if minimum == 0 else f"less than {minimum}"
            raise refuse(self.at(key), f"must not be {what} (got {value})")
        if maximum is not None and value > maximum:
            raise refuse(self.at(key), f"must be at most {maximum} (got {value})")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise refuse(self.at(key), "must be true or false")
        return value

    def decimal(self, key: str, default: Any = _MISSING) -> Any:
        """An exact decimal given as a string ("1.5") or an integer; floating-point numbers are refused."""
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        return exact_decimal(value, self.at(key))

    def items(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise refuse(self.at(key), "must be a list")
        return list(value)

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.items(key, [])
        for index, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                raise refuse(join(self.at(key), index), "must be a non-empty string")
        return tuple(v.strip() for v in values)

    def sub(self, key: str) -> Spec:
        return Spec(self.raw(key, {}), self.at(key))


def exact_decimal(value: Any, location: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise refuse(location, f'must be a decimal string such as "1.5", not {value!r}')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise refuse(location, f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise refuse(location, f"{value!r} is not a decimal number")
    return Fraction(number)


def decimal_text(value: Fraction) -> str:
    """A fraction that came from a decimal string, written back as one ("2", "1.5")."""
    number = Decimal(value.numerator) / Decimal(value.denominator)
    text = format(number.normalize(), "f")
    return text
