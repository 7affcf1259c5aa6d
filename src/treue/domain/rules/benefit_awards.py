"""Tier and club benefits as awards of a purchase's evaluation, beside the rules (rule id "tier:<code>" or
"club:<plan>"): the earn multiplier adds the base points times (multiplier - 1), like a `multiplier` effect; the
cashback percent becomes a `Cashback` hook on the purchase total, which the wallet credits; on the member's
birthday (the scheduled `birthday` event) the birthday bonus is a contribution of its own. Pure: the same
evaluation and benefits always give the same result, so the checkout preview shows what the purchase earns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from treue.domain.benefits import Benefits
from treue.domain.club import format_fraction
from treue.domain.money import Money, Rounding, divide
from treue.domain.purchases import Purchase
from treue.domain.rules.effects import Cashback, Hook
from treue.domain.rules.evaluator import Award, Evaluation
from treue.domain.rules.outcome import Contribution, EarnOutcome

BIRTHDAY = "birthday"  # the scheduled trigger of a member's birthday (services.scheduled)


def with_benefits(evaluation: Evaluation, benefits: Sequence[Benefits], purchase: Purchase,
                  rounding: Rounding) -> Evaluation:  # fmt: skip
    """The evaluation with one award per benefit source that gives something for this purchase."""
    base = next((c.points for c in evaluation.outcome.contributions if c.rule == "base"), 0)
    awards: list[Award] = []
    for source in benefits:
        contributions: tuple[Contribution, ...] = ()
        hooks: tuple[Hook, ...] = ()
        if source.earn_multiplier > 1 and base > 0:
            extra = source.earn_multiplier - 1
            points = divide(base * extra.numerator, extra.denominator, rounding)
            text = format_fraction(source.earn_multiplier)
            if points > 0:
                contributions = (Contribution(rule=source.source, points=points, base=base, multiplier=text,
                                              reason=f"{source.source}: x{text} on {base} base point(s): +{points}"),)  # fmt: skip
        if source.cashback_percent > 0 and purchase.total.minor > 0:
            share = source.cashback_percent / 100
            amount = Money(divide(purchase.total.minor * share.numerator, share.denominator, rounding),
                           purchase.total.currency)  # fmt: skip
            if amount.minor > 0:
                hooks = (Cashback(amount, format_fraction(source.cashback_percent), rule=source.source),)
        if contributions or hooks:
            points = sum(c.points for c in contributions)
            awards.append(Award(source.source, 0, None, points, contributions, hooks=hooks))
    if not awards:
        return evaluation
    added = tuple(c for award in awards for c in award.contributions)
    return replace(evaluation, outcome=EarnOutcome(evaluation.outcome.contributions + added),
                   awards=evaluation.awards + tuple(awards))  # fmt: skip


def with_birthday_bonus(evaluation: Evaluation, benefits: Sequence[Benefits]) -> Evaluation:
    """The birthday event's evaluation with each benefit source's birthday bonus as an award of its own."""
    awards = tuple(
        Award(source.source, 0, None, source.birthday_bonus_points, (Contribution(
            rule=source.source, points=source.birthday_bonus_points,
            reason=f"{source.source}: birthday bonus of {source.birthday_bonus_points} point(s)"),))
        for source in benefits if source.birthday_bonus_points > 0
    )  # fmt: skip
    if not awards:
        return evaluation
    added = tuple(c for award in awards for c in award.contributions)
    return replace(evaluation, outcome=EarnOutcome(evaluation.outcome.contributions + added),
                   awards=evaluation.awards + awards)  # fmt: skip
