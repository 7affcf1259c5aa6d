"""Referrals (Empfehlungen, "Freunde einladen"): codes, the programme's settings, and the fraud screen.

A member shares an unguessable code (or a link carrying it); a new member who enrols with it becomes a
referee. The referral is `pending` until the referee meets the programme's condition (a CEL expression over
the referee's purchase or event) within the window, then `completed`; it `expires` when the window passes
first, and a completed referral is `reversed` when the qualifying purchase is refunded within the return
window. A referral the screen refuses is recorded `rejected` with a stable reason; the referee stays enrolled.

Pure: no I/O, no clock. Fingerprints (device, payment, IP) are kept only as salted SHA-256 digests.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from treue.domain.coupons import ALPHABET
from treue.domain.errors import InvalidInput
from treue.domain.rules.conditions import Condition, condition
from treue.domain.rules.limits import Period

CODE_ALPHABET = ALPHABET  # no 0/O, 1/I/L: read aloud or typed from a flyer, a code survives
CODE_LENGTH = 8  # 31^8 ~ 2^39.6; with velocity limits a guessed code is hopeless (and worth little)
DEFAULT_CONDITION = 'event.name == "purchase"'
COMPLETED_TRIGGER = "referral.completed"  # the rules' trigger that rewards referrer and referee
# Providers that ignore dots in the local part (and their aliases); plus-addressing is stripped everywhere.
DOTLESS_DOMAINS = frozenset({"gmail.com"})
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}


class ReferralStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REVERSED = "reversed"


class Rejection(enum.StrEnum):
    """Stable reasons a referral is refused (in the API, the outbox and the statistics)."""

    CODE_UNKNOWN = "code_unknown"
    CODE_EXPIRED = "code_expired"
    SELF_REFERRAL = "self_referral"
    VELOCITY = "velocity"
    REFEREE_ALREADY_MEMBER = "referee_already_member"
    SAME_HOUSEHOLD = "same_household"
    REFERRER_LIMIT_REACHED = "referrer_limit_reached"


# -- codes -----------------------------------------------------------------------------------------------


def new_referral_code(choose: Callable[[str], str]) -> str:
    """A code of CODE_LENGTH characters of CODE_ALPHABET; `choose` is a cryptographic choice (secrets)."""
    return "".join(choose(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_referral_code(text: str | None) -> str | None:
    """What a person typed (any case, spaces, dashes) as the stored code; None if it cannot be a code."""
    if text is None:
        return None
    raw = text.strip().upper().replace("-", "").replace(" ", "")
    if len(raw) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in raw):
        return None
    return raw


def referral_link(base: str, code: str) -> str:
    return f"{base.rstrip('/')}/r/{code}"


# -- identities compared by the fraud screen ----------------------------------------------------------


def canonical_email(email: str | None) -> str | None:
    """One form per mailbox: lower-case, plus-addressing stripped, dots dropped where the provider ignores
    them (gmail.com, googlemail.com). `Max.Muster+promo@GoogleMail.com` -> `maxmuster@gmail.com`."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    domain = DOMAIN_ALIASES.get(domain, domain)
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local and domain else None


def fingerprint(program_id: UUID, kind: str, value: str | None) -> str | None:
    """A salted digest of a device id, payment fingerprint or IP address: comparable, not readable."""
    if value is None or not value.strip():
        return None
    return hashlib.sha256(f"{program_id}:{kind}:{value.strip().lower()}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a person claims to be, as the screen compares it (email already canonical, digests)."""

    member_id: UUID | None = None
    email: str | None = None  # as stored (normalised, lower-case)
    phone: str | None = None
    external_ref: str | None = None
    devices: frozenset[str] = frozenset()
    payments: frozenset[str] = frozenset()

    @property
    def email_key(self) -> str | None:
        return canonical_email(self.email)


@dataclass(frozen=True, slots=True)
class Referrer:
    identity: Identity
    active: bool  # the member is active
    code_active: bool  # the code was not replaced by a newer one


@dataclass(frozen=True, slots=True)
class Counts:
    """What storage knows: does the referee exist already, how many referrals came from its IP or device in
    the velocity window, and how many the referrer has in the current limit period."""

    referee_known: bool = False
    velocity: int = 0
    referrer_period: int = 0


# -- settings ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferralSettings:
    """A programme's referral settings. `condition`: CEL over the referee's purchase or event (money in minor
    units: `purchase.total >= 3000` is 30.00 EUR)."""

    condition: Condition = field(default_factory=lambda: condition(DEFAULT_CONDITION, "condition"))
    window_days: int = 60  # the referee has this long from enrolment to qualify
    return_days: int = 30  # a refund of the qualifying purchase this long after it reverses the rewards
    referrer_limit: int | None = None  # referrals a member may make per `referrer_period` (None: no limit)
    referrer_period: Period = Period.MONTH
    velocity_limit: int | None = 5  # referrals from one IP address or device per `velocity_hours`
    velocity_hours: int = 24
    link_base: str | None = None  # else TREUE_PUBLIC_URL
    active: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"condition": self.condition.source, "window_days": self.window_days,
                "return_days": self.return_days, "referrer_limit": self.referrer_limit,
                "referrer_period": self.referrer_period.value, "velocity_limit": self.velocity_limit,
                "velocity_hours": self.velocity_hours, "link_base": self.link_base, "active": self.active}  # fmt: skip

    def window_ends(self, enrolled_at: datetime) -> datetime:
        return enrolled_at + timedelta(days=self.window_days)

    def return_ends(self, qualified_at: datetime) -> datetime:
        return qualified_at + timedelta(days=self.return_days)


