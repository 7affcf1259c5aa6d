"""The tier ladder: ordered tiers, what qualifies for each, when a tier is reviewed, and a member's progress.

A ladder has one explicit basis for every tier - qualifying spend (net of refunds, minor units), the number of
purchases (a fully refunded purchase does not count), or status points (points earned, less points a refund
took back; redeeming never lowers them). Each tier names the amount of that basis it needs within its window:
the last N months (rolling), the calendar year in the programme's timezone, or the whole membership (lifetime).
The first tier needs nothing: every member is at least there.

Upgrades take effect at once when a member qualifies for a higher tier. A tier reached at `since` is secured
until its review date: the end of its window counted from `since` (rolling: N months later; calendar year:
the first instant of the next year; lifetime: never reviewed) or the next membership anniversary. At the
review (plus an optional grace period in which the member may still qualify) the member keeps the tier if the
amounts in the windows ending then still qualify - the tier is then secured until the next review - or moves
down to the tier they do qualify for. A manual assignment (a VIP) overrides the earned tier until it expires.

Everything here is pure: instants are passed in, amounts are counted by the store.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from treue.domain.benefits import Benefits
from treue.domain.club import format_fraction, parse_fraction
from treue.domain.durations import add_local_days, add_months, start_of_local_day
from treue.domain.errors import InvalidInput

MAX_TIERS = 20
MAX_MULTIPLIER = Fraction(10)
MAX_WINDOW_MONTHS = 120
MAX_GRACE_DAYS = 366
MAX_NOTICE_DAYS = 366
_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class Basis(enum.StrEnum):
    SPEND = "spend"  # qualifying spend: purchase totals less refunds, minor units of the programme currency
    PURCHASES = "purchases"  # number of purchases not refunded in full
    STATUS_POINTS = "status_points"  # points earned less points taken back by refunds (redemptions do not count)


class WindowKind(enum.StrEnum):
    ROLLING = "rolling"
    CALENDAR_YEAR = "calendar_year"
    LIFETIME = "lifetime"


class Review(enum.StrEnum):
    WINDOW_END = "window_end"  # at the end of the tier's window, counted from when the tier was reached
    ANNIVERSARY = "anniversary"  # at the member's next membership anniversary


class ChangeKind(enum.StrEnum):
    UPGRADED = "upgraded"
    DOWNGRADED = "downgraded"
    RENEWED = "renewed"  # the review found the member still qualifies: secured until the next review
    ASSIGNED = "assigned"  # manual assignment (VIP)
    UNASSIGNED = "unassigned"  # manual assignment removed
    ASSIGNMENT_EXPIRED = "assignment_expired"


@dataclass(frozen=True, slots=True)
class Window:
    """Where qualifying amounts are counted: `6M` (the last 6 months), `calendar_year` or `lifetime`."""

    kind: WindowKind
    months: int = 0

    def __post_init__(self) -> None:
        if self.kind is WindowKind.ROLLING and not 1 <= self.months <= MAX_WINDOW_MONTHS:
            raise InvalidInput(f"a rolling window is 1 to {MAX_WINDOW_MONTHS} months, such as 12M")
        if self.kind is not WindowKind.ROLLING and self.months:
            raise InvalidInput(f"a {self.kind.value} window has no months")

    @classmethod
    def parse(cls, text: object) -> Window:
        if not isinstance(text, str):
            raise InvalidInput("a window is a text: 12M (rolling months), calendar_year or lifetime")
        value = text.strip()
        if value in (WindowKind.CALENDAR_YEAR.value, WindowKind.LIFETIME.value):
            return cls(WindowKind(value))
        upper = value.upper()
        if upper.endswith("M") and upper[:-1].isdigit():
            return cls(WindowKind.ROLLING, int(upper[:-1]))
        raise InvalidInput(f"'{text}' is not a window: use 12M (rolling months), calendar_year or lifetime")

    def __str__(self) -> str:
        return f"{self.months}M" if self.kind is WindowKind.ROLLING else self.kind.value

    def start(self, end: datetime, tz: ZoneInfo) -> datetime | None:
        """The first instant of the window that ends at `end` (None: since the beginning)."""
        if self.kind is WindowKind.LIFETIME:
            return None
        local = end.astimezone(tz)
        if self.kind is WindowKind.ROLLING:
            # (end - N months, end]: what qualified at `since` no longer counts at the review N months later.
            moved = datetime.combine(add_months(local.date(), -self.months), local.time())
            return moved.replace(tzinfo=tz).astimezone(UTC) + timedelta(microseconds=1)
        # The calendar year the window ends in; a window ending at midnight of 1 January is the year before.
        year = (local - timedelta(microseconds=1)).year
        return start_of_local_day(local.date().replace(year=year, month=1, day=1), tz)

    def ends_after(self, since: datetime, tz: ZoneInfo) -> datetime | None:
        """The end of this window counted from `since` - a tier's review date at `window_end` - or None."""
        if self.kind is WindowKind.LIFETIME:
            return None
        local = since.astimezone(tz)
        if self.kind is WindowKind.ROLLING:
            moved = datetime.combine(add_months(local.date(), self.months), local.time())
            return moved.replace(tzinfo=tz).astimezone(UTC)
        return start_of_local_day(local.date().replace(year=local.year + 1, month=1, day=1), tz)


