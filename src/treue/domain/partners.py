"""Coalition partners: merchants that issue and accept the programme's points, and their terms.

A partner is known by its code, the same `partner` string that purchases, API keys and lots carry; "default"
is the programme itself and is never registered. Prices are money per N points in the programme currency,
integer minor units like `Program.point_value`, so no price is ever a float.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from treue.domain.errors import InvalidInput
from treue.domain.money import Rounding, divide

DEFAULT_PARTNER = "default"  # the programme itself
_CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class Billing(enum.StrEnum):
    PREPAID = "prepaid"  # the partner pays in advance; settlement draws the amounts from that prepayment
    POSTPAID = "postpaid"  # the partner is invoiced after the period


@dataclass(frozen=True, slots=True)
class Price:
    """`minor` minor units of the programme currency per `points` points."""

    minor: int
    points: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int) or self.minor < 0:
            raise InvalidInput("a price must be zero or more minor units")
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points <= 0:
            raise InvalidInput("a price is per a positive number of points")

    def of(self, points: int, rounding: Rounding) -> int:
        """What `points` points cost at this price, in minor units, rounded by the programme's policy."""
        return divide(points * self.minor, self.points, rounding)


@dataclass(frozen=True, slots=True)
class Partner:
    code: str
    name: str
    issue_price: Price  # what the partner pays the programme per point it issues
    redeem_price: Price  # what the programme pays the partner per point redeemed at it
    billing: Billing = Billing.POSTPAID
    stores: tuple[str, ...] = field(default_factory=tuple)
    channels: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        check_code(self.code)
        if not self.name.strip() or len(self.name) > 200:
            raise InvalidInput("a partner needs a name of 1 to 200 characters")


def check_code(code: str) -> str:
    if code == DEFAULT_PARTNER:
        raise InvalidInput("'default' is the programme itself and cannot be registered as a partner")
    if not _CODE.match(code):
        raise InvalidInput(f"'{code}' is not a partner code (lower-case letters, digits, '.', '_', '-'; up to 64)")
    return code


def parse_billing(value: str) -> Billing:
    try:
        return Billing(value)
    except ValueError:
        raise InvalidInput("billing must be prepaid or postpaid") from None
