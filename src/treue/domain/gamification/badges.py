"""Badges: achievements a member holds at most once, with a name, description and image, and a rarity that is
computed from how many members hold them ("rare" when fewer than `rare_below_percent` of the members do)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from treue.domain.errors import GamificationInvalid, RuleInvalid
from treue.domain.gamification.missions import code_of, texts
from treue.domain.rules.spec import Spec, refuse

MAX_IMAGE_URL = 2000


@dataclass(frozen=True, slots=True)
class Badge:
    id: Any
    code: str
    name: Mapping[str, str]
    description: Mapping[str, str]
    image_url: str | None = None
    rare_below_percent: Fraction | None = None  # rare when held by fewer than this share of the members
    active: bool = True


@dataclass(frozen=True, slots=True)
class Rarity:
    holders: int
    members: int
    percent: str  # of the members who hold it, two decimals ("3.25")
    rare: bool


def rarity(badge: Badge, holders: int, members: int) -> Rarity:
    """Who holds the badge, as a share of the programme's members. A badge nobody holds is not "rare" (it is
    not held at all); with no members there is no share."""
    share = Fraction(holders * 100, members) if members else Fraction(0)
    hundredths = share.numerator * 100 // share.denominator  # floor: 2.999% shows as 2.99
    percent = f"{hundredths // 100}.{hundredths % 100:02d}"
    rare = badge.rare_below_percent is not None and holders > 0 and share < badge.rare_below_percent
    return Rarity(holders, members, percent, rare)


def parse_badge(values: Mapping[str, Any], *, badge_id: Any, active: bool = True) -> Badge:
    try:
        spec = Spec(values).only("code", "name", "description", "image_url", "rare_below_percent", "active")
        image = spec.text("image_url") if spec.has("image_url") else None
        if image is not None and (len(image) > MAX_IMAGE_URL or not image.startswith(("https://", "http://", "/"))):
            raise refuse(spec.at("image_url"), "an http(s) URL or a path of at most 2000 characters")
        rare: Fraction | None = spec.decimal("rare_below_percent") if spec.has("rare_below_percent") else None
        if rare is not None and not 0 < rare <= 100:
            raise refuse(spec.at("rare_below_percent"), "more than 0 and at most 100")
        return Badge(badge_id, code_of(spec), texts(spec, "name", required=True),
                     texts(spec, "description", required=False), image, rare, spec.boolean("active", active))  # fmt: skip
    except RuleInvalid as error:
        raise GamificationInvalid(error.detail, **error.extra) from None
