"""Control groups: a stable, random-looking share of members held out of a programme or a campaign, so that its
effect can be measured against members it did not reach (see `treue.domain.analytics.uplift`).

Assignment is a hash of the unit (programme or campaign) and the member id: the same member stays in the same
group for the life of the unit without anything being stored, a member's group in one campaign says nothing about
another campaign, and the share is exact in expectation. Shares are basis points (1/100 of a per cent).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from treue.domain.errors import InvalidInput

BUCKETS = 10_000  # one bucket per basis point
MAX_SHARE_BP = 5_000  # more than half held out would make the "control" the programme


def bucket(unit: str, member_id: str) -> int:
    """The member's bucket 0..9999 for a unit such as "program" or "campaign:spring"."""
    digest = hashlib.sha256(f"{unit}\x00{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_control(unit: str, member_id: str, share_bp: int) -> bool:
    return share_bp > 0 and bucket(unit, member_id) < share_bp


def campaign_unit(campaign_id: str) -> str:
    return f"campaign:{campaign_id}"


PROGRAM_UNIT = "program"


def share_bp_of_percent(percent: Fraction, where: str = "control_percent") -> int:
    """A percentage such as 10 or 2.5 as basis points; at most two decimals, 0 to 50 %."""
    bp = percent * 100
    if bp.denominator != 1 or not 0 <= bp <= MAX_SHARE_BP:
        raise InvalidInput(f"{where} must be between 0 and 50 with at most two decimals", field=where)
    return int(bp)


def exact_percent(value: str | int, where: str = "control_percent") -> Fraction:
    """A percentage given as a decimal string ("12.5") or an integer, exactly."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(f"{where} must be a decimal number such as 10 or 2.5", field=where) from None
    if isinstance(value, bool) or not number.is_finite():
        raise InvalidInput(f"{where} must be a decimal number such as 10 or 2.5", field=where)
    return Fraction(number)


def percent_text(share_bp: int) -> str:
    whole, rest = divmod(share_bp, 100)
    return f"{whole}" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0")
