"""Small builders for integration tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from threading import Barrier
from typing import Any
from uuid import UUID

from treue.services.members import EnrolMember, enrol_member
from treue.services.purchases import LineInput, RecordPurchase, record_purchase
from treue.store.unit_of_work import SqlUnitOfWorkFactory

_orders = itertools.count(1)


def enrol(uow: SqlUnitOfWorkFactory, program_id: UUID, now: datetime, **kw: Any) -> UUID:
    return UUID(enrol_member(uow(), program_id, EnrolMember(**kw), now)["id"])


def buy(uow: SqlUnitOfWorkFactory, program_id: UUID, member_id: UUID | None, total: str, at: datetime,
        **kw: Any) -> dict[str, Any]:  # fmt: skip
    kw.setdefault("external_order_id", f"order-{next(_orders)}")
    kw.setdefault("lines", [LineInput("SKU-1", 1, total, "misc")])
    return record_purchase(uow(), program_id, RecordPurchase(total=total, currency="EUR", occurred_at=at,
                                                              member_id=member_id, **kw), at)  # fmt: skip


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call on its own thread, released together; return each result or the exception it raised."""
    start = Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        try:
            return call()
        except Exception as error:  # collected and asserted on by the test
            return error

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))