@dataclass(frozen=True, slots=True)
class TierBenefits:
    earn_multiplier: Fraction = Fraction(1)  # x1.5: the base points once more by half
    cashback_percent: Fraction = Fraction(0)
    perks: frozenset[str] = frozenset()  # flags shops read: free_shipping, early_access...
    birthday_bonus_points: int = 0

    @classmethod
    def parse(cls, data: object) -> TierBenefits:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidInput("benefits is an object: earn_multiplier, cashback_percent, perks, birthday_bonus_points")
        unknown = set(data) - {"earn_multiplier", "cashback_percent", "perks", "birthday_bonus_points"}
        if unknown:
            raise InvalidInput(f"unknown benefits: {', '.join(sorted(unknown))}")
        perks = data.get("perks") or []
        if not isinstance(perks, list) or not all(isinstance(p, str) for p in perks):
            raise InvalidInput("perks is a list of names such as free_shipping")
        for perk in perks:
            if not perk or len(perk) > 64 or set(perk) - _CODE_CHARS:
                raise InvalidInput(f"perk '{perk}' must be 1-64 characters of a-z, 0-9, '-' and '_'")
        birthday = data.get("birthday_bonus_points", 0)
        if not isinstance(birthday, int) or isinstance(birthday, bool) or not 0 <= birthday <= 10**9:
            raise InvalidInput("birthday_bonus_points is a whole number of points, 0 or more")
        return cls(
            earn_multiplier=parse_fraction(data.get("earn_multiplier", "1"), "earn_multiplier", Fraction(1),
                                           MAX_MULTIPLIER),
            cashback_percent=parse_fraction(data.get("cashback_percent", "0"), "cashback_percent", Fraction(0),
                                            Fraction(100)),
            perks=frozenset(perks), birthday_bonus_points=birthday,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"earn_multiplier": format_fraction(self.earn_multiplier),
                "cashback_percent": format_fraction(self.cashback_percent), "perks": sorted(self.perks),
                "birthday_bonus_points": self.birthday_bonus_points}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Tier:
    code: str  # stable, unique in the ladder: what `member.tier` holds in rule conditions
    name: Mapping[str, str]  # per locale (de, en)
    threshold: int  # of the ladder's basis within `window`; minor units for spend
    window: Window
    benefits: TierBenefits = field(default_factory=TierBenefits)

    def localized_name(self, locale: str) -> str:
        return self.name.get(locale) or next(iter(self.name.values()))

    def member_benefits(self) -> Benefits:
        b = self.benefits
        return Benefits(source=f"tier:{self.code}", earn_multiplier=b.earn_multiplier,
                        cashback_percent=b.cashback_percent, perks=b.perks,
                        birthday_bonus_points=b.birthday_bonus_points)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Ladder:
    basis: Basis
    tiers: tuple[Tier, ...]  # lowest first
    review: Review = Review.WINDOW_END
    grace_days: int = 0  # after the review date, the member keeps the tier this many days to qualify again
    notice_days: int = 0  # tier.will_downgrade this many days before the review (0: no notice)

    def __post_init__(self) -> None:
        if not 1 <= len(self.tiers) <= MAX_TIERS:
            raise InvalidInput(f"a ladder has 1 to {MAX_TIERS} tiers")
        codes = [t.code for t in self.tiers]
        if len(set(codes)) != len(codes):
            raise InvalidInput("tier codes must be unique")
        if self.tiers[0].threshold != 0:
            raise InvalidInput("the first tier is where every member starts: its threshold must be 0")
        for lower, higher in zip(self.tiers, self.tiers[1:], strict=False):
            if higher.threshold <= lower.threshold:
                raise InvalidInput(f"tier {higher.code} must need more than tier {lower.code} (thresholds ascend)")
        if not 0 <= self.grace_days <= MAX_GRACE_DAYS:
            raise InvalidInput(f"grace_days must be between 0 and {MAX_GRACE_DAYS}")
        if not 0 <= self.notice_days <= MAX_NOTICE_DAYS:
            raise InvalidInput(f"notice_days must be between 0 and {MAX_NOTICE_DAYS}")

    @property
    def lowest(self) -> Tier:
        return self.tiers[0]

    def tier(self, code: str) -> Tier:
        for tier in self.tiers:
            if tier.code == code:
                return tier
        raise InvalidInput(f"no tier '{code}' in the ladder (tiers: {', '.join(t.code for t in self.tiers)})")

    def has(self, code: str) -> bool:
        return any(t.code == code for t in self.tiers)

    def rank(self, code: str) -> int:
        """0 for the lowest tier; a code no longer in the ladder ranks lowest."""
        return next((i for i, t in enumerate(self.tiers) if t.code == code), 0)

    def windows(self, above: int = 0) -> tuple[Window, ...]:
        """The distinct windows of the tiers ranked above `above` (the amounts to count to find an upgrade)."""
        found: list[Window] = []
        for tier in self.tiers[above + 1 :]:
            if tier.window not in found:
                found.append(tier.window)
        return tuple(found)

    def qualified(self, amounts: Mapping[Window, int], at_least: int = 0) -> Tier:
        """The highest tier (ranked `at_least` or higher) whose threshold its window's amount reaches."""
        for rank in range(len(self.tiers) - 1, at_least, -1):
            tier = self.tiers[rank]
            if amounts.get(tier.window, 0) >= tier.threshold:
                return tier
        return self.tiers[at_least]

    def review_at(self, tier: Tier, since: datetime, enrolled_at: datetime, tz: ZoneInfo) -> datetime | None:
        """Until when a tier reached (or last confirmed) at `since` is secured; None: never reviewed."""
        if tier is self.lowest or tier.code == self.lowest.code:
            return None
        if self.review is Review.ANNIVERSARY:
            return next_anniversary(enrolled_at, since, tz)
        return tier.window.ends_after(since, tz)

    def decision_at(self, review_at: datetime, tz: ZoneInfo) -> datetime:
        """When the review decides: the review date plus the grace period."""
        return add_local_days(review_at, self.grace_days, tz) if self.grace_days else review_at

    # -- the stored and shown form -------------------------------------------------------------------
    @classmethod
    def parse(cls, data: object, currency_digits: int) -> Ladder:
        """A ladder as an admin writes it. Spend thresholds are decimal strings in major units ("500.00")."""
        if not isinstance(data, Mapping):
            raise InvalidInput("a ladder is an object with basis and tiers")
        unknown = set(data) - {"basis", "review", "grace_days", "notice_days", "tiers"}
        if unknown:
            raise InvalidInput(f"unknown ladder fields: {', '.join(sorted(unknown))}")
        basis = _enum(Basis, data.get("basis"), "basis")
        review = _enum(Review, data.get("review", Review.WINDOW_END.value), "review")
        tiers = data.get("tiers")
        if not isinstance(tiers, list) or not tiers:
            raise InvalidInput("a ladder needs its tiers, lowest first")
        return cls(basis, tuple(_parse_tier(t, basis, currency_digits) for t in tiers), review,
                   _int(data.get("grace_days", 0), "grace_days"), _int(data.get("notice_days", 0), "notice_days"))  # fmt: skip

    def to_json(self, currency_digits: int) -> dict[str, Any]:
        return {"basis": self.basis.value, "review": self.review.value, "grace_days": self.grace_days,
                "notice_days": self.notice_days,
                "tiers": [{"code": t.code, "name": dict(t.name),
                           "threshold": format_threshold(self.basis, t.threshold, currency_digits),
                           "window": str(t.window), "benefits": t.benefits.to_json()} for t in self.tiers]}  # fmt: skip


