"""The paid premium club (kostenpflichtiger Club): plans, and subscriptions whose state is computed from facts.

A subscription stores only facts: when it started, when its trial ends, the payments recorded for its
billing periods (with the instant each was recorded) and a cancellation (when it was asked for and when it
takes effect). Its state at any instant follows from those facts and the instant alone, so no job has to
"activate" or "expire" anything for the state to be right, and a test can travel through time by passing
another instant:

    trialing --(trial ends, period paid)--> active --(period ends unpaid)--> past_due --(grace over)--> expired
        \\                                    \\                                \\--(late payment)--> active
         \\---------------------------------- cancelled (immediately, or at the end of what was paid) --/

Billing periods follow each other without gaps from the anchor (the end of the trial, or the start): period
n runs from anchor + n intervals to anchor + n + 1 intervals, in the programme's timezone at the anchor's
local wall-clock time (31 January + 1 month = 28/29 February, + 2 months = 31 March: always counted from
the anchor, so a short month does not shift the later periods). A period counts as paid at instant t when a
succeeded payment for it was recorded at or before t. Periods are paid in order; a payment always pays the
first period not yet paid (or names it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from treue.domain.benefits import Benefits
from treue.domain.durations import Duration
from treue.domain.errors import (
    AlreadyCancelled,
    ClubPeriodInvalid,
    ClubPeriodPaid,
    ClubSubscriptionEnded,
    InvalidInput,
)
from treue.domain.money import Money

MAX_TRIAL_DAYS = 366
MAX_GRACE_DAYS = 90
DEFAULT_GRACE_DAYS = 7
MAX_MULTIPLIER = Fraction(10)
_CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


class BillingInterval(enum.StrEnum):
    MONTH = "month"
    YEAR = "year"

    def duration(self, periods: int) -> Duration:
        return Duration(periods, "M" if self is BillingInterval.MONTH else "Y")


class SubscriptionStatus(enum.StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def grants_benefits(self) -> bool:
        return self in (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE)

    @property
    def ended(self) -> bool:
        return self in (SubscriptionStatus.CANCELLED, SubscriptionStatus.EXPIRED)


class PaymentStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def parse_fraction(value: str | int, what: str, low: Fraction, high: Fraction) -> Fraction:
    """A decimal string ("1.5") or an integer as an exact fraction within [low, high]; floats are refused."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f'{what} is a decimal string such as "1.5", never a floating-point number')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(f"{what}: '{value}' is not a decimal number") from None
    if not number.is_finite():
        raise InvalidInput(f"{what}: '{value}' is not a decimal number")
    fraction = Fraction(number)
    if not low <= fraction <= high:
        raise InvalidInput(f"{what} must be between {format_fraction(low)} and {format_fraction(high)}")
    return fraction


