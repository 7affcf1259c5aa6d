"""Notifications: triggers, channels, a programme's settings, and the decisions of whether, when and where a
message may go (consent, quiet hours, frequency cap), and the sandboxed templates that word them.

Pure: no I/O, the clock is passed in. The defaults of the templates live in `notification_templates.py`.
"""

from __future__ import annotations

import enum
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from treue.domain.errors import InvalidInput
from treue.domain.events import NOTIFICATION_PUSH


class Channel(enum.StrEnum):
    EMAIL = "email"
    INBOX = "inbox"  # the member's in-app inbox (portal, app through the API)
    PUSH = "push"  # an event `notification.push` through the outbound webhooks to the merchant's push provider


class Purpose(enum.StrEnum):
    TRANSACTIONAL = "transactional"  # about the member's own account: sent without marketing consent
    MARKETING = "marketing"  # only with recorded consent per channel, double opt-in for email, capped per week


class Status(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"  # not sent, and never will be: no consent, no address, over the weekly cap


LOCALES = ("de", "en")
PUSH_EVENT = NOTIFICATION_PUSH  # the event a push notification becomes (received by webhook endpoints)


@dataclass(frozen=True, slots=True)
class Trigger:
    code: str
    purpose: Purpose
    events: tuple[str, ...]  # the domain events that fire it (empty: the `notifications` job does)
    channels: tuple[Channel, ...] = (Channel.EMAIL, Channel.INBOX)
    quiet_hours: bool = True  # whether the member's quiet hours defer it (a coupon the member waits for: no)
    description: str = ""


T = Purpose.TRANSACTIONAL
TRIGGERS: dict[str, Trigger] = {t.code: t for t in (
    Trigger("welcome", T, ("member.enrolled",), description="a member enrolled"),
    Trigger("email_confirmation", T, (), (Channel.EMAIL,), quiet_hours=False,
            description="double opt-in: confirm the address before marketing email"),
    Trigger("points_earned", T, ("points.earned",), (Channel.INBOX,),
            description="points credited (immediate, or a daily digest with mode=digest)"),
    Trigger("points_available", T, (), (Channel.INBOX,), description="pending points became available (job)"),
    Trigger("points_expiring", T, (), description="points of a lot expire in N days (job; days per threshold)"),
    Trigger("reward_redeemed", T, ("reward.redeemed",), quiet_hours=False,
            description="a reward was redeemed: the coupon code with a QR code"),
    Trigger("tier_upgraded", T, ("tier.upgraded",)),
    Trigger("tier_downgraded", T, ("tier.downgraded",)),
    Trigger("tier_will_downgrade", T, ("tier.will_downgrade",)),
    Trigger("mission_completed", T, ("mission.completed",), (Channel.INBOX, Channel.PUSH)),
    Trigger("referral_completed", T, ("referral.completed",), description="to the referrer"),
    Trigger("club_renewed", T, ("club.renewed",)),
    Trigger("club_payment_failed", T, ("club.payment_failed",)),
    Trigger("monthly_statement", Purpose.MARKETING, (),
            description="balance, earned, spent, expiring and tier progress of the last month (job)"),
)}  # fmt: skip
BY_EVENT: dict[str, list[Trigger]] = {}
for _trigger in TRIGGERS.values():
    for _event in _trigger.events:
        BY_EVENT.setdefault(_event, []).append(_trigger)

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def trigger(code: str) -> Trigger:
    found = TRIGGERS.get(code)
    if found is None:
        raise InvalidInput(f"unknown trigger {code!r}; triggers are: {', '.join(TRIGGERS)}")
    return found


def channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise InvalidInput(f"channel must be one of {', '.join(c.value for c in Channel)}") from None


def locale(value: str) -> str:
    if value not in LOCALES:
        raise InvalidInput("locale must be 'de' or 'en'")
    return value


# -- settings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TriggerSettings:
    enabled: bool
    channels: tuple[Channel, ...]
    purpose: Purpose
    mode: str = "immediate"  # points_earned: immediate | digest
    days: tuple[int, ...] = ()  # points_expiring: thresholds, days before the expiry

    def as_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "channels": [c.value for c in self.channels],
                "purpose": self.purpose.value, "mode": self.mode, "days": list(self.days)}  # fmt: skip


