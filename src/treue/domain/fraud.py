"""Fraud controls (issue 10): velocity caps, their windows, and anomaly rules over plain data.

Pure: no I/O, no clock. The services count what arrives in fixed windows (a counter row per programme, action,
subject and window start), ask `breaches` whether the new totals break a cap, and hold or refuse accordingly;
the scan job feeds recent facts into the detectors below and stores what they find as alerts.

Windows are fixed, not sliding: an hour is a UTC clock hour (the same as a local hour wherever the offset is a
whole number of hours), a day is the programme's local calendar day. A fixed window costs one counter row and
one upsert; its price is that a burst across a boundary may reach twice a cap in a short time (documented).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from treue.domain.durations import local_date, start_of_local_day
from treue.domain.errors import InvalidInput
from treue.domain.referrals import fingerprint


class Action(enum.StrEnum):
    EARN = "earn"  # a purchase (or other earn) of a member: over a cap, its points are held
    REDEEM = "redeem"  # a reward redemption: over a cap, refused


class Subject(enum.StrEnum):
    MEMBER = "member"
    CARD = "card"  # the payment token a purchase was paid with (issue 11), as a salted digest
    DEVICE = "device"  # the device id a request carries, as a salted digest
    IP = "ip"  # the client's IP address, as a salted digest


class Window(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"


class AlertKind(enum.StrEnum):
    REFUNDS_AFTER_REDEMPTIONS = "refunds_after_redemptions"
    REFERRALS_PER_FINGERPRINT = "referrals_per_fingerprint"
    EARNING_SPIKE = "earning_spike"
    REPEATED_CAP_HITS = "repeated_cap_hits"


MAX_LIMIT = 10**12


@dataclass(frozen=True, slots=True)
class Cap:
    """At most `max_count` actions and/or `max_points` points per subject and window."""

    action: Action
    subject: Subject
    window: Window
    max_count: int | None = None
    max_points: int | None = None

    @property
    def name(self) -> str:
        return f"{self.action}:{self.subject}:{self.window}"

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action.value, "subject": self.subject.value, "window": self.window.value,
                "max_count": self.max_count, "max_points": self.max_points}  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    """When the scan raises an alert. Defaults are deliberately loose: an alert asks a person to look."""

    refunds_after_redemption: int = 3  # refunds by one member ...
    refund_days: int = 14  # ... each within this many days after one of their redemptions
    referrals_per_fingerprint: int = 5  # referrals from one device, IP address or payment instrument ...
    referral_days: int = 7  # ... within this many days
    spike_factor: int = 5  # a member's last 24 hours earned this many times their daily average ...
    spike_min_points: int = 1000  # ... and at least this many points
    baseline_days: int = 30  # the average is taken over the days before the last 24 hours
    cap_hits: int = 3  # held earns of one member ...
    cap_hit_days: int = 7  # ... within this many days

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in THRESHOLD_FIELDS}


THRESHOLD_FIELDS = ("refunds_after_redemption", "refund_days", "referrals_per_fingerprint", "referral_days",
                    "spike_factor", "spike_min_points", "baseline_days", "cap_hits", "cap_hit_days")  # fmt: skip


@dataclass(frozen=True, slots=True)
class FraudSettings:
    caps: tuple[Cap, ...] = ()
    alerts: AlertThresholds = field(default_factory=AlertThresholds)
    active: bool = True  # off: no caps apply and the scan skips the programme (settings are kept)

    def caps_for(self, action: Action) -> tuple[Cap, ...]:
        return tuple(c for c in self.caps if c.action is action) if self.active else ()

    def as_dict(self) -> dict[str, Any]:
        return {"active": self.active, "caps": [c.as_dict() for c in self.caps], "alerts": self.alerts.as_dict()}


def parse_settings(values: Mapping[str, Any]) -> FraudSettings:
    """Settings from their stored or sent form; refused with the field named. Thresholds not given keep their
    defaults; two caps for the same action, subject and window are refused (which one would win?)."""
    unknown = set(values) - {"active", "caps", "alerts"}
    if unknown:
        raise InvalidInput(f"unknown fraud settings: {', '.join(sorted(unknown))}")
    active = values.get("active", True)
    if not isinstance(active, bool):
        raise InvalidInput("active is true or false", field="active")
    raw_caps = values.get("caps") or []
    if not isinstance(raw_caps, list):
        raise InvalidInput("caps is a list", field="caps")
    caps = tuple(_cap(raw, i) for i, raw in enumerate(raw_caps))
    names = [c.name for c in caps]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise InvalidInput(f"more than one cap for {', '.join(doubled)}", field="caps")
    raw_alerts = values.get("alerts") or {}
    if not isinstance(raw_alerts, Mapping):
        raise InvalidInput("alerts is an object", field="alerts")
    unknown = set(raw_alerts) - set(THRESHOLD_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown alert thresholds: {', '.join(sorted(unknown))}", field="alerts")
    limits = {"baseline_days": 365, "refund_days": 365, "referral_days": 365, "cap_hit_days": 365}
    alerts = AlertThresholds(**{name: _integer(value, f"alerts.{name}", 1, limits.get(name, MAX_LIMIT))
                                for name, value in raw_alerts.items()})  # fmt: skip
    return FraudSettings(caps, alerts, active)


def _cap(raw: Any, index: int) -> Cap:
    where = f"caps[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where} is an object", field=where)
    unknown = set(raw) - {"action", "subject", "window", "max_count", "max_points"}
    if unknown:
        raise InvalidInput(f"unknown fields in {where}: {', '.join(sorted(unknown))}", field=where)
    try:
        action, subject, window = (
            Action(str(raw.get("action"))),
            Subject(str(raw.get("subject"))),
            Window(str(raw.get("window"))),
        )
    except ValueError:
        raise InvalidInput(f"{where}: action is earn or redeem, subject member, card, device or ip, window hour "
                           "or day", field=where) from None  # fmt: skip
    count = raw.get("max_count")
    points = raw.get("max_points")
    if count is None and points is None:
        raise InvalidInput(f"{where}: give max_count, max_points or both", field=where)
    return Cap(action, subject, window,
               None if count is None else _integer(count, f"{where}.max_count", 1, MAX_LIMIT),
               None if points is None else _integer(points, f"{where}.max_points", 1, MAX_LIMIT))  # fmt: skip


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} is a whole number from {low} to {high}", field=name)
    return value


# -- windows ------------------------------------------------------------------------------------------------
def window_start(window: Window, at: datetime, tz: ZoneInfo) -> datetime:
    """The start (UTC) of the window `at` falls in: the UTC clock hour, or the programme's local day."""
    if window is Window.HOUR:
        return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start_of_local_day(local_date(at, tz), tz)


