"""The programme's base earning rule: points per amount spent, or per item bought.

A strategy with the same shape the rule engine's effects have (purchase in, contribution out), so the
engine adds rules beside it rather than reshaping the earn path.
"""

from __future__ import annotations

import functools

from treue.domain.money import Money, Rounding, divide
from treue.domain.programs import EarnBasis, Program
from treue.domain.purchases import Purchase
from treue.domain.rules.outcome import Contribution, EarnOutcome


def base_contribution(program: Program, purchase: Purchase, *, explain: bool = True) -> Contribution:
    """The base rule's points for `purchase`, with the sentence saying why (`explain=False`: points only)."""
    if program.earn_basis is EarnBasis.PER_ITEM:
        items = purchase.item_count
        if not explain:
            return Contribution("base", items * program.earn_points, "")
        return Contribution(
            rule="base",
            points=items * program.earn_points,
            reason=f"{program.earn_points} point(s) per item x {items} item(s)",
            details={"basis": "per_item", "items": items},
        )
    amount = purchase.total
    points = divide(amount.minor * program.earn_points, program.earn_per_minor, program.rounding)
    if not explain:
        return Contribution("base", max(points, 0), "")
    spent = amount.format()
    sentence = _per_amount_reason(program.earn_points, program.earn_per_minor, amount.currency, program.rounding)
    return Contribution(
        rule="base",
        points=max(points, 0),
        reason=sentence.format(amount=f"{spent} {amount.currency}"),
        details={"basis": "per_amount", "amount": spent, "currency": amount.currency},
    )


@functools.lru_cache(maxsize=1024)
def _per_amount_reason(points: int, per_minor: int, currency: str, rounding: Rounding) -> str:
    """The sentence of the base rule with a place for the amount (the rest is the same for every purchase)."""
    return f"{points} point(s) per {Money(per_minor, currency)} on {{amount}} ({rounding.value})"


def evaluate_purchase(program: Program, purchase: Purchase) -> EarnOutcome:
    """Everything a purchase earns. Today: the base rule; the rules engine extends this list."""
    return EarnOutcome((base_contribution(program, purchase),))
