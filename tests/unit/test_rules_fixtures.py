"""Builders shared by the rules engine tests (this module holds no tests of its own)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from treue.domain.money import Money
from treue.domain.programs import Program
from treue.domain.purchases import Channel, Purchase, PurchaseLine
from treue.domain.rules.context import EventFacts, MemberSnapshot
from treue.domain.rules.definitions import Campaign, Rule, RuleSet, parse_campaign, parse_rule
from treue.domain.rules.evaluator import Evaluation, evaluate
from treue.domain.rules.limits import LimitState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WEDNESDAY = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # 11:00 in Berlin
BERLIN = "Europe/Berlin"


def program(**settings: Any) -> Program:
    return Program(uuid.UUID(int=1), "Test", "EUR", BERLIN, **settings)


def line(sku: str, quantity: int, price: str, category: str | None = None) -> PurchaseLine:
    return PurchaseLine(sku, quantity, Money.parse(price, "EUR").minor, category)


def purchase(total: str = "50.00", *lines: PurchaseLine, at: datetime = WEDNESDAY, channel: str = "store",
             partner: str = "default") -> Purchase:  # fmt: skip
    return Purchase(uuid.uuid4(), uuid.UUID(int=7), partner, None, Channel(channel), f"order-{uuid.uuid4()}", at,
                    Money.parse(total, "EUR"), tuple(lines))  # fmt: skip


def member(tier: str | None = None, **fields: Any) -> MemberSnapshot:
    fields.setdefault("enrolled_at", datetime(2025, 6, 1, tzinfo=UTC))
    fields.setdefault("birthday", date(1990, 3, 4))
    return MemberSnapshot("member-1", tier, **fields)


def rule(rule_id: str, *effects: dict[str, Any], valid_from: datetime = T0, **fields: Any) -> Rule:
    fields.setdefault("trigger", "purchase")
    return parse_rule({"id": rule_id, "effects": list(effects), **fields}, currency="EUR", valid_from=valid_from)


def campaign(data: dict[str, Any]) -> Campaign:
    return parse_campaign(data, timezone=BERLIN, currency="EUR", valid_from=T0)


def fixed(points: int, **extra: Any) -> dict[str, Any]:
    return {"type": "fixed_points", "points": points, **extra}


def run(rules: RuleSet | list[Rule], bought: Purchase | None = None, *, who: MemberSnapshot | None = None,
        state: LimitState | None = None, prog: Program | None = None, facts: EventFacts | None = None,
        include_base: bool = True) -> Evaluation:  # fmt: skip
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet(rules)
    event = facts or EventFacts.of_purchase(bought or purchase(), who or member())
    return evaluate(event, ruleset, state or LimitState(), prog or program(), include_base=include_base)


def points_by_rule(evaluation: Evaluation) -> dict[str, int]:
    found: dict[str, int] = {}
    for contribution in evaluation.outcome.contributions:
        found[contribution.rule] = found.get(contribution.rule, 0) + contribution.points
    return found
