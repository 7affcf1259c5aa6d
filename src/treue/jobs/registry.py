"""The named jobs `treue jobs run NAME` knows, each a function of (uow factory, now, programme)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.services.expiry import expire_points
from treue.services.outbox import dispatch_outbox
from treue.services.ports import UnitOfWorkFactory
from treue.services.scheduled import run_scheduled_rules

Job = Callable[[UnitOfWorkFactory, datetime, UUID | None], dict[str, Any]]


def _expire(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    return expire_points(uow, now, program_id)


def _outbox(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    return dispatch_outbox(uow, now)


def _rules(uow: UnitOfWorkFactory, now: datetime, program_id: UUID | None) -> dict[str, Any]:
    return run_scheduled_rules(uow, now, program_id)


JOBS: dict[str, Job] = {"expire": _expire, "rules": _rules, "outbox": _outbox}