def format_fraction(value: Fraction) -> str:
    """Back to the decimal string it was given as (every stored fraction came from a finite decimal)."""
    if value.denominator == 1:
        return str(value.numerator)
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class PlanBenefits:
    """What a plan gives while the subscription is trialing or active (as a tier would), and each paid period."""

    earn_multiplier: Fraction = Fraction(1)
    cashback_percent: Fraction = Fraction(0)
    perks: frozenset[str] = frozenset()  # named flags shops read: free_shipping, early_access...
    birthday_bonus_points: int = 0
    bonus_points: int = 0  # credited once per paid period (a recurring perk)
    voucher_reward_id: UUID | None = None  # a catalogue reward issued as a coupon once per paid period

    def __post_init__(self) -> None:
        if not Fraction(1) <= self.earn_multiplier <= MAX_MULTIPLIER:
            raise InvalidInput(f"earn_multiplier must be between 1 and {MAX_MULTIPLIER}")
        if not Fraction(0) <= self.cashback_percent <= Fraction(100):
            raise InvalidInput("cashback_percent must be between 0 and 100")
        if self.birthday_bonus_points < 0 or self.bonus_points < 0:
            raise InvalidInput("bonus points cannot be negative")
        for perk in self.perks:
            if not perk or len(perk) > 64 or set(perk) - _CODE_CHARS:
                raise InvalidInput(f"perk '{perk}' must be 1-64 characters of a-z, 0-9, '-' and '_'")

    @classmethod
    def parse(cls, data: dict[str, Any]) -> PlanBenefits:
        known = {"earn_multiplier", "cashback_percent", "perks", "birthday_bonus_points"}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(f"unknown benefits: {', '.join(sorted(unknown))}")
        perks = data.get("perks") or []
        if not isinstance(perks, list) or not all(isinstance(p, str) for p in perks):
            raise InvalidInput("perks is a list of names such as free_shipping")
        birthday = data.get("birthday_bonus_points", 0)
        if not isinstance(birthday, int) or isinstance(birthday, bool):
            raise InvalidInput("birthday_bonus_points is a whole number")
        return cls(
            earn_multiplier=parse_fraction(data.get("earn_multiplier", "1"), "earn_multiplier", Fraction(1),
                                           MAX_MULTIPLIER),
            cashback_percent=parse_fraction(data.get("cashback_percent", "0"), "cashback_percent", Fraction(0),
                                            Fraction(100)),
            perks=frozenset(perks), birthday_bonus_points=birthday,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The stored and shown form of the tier-like part (the recurring perks have columns of their own)."""
        return {"earn_multiplier": format_fraction(self.earn_multiplier),
                "cashback_percent": format_fraction(self.cashback_percent), "perks": sorted(self.perks),
                "birthday_bonus_points": self.birthday_bonus_points}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan:
    id: UUID
    code: str  # stable, unique per programme: "plus", "premium-yearly"
    name: dict[str, str]  # per locale (de, en)
    price: Money
    interval: BillingInterval
    trial_days: int = 0
    grace_days: int = DEFAULT_GRACE_DAYS
    benefits: PlanBenefits = field(default_factory=PlanBenefits)
    description: dict[str, str] = field(default_factory=dict)
    active: bool = True  # an inactive plan takes no new members; running subscriptions continue

    def __post_init__(self) -> None:
        if not self.code or len(self.code) > 64 or set(self.code) - _CODE_CHARS:
            raise InvalidInput("a plan code is 1-64 characters of a-z, 0-9, '-' and '_'")
        if not self.name or not all(isinstance(v, str) and v.strip() for v in self.name.values()):
            raise InvalidInput("a plan needs a name in at least one locale")
        if set(self.name) - {"de", "en"} or set(self.description) - {"de", "en"}:
            raise InvalidInput("plan names and descriptions are given per locale: de, en")
        if self.price.minor <= 0:
            raise InvalidInput("a plan costs a positive price (a free club is a tier)")
        if not 0 <= self.trial_days <= MAX_TRIAL_DAYS:
            raise InvalidInput(f"trial_days must be between 0 and {MAX_TRIAL_DAYS}")
        if not 0 <= self.grace_days <= MAX_GRACE_DAYS:
            raise InvalidInput(f"grace_days must be between 0 and {MAX_GRACE_DAYS}")

    def localized_name(self, locale: str) -> str:
        return self.name.get(locale) or next(iter(self.name.values()))

    def member_benefits(self) -> Benefits:
        b = self.benefits
        return Benefits(source=f"club:{self.code}", earn_multiplier=b.earn_multiplier,
                        cashback_percent=b.cashback_percent, perks=b.perks,
                        birthday_bonus_points=b.birthday_bonus_points)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment the merchant's payment provider reported for one billing period."""

    period: int  # index of the billing period it pays (0 = the first after the trial)
    status: PaymentStatus
    recorded_at: datetime  # when Treue learned of it: the state before that instant does not know it


@dataclass(frozen=True, slots=True)
class Period:
    index: int  # -1: the trial
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Subscription:
    """The stored facts of one membership in the club, and the state they imply at any instant."""

    id: UUID
    member_id: UUID
    plan_id: UUID
    interval: BillingInterval  # the plan's terms as agreed when joining (a plan edit does not change them)
    price: Money
    grace_days: int
    started_at: datetime
    trial_ends_at: datetime  # == started_at without a trial
    timezone: str
    payments: tuple[Payment, ...] = ()
    cancel_requested_at: datetime | None = None
    cancel_at: datetime | None = None  # when the cancellation takes effect

    @property
    def anchor(self) -> datetime:
        return self.trial_ends_at

    @property
    def has_trial(self) -> bool:
        return self.trial_ends_at > self.started_at

    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def period(self, index: int) -> Period:
        """Billing period `index` (>= 0); -1 is the trial."""
        if index < 0:
            return Period(-1, self.started_at, self.trial_ends_at)
        tz = self._tz()
        return Period(index, self.interval.duration(index).after(self.anchor, tz),
                      self.interval.duration(index + 1).after(self.anchor, tz))  # fmt: skip

    def period_index_at(self, at: datetime) -> int:
        """The index of the billing period that contains `at` (-1 before the anchor)."""
        if at < self.anchor:
            return -1
        local_anchor, local_at = self.anchor.astimezone(self._tz()), at.astimezone(self._tz())
        months = (local_at.year - local_anchor.year) * 12 + local_at.month - local_anchor.month
        index = max(0, months if self.interval is BillingInterval.MONTH else months // 12)
        while index > 0 and self.period(index).start > at:
            index -= 1
        while self.period(index).end <= at:
            index += 1
        return index

    def index_of_start(self, start: datetime) -> int | None:
        """The index of the billing period that starts exactly at `start`, or None."""
        index = self.period_index_at(start)
        return index if index >= 0 and self.period(index).start == start else None

    def paid_periods(self, at: datetime) -> int:
        """How many periods from the first on are paid, as known at `at` (they are paid in order)."""
        paid = {p.period for p in self.payments if p.status is PaymentStatus.SUCCEEDED and p.recorded_at <= at}
        count = 0
        while count in paid:
            count += 1
        return count

    def paid_through(self, at: datetime) -> datetime:
        """The end of what is paid, as known at `at` (the anchor when nothing is)."""
        count = self.paid_periods(at)
        return self.period(count - 1).end if count else self.anchor

    def grace_ends(self, at: datetime) -> datetime:
        """When the unpaid subscription expires, as known at `at`: the grace period after what is paid."""
        return Duration(self.grace_days, "D").after(self.paid_through(at), self._tz())

    def status_at(self, at: datetime) -> SubscriptionStatus:
        if self.cancel_at is not None and at >= self.cancel_at:
            return SubscriptionStatus.CANCELLED
        if at < self.trial_ends_at:
            return SubscriptionStatus.TRIALING
        if at < self.paid_through(at):
            return SubscriptionStatus.ACTIVE
        if at < self.grace_ends(at):
            return SubscriptionStatus.PAST_DUE
        return SubscriptionStatus.EXPIRED

    def ended_at(self, at: datetime) -> datetime | None:
        """When the subscription ended, if it has by `at`."""
        status = self.status_at(at)
        if status is SubscriptionStatus.CANCELLED:
            return self.cancel_at
        if status is SubscriptionStatus.EXPIRED:
            return self.grace_ends(at)
        return None

    def current_period(self, at: datetime) -> Period:
        """The trial while trialing; otherwise the billing period containing `at` (while past due: the one
        that is due; once ended: the last one it ran in)."""
        status = self.status_at(at)
        if status is SubscriptionStatus.TRIALING:
            return self.period(-1)
        if status is SubscriptionStatus.PAST_DUE:
            return self.period(self.paid_periods(at))
        ended = self.ended_at(at)
        instant = at if ended is None else ended - _TICK
        if instant < self.trial_ends_at:
            return self.period(-1)
        return self.period(self.period_index_at(instant))

    def due_period(self, at: datetime) -> int:
        """The first period not yet paid: what a payment without a period pays."""
        return self.paid_periods(at)

    def check_payable(self, index: int, at: datetime) -> None:
        """Raise unless a payment for period `index` may be recorded at `at`."""
        status = self.status_at(at)
        if status.ended:
            raise ClubSubscriptionEnded(f"the subscription is {status.value}; the member may join again",
                                        subscription_status=status.value)  # fmt: skip
        due = self.due_period(at)
        if index < due:
            raise ClubPeriodPaid(f"period {index} is paid already", period=index, due=due)
        if index > due:
            raise ClubPeriodInvalid(f"period {due} must be paid before period {index}", period=index, due=due)
        if self.cancel_at is not None and self.period(index).start >= self.cancel_at:
            raise ClubSubscriptionEnded("the subscription ends before this period; it cannot be paid",
                                        subscription_status="cancellation_scheduled")  # fmt: skip

    def cancellation(self, at: datetime, at_period_end: bool) -> datetime:
        """When a cancellation asked for at `at` takes effect. Raises if there is nothing left to cancel.

        At period end: the member keeps what was paid (or the trial); a past-due subscription ends now.
        """
        status = self.status_at(at)
        if status is SubscriptionStatus.EXPIRED:
            raise ClubSubscriptionEnded("the subscription has expired already", subscription_status=status.value)
        if status is SubscriptionStatus.CANCELLED:
            raise AlreadyCancelled("the subscription is cancelled already")
        if not at_period_end:
            return at
        if self.cancel_at is not None:
            raise AlreadyCancelled("the subscription is already cancelled at the end of its period",
                                   effective_at=self.cancel_at.isoformat())  # fmt: skip
        if status is SubscriptionStatus.TRIALING:
            return self.trial_ends_at
        if status is SubscriptionStatus.ACTIVE:
            return self.paid_through(at)
        return at  # past due: nothing paid is left to keep

    def with_payment(self, payment: Payment) -> Subscription:
        return replace(self, payments=(*self.payments, payment))


_TICK = timedelta(microseconds=1)


def start_subscription(subscription_id: UUID, member_id: UUID, plan: Plan, at: datetime, timezone: str,
                       *, trial: bool = True) -> Subscription:  # fmt: skip
    """A new subscription at `at`: trialing for the plan's trial days (if `trial`), then billed per interval."""
    days = plan.trial_days if trial else 0
    trial_ends = Duration(days, "D").after(at, ZoneInfo(timezone))
    return Subscription(subscription_id, member_id, plan.id, plan.interval, plan.price, plan.grace_days, at,
                        trial_ends, timezone)  # fmt: skip
