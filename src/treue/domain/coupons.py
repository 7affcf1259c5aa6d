"""Coupons: the unguessable codes a redemption issues, validated and consumed at checkout."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from treue.domain.errors import CouponInvalid, InvalidInput

# No 0/O, 1/I/L: a code read aloud or typed from paper survives.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12  # 31^12 ~ 2^59


class CouponStatus(enum.StrEnum):
    ISSUED = "issued"
    CONSUMED = "consumed"
    CANCELLED = "cancelled"


def new_coupon_code(choose: Callable[[str], str]) -> str:
    raw = "".join(choose(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_coupon_code(text: str) -> str:
    raw = text.strip().upper().replace("-", "").replace(" ", "")
    if len(raw) != CODE_LENGTH or any(ch not in ALPHABET for ch in raw):
        raise InvalidInput("not a coupon code")
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


@dataclass(frozen=True, slots=True)
class Coupon:
    id: UUID
    code: str
    member_id: UUID
    reward_id: UUID
    redemption_id: UUID
    status: CouponStatus
    valid_until: datetime | None

    def check_usable(self, now: datetime) -> None:
        if self.status is CouponStatus.CONSUMED:
            raise CouponInvalid("the coupon has already been used", reason="consumed")
        if self.status is CouponStatus.CANCELLED:
            raise CouponInvalid("the coupon was cancelled", reason="cancelled")
        if self.valid_until is not None and now >= self.valid_until:
            raise CouponInvalid("the coupon has expired", reason="expired")


def coupon_valid_until(now: datetime, valid_days: int | None, reward_valid_until: datetime | None) -> datetime | None:
    candidates = [t for t in (reward_valid_until, now + timedelta(days=valid_days) if valid_days else None) if t]
    return min(candidates) if candidates else None
