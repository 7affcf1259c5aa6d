"""Overdraft (PostgreSQL): 100 parallel redemptions of a member's whole balance; exactly one succeeds, the other
99 get the stable refusal `insufficient_points`, and the ledger stays consistent."""

from __future__ import annotations

import time
from collections import Counter
from uuid import UUID

import pytest

from tests.integration.helpers import enrol, race
from tests.reliability.conftest import record_figure
from treue.domain.errors import InsufficientPoints
from treue.services.points import adjust_points, get_balance
from treue.services.rewards import create_reward, list_redemptions, redeem_reward
from treue.services.verify import verify

pytestmark = pytest.mark.usefixtures("postgres_only")


def test_100_parallel_full_balance_redemptions_succeed_exactly_once(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    adjust_points(uow_factory(), program_id, member, 1000, "the whole balance", now)
    everything = UUID(create_reward(uow_factory(), program_id, {"name": {"de": "Alles"}, "type": "free_product",
                                                                 "sku": "ALL", "cost_points": 1000}, now)["id"])  # fmt: skip
    started = time.monotonic()
    results = race([lambda: redeem_reward(uow_factory(), program_id, member, everything, now)] * 100)
    elapsed = time.monotonic() - started
    outcomes = Counter("ok" if isinstance(r, dict) else getattr(r, "code", type(r).__name__) for r in results)
    record_figure("overdraft", {"attempts": 100, "outcomes": dict(outcomes), "seconds": round(elapsed, 2)})
    assert outcomes == {"ok": 1, "insufficient_points": 99}
    assert all(isinstance(r, dict | InsufficientPoints) for r in results)
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 0
    assert len(list_redemptions(uow_factory(), program_id, member)) == 1
    assert verify(uow_factory(), program_id, now) == []
