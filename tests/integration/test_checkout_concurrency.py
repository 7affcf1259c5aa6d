"""Concurrent reserves and captures on one member (PostgreSQL): they queue on the member's account row lock, so
holds never keep more than the member has and a hold is captured at most once."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

import pytest

from tests.integration.helpers import enrol, race
from treue.domain.errors import HoldNotActive, InsufficientPoints
from treue.services.checkout import CaptureHold, ReserveHold, capture, reserve
from treue.services.points import adjust_points, get_balance
from treue.services.purchases import RecordPurchase
from treue.services.verify import verify

pytestmark = pytest.mark.usefixtures("postgres_only")


def outcomes(results: list[Any]) -> Counter[str]:
    return Counter("ok" if isinstance(r, dict) else type(r).__name__ for r in results)


def test_concurrent_reserves_never_over_reserve(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    adjust_points(uow_factory(), program_id, member, 750, "start", now)  # seven holds of 100, 50 left
    results = race([lambda: reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=100), now)] * 20)
    assert outcomes(results) == {"ok": 7, "InsufficientPoints": 13}
    assert all(isinstance(r, dict | InsufficientPoints) for r in results)
    assert verify(uow_factory(), program_id, now) == []


def test_concurrent_captures_of_one_hold_pay_once(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    adjust_points(uow_factory(), program_id, member, 500, "start", now)
    hold = UUID(reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=500), now)["id"])

    def pay(i: int) -> Any:
        cmd = RecordPurchase(external_order_id=f"till-{i}", total="20.00", currency="EUR", occurred_at=now)
        return capture(uow_factory(), program_id, hold, CaptureHold(cmd), now)

    results = race([lambda i=i: pay(i) for i in range(8)])
    assert outcomes(results) == {"ok": 1, "HoldNotActive": 7}
    assert all(isinstance(r, dict | HoldNotActive) for r in results)
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 20  # 500 paid, 20 earned on 20.00
    assert verify(uow_factory(), program_id, now) == []