SETTING_FIELDS = ("condition", "window_days", "return_days", "referrer_limit", "referrer_period", "velocity_limit",
                  "velocity_hours", "link_base", "active")  # fmt: skip


def parse_settings(values: Mapping[str, Any]) -> ReferralSettings:
    """Settings from their stored or sent form; refused with the field named."""
    unknown = set(values) - set(SETTING_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown referral settings: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    if values.get("condition") is not None:
        out["condition"] = condition(str(values["condition"]), "condition")
    for name, low, high in (("window_days", 1, 3650), ("return_days", 0, 3650), ("velocity_hours", 1, 24 * 365)):
        if values.get(name) is not None:
            out[name] = _integer(values[name], name, low, high)
    for name in ("referrer_limit", "velocity_limit"):
        if name in values:
            out[name] = None if values[name] is None else _integer(values[name], name, 1, 10**6)
    if values.get("referrer_period") is not None:
        try:
            out["referrer_period"] = Period(values["referrer_period"])
        except ValueError:
            raise InvalidInput("referrer_period must be one of " + ", ".join(p.value for p in Period),
                               field="referrer_period") from None  # fmt: skip
    if values.get("link_base") is not None:
        base = str(values["link_base"]).strip()
        if not base.startswith(("https://", "http://")) or len(base) > 200:
            raise InvalidInput("link_base must be an http(s) address such as https://shop.example",
                               field="link_base")  # fmt: skip
        out["link_base"] = base.rstrip("/")
    if values.get("active") is not None:
        out["active"] = bool(values["active"])
    return ReferralSettings(**out)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}", field=name)
    return value


def period_start(period: Period, local: datetime, tz: ZoneInfo) -> datetime | None:
    """The start (UTC) of the calendar period containing `local` (a time in `tz`); None for lifetime."""
    day = local.date()
    if period is Period.DAY:
        first = day
    elif period is Period.WEEK:
        first = day - timedelta(days=day.isoweekday() - 1)
    elif period is Period.MONTH:
        first = day.replace(day=1)
    elif period is Period.YEAR:
        first = date(day.year, 1, 1)
    else:
        return None
    return datetime(first.year, first.month, first.day, tzinfo=tz).astimezone(UTC)


# -- the screen --------------------------------------------------------------------------------------------


def screen(referee: Identity, referrer: Referrer | None, counts: Counts, settings: ReferralSettings,
           code_known: bool = True) -> Rejection | None:  # fmt: skip
    """Why this referral must be refused, or None: the first reason in a fixed order."""
    if referrer is None or not code_known:
        return Rejection.CODE_UNKNOWN
    if not (referrer.active and referrer.code_active and settings.active):
        return Rejection.CODE_EXPIRED
    mine = referrer.identity
    if referee.member_id is not None and referee.member_id == mine.member_id:
        return Rejection.SELF_REFERRAL
    if (referee.email and referee.email == mine.email) or (
        referee.external_ref and referee.external_ref == mine.external_ref
    ):
        return Rejection.SELF_REFERRAL
    if settings.velocity_limit is not None and counts.velocity >= settings.velocity_limit:
        return Rejection.VELOCITY
    if counts.referee_known:
        return Rejection.REFEREE_ALREADY_MEMBER
    if same_household(referee, mine):
        return Rejection.SAME_HOUSEHOLD
    if settings.referrer_limit is not None and counts.referrer_period >= settings.referrer_limit:
        return Rejection.REFERRER_LIMIT_REACHED
    return None


def same_household(a: Identity, b: Identity) -> bool:
    """One mailbox (canonical email), one phone, one payment instrument or one device."""
    return bool(
        (a.email_key and a.email_key == b.email_key)
        or (a.phone and a.phone == b.phone)
        or (a.payments & b.payments)
        or (a.devices & b.devices)
    )
