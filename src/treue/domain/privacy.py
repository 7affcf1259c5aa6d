"""GDPR erasure and retention rules (issue 10): what counts as a member's personal data in stored documents, how
it is blanked out, what an erased member's remaining points become, and when a member is inactive long enough
to be erased by the retention job. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treue.domain.durations import add_months
from treue.domain.errors import InvalidInput
from treue.domain.lots import Draw
from treue.domain.points import PointsAccount

ERASED = "[erased]"
# Keys that hold a person's data wherever a stored document (an audit snapshot, a replayed API answer, an
# outbox payload) names them: their values are blanked in documents about an erased member.
PERSONAL_KEYS = frozenset({
    "email", "first_name", "last_name", "phone", "birthday", "external_ref", "nickname", "comment", "recipient",
    "address", "attributes", "display_name",
})  # fmt: skip
RETENTION_MAX_MONTHS = 240  # 20 years; anything longer is as good as "never"
REASON_MAX = 500
FORFEIT_REASON = "forfeited on erasure (GDPR art. 17)"


@dataclass(frozen=True, slots=True)
class Needles:
    """What identifies one member in free text: values found inside longer strings (`contained`), and short or
    generic values that only count when a whole string equals them (`whole`)."""

    contained: tuple[str, ...]
    whole: frozenset[str]

    @classmethod
    def of(cls, contained: Iterable[Any], whole: Iterable[Any] = ()) -> Needles:
        # Longest first: an email is blanked as a whole before the name inside it is looked for.
        found = {str(v).strip() for v in contained if v is not None and len(str(v).strip()) >= 3}
        exact = {str(v).strip() for v in whole if v is not None and str(v).strip()}
        return cls(tuple(sorted(found, key=lambda s: (-len(s), s))), frozenset(exact | found))

    def hit(self, text: str) -> bool:
        return text.strip() in self.whole or any(n.casefold() in text.casefold() for n in self.contained)


def redact(value: Any, needles: Needles) -> Any:
    """The document with the member's personal data blanked: values under PERSONAL_KEYS, and every string that
    equals or contains one of the needles. Structure, numbers, ids and timestamps stay."""
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key in PERSONAL_KEYS and item not in (None, "", {}, []):
                out[key] = {} if isinstance(item, Mapping) else None
            else:
                out[key] = redact(item, needles)
        return out
    if isinstance(value, list | tuple):
        return [redact(item, needles) for item in value]
    if isinstance(value, str) and needles.hit(value):
        return ERASED
    return value


def redact_text(value: str | None, needles: Needles) -> str | None:
    """Free text (a reason, a note) blanked when it names the member."""
    if value is None or not needles.hit(value):
        return value
    return ERASED


def forfeit(account: PointsAccount) -> tuple[Draw, int]:
    """Take everything the member's account still holds (available, pending and expired-but-unprocessed lots)
    to write it off. A balance below zero (a debt under the allow_negative policy) is left as it is."""
    draw = Draw()
    total = 0
    for lot in account.lots:
        if lot.remaining > 0:
            total += lot.remaining
            draw.take(lot, lot.remaining)
    account.balance -= total
    return draw, total


def check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("an erasure needs a reason (kept in the audit log)")
    if len(text) > REASON_MAX:
        raise InvalidInput(f"the reason is longer than {REASON_MAX} characters")
    return text


def check_retention(months: Any) -> int | None:
    """Months of inactivity after which members are erased; None: never (the default)."""
    if months is None:
        return None
    if isinstance(months, bool) or not isinstance(months, int):
        raise InvalidInput("retention months must be a whole number or null (off)")
    if not 1 <= months <= RETENTION_MAX_MONTHS:
        raise InvalidInput(f"retention months must lie between 1 and {RETENTION_MAX_MONTHS} (or null: off)")
    return months


def inactive_before(now: datetime, months: int) -> datetime:
    """Members whose last activity is before this instant are inactive for longer than `months` (calendar
    months in UTC; the end of a shorter month is used when the day does not exist)."""
    day = add_months(now.date(), -months)
    return now.replace(year=day.year, month=day.month, day=day.day)
