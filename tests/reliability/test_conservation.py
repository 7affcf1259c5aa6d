"""Conservation under concurrency (PostgreSQL): 32 client threads, each with its own units of work, run a random
mix of earn / redeem / refund / transfer / reserve / capture / release / expire for a fixed time on one programme
whose points expire (a simulated clock runs 4 days per second). Afterwards `verify` finds nothing, every unit's
postings sum to zero, and the cached balances equal the postings. Refusals (insufficient points, a hold already
captured, ...) are expected and counted by kind; anything that is not a DomainError fails the test.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import func, select

from tests.integration.helpers import enrol
from tests.reliability.conftest import record_figure
from treue.domain.errors import DomainError
from treue.services.checkout import CaptureHold, ReserveHold, capture, release, reserve
from treue.services.expiry import expire_points
from treue.services.points import adjust_points, transfer_points
from treue.services.programs import create_program
from treue.services.purchases import LineInput, RecordPurchase, RefundPurchase, record_purchase, refund_purchase
from treue.services.rewards import create_reward, redeem_reward
from treue.services.verify import verify
from treue.store import tables as t

pytestmark = pytest.mark.usefixtures("postgres_only")

CLIENTS = 32
SECONDS = float(os.environ.get("TREUE_RELIABILITY_SECONDS", "15"))
MEMBERS = 40
DAYS_PER_SECOND = 4


def test_conservation_under_32_concurrent_clients(uow_factory, engine, now):
    program = UUID(create_program(uow_factory(), "Load", "EUR", "Europe/Berlin",
                                  {"expiry_policy": "rolling", "expiry_months": 1}, now)["id"])  # fmt: skip
    start = time.monotonic()

    def clock() -> datetime:
        return now + timedelta(days=(time.monotonic() - start) * DAYS_PER_SECOND)

    members = [enrol(uow_factory, program, now) for _ in range(MEMBERS)]
    for member in members:
        adjust_points(uow_factory(), program, member, 200, "start", now)
    coffee = UUID(create_reward(uow_factory(), program, {"name": {"de": "Kaffee"}, "type": "free_product",
                                                         "sku": "COFFEE", "cost_points": 25}, now)["id"])  # fmt: skip
    purchases: list[UUID] = []
    holds: list[UUID] = []
    shared = threading.Lock()
    done: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    crashed: list[BaseException] = []
    start = time.monotonic()
    deadline = start + SECONDS

    def pick(items: list[UUID], take: bool = False) -> UUID | None:
        with shared:
            if not items:
                return None
            index = random.randrange(len(items))
            return items.pop(index) if take else items[index]

    def earn(rng: random.Random) -> None:
        at = clock()
        total = f"{rng.randint(1, 120)}.{rng.randint(0, 99):02d}"
        cmd = RecordPurchase(total=total, currency="EUR", occurred_at=at, member_id=rng.choice(members),
                             external_order_id=uuid.uuid4().hex, lines=[LineInput("SKU-1", 1, total, "misc")])  # fmt: skip
        view = record_purchase(uow_factory(), program, cmd, at)
        with shared:
            purchases.append(UUID(view["id"]))

    def redeem(rng: random.Random) -> None:
        redeem_reward(uow_factory(), program, rng.choice(members), coffee, clock())

    def refund(rng: random.Random) -> None:
        purchase = pick(purchases)
        if purchase is not None:
            refund_purchase(
                uow_factory(), program, purchase, RefundPurchase(amount=f"{rng.randint(1, 30)}.00"), clock()
            )

    def transfer(rng: random.Random) -> None:
        a, b = rng.sample(members, 2)
        transfer_points(uow_factory(), program, a, b, rng.randint(1, 40), clock())

    def hold(rng: random.Random) -> None:
        cmd = ReserveHold(
            member_id=rng.choice(members), points=rng.randint(1, 60), expires_in_minutes=rng.randint(1, 600)
        )
        view = reserve(uow_factory(), program, cmd, clock())
        with shared:
            holds.append(UUID(view["id"]))

    def pay(rng: random.Random) -> None:
        held = pick(holds, take=True)
        if held is not None:
            at = clock()
            cmd = RecordPurchase(external_order_id=uuid.uuid4().hex, total="80.00", currency="EUR", occurred_at=at)
            capture(uow_factory(), program, held, CaptureHold(cmd), at)

    def let_go(rng: random.Random) -> None:
        held = pick(holds, take=True)
        if held is not None:
            release(uow_factory(), program, held, clock())

    def expire(rng: random.Random) -> None:
        expire_points(uow_factory, clock(), program)

    mix = [(earn, 30), (redeem, 15), (refund, 10), (transfer, 15), (hold, 12), (pay, 8), (let_go, 6), (expire, 4)]
    operations, weights = zip(*mix, strict=True)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            operation = rng.choices(operations, weights)[0]
            try:
                operation(rng)
            except DomainError as error:
                with shared:
                    refused[f"{operation.__name__}:{error.code}"] += 1
            except BaseException as error:  # anything else is a bug: stop and report
                with shared:
                    crashed.append(error)
                return
            else:
                with shared:
                    done[operation.__name__] += 1

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    assert not crashed, f"{len(crashed)} unexpected errors, first: {crashed[0]!r}"

    violations = verify(uow_factory(), program, clock())
    with engine.connect() as conn:
        sums = {unit: int(total) for unit, total in conn.execute(select(t.postings.c.unit, func.sum(t.postings.c.amount))
                                 .where(t.postings.c.program_id == program).group_by(t.postings.c.unit)).all()}  # fmt: skip
        expired = conn.execute(select(func.count()).select_from(t.transfers).where(
            t.transfers.c.program_id == program, t.transfers.c.kind == "expire")).scalar_one()  # fmt: skip
    figure = {"clients": CLIENTS, "seconds": round(elapsed, 1), "operations_ok": sum(done.values()),
              "operations_refused": sum(refused.values()), "ok_by_kind": dict(done), "refused_by_kind": dict(refused),
              "operations_per_second": round((sum(done.values()) + sum(refused.values())) / elapsed),
              "expire_transfers": expired, "violations": len(violations), "postings_sum_per_unit": sums}  # fmt: skip
    record_figure("conservation", figure)
    assert violations == []
    assert sums and all(total == 0 for total in sums.values()), sums
    assert all(done[op.__name__] > 0 for op in operations), done  # every kind of operation really ran
    assert expired > 0
