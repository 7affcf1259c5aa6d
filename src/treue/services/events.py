"""Custom events (review.created, social.shared, profile.completed...): store them and earn by the rules.

Any well-formed event name is accepted and stored, whether or not a rule exists for it yet; it is evaluated
only against the rules that exist (and are in force at its time).

Moderation (issue 7): an event recorded with `moderation="pending"` (a review before a moderator saw it) earns
as usual - caps and budgets count it, its coupons are issued - but its points go into lots that are held
(`available_at` = HELD_UNTIL, far in the future): they are in the balance as pending and cannot be spent.
`moderate_event` approves (each held lot becomes available when the rule meant it to, or now) or rejects (a
reverse transfer takes back what is left of the held lots, caps and budgets get their share back, unused coupons
are cancelled). The ledger stays append-only but for the one field a release changes; `treue verify` holds
throughout, because amounts, remainders and postings are those of an ordinary earn and its reversal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.durations import require_aware
from treue.domain.errors import InvalidInput, ModerationDecided, NotModerated
from treue.domain.events import Event
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.lots import NewLot
from treue.domain.points import PointsAccount
from treue.domain.programs import Program, ReturnPolicy
from treue.domain.rules.context import EventFacts
from treue.domain.rules.limits import Period, Scope, UsageDelta, UsageKey
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.earning import (
    budgets_spent,
    emit_grants_and_hooks,
    lots_view,
    post_earn,
    run_rules,
    usage_counted,
)
from treue.services.engagement import after_event
from treue.services.grants import cancel_grants
from treue.services.members import resolve_member
from treue.services.ports import UnitOfWork
from treue.services.views import iso

EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
RESERVED = frozenset({"purchase", "refund", "schedule", "birthday", "membership_anniversary"})  # own use cases
RESERVED_PREFIXES = ("referral.",)  # the referral scheme's own triggers: a client must not fake a completion
MODERATION = ("pending",)
HELD_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)  # a held lot's availability until a moderator approves
MAX_ATTRIBUTES_BYTES = 16_384


@dataclass
class RecordEvent:
    name: str
    member_id: UUID | None = None
    card_number: str | None = None
    external_ref: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None  # default: now
    moderation: str | None = None  # "pending": the points wait for a moderator (issue 7)


def _check(cmd: RecordEvent) -> str:
    name = cmd.name.strip() if isinstance(cmd.name, str) else ""
    if not EVENT_NAME.match(name) or len(name) > 100:
        raise InvalidInput("an event name is lower-case words joined by dots, such as review.created", field="name")
    if name in RESERVED or name.startswith(RESERVED_PREFIXES):
        raise InvalidInput(f"{name!r} events are recorded by their own endpoint", field="name")
    if cmd.moderation is not None and cmd.moderation not in MODERATION:
        raise InvalidInput('moderation is "pending" (or absent)', field="moderation")
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
        moderated = cmd.moderation == "pending"
        held: list[dict[str, Any]] = []
        if points > 0 and moderated:
            transfer_id, meant = post_earn(uow, program, member_id, earning, occurred_at, now,
                                           {"event": name, "event_id": str(event_id)}, held_until=HELD_UNTIL)  # fmt: skip
            held = [{"lot_id": str(lot.id), "points": lot.amount, "available_at": lot.available_at.isoformat()}
                    for lot in meant]  # fmt: skip
        elif points > 0:
            transfer_id, lots = post_earn(uow, program, member_id, earning, occurred_at, now,
                                          {"event": name, "event_id": str(event_id)})  # fmt: skip
        row = {"program_id": program_id, "id": event_id, "member_id": member_id, "name": name,
               "attributes": dict(cmd.attributes), "occurred_at": occurred_at, "created_at": now,
               "transfer_id": transfer_id}  # fmt: skip
        uow.events.add(row)
        source: dict[str, Any] = {"event_id": str(event_id), "event": name}
        if moderated:
            uow.referrals.add_moderation({
                "program_id": program_id, "event_id": event_id, "member_id": member_id, "status": "pending",
                "points": points, "transfer_id": transfer_id, "created_at": now,
                "held": {"lots": held, "budgets": budgets_spent(evaluation), "usage": usage_counted(evaluation)}})  # fmt: skip
            source["moderation"] = "pending"
        emit_grants_and_hooks(uow, program_id, member_id, evaluation, source, now)
        engaged = after_event(uow, program, member_id, facts, evaluation, source, now)  # issue 7
        uow.emit(program_id, Event(events.EVENT_RECORDED, {
            "event_id": str(event_id), "member_id": str(member_id), "name": name, "points": points}))  # fmt: skip
        uow.commit()
    view = event_view(row)
    view["points"] = points
    if moderated:
        view["moderation"] = "pending"
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


def moderate_event(uow: UnitOfWork, program_id: UUID, event_id: UUID, decision: str, now: datetime,
                   actor: str = "api", note: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Approve (the held points become available) or reject (they are voided) a moderated event. Final."""
    if decision not in ("approve", "reject"):
        raise InvalidInput("decision is approve or reject", field="decision")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        event = uow.events.get(program_id, event_id)  # 404 for an event of no one's
        moderation = uow.referrals.moderation(program_id, event_id)
        if moderation is None:
            raise NotModerated("the event was not recorded with moderation: pending")
        member_id = moderation["member_id"]
        held = moderation["held"]
        lot_ids = [UUID(lot["lot_id"]) for lot in held["lots"]]
        # The member's account lock first (as every earn and spend): decisions on one member queue here.
        account = uow.ledger.lock_accounts(program_id, [member_id], lot_ids=lot_ids)[member_id]
        status = "approved" if decision == "approve" else "rejected"
        if not uow.referrals.decide(program_id, event_id, {"status": status, "decided_at": now,
                                                           "decided_by": actor, "note": note}):  # fmt: skip
            raise ModerationDecided(f"the event was {moderation['status']} already", decided=moderation["status"])
        view: dict[str, Any] = {"event_id": str(event_id), "member_id": str(member_id), "status": status,
                                "points": moderation["points"]}  # fmt: skip
        if decision == "approve":
            released = []
            for lot in held["lots"]:
                at = max(datetime.fromisoformat(lot["available_at"]), now)
                uow.referrals.release_lot(program_id, UUID(lot["lot_id"]), at)
                released.append({"points": lot["points"], "available_at": at.isoformat()})
            view["lots"] = released
            topic = events.EVENT_APPROVED
        else:
            view.update(_void(uow, program, account, moderation, set(lot_ids), now))
            view["coupons"] = cancel_grants(uow, program_id, member_id, {"event_id": str(event_id)}, now,
                                            "event rejected by moderation")  # fmt: skip
            topic = events.EVENT_REJECTED
        record_audit(uow, program_id, actor, f"event.{decision}", "event", event_id, {"moderation": "pending"},
                     {"moderation": status}, note, now)  # fmt: skip
        uow.emit(program_id, Event(topic, {"event_id": str(event_id), "member_id": str(member_id),
                                           "name": event["name"], "points": moderation["points"]}))  # fmt: skip
        uow.commit()
    return view


