"""Concurrent use cases on PostgreSQL: row locks serialise what must not interleave, in a fixed order.

SQLite serialises every writer with BEGIN IMMEDIATE, so these races only exist on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

import pytest

from tests.integration.helpers import buy, enrol, race
from treue.domain.errors import InsufficientPoints, RefundExceedsPurchase, RewardOutOfStock
from treue.services.points import adjust_points, get_balance, get_history, transfer_points
from treue.services.purchases import RefundPurchase, get_purchase, refund_purchase
from treue.services.rewards import create_reward, get_reward, list_redemptions, redeem_reward
from treue.services.verify import verify

pytestmark = pytest.mark.usefixtures("postgres_only")


def outcomes(results: list[Any]) -> Counter[str]:
    return Counter("ok" if isinstance(r, dict) else type(r).__name__ for r in results)


def reward(uow_factory, program_id, now, cost: int, stock: int | None = None) -> UUID:
    values = {"name": {"de": "Kaffee"}, "type": "free_product", "sku": "COFFEE", "cost_points": cost, "stock": stock}
    return UUID(create_reward(uow_factory(), program_id, values, now)["id"])


def test_concurrent_redemptions_never_overspend_a_member(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "75.00", now)  # 75 points: seven redemptions of 10, 5 left
    coffee = reward(uow_factory, program_id, now, cost=10)
    results = race([lambda: redeem_reward(uow_factory(), program_id, member, coffee, now)] * 50)
    assert outcomes(results) == {"ok": 7, "InsufficientPoints": 43}
    assert all(isinstance(r, dict | InsufficientPoints) for r in results)
    assert sorted(r["balance_after"] for r in results if isinstance(r, dict)) == [5, 15, 25, 35, 45, 55, 65]
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 5
    assert len(list_redemptions(uow_factory(), program_id, member)) == 7
    assert verify(uow_factory(), program_id) == []


def test_concurrent_redemptions_never_oversell_stock(uow_factory, program_id, now):
    members = [enrol(uow_factory, program_id, now) for _ in range(50)]
    for member in members:
        adjust_points(uow_factory(), program_id, member, 100, "enough for one", now)
    mug = reward(uow_factory, program_id, now, cost=30, stock=5)
    results = race([lambda m=m: redeem_reward(uow_factory(), program_id, m, mug, now) for m in members])
    assert outcomes(results) == {"ok": 5, "RewardOutOfStock": 45}
    assert all(isinstance(r, dict | RewardOutOfStock) for r in results)
    assert get_reward(uow_factory(), program_id, mug)["stock"] == 0
    winners = {UUID(r["member_id"]) for r in results if isinstance(r, dict)}
    for member in members:
        expected = 70 if member in winners else 100
        assert get_balance(uow_factory(), program_id, member, now)["points"] == expected
    assert verify(uow_factory(), program_id) == []


def test_opposite_transfers_between_two_members_neither_deadlock_nor_lose_points(uow_factory, program_id, now):
    a, b = enrol(uow_factory, program_id, now), enrol(uow_factory, program_id, now)
    adjust_points(uow_factory(), program_id, a, 500, "start", now)
    adjust_points(uow_factory(), program_id, b, 500, "start", now)
    calls = [
        (lambda: transfer_points(uow_factory(), program_id, a, b, 7, now))
        if i % 2 == 0
        else (lambda: transfer_points(uow_factory(), program_id, b, a, 3, now))
        for i in range(40)
    ]
    results = race(calls)
    assert outcomes(results) == {"ok": 40}, [r for r in results if not isinstance(r, dict)]
    balance_a = get_balance(uow_factory(), program_id, a, now)["points"]
    balance_b = get_balance(uow_factory(), program_id, b, now)["points"]
    assert (balance_a, balance_b) == (500 - 20 * 7 + 20 * 3, 500 + 20 * 7 - 20 * 3)
    assert len(get_history(uow_factory(), program_id, a, limit=100)) == 1 + 40
    assert verify(uow_factory(), program_id) == []


def test_concurrent_refunds_never_refund_more_than_the_purchase(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    purchase = UUID(buy(uow_factory, program_id, member, "100.00", now)["id"])
    results = race([lambda: refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(amount="7.00"), now)]
                   * 30)  # fmt: skip
    assert outcomes(results) == {"ok": 14, "RefundExceedsPurchase": 16}  # 14 x 7.00 = 98.00 <= 100.00
    assert all(isinstance(r, dict | RefundExceedsPurchase) for r in results)
    assert sum(r["points_taken_back"] for r in results if isinstance(r, dict)) == 98
    assert get_purchase(uow_factory(), program_id, purchase)["refunded"] == "98.00"
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 2
    assert verify(uow_factory(), program_id) == []


def test_concurrent_full_refunds_of_one_purchase_refund_it_once(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    purchase = UUID(buy(uow_factory, program_id, member, "60.00", now)["id"])
    results = race([lambda: refund_purchase(uow_factory(), program_id, purchase, RefundPurchase(amount="60.00"), now)]
                   * 20)  # fmt: skip
    assert outcomes(results) == {"ok": 1, "RefundExceedsPurchase": 19}
    assert get_purchase(uow_factory(), program_id, purchase)["refunded"] == "60.00"
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 0
    assert verify(uow_factory(), program_id) == []
