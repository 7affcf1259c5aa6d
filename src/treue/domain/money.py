"""Money in integer minor units, and integer rounding policies.

No floats: amounts are parsed from decimal strings and divided with explicit rounding.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from treue.domain.errors import CurrencyMismatch, InvalidInput

# ISO 4217 minor-unit exponents for currencies with other than two decimals.
_EXPONENTS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0,
    "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0,
    "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def validate_currency(code: str) -> str:
    if len(code) != 3 or not code.isascii() or not code.isalpha() or not code.isupper():
        raise InvalidInput(f"'{code}' is not an ISO 4217 currency code (three capital letters)")
    return code


class Rounding(enum.StrEnum):
    """How a fractional number of points (or minor units) becomes an integer."""

    FLOOR = "floor"
    HALF_UP = "half_up"
    HALF_EVEN = "half_even"
    CEIL = "ceil"


def divide(numerator: int, denominator: int, rounding: Rounding) -> int:
    """numerator / denominator rounded by policy, in exact integer arithmetic (denominator > 0)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    q, r = divmod(numerator, denominator)  # floor division: 0 <= r < denominator
    if r == 0 or rounding is Rounding.FLOOR:
        return q
    if rounding is Rounding.CEIL:
        return q + 1
    twice = 2 * r
    if twice > denominator:
        return q + 1
    if twice < denominator:
        return q
    if rounding is Rounding.HALF_UP:  # half away from zero
        return q + 1 if numerator >= 0 else q
    return q + (q % 2)  # HALF_EVEN


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents) of one currency."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError("Money.minor must be an int")

    @classmethod
    def parse(cls, amount: str | int, currency: str) -> Money:
        """Parse a decimal string in major units ("12.50") exactly; more decimals than the currency has
        are rejected rather than rounded."""
        validate_currency(currency)
        if isinstance(amount, bool) or not isinstance(amount, str | int):
            raise InvalidInput('amounts are decimal strings such as "12.50", never floating-point numbers')
        try:
            value = Decimal(str(amount).strip())
        except InvalidOperation:
            raise InvalidInput(f"'{amount}' is not a decimal amount") from None
        if not value.is_finite():
            raise InvalidInput(f"'{amount}' is not a decimal amount")
        exponent = currency_exponent(currency)
        scaled = value.scaleb(exponent)
        if scaled != scaled.to_integral_value():
            raise InvalidInput(f"'{amount}' has more than {exponent} decimals for {currency}")
        return cls(int(scaled), currency)

    def format(self) -> str:
        """Major units as a plain decimal string ("12.50")."""
        exponent = currency_exponent(self.currency)
        if exponent == 0:
            return str(self.minor)
        whole, fraction = divmod(abs(self.minor), 10**exponent)
        return f"{'-' if self.minor < 0 else ''}{whole}.{fraction:0{exponent}d}"

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __str__(self) -> str:
        return f"{self.format()} {self.currency}"
