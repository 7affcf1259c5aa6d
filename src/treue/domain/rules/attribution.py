"""Which line of a cart earned which points: the checkout preview's line-by-line view of an evaluation.

A contribution counted against lines is spread over the lines it counted: the base rule per amount and
`points_per_amount` by line amount, per item and `points_per_item` by quantity, a multiplier like the base
it multiplies. Effects that counted only some lines (a line filter, excluded SKUs) name them in their
details (`lines`: indices into the cart's lines). Bonus points for the whole cart (`fixed_points`) are not
any line's and are listed for the cart. Spreading uses largest remainders, so the points of a line add up
exactly to the contribution's points - no rounding leaks a point in or out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from treue.domain.purchases import PurchaseLine
from treue.domain.rules.outcome import Contribution


@dataclass(slots=True)
class LinePoints:
    points: int = 0
    rules: list[tuple[str, int]] = field(default_factory=list)  # (rule, points) in the order of the rules


@dataclass(frozen=True, slots=True)
class Attribution:
    lines: tuple[LinePoints, ...]  # one per cart line, in the cart's order
    cart: tuple[tuple[str, int], ...]  # (rule, points) not counted against any line


def apportion(points: int, weights: Sequence[int]) -> list[int]:
    """`points` split in proportion to `weights` (non-negative, not all zero), summing exactly to `points`:
    each share rounded down, the rest one by one to the largest remainders (the earlier line on a tie)."""
    total = sum(weights)
    shares = [points * w // total for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(points * weights[i] % total), i))
    for index in remainders[: points - sum(shares)]:
        shares[index] += 1
    return shares


def attribute(lines: Sequence[PurchaseLine], contributions: Sequence[Contribution]) -> Attribution:
    result = tuple(LinePoints() for _ in lines)
    cart: list[tuple[str, int]] = []
    by_items = any(c.rule == "base" and c.details.get("basis") == "per_item" for c in contributions)
    for contribution in contributions:
        if contribution.points <= 0:
            continue
        weights = _weights(lines, contribution, by_items)
        if weights is None or not any(weights):
            cart.append((contribution.rule, contribution.points))
            continue
        for line, share in zip(result, apportion(contribution.points, weights), strict=True):
            if share:
                line.points += share
                line.rules.append((contribution.rule, share))
    return Attribution(result, tuple(cart))


def _weights(lines: Sequence[PurchaseLine], contribution: Contribution, by_items: bool) -> list[int] | None:
    """Each line's weight in the contribution, or None when it is the whole cart's and no line's. A multiplier
    multiplies the base rule, so it is spread like the base (`by_items`: the base counts items)."""
    details = contribution.details
    if contribution.rule == "base" or contribution.multiplier is not None:
        return [x.quantity if by_items else x.amount_minor for x in lines] if lines else None
    if "eligible_amount" in details:
        counted = _counted(len(lines), details)
        return [x.amount_minor if i in counted else 0 for i, x in enumerate(lines)]
    if "items" in details:
        counted = _counted(len(lines), details)
        return [x.quantity if i in counted else 0 for i, x in enumerate(lines)]
    return None


def _counted(count: int, details: dict[str, object]) -> set[int]:
    named = details.get("lines")
    return set(named) if isinstance(named, list) else set(range(count))
