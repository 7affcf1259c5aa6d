"""A loyalty programme's settings: currency, timezone, point value, and its explicit policies."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from treue.domain.durations import (
    add_local_days,
    add_months,
    end_of_local_day,
    local_date,
    parse_month_day,
    zone,
)
from treue.domain.errors import InvalidInput
from treue.domain.money import Money, Rounding, divide, validate_currency


class ExpiryPolicy(enum.StrEnum):
    NONE = "none"
    ROLLING = "rolling"  # N months after the day the points were earned
    FIXED_DAY = "fixed_day"  # on a fixed day of the year, N years after the year of earning


class ReturnPolicy(enum.StrEnum):
    """What a refund does when the points it should take back are no longer there."""

    ONLY_PENDING = "only_pending"  # take back only points of the purchase still pending; forgive the rest
    WITHIN_BALANCE = "within_balance"  # take back from the purchase's lots, then other points, down to zero
    ALLOW_NEGATIVE = "allow_negative"  # take back everything; the balance may go below zero


class EarnBasis(enum.StrEnum):
    PER_AMOUNT = "per_amount"  # `earn_points` per `earn_per_minor` minor units spent
    PER_ITEM = "per_item"  # `earn_points` per item (quantity) bought


@dataclass(frozen=True, slots=True)
class Program:
    id: UUID
    name: str
    currency: str
    timezone: str
    # A point is worth point_value_minor / point_value_points minor units (1 ct per point = 1/1).
    point_value_minor: int = 1
    point_value_points: int = 1
    rounding: Rounding = Rounding.FLOOR
    earn_basis: EarnBasis = EarnBasis.PER_AMOUNT
    earn_points: int = 1
    earn_per_minor: int = 100
    pending_days: int = 0
    expiry_policy: ExpiryPolicy = ExpiryPolicy.NONE
    expiry_months: int = 0  # ROLLING
    expiry_day: str | None = None  # FIXED_DAY, "MM-DD"
    expiry_years: int = 1  # FIXED_DAY: points earned in year Y expire on expiry_day of year Y + N
    return_policy: ReturnPolicy = ReturnPolicy.WITHIN_BALANCE
    default_locale: str = "de"
    # Checkout and cashback wallet (issue 4).
    earn_on_money_only: bool = False  # a captured checkout earns only on the part paid with money
    min_redemption_points: int = 0  # the fewest points a checkout may pay with (0: any number)
    hold_minutes: int = 15  # how long a checkout hold lasts unless the till asks for another expiry
    cashback_expiry_months: int = 0  # cashback expires N months after it was credited (0: never)
    # Members held out of the programme as its control group (basis points, `treue.domain.control`): they are
    # enrolled and their purchases recorded, but they earn nothing, so the programme's uplift can be measured.
    control_bp: int = 0

    def __post_init__(self) -> None:
        validate_program(self)

    @property
    def negative_balance_allowed(self) -> bool:
        return self.return_policy is ReturnPolicy.ALLOW_NEGATIVE

    def available_at(self, earned_at: datetime, pending_days: int | None = None) -> datetime:
        days = self.pending_days if pending_days is None else pending_days
        return earned_at if days == 0 else add_local_days(earned_at, days, zone(self.timezone))

    def expires_at(self, earned_at: datetime) -> datetime | None:
        """When points earned at `earned_at` expire (end of the local day), or None."""
        tz = zone(self.timezone)
        if self.expiry_policy is ExpiryPolicy.NONE:
            return None
        earned_day = local_date(earned_at, tz)
        if self.expiry_policy is ExpiryPolicy.ROLLING:
            return end_of_local_day(add_months(earned_day, self.expiry_months), tz)
        assert self.expiry_day is not None  # validated
        month, day = parse_month_day(self.expiry_day)
        return end_of_local_day(earned_day.replace(year=earned_day.year + self.expiry_years, month=month, day=day), tz)

    def cashback_expires_at(self, credited_at: datetime) -> datetime | None:
        """When cashback credited at `credited_at` expires (end of the local day), or None."""
        if self.cashback_expiry_months == 0:
            return None
        tz = zone(self.timezone)
        return end_of_local_day(add_months(local_date(credited_at, tz), self.cashback_expiry_months), tz)

    def points_value(self, points: int) -> Money:
        """The money a number of points stands for (liability), rounded by the programme's policy."""
        return Money(divide(points * self.point_value_minor, self.point_value_points, self.rounding), self.currency)


def validate_program(p: Program) -> None:
    if not p.name.strip():
        raise InvalidInput("a programme needs a name")
    validate_currency(p.currency)
    zone(p.timezone)
    checks = [
        (p.point_value_minor >= 0 and p.point_value_points > 0, "point value must be >= 0 per > 0 points"),
        (p.earn_points >= 0, "earn_points must be >= 0"),
        (p.earn_per_minor > 0, "earn_per_minor must be > 0"),
        (0 <= p.pending_days <= 3650, "pending_days must be between 0 and 3650"),
        (p.default_locale in ("de", "en"), "default_locale must be de or en"),
        (p.min_redemption_points >= 0, "min_redemption_points must be >= 0"),
        (1 <= p.hold_minutes <= 10080, "hold_minutes must be between 1 and 10080 (a week)"),
        (0 <= p.cashback_expiry_months <= 600, "cashback_expiry_months must be between 0 and 600"),
        (0 <= p.control_bp <= 5000, "control_percent must be between 0 and 50"),
    ]
    if p.expiry_policy is ExpiryPolicy.ROLLING:
        checks.append((1 <= p.expiry_months <= 600, "rolling expiry needs expiry_months between 1 and 600"))
    if p.expiry_policy is ExpiryPolicy.FIXED_DAY:
        checks.append((p.expiry_day is not None, "fixed_day expiry needs expiry_day as MM-DD"))
        checks.append((0 <= p.expiry_years <= 50, "expiry_years must be between 0 and 50"))
        if p.expiry_day is not None:
            parse_month_day(p.expiry_day)
    for ok, message in checks:
        if not ok:
            raise InvalidInput(message)
