"""Member benefits from a tier or a club membership: what they change about earning and what shops read.

Tiers (issue 4) and paid club plans give the same kinds of benefit; the earn path asks for the benefits in
force for a member at a purchase's time (`services.benefits.member_benefits`) and applies them beside the
rules: an earn multiplier on the base points, a cashback percent credited to the wallet, perks as named
flags (free_shipping, early_access) that shops read, and a birthday bonus.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class Benefits:
    source: str  # "tier:gold", "club:plus"
    earn_multiplier: Fraction = Fraction(1)  # x1.5: the base points once more by half
    cashback_percent: Fraction = Fraction(0)
    perks: frozenset[str] = frozenset()
    birthday_bonus_points: int = 0
