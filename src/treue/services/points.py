"""Points use cases: balance, history, manual adjustment, and transfer between members."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.errors import InvalidInput
from treue.domain.events import Event
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.lots import NewLot
from treue.ids import new_id
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork
from treue.services.views import balance_view, transfer_view


def get_balance(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime) -> dict[str, Any]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        account = uow.ledger.load_account(program_id, member_id)
    return balance_view(member_id, account.balance_at(now), program)


def get_lots(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime) -> list[dict[str, Any]]:
    with uow:
        account = uow.ledger.load_account(program_id, member_id)
    state = {True: "available", False: "pending"}
    return [{"id": str(lot.id), "points": lot.remaining, "credited": lot.amount,
             "state": "expired" if lot.is_expired(now) else state[lot.is_available(now)],
             "available_at": lot.available_at.isoformat(), "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
             "purchase_id": str(lot.purchase_id) if lot.purchase_id else None, "partner": lot.partner}
            for lot in sorted(account.lots, key=lambda x: (x.expires_at is None, x.expires_at, x.available_at))]  # fmt: skip


def get_history(uow: UnitOfWork, program_id: UUID, member_id: UUID, limit: int = 50,
                before: datetime | None = None) -> list[dict[str, Any]]:  # fmt: skip
    with uow:
        uow.members.get(program_id, member_id)  # 404 for an unknown member rather than an empty list
        rows = uow.ledger.history(program_id, member_id, min(max(limit, 1), 500), before)
    return [transfer_view(row) for row in rows]


def adjust_points(uow: UnitOfWork, program_id: UUID, member_id: UUID, points: int, reason: str, now: datetime,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """A manual correction with a reason: positive credits a new lot, negative deducts (never below zero)."""
    if points == 0:
        raise InvalidInput("an adjustment of zero points changes nothing")
    if not reason or not reason.strip():
        raise InvalidInput("an adjustment needs a reason")
    with uow:
        program = uow.programs.get(program_id, cached=True)
        account = uow.ledger.lock_accounts(program_id, [member_id])[member_id]
        before = account.balance
        transfer_id = new_id()
        adjustment = system_account_id(program_id, AccountKind.ADJUSTMENT)
        if points > 0:
            draw = account.credit([NewLot(new_id(), points, now, program.expires_at(now))], transfer_id)
            postings = move(adjustment, account.account_id, points)
        else:
            draw = account.deduct(-points, now, uow.wallet.held(program_id, member_id, now).points)
            postings = move(account.account_id, adjustment, -points)
        transfer = Transfer(transfer_id, TransferKind.ADJUST, now, postings, member_id=member_id,
                            explanation={"reason": "manual adjustment", "note": reason, "by": actor})  # fmt: skip
        uow.ledger.record(program_id, transfer, [(account, draw)], now, actor=actor)
        record_audit(uow, program_id, actor, "points.adjust", "member", member_id, {"points": before},
                     {"points": account.balance}, reason, now)  # fmt: skip
        uow.emit(program_id, Event(events.POINTS_ADJUSTED, {"member_id": str(member_id), "points": points,
                                                            "reason": reason}))  # fmt: skip
        uow.commit()
    return {"transfer_id": str(transfer_id), "member_id": str(member_id), "points": points,
            "balance_after": account.balance}  # fmt: skip


def transfer_points(uow: UnitOfWork, program_id: UUID, from_member: UUID, to_member: UUID, points: int,
                    now: datetime, note: str | None = None, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Move available points between two members; they keep their expiry dates."""
    if from_member == to_member:
        raise InvalidInput("points can only be transferred to another member")
    if points <= 0:
        raise InvalidInput("transfer a positive number of points")
    with uow:
        accounts = uow.ledger.lock_accounts(program_id, [from_member, to_member])
        source, target = accounts[from_member], accounts[to_member]
        expiry_of = {lot.id: lot.expires_at for lot in source.lots}
        transfer_id = new_id()
        spent = source.spend(points, now, uow.wallet.held(program_id, from_member, now).points)
        received = target.credit(
            [NewLot(new_id(), amount, now, expiry_of[a]) for a, amount in spent.allocations.items() if amount],
            transfer_id,
        )
        transfer = Transfer(transfer_id, TransferKind.TRANSFER, now, move(source.account_id, target.account_id, points),
                            member_id=from_member,
                            explanation={"reason": "transfer between members", "from": str(from_member),
                                         "to": str(to_member), "note": note})  # fmt: skip
        uow.ledger.record(program_id, transfer, [(source, spent), (target, received)], now, actor=actor)
        record_audit(uow, program_id, actor, "points.transfer", "member", from_member, None,
                     {"to": str(to_member), "points": points}, note, now)  # fmt: skip
        uow.emit(program_id, Event(events.POINTS_TRANSFERRED, {"from": str(from_member), "to": str(to_member),
                                                               "points": points}))  # fmt: skip
        uow.commit()
    return {"transfer_id": str(transfer_id), "from_member_id": str(from_member), "to_member_id": str(to_member),
            "points": points, "from_balance_after": source.balance, "to_balance_after": target.balance}  # fmt: skip