def default_trigger_settings(code: str) -> TriggerSettings:
    found = TRIGGERS[code]
    days = (30, 7) if code == "points_expiring" else ()
    return TriggerSettings(True, found.channels, found.purpose, days=days)


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time  # e.g. 21:00 local
    end: time  # e.g. 08:00 local (the next morning when end <= start)

    def defer(self, now: datetime, tz: ZoneInfo) -> datetime | None:
        """When a message due `now` may go: None if now is outside the quiet hours, else the local end."""
        local = now.astimezone(tz)
        t = local.time().replace(tzinfo=None)
        if self.start == self.end:
            return None
        overnight = self.end < self.start
        inside = (t >= self.start or t < self.end) if overnight else (self.start <= t < self.end)
        if not inside:
            return None
        day = local.date()
        if overnight and t >= self.start:
            day += timedelta(days=1)
        # Wall-clock end in the zone (a DST gap moves it by at most an hour, never earlier than now).
        end = datetime.combine(day, self.end, tzinfo=tz)
        return max(end.astimezone(now.tzinfo), now)

    def as_json(self) -> dict[str, str]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}


def _hhmm(value: Any, name: str) -> time:
    match = _HHMM.match(str(value or ""))
    if not match:
        raise InvalidInput(f"{name} must be a local time HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    triggers: dict[str, TriggerSettings] = field(default_factory=dict)
    quiet_hours: QuietHours | None = field(default_factory=lambda: QuietHours(time(21), time(8)))
    weekly_marketing_cap: int = 3  # marketing messages per member in any 7 days, per channel summed

    def of(self, code: str) -> TriggerSettings:
        return self.triggers.get(code) or default_trigger_settings(code)

    def as_json(self) -> dict[str, Any]:
        return {"triggers": {code: self.of(code).as_json() for code in TRIGGERS},
                "quiet_hours": self.quiet_hours.as_json() if self.quiet_hours else None,
                "weekly_marketing_cap": self.weekly_marketing_cap}  # fmt: skip

    @staticmethod
    def parse(data: Mapping[str, Any] | None, base: NotificationSettings | None = None) -> NotificationSettings:
        """Settings from JSON (stored or sent), merged over `base`: only what is given changes."""
        current = base or NotificationSettings()
        data = data or {}
        unknown = set(data) - {"triggers", "quiet_hours", "weekly_marketing_cap"}
        if unknown:
            raise InvalidInput(f"unknown settings: {', '.join(sorted(unknown))}")
        triggers = dict(current.triggers)
        for code, values in (data.get("triggers") or {}).items():
            triggers[code] = _trigger_settings(code, values or {}, current.of(trigger(code).code))
        quiet = current.quiet_hours
        if "quiet_hours" in data:
            given = data["quiet_hours"]
            quiet = None if given is None else QuietHours(_hhmm(given.get("start"), "quiet_hours.start"),
                                                          _hhmm(given.get("end"), "quiet_hours.end"))  # fmt: skip
        cap = current.weekly_marketing_cap
        if "weekly_marketing_cap" in data:
            cap = data["weekly_marketing_cap"]
            if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap <= 100:
                raise InvalidInput("weekly_marketing_cap must be a whole number from 0 to 100")
        return replace(current, triggers=triggers, quiet_hours=quiet, weekly_marketing_cap=cap)


def _trigger_settings(code: str, values: Mapping[str, Any], base: TriggerSettings) -> TriggerSettings:
    unknown = set(values) - {"enabled", "channels", "purpose", "mode", "days"}
    if unknown:
        raise InvalidInput(f"{code}: unknown settings {', '.join(sorted(unknown))}")
    out = base
    if "enabled" in values:
        out = replace(out, enabled=bool(values["enabled"]))
    if "channels" in values:
        chosen = tuple(dict.fromkeys(channel(str(c)) for c in values["channels"] or []))
        out = replace(out, channels=chosen)
    if "purpose" in values:
        try:
            out = replace(out, purpose=Purpose(str(values["purpose"])))
        except ValueError:
            raise InvalidInput(f"{code}: purpose must be transactional or marketing") from None
    if "mode" in values and values["mode"] != base.mode:
        if code != "points_earned" or values["mode"] not in ("immediate", "digest"):
            raise InvalidInput("mode (immediate or digest) is a setting of points_earned only")
        out = replace(out, mode=str(values["mode"]))
    if "days" in values and values["days"] != list(base.days):
        days = values["days"]
        if code != "points_expiring" or not isinstance(days, list) or not days or not all(
                isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 365 for d in days):  # fmt: skip
            raise InvalidInput("days (1 to 365, at least one) is a setting of points_expiring only")
        out = replace(out, days=tuple(sorted(set(days), reverse=True)))
    return out


# -- decisions ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Consent:
    """What the member agreed to for marketing on one channel, and (email) whether the address is confirmed."""

    granted: bool = False
    confirmed: bool = False  # double opt-in: the confirmation link was followed for the current address


@dataclass(frozen=True, slots=True)
class Decision:
    send: bool
    not_before: datetime | None = None  # deferred (quiet hours) until then
    reason: str | None = None  # why not sent

    @property
    def deferred(self) -> bool:
        return self.send and self.not_before is not None


def decide(trig: Trigger, purpose: Purpose, chan: Channel, *, address: str | None, consent: Consent,
           marketing_last_week: int, settings: NotificationSettings, now: datetime, tz: ZoneInfo) -> Decision:  # fmt: skip
    """May this message go to the member on this channel, and when?

    - email needs an address; marketing email needs consent AND a confirmed address (double opt-in);
    - marketing push needs push consent; the inbox is the member's own page and takes everything;
    - marketing beyond the weekly cap is not sent at all (suppressed, logged);
    - quiet hours (in the member's timezone) defer email and push, never drop them.
    """
    if chan is Channel.EMAIL and not address:
        return Decision(False, reason="no_address")
    if purpose is Purpose.MARKETING and chan is not Channel.INBOX:
        if not consent.granted:
            return Decision(False, reason="no_consent")
        if chan is Channel.EMAIL and not consent.confirmed:
            return Decision(False, reason="not_confirmed")
        if marketing_last_week >= settings.weekly_marketing_cap:
            return Decision(False, reason="frequency_cap")
    if chan is not Channel.INBOX and trig.quiet_hours and settings.quiet_hours is not None:
        until = settings.quiet_hours.defer(now, tz)
        if until is not None:
            return Decision(True, not_before=until)
    return Decision(True)


def expiring_threshold(expires_at: datetime, now: datetime, days: tuple[int, ...]) -> int | None:
    """The smallest threshold (days before the expiry) that `now` has reached, or None: a lot 5 days before its
    expiry with thresholds 30 and 7 is due its 7-day notice only (the 30-day one was missed, not owed)."""
    if expires_at <= now:
        return None
    left = expires_at - now
    reached = [d for d in days if left <= timedelta(days=d)]
    return min(reached) if reached else None


RETRY_SCHEDULE = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                  timedelta(hours=6))  # fmt: skip


def next_attempt(failed_attempts: int, now: datetime) -> datetime | None:
    """After the n-th failed send: when to try again, or None when the schedule is spent (failed)."""
    if failed_attempts > len(RETRY_SCHEDULE):
        return None
    return now + RETRY_SCHEDULE[max(failed_attempts, 1) - 1]


# -- templates ---------------------------------------------------------------------------------------------
MAX_TEMPLATE = 20_000


@dataclass(frozen=True, slots=True)
class Template:
    subject: str
    text: str
    html: str | None = None  # email only; without it the text is shown as simple HTML


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str | None


_URL = re.compile(r"(https?://[^\s<>\"']+)")


def text_to_html(text: str) -> str:
    """The plain text as a minimal HTML body: escaped, links clickable, paragraphs kept."""
    paragraphs = []
    for block in text.strip().split("\n\n"):
        escaped = html.escape(block)
        linked = _URL.sub(r'<a href="\1">\1</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    return "<!doctype html>\n<html><body>\n" + "\n".join(paragraphs) + "\n</body></html>\n"