def _enum(kind: type[enum.StrEnum], value: object, what: str) -> Any:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{what} must be one of: {', '.join(m.value for m in kind)}") from None


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{what} is a whole number")
    return value


def _parse_tier(data: object, basis: Basis, digits: int) -> Tier:
    if not isinstance(data, Mapping):
        raise InvalidInput("each tier is an object with code, name, threshold and window")
    unknown = set(data) - {"code", "name", "threshold", "window", "benefits"}
    if unknown:
        raise InvalidInput(f"unknown tier fields: {', '.join(sorted(unknown))}")
    code = data.get("code")
    if not isinstance(code, str) or not code or len(code) > 32 or set(code) - _CODE_CHARS:
        raise InvalidInput("a tier code is 1-32 characters of a-z, 0-9, '-' and '_'")
    name = data.get("name")
    if not isinstance(name, Mapping) or not name or set(name) - {"de", "en"}:
        raise InvalidInput(f"tier {code}: name is given per locale (de, en)")
    if not all(isinstance(v, str) and v.strip() and len(v) <= 100 for v in name.values()):
        raise InvalidInput(f"tier {code}: a name is 1-100 characters")
    window = Window.parse(data.get("window", "lifetime"))
    threshold = parse_threshold(basis, data.get("threshold", 0), digits, code)
    return Tier(code, dict(name), threshold, window, TierBenefits.parse(data.get("benefits")))


