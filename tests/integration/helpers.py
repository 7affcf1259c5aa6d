"""Small builders for integration tests."""

from __future__ import annotations

import itertools
from datetime import datetime
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
