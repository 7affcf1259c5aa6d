"""Builders for the rules engine's integration tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from treue.services.events import RecordEvent, record_event
from treue.services.rules import create_campaign, create_rule
from treue.store.unit_of_work import SqlUnitOfWorkFactory

SATURDAY_2330_BERLIN = datetime(2026, 3, 7, 22, 30, tzinfo=UTC)  # Saturday 23:30 in Berlin (UTC+1)
SUNDAY_0030_BERLIN = datetime(2026, 3, 7, 23, 30, tzinfo=UTC)  # already Sunday in Berlin
SATURDAY_0030_BERLIN = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)  # Friday in UTC, Saturday in Berlin
WEDNESDAY = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def rule(uow: SqlUnitOfWorkFactory, program_id: UUID, now: datetime, rule_id: str, *effects: dict[str, Any],
         **fields: Any) -> dict[str, Any]:  # fmt: skip
    fields.setdefault("trigger", "purchase")
    return create_rule(uow(), program_id, {"id": rule_id, "effects": list(effects), **fields}, now)


def campaign(uow: SqlUnitOfWorkFactory, program_id: UUID, now: datetime, campaign_id: str, *rules: dict[str, Any],
             **fields: Any) -> dict[str, Any]:  # fmt: skip
    fields.setdefault("starts", "2026-03-01")
    fields.setdefault("ends", "2026-03-31")
    fields.setdefault("status", "active")
    return create_campaign(uow(), program_id, {"id": campaign_id, "rules": list(rules), **fields}, now)


def fixed(points: int, **extra: Any) -> dict[str, Any]:
    return {"type": "fixed_points", "points": points, **extra}


def double() -> dict[str, Any]:
    return {"type": "multiplier", "factor": "2"}


def event(uow: SqlUnitOfWorkFactory, program_id: UUID, member: UUID, name: str, at: datetime,
          **attributes: Any) -> dict[str, Any]:  # fmt: skip
    return record_event(
        uow(), program_id, RecordEvent(name, member_id=member, attributes=attributes, occurred_at=at), at
    )


def by_rule(explanation: dict[str, Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in explanation["rules"]:
        found[line["rule"]] = found.get(line["rule"], 0) + line["points"]
    return found
