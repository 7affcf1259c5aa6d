"""Outbound webhooks: which events an endpoint wants, when a failed delivery is tried again, and when an
endpoint that keeps failing is switched off. Pure: the caller passes the time in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from treue.domain.errors import InvalidInput, WebhookInvalid

SECRET_PREFIX = "whsec_"  # Standard Webhooks: a base64 key after this prefix
MAX_FILTERS = 50
MAX_URL = 2000
# "points.earned", "points.*", "*": a wildcard only as the last segment, so a filter reads as a prefix.
_FILTER = re.compile(r"^(\*|([a-z0-9_]+\.)*([a-z0-9_]+|\*))$")
# Standard Webhooks' suggested schedule after the first attempt (Svix uses the same).
DEFAULT_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
WEBHOOK_DISABLED = "webhook.disabled"  # an event: the endpoint was switched off after persistent failure
STATUSES = (PENDING, SUCCEEDED, FAILED)


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        raise WebhookInvalid(f"webhook url must be an http(s) URL with a host: {url!r}")
    return url.strip()


def check_filters(filters: list[str]) -> list[str]:
    """Event-type filters: at least one, each an event type, a prefix wildcard (`points.*`) or `*`."""
    if not filters:
        raise WebhookInvalid("a webhook needs at least one event filter (use ['*'] for every event)")
    if len(filters) > MAX_FILTERS:
        raise WebhookInvalid(f"at most {MAX_FILTERS} event filters")
    for item in filters:
        if not isinstance(item, str) or not _FILTER.match(item):
            raise WebhookInvalid(f"event filter {item!r}: use an event type, a prefix such as 'points.*', or '*'")
    return sorted(set(filters))


def matches(filters: list[str], event_type: str) -> bool:
    for item in filters:
        if item == "*" or item == event_type:
            return True
        if item.endswith(".*") and event_type.startswith(item[:-1]):
            return True
    return False


def parse_duration(text: str) -> timedelta:
    """`5s`, `5m`, `2h`, `1d`: the units a retry schedule is written in."""
    text = text.strip()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit():
        raise InvalidInput(f"duration {text!r}: write a whole number with s, m, h or d (e.g. 30m)")
    return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Retries after the first attempt, and when an endpoint counts as dead.

    An endpoint is disabled when its deliveries have failed without a single success for `disable_after`
    AND at least `disable_min_failures` attempts in a row failed: both, so neither one slow night nor a
    burst of failures in a minute switches a merchant's integration off.
    """

    schedule: tuple[timedelta, ...] = DEFAULT_SCHEDULE
    disable_after: timedelta = timedelta(days=5)
    disable_min_failures: int = 10
    lease: timedelta = timedelta(minutes=2)  # longer than a request's timeout: a live worker never loses it
    timeout_seconds: float = 15.0

    @staticmethod
    def parse(schedule: str | None = None, disable_after: str | None = None,
              disable_min_failures: int | None = None) -> DeliveryPolicy:  # fmt: skip
        base = DeliveryPolicy()
        steps = tuple(parse_duration(s) for s in schedule.split(",")) if schedule else base.schedule
        return DeliveryPolicy(
            schedule=steps,
            disable_after=parse_duration(disable_after) if disable_after else base.disable_after,
            disable_min_failures=base.disable_min_failures if disable_min_failures is None else disable_min_failures,
        )

    def next_attempt(self, failed_attempts: int, now: datetime) -> datetime | None:
        """After the n-th failed attempt: when to try again, or None when the schedule is spent."""
        if failed_attempts <= 0:
            return now
        if failed_attempts > len(self.schedule):
            return None
        return now + self.schedule[failed_attempts - 1]

    def should_disable(self, consecutive_failures: int, failing_since: datetime | None, now: datetime) -> bool:
        if failing_since is None:
            return False
        return consecutive_failures >= self.disable_min_failures and now - failing_since >= self.disable_after


def succeeded(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300
