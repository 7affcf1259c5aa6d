"""Custom events (review.created, social.shared, profile.completed...): store them and earn by the rules.

Any well-formed event name is accepted and stored, whether or not a rule exists for it yet; it is evaluated
only against the rules that exist (and are in force at its time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.durations import require_aware
from treue.domain.errors import InvalidInput
from treue.domain.events import Event
from treue.domain.lots import NewLot
from treue.domain.rules.context import EventFacts
from treue.ids import new_id
from treue.services.earning import emit_grants_and_hooks, lots_view, post_earn, run_rules
from treue.services.engagement import after_event
from treue.services.members import resolve_member
from treue.services.ports import UnitOfWork
from treue.services.views import iso

EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
RESERVED = frozenset({"purchase", "refund", "schedule", "birthday", "membership_anniversary"})  # own use cases
MAX_ATTRIBUTES_BYTES = 16_384


@dataclass
class RecordEvent:
    name: str
    member_id: UUID | None = None
    card_number: str | None = None
    external_ref: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None  # default: now


def _check(cmd: RecordEvent) -> str:
    name = cmd.name.strip() if isinstance(cmd.name, str) else ""
    if not EVENT_NAME.match(name) or len(name) > 100:
        raise InvalidInput("an event name is lower-case words joined by dots, such as review.created", field="name")
    if name in RESERVED:
        raise InvalidInput(f"{name!r} events are recorded by their own endpoint", field="name")
    if not isinstance(cmd.attributes, dict) or not all(isinstance(k, str) for k in cmd.attributes):
        raise InvalidInput("attributes must be an object with named fields", field="attributes")
    if len(repr(cmd.attributes)) > MAX_ATTRIBUTES_BYTES:
        raise InvalidInput("attributes are too large", field="attributes")
    return name


def record_event(uow: UnitOfWork, program_id: UUID, cmd: RecordEvent, now: datetime) -> dict[str, Any]:
    """Store a member's custom event and post what the rules triggered by it award (one earn transfer, with
    one explanation line per rule); grants and hooks go to the outbox. One transaction."""
    name = _check(cmd)
    occurred_at = require_aware(cmd.occurred_at, "occurred_at") if cmd.occurred_at else now
    with uow:
        program = uow.programs.get(program_id, cached=True)
        rules = uow.rules.ruleset(program, cached=True)
        member_id = resolve_member(uow, program_id, member_id=cmd.member_id, card_number=cmd.card_number,
                                   external_ref=cmd.external_ref)  # fmt: skip
        event_id = new_id()
        facts = EventFacts(name, occurred_at, attributes=dict(cmd.attributes))
        earning = run_rules(uow, program, rules, facts, member_id)
        evaluation = earning.evaluation
        points = evaluation.points
        transfer_id = None
        lots: list[NewLot] = []
        if points > 0:
            transfer_id, lots = post_earn(uow, program, member_id, earning, occurred_at, now,
                                          {"event": name, "event_id": str(event_id)})  # fmt: skip
        row = {"program_id": program_id, "id": event_id, "member_id": member_id, "name": name,
               "attributes": dict(cmd.attributes), "occurred_at": occurred_at, "created_at": now,
               "transfer_id": transfer_id}  # fmt: skip
        uow.events.add(row)
        source = {"event_id": str(event_id), "event": name}
        emit_grants_and_hooks(uow, program_id, member_id, evaluation, source, now)
        engaged = after_event(uow, program, member_id, facts, evaluation, source, now)  # issue 7
        uow.emit(program_id, Event(events.EVENT_RECORDED, {
            "event_id": str(event_id), "member_id": str(member_id), "name": name, "points": points}))  # fmt: skip
        uow.commit()
    view = event_view(row)
    view["points"] = points
    view["explanation"] = evaluation.explanation()
    view["skipped"] = [s.as_dict() for s in evaluation.skipped]
    if len(lots) > 1:
        view["lots"] = lots_view(lots)
    return view | engaged


def get_event(uow: UnitOfWork, program_id: UUID, event_id: UUID) -> dict[str, Any]:
    with uow:
        return event_view(uow.events.get(program_id, event_id))


def list_events(uow: UnitOfWork, program_id: UUID, member_id: UUID, limit: int = 50) -> list[dict[str, Any]]:
    with uow:
        uow.members.get(program_id, member_id)  # 404 for an unknown member rather than an empty list
        return [event_view(row) for row in uow.events.of_member(program_id, member_id, min(max(limit, 1), 500))]


def event_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "member_id": str(row["member_id"]), "name": row["name"],
        "attributes": row["attributes"], "occurred_at": iso(row["occurred_at"]), "recorded_at": iso(row["created_at"]),
        "transfer_id": str(row["transfer_id"]) if row["transfer_id"] else None,
    }  # fmt: skip