def window_end(window: Window, at: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after the window `at` falls in (a local day is 23 or 25 hours on a DST change)."""
    if window is Window.HOUR:
        return window_start(window, at, tz) + timedelta(hours=1)
    return start_of_local_day(local_date(at, tz) + timedelta(days=1), tz)


# -- counting -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from, as far as the client says (device) or the API saw (IP address)."""

    device_id: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True, order=True)
class Tally:
    """One counter row: what `action`s of `subject` (kind:value) were counted in the window from `start`."""

    action: Action
    subject: str
    window: Window
    start: datetime


@dataclass(frozen=True, slots=True)
class Total:
    count: int
    points: int


def subjects(program_id: UUID, member_id: UUID, origin: Origin | None, payment_token: str | None) -> dict[Subject, str]:
    """The subjects a request can be counted for, as counter keys. Card, device and IP are salted digests (the
    same as the referral screen's), so the counter table never holds one in clear."""
    found = {Subject.MEMBER: str(member_id)}
    for kind, value in ((Subject.CARD, payment_token), (Subject.DEVICE, origin.device_id if origin else None),
                        (Subject.IP, origin.ip if origin else None)):  # fmt: skip
        digest = fingerprint(program_id, kind.value, value)
        if digest is not None:
            found[kind] = digest
    return found


def tallies(caps: Iterable[Cap], known: Mapping[Subject, str], at: datetime, tz: ZoneInfo) -> list[Tally]:
    """The counter rows the caps need for this request, each once, in one fixed order (rows are locked in this
    order, so two requests sharing a device and a member cannot deadlock). A cap on a subject the request does
    not carry (no device id given) counts nothing."""
    rows = {Tally(c.action, f"{c.subject}:{known[c.subject]}", c.window, window_start(c.window, at, tz))
            for c in caps if c.subject in known}  # fmt: skip
    return sorted(rows)


@dataclass(frozen=True, slots=True)
class Breach:
    cap: Cap
    count: int
    points: int
    window_ends: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"cap": self.cap.name, "max_count": self.cap.max_count, "max_points": self.cap.max_points,
                "count": self.count, "points": self.points, "window_ends": self.window_ends.isoformat()}  # fmt: skip


