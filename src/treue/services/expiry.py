"""Points and wallet expiry: each expired lot's remainder becomes a transfer to breakage (points to the points
breakage account, wallet money to the programme's breakage account of its currency).

Safe to run any number of times and in several workers at once: a lot that holds nothing is skipped,
and each member is handled under the lock of their account.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.events import Event
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.money import Money
from treue.ids import new_id
from treue.services.ports import UnitOfWorkFactory
from treue.services.wallet import CASHBACK_EXPIRED


def expire_points(uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None,
                  batch: int = 500) -> dict[str, int]:  # fmt: skip
    """Expire every lot past its expiry date; one transaction per member. Returns what was done."""
    lots_expired = points_expired = members = 0
    while True:
        with uow_factory(read_only=True) as uow:
            due = uow.ledger.expiring_lots(program_id, now, batch)
        if not due:
            break
        by_member: dict[tuple[UUID, UUID], list[UUID]] = defaultdict(list)
        for pid, member_id, lot_id in due:
            by_member[(pid, member_id)].append(lot_id)
        progressed = 0
        for (pid, member_id), lot_ids in by_member.items():
            count, points = _expire_member(uow_factory, pid, member_id, lot_ids, now)
            lots_expired += count
            points_expired += points
            members += 1 if count else 0
            progressed += count
        if progressed == 0:  # another worker expired these meanwhile
            break
    return {"lots_expired": lots_expired, "points_expired": points_expired, "members": members}


def _expire_member(uow_factory: UnitOfWorkFactory, program_id: UUID, member_id: UUID, lot_ids: list[UUID],
                   now: datetime) -> tuple[int, int]:  # fmt: skip
    with uow_factory() as uow:
        account = uow.ledger.lock_accounts(program_id, [member_id], lot_ids=lot_ids)[member_id]
        breakage = system_account_id(program_id, AccountKind.BREAKAGE)
        count = total = 0
        expired_lots = []
        for lot_id in lot_ids:
            lot = next(x for x in account.lots if x.id == lot_id)
            draw, amount = account.expire(lot_id, now)
            if amount == 0:
                continue  # expired by someone else since we looked
            transfer = Transfer(
                new_id(), TransferKind.EXPIRE, lot.expires_at or now, move(account.account_id, breakage, amount),
                member_id=member_id,
                explanation={"reason": "expiry", "lot_id": str(lot_id), "points": amount,
                             "expired_at": lot.expires_at.isoformat() if lot.expires_at else None},
            )  # fmt: skip
            uow.ledger.record(program_id, transfer, [(account, draw)], now, actor="jobs.expire")
            count += 1
            total += amount
            expired_lots.append({"lot_id": str(lot_id), "points": amount})
        if count:
            uow.emit(program_id, Event(events.POINTS_EXPIRED, {"member_id": str(member_id), "points": total,
                                                               "lots": expired_lots}))  # fmt: skip
        uow.commit()
    return count, total


def expire_wallets(uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None,
                   batch: int = 500) -> dict[str, Any]:  # fmt: skip
    """Write off every wallet lot past its expiry: one `expire` transfer per lot, member wallet -> the programme's
    `breakage` account of that currency; one transaction per member wallet. As safe to repeat as points expiry:
    a written-off lot holds nothing, so a second run writes nothing."""
    lots_expired = members = 0
    amounts: dict[str, int] = defaultdict(int)
    while True:
        with uow_factory(read_only=True) as uow:
            due = uow.wallet.expiring_lots(program_id, now, batch)
        if not due:
            break
        by_wallet: dict[tuple[UUID, UUID, str], list[UUID]] = defaultdict(list)
        for pid, member_id, currency, lot_id in due:
            by_wallet[(pid, member_id, currency)].append(lot_id)
        progressed = 0
        for (pid, member_id, currency), lot_ids in by_wallet.items():
            count, minor = _expire_wallet(uow_factory, pid, member_id, currency, lot_ids, now)
            lots_expired += count
            amounts[currency] += minor
            members += 1 if count else 0
            progressed += count
        if progressed == 0:  # another worker wrote these off meanwhile
            break
    return {"wallet_lots_expired": lots_expired, "wallet_members": members,
            "wallet_expired": {c: Money(m, c).format() for c, m in sorted(amounts.items()) if m}}  # fmt: skip


def _expire_wallet(uow_factory: UnitOfWorkFactory, program_id: UUID, member_id: UUID, currency: str,
                   lot_ids: list[UUID], now: datetime) -> tuple[int, int]:  # fmt: skip
    with uow_factory() as uow:
        # The member's points account first, then the wallet: the lock order of checkout and refunds, so the job
        # queues behind a capture of the same member instead of deadlocking with it.
        uow.ledger.add_to_balance(program_id, member_id, 0)
        wallet = uow.wallet.lock(program_id, member_id, currency, lot_ids=lot_ids)
        if wallet is None:  # pragma: no cover - a lot belongs to an existing wallet
            return 0, 0
        breakage = system_account_id(program_id, AccountKind.BREAKAGE, currency)
        count = total = 0
        expired_lots = []
        for lot_id in lot_ids:
            lot = next(x for x in wallet.account.lots if x.id == lot_id)
            draw, amount = wallet.account.expire(lot_id, now)
            if amount == 0:
                continue  # written off by someone else since we looked
            money = Money(amount, currency)
            transfer = Transfer(
                new_id(), TransferKind.EXPIRE, lot.expires_at or now,
                move(wallet.account_id, breakage, amount, currency), member_id=member_id,
                explanation={"reason": "expiry", "lot_id": str(lot_id), "amount": money.format(), "currency": currency,
                             "expired_at": lot.expires_at.isoformat() if lot.expires_at else None},
            )  # fmt: skip
            uow.wallet.record(program_id, transfer, wallet, draw, now, actor="jobs.expire")
            count += 1
            total += amount
            expired_lots.append({"lot_id": str(lot_id), "amount": money.format()})
        if count:
            uow.emit(program_id, Event(CASHBACK_EXPIRED, {"member_id": str(member_id), "currency": currency,
                                                          "amount": Money(total, currency).format(),
                                                          "lots": expired_lots}))  # fmt: skip
        uow.commit()
    return count, total