def _void(uow: UnitOfWork, program: Program, account: PointsAccount, moderation: dict[str, Any], lot_ids: set[UUID],
          now: datetime) -> dict[str, Any]:  # fmt: skip
    """Take back what is left of the held lots (never other points: they are the member's), and give caps and
    campaign budgets back what the event used."""
    left = sum(lot.remaining for lot in account.lots if lot.id in lot_ids and not lot.is_expired(now))
    out: dict[str, Any] = {"points_voided": left, "transfer_id": None}
    if left > 0:
        result = account.take_back(left, now, lot_ids, ReturnPolicy.ONLY_PENDING)
        transfer = Transfer(new_id(), TransferKind.REVERSE, now,
                            move(account.account_id, system_account_id(program.id, AccountKind.ISSUANCE), result.taken),
                            member_id=account.member_id, corrects_id=moderation["transfer_id"],
                            explanation={"reason": "event rejected by moderation",
                                         "event_id": str(moderation["event_id"]), "points_voided": result.taken})  # fmt: skip
        uow.ledger.record(program.id, transfer, [(account, result.draw)], now)
        uow.referrals.decide_reverse(program.id, moderation["event_id"], transfer.id)
        out.update(points_voided=result.taken, transfer_id=str(transfer.id))
    held = moderation["held"]
    for spent in held.get("budgets", ()):
        uow.rules.return_budget(program.id, spent["campaign"], spent["points"])
    uow.rules.return_usage(program.id, account.member_id, [
        UsageDelta(UsageKey(Scope(u["scope"]), u["owner"], Period(u["period"]), u["key"]), u["points"], u["awards"])
        for u in held.get("usage", ())])  # fmt: skip
    return out


def list_moderations(uow: UnitOfWork, program_id: UUID, limit: int = 100) -> list[dict[str, Any]]:
    """Events waiting for a moderator, oldest first."""
    with uow:
        uow.programs.get(program_id, cached=True)
        rows = uow.referrals.pending_moderations(program_id, min(max(limit, 1), 500))
    return [{"event_id": str(r["event_id"]), "member_id": str(r["member_id"]), "name": r["name"],
             "attributes": r["attributes"], "occurred_at": iso(r["occurred_at"]), "points": r["points"],
             "recorded_at": iso(r["created_at"])} for r in rows]  # fmt: skip