def breaches(caps: Iterable[Cap], known: Mapping[Subject, str], totals: Mapping[Tally, Total], at: datetime,
             tz: ZoneInfo) -> list[Breach]:  # fmt: skip
    """The caps the totals (after counting this request) exceed. A cap of 5 allows the fifth, not the sixth."""
    found = []
    for cap in caps:
        if cap.subject not in known:
            continue
        key = Tally(cap.action, f"{cap.subject}:{known[cap.subject]}", cap.window, window_start(cap.window, at, tz))
        total = totals.get(key)
        if total is None:
            continue
        over_count = cap.max_count is not None and total.count > cap.max_count
        over_points = cap.max_points is not None and total.points > cap.max_points
        if over_count or over_points:
            found.append(Breach(cap, total.count, total.points, window_end(cap.window, at, tz)))
    return found


def retry_after(refusals: Sequence[Breach], now: datetime) -> int:
    """Seconds until every window that refused the request has ended (at least 1)."""
    latest = max(b.window_ends for b in refusals)
    return max(int((latest - now).total_seconds()), 1)


# -- anomalies ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Finding:
    """An anomaly the scan found: one alert per kind, subject and period (a local day)."""

    kind: AlertKind
    subject: str
    member_id: UUID | None
    details: dict[str, Any]


def refunds_after_redemptions(redemptions: Sequence[datetime], refunds: Sequence[datetime], days: int) -> int:
    """How many of a member's refunds came within `days` after one of their redemptions (the pattern of
    redeeming points and then returning what earned them)."""
    span = timedelta(days=days)
    ordered = sorted(redemptions)
    return sum(1 for refund in refunds if any(r <= refund <= r + span for r in ordered))


def earning_spike(recent_points: int, baseline_points: int, baseline_days: int, factor: int, min_points: int) -> bool:
    """Did a member earn, in the last 24 hours, `factor` times their own daily average (over `baseline_days`)
    and at least `min_points`? Integers only: recent * days >= factor * baseline."""
    if recent_points < min_points:
        return False
    return recent_points * baseline_days >= factor * baseline_points


def find_refund_patterns(by_member: Mapping[UUID, tuple[Sequence[datetime], Sequence[datetime]]],
                         thresholds: AlertThresholds) -> list[Finding]:  # fmt: skip
    """Members with at least `refunds_after_redemption` refunds soon after redemptions."""
    found = []
    for member_id, (redeemed, refunded) in sorted(by_member.items()):
        count = refunds_after_redemptions(redeemed, refunded, thresholds.refund_days)
        if count >= thresholds.refunds_after_redemption:
            found.append(Finding(AlertKind.REFUNDS_AFTER_REDEMPTIONS, f"member:{member_id}", member_id,
                                 {"refunds": count, "redemptions": len(redeemed), "days": thresholds.refund_days}))  # fmt: skip
    return found


def find_referral_clusters(counts: Mapping[tuple[str, str], int], thresholds: AlertThresholds) -> list[Finding]:
    """Fingerprints (kind, digest) with at least `referrals_per_fingerprint` referrals in the period."""
    return [Finding(AlertKind.REFERRALS_PER_FINGERPRINT, f"{kind}:{digest}", None,
                    {"fingerprint": kind, "referrals": n, "days": thresholds.referral_days})
            for (kind, digest), n in sorted(counts.items()) if n >= thresholds.referrals_per_fingerprint]  # fmt: skip


def find_spikes(recent: Mapping[UUID, int], baseline: Mapping[UUID, int], thresholds: AlertThresholds) -> list[Finding]:
    """Members whose last 24 hours stand out against their own history (a new member's history is empty: any
    earning of at least `spike_min_points` stands out)."""
    found = []
    for member_id, points in sorted(recent.items()):
        before = baseline.get(member_id, 0)
        if earning_spike(points, before, thresholds.baseline_days, thresholds.spike_factor,
                         thresholds.spike_min_points):  # fmt: skip
            found.append(Finding(AlertKind.EARNING_SPIKE, f"member:{member_id}", member_id,
                                 {"points_24h": points, "points_baseline": before,
                                  "baseline_days": thresholds.baseline_days}))  # fmt: skip
    return found


def find_cap_hits(holds: Mapping[UUID, int], thresholds: AlertThresholds) -> list[Finding]:
    return [Finding(AlertKind.REPEATED_CAP_HITS, f"member:{member_id}", member_id,
                    {"held": n, "days": thresholds.cap_hit_days})
            for member_id, n in sorted(holds.items()) if n >= thresholds.cap_hits]  # fmt: skip


def alert_period(now: datetime, tz: ZoneInfo) -> date:
    """Alerts are kept once per kind, subject and local day: a scan every few minutes raises each only once."""
    return local_date(now, tz)