def parse_threshold(basis: Basis, value: object, digits: int, code: str) -> int:
    if basis is Basis.SPEND:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidInput(f'tier {code}: a spend threshold is a decimal string such as "500.00"')
        amount = parse_fraction(value, f"tier {code}: threshold", Fraction(0), Fraction(10**12)) * 10**digits
        if amount.denominator != 1:
            raise InvalidInput(f"tier {code}: threshold has more than {digits} decimal places")
        return int(amount)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**12:
        raise InvalidInput(f"tier {code}: a {basis.value} threshold is a whole number, 0 or more")
    return value


def format_threshold(basis: Basis, amount: int, digits: int) -> str | int:
    """Spend in major units as a decimal string; counts and points as integers."""
    if basis is not Basis.SPEND:
        return amount
    if digits == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{part:0{digits}d}"


def next_anniversary(enrolled_at: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The first membership anniversary (start of the local day) strictly after `after`."""
    enrolled = enrolled_at.astimezone(tz).date()
    local = after.astimezone(tz).date()
    years = max(1, local.year - enrolled.year)
    while True:
        day = add_months(enrolled, 12 * years)  # 29 February -> 28 February in other years
        instant = datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
        if instant > after:
            return instant
        years += 1


# -- a member's tier ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MemberTier:
    """The stored state: the earned tier, since when and until when it is secured, and a manual override."""

    tier: str  # the earned tier's code
    since: datetime
    review_at: datetime | None  # None: the lowest tier, or a lifetime window
    manual: str | None = None
    manual_until: datetime | None = None  # None with `manual`: until removed
    notice_for: datetime | None = None  # the review date whose tier.will_downgrade was sent

    def manual_active(self, at: datetime) -> bool:
        return self.manual is not None and (self.manual_until is None or at < self.manual_until)

    def effective(self, at: datetime) -> str:
        """The tier in force at `at`: an unexpired manual assignment, otherwise the earned tier."""
        return self.manual if self.manual_active(at) and self.manual is not None else self.tier


def starting_state(ladder: Ladder, enrolled_at: datetime) -> MemberTier:
    """A member without a stored state is at the lowest tier since enrolment."""
    return MemberTier(ladder.lowest.code, enrolled_at, None)


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    from_tier: str
    to_tier: str
    at: datetime
    state: MemberTier  # the state after the change


def upgrade(ladder: Ladder, state: MemberTier, amounts: Mapping[Window, int], at: datetime, enrolled_at: datetime,
            tz: ZoneInfo) -> Change | None:  # fmt: skip
    """Upgrade at once if the amounts (windows ending at `at`) qualify for a tier above the earned one."""
    rank = ladder.rank(state.tier)
    reached = ladder.qualified(amounts, rank)
    if ladder.rank(reached.code) <= rank or reached.code == state.tier:
        return None
    after = replace(state, tier=reached.code, since=at, review_at=ladder.review_at(reached, at, enrolled_at, tz),
                    notice_for=None)  # fmt: skip
    return Change(ChangeKind.UPGRADED, state.tier, reached.code, at, after)


def review(ladder: Ladder, state: MemberTier, amounts: Mapping[Window, int], enrolled_at: datetime,
           tz: ZoneInfo) -> Change:  # fmt: skip
    """The review of a tier whose decision time (review date plus grace) has come; `amounts` are counted in the
    windows ending at that decision time. Keeps (renews), raises or lowers the earned tier."""
    assert state.review_at is not None
    decided = ladder.decision_at(state.review_at, tz)
    current = ladder.tier(state.tier) if ladder.has(state.tier) else ladder.lowest
    reached = ladder.qualified(amounts)
    rank, new_rank = ladder.rank(current.code), ladder.rank(reached.code)
    if new_rank == rank and ladder.has(state.tier):
        # Still qualifies: secured until the next review, counted from this review date (not from when it ran).
        after = replace(state, review_at=ladder.review_at(current, state.review_at, enrolled_at, tz), notice_for=None)
        return Change(ChangeKind.RENEWED, current.code, current.code, decided, after)
    kind = ChangeKind.UPGRADED if new_rank > rank else ChangeKind.DOWNGRADED
    after = replace(state, tier=reached.code, since=decided,
                    review_at=ladder.review_at(reached, decided, enrolled_at, tz), notice_for=None)  # fmt: skip
    return Change(kind, state.tier, reached.code, decided, after)


def would_be(ladder: Ladder, state: MemberTier, amounts: Mapping[Window, int]) -> Tier:
    """What the earned tier would be at the next review if the amounts stayed as they are (windows ending at the
    review's decision time): the current tier, or the lower tier it would fall to."""
    current_rank = ladder.rank(state.tier)
    reached = ladder.qualified(amounts)
    return ladder.tiers[min(current_rank, ladder.rank(reached.code))]


@dataclass(frozen=True, slots=True)
class Progress:
    tier: Tier  # in force now (manual or earned)
    earned: Tier
    amount: int  # of the basis, in the next tier's window (or the current tier's, at the top) ending now
    window: Window
    next_tier: Tier | None
    needed: int  # still needed for the next tier (0 at the top)
    secured_until: datetime | None  # review date of the earned tier (or the manual assignment's expiry)
    review_decides_at: datetime | None
    downgrade_to: Tier | None  # the tier it would fall to at the next review with the amounts so far


def progress(ladder: Ladder, state: MemberTier, now: datetime, amounts_now: Mapping[Window, int],
             amounts_at_review: Mapping[Window, int], tz: ZoneInfo) -> Progress:  # fmt: skip
    """Where a member stands: `amounts_now` in windows ending now, `amounts_at_review` in windows ending at the
    review's decision time (counting what is recorded so far)."""
    code = state.effective(now)
    tier = ladder.tier(code) if ladder.has(code) else ladder.lowest
    earned = ladder.tier(state.tier) if ladder.has(state.tier) else ladder.lowest
    rank = ladder.rank(tier.code)
    next_tier = ladder.tiers[rank + 1] if rank + 1 < len(ladder.tiers) else None
    window = next_tier.window if next_tier else tier.window
    amount = amounts_now.get(window, 0)
    needed = max(0, next_tier.threshold - amount) if next_tier else 0
    secured = state.review_at
    if state.manual_active(now):
        secured = state.manual_until
    decides = ladder.decision_at(state.review_at, tz) if state.review_at is not None else None
    downgrade_to = None
    if state.review_at is not None:
        lower = would_be(ladder, state, amounts_at_review)
        downgrade_to = lower if lower.code != earned.code else None
    return Progress(tier, earned, amount, window, next_tier, needed, secured, decides, downgrade_to)
