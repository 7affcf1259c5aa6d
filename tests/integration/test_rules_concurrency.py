"""Concurrent earns under rules on PostgreSQL: campaign budgets and per-member caps hold under contention.

SQLite serialises every writer with BEGIN IMMEDIATE, so these races only exist on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from tests.integration.helpers import buy, enrol, race
from tests.integration.rules_helpers import WEDNESDAY, by_rule, campaign, event, fixed, rule
from treue.services.points import get_balance, get_history
from treue.services.purchases import RefundPurchase, refund_purchase
from treue.services.rules import get_campaign
from treue.services.verify import verify

pytestmark = pytest.mark.usefixtures("postgres_only")


def test_twenty_concurrent_earns_never_exceed_a_small_campaign_budget(uow_factory, program_id, now):
    campaign(uow_factory, program_id, now, "flash", {"id": "flash-bonus", "trigger": "purchase",
             "effects": [fixed(30)]}, budget=100)  # fmt: skip
    members = [enrol(uow_factory, program_id, now) for _ in range(20)]
    results = race([lambda m=m: buy(uow_factory, program_id, m, "10.00", WEDNESDAY) for m in members])
    assert all(isinstance(r, dict) for r in results), [r for r in results if not isinstance(r, dict)]
    bonuses = sorted(by_rule(r["explanation"]).get("flash-bonus", 0) for r in results)
    assert sum(bonuses) == 100  # 30 + 30 + 30 + 10: the budget is used up exactly, never exceeded
    assert [b for b in bonuses if b] == [10, 30, 30, 30]
    assert get_campaign(uow_factory(), program_id, "flash")["budget"] == {"points": 100, "spent": 100, "left": 0}
    assert sum(r["points_earned"] for r in results) == 20 * 10 + 100
    assert verify(uow_factory(), program_id) == []


def test_concurrent_earns_and_refunds_keep_the_budget_exact(uow_factory, program_id, now):
    campaign(uow_factory, program_id, now, "flash", {"id": "flash-bonus", "trigger": "purchase",
             "effects": [fixed(20)]}, budget=60)  # fmt: skip
    early = [enrol(uow_factory, program_id, now) for _ in range(3)]
    bought = [buy(uow_factory, program_id, m, "10.00", WEDNESDAY) for m in early]  # spends the whole budget
    late = [enrol(uow_factory, program_id, now) for _ in range(10)]
    calls: list[Callable[[], Any]] = [
        lambda p=p: refund_purchase(uow_factory(), program_id, _id(p), RefundPurchase(), WEDNESDAY) for p in bought
    ]
    calls += [lambda m=m: buy(uow_factory, program_id, m, "10.00", WEDNESDAY) for m in late]
    results = race(calls)
    assert all(isinstance(r, dict) for r in results), [r for r in results if not isinstance(r, dict)]
    given = sum(by_rule(r["explanation"]).get("flash-bonus", 0) for r in results[3:])
    spent = get_campaign(uow_factory(), program_id, "flash")["budget"]["spent"]
    assert spent == given <= 60
    assert verify(uow_factory(), program_id) == []


def test_concurrent_events_of_one_member_respect_a_once_per_month_cap(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "review-bonus", fixed(50), trigger="review.created",
         limits={"per_member": [{"awards": 1, "per": "month"}]})  # fmt: skip
    member = enrol(uow_factory, program_id, now)
    results = race([lambda i=i: event(uow_factory, program_id, member, "review.created", WEDNESDAY, n=i)
                    for i in range(20)])  # fmt: skip
    assert all(isinstance(r, dict) for r in results), [r for r in results if not isinstance(r, dict)]
    assert sorted(r["points"] for r in results) == [0] * 19 + [50]
    assert get_balance(uow_factory(), program_id, member, WEDNESDAY)["points"] == 50
    assert len(get_history(uow_factory(), program_id, member)) == 1
    assert verify(uow_factory(), program_id) == []


def _id(view: dict[str, Any]) -> UUID:
    return UUID(view["id"])


def test_concurrent_first_purchases_of_one_member_get_one_welcome_bonus(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "welcome", fixed(100), condition="member.purchase_count == 0")
    member = enrol(uow_factory, program_id, now)
    results = race([lambda: buy(uow_factory, program_id, member, "10.00", WEDNESDAY) for _ in range(10)])
    assert all(isinstance(r, dict) for r in results), [r for r in results if not isinstance(r, dict)]
    assert sorted(by_rule(r["explanation"]).get("welcome", 0) for r in results) == [0] * 9 + [100]
    assert get_balance(uow_factory(), program_id, member, WEDNESDAY)["points"] == 10 * 10 + 100
    assert verify(uow_factory(), program_id) == []
