"""The reward catalogue (Prämienkatalog) and the rules for redeeming from it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from treue.domain.errors import InvalidInput, RedemptionLimitReached, RewardOutOfStock, RewardUnavailable


class RewardType(enum.StrEnum):
    DISCOUNT_FIXED = "discount_fixed"
    DISCOUNT_PERCENT = "discount_percent"
    FREE_PRODUCT = "free_product"
    GIFT_CARD = "gift_card"
    EXPERIENCE = "experience"
    MERCHANDISE = "merchandise"


@dataclass(frozen=True, slots=True)
class Reward:
    id: UUID
    name: dict[str, str]
    type: RewardType
    cost_points: int
    description: dict[str, str] = field(default_factory=dict)
    stock: int | None = None  # None: unlimited
    per_member_limit: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    active: bool = True
    value_minor: int | None = None  # discount_fixed, gift_card
    percent: int | None = None  # discount_percent, whole percent
    sku: str | None = None  # free_product
    coupon_valid_days: int | None = None  # None: the coupon is valid as long as the reward

    def __post_init__(self) -> None:
        if not self.name or not all(v.strip() for v in self.name.values()):
            raise InvalidInput("a reward needs a name in at least one locale")
        if set(self.name) - {"de", "en"} or set(self.description) - {"de", "en"}:
            raise InvalidInput("reward names and descriptions are given per locale: de, en")
        if self.cost_points <= 0:
            raise InvalidInput("a reward costs a positive number of points")
        if self.stock is not None and self.stock < 0:
            raise InvalidInput("stock cannot be negative")
        if self.per_member_limit is not None and self.per_member_limit <= 0:
            raise InvalidInput("per_member_limit must be positive (omit it for no limit)")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise InvalidInput("valid_until must be after valid_from")
        if self.type in (RewardType.DISCOUNT_FIXED, RewardType.GIFT_CARD) and not (self.value_minor or 0) > 0:
            raise InvalidInput(f"a {self.type.value} reward needs a positive value")
        if self.type is RewardType.DISCOUNT_PERCENT and not 0 < (self.percent or 0) <= 100:
            raise InvalidInput("a discount_percent reward needs a percent between 1 and 100")
        if self.coupon_valid_days is not None and self.coupon_valid_days <= 0:
            raise InvalidInput("coupon_valid_days must be positive")

    def localized_name(self, locale: str) -> str:
        return self.name.get(locale) or next(iter(self.name.values()))

    def check_redeemable(self, now: datetime, redeemed_by_member: int) -> None:
        if not self.active:
            raise RewardUnavailable(f"reward '{self.localized_name('en')}' is not active")
        if self.valid_from and now < self.valid_from:
            raise RewardUnavailable("the reward cannot be redeemed before " + self.valid_from.isoformat())
        if self.valid_until and now >= self.valid_until:
            raise RewardUnavailable("the reward could be redeemed until " + self.valid_until.isoformat())
        if self.stock is not None and self.stock <= 0:
            raise RewardOutOfStock("the reward is out of stock")
        if self.per_member_limit is not None and redeemed_by_member >= self.per_member_limit:
            raise RedemptionLimitReached(
                f"a member may redeem this reward {self.per_member_limit} time(s)",
                limit=self.per_member_limit,
            )
