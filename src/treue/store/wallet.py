"""Storage of cashback wallets (accounts of kind `wallet`, their lots and allocations) and checkout holds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from treue.domain.errors import NotFound
from treue.domain.holds import Held, HoldStatus
from treue.domain.ledger import (
    WALLET_SYSTEM_ACCOUNT_KINDS,
    AccountKind,
    Transfer,
    TransferKind,
    member_account_id,
    system_account_id,
)
from treue.domain.lots import Allocation, Draw, Lot
from treue.domain.points import PointsAccount
from treue.domain.wallet import WalletAccount
from treue.store import tables as t
from treue.store.batch import InsertBatch


class Wallet:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    # -- accounts ------------------------------------------------------------------------------
    def open(self, program_id: UUID, member_id: UUID, currency: str, negative_allowed: bool, now: datetime) -> None:
        """Open the member's wallet and the programme's money accounts of that currency, unless they exist
        (concurrent first credits both succeed: the insert does nothing on a conflict)."""
        rows: list[dict[str, Any]] = [{"program_id": program_id, "id": system_account_id(program_id, kind, currency), "kind": kind.value,
                 "member_id": None, "unit": currency, "balance": None, "negative_allowed": True, "created_at": now}
                for kind in WALLET_SYSTEM_ACCOUNT_KINDS]  # fmt: skip
        rows.append({"program_id": program_id, "id": member_account_id(member_id, currency),
                     "kind": AccountKind.WALLET.value, "member_id": member_id, "unit": currency, "balance": 0,
                     "negative_allowed": negative_allowed, "created_at": now})  # fmt: skip
        dialect = self.conn.dialect.name
        statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t.accounts)
        self.conn.execute(statement.on_conflict_do_nothing(), rows)

    def lock(self, program_id: UUID, member_id: UUID, currency: str, *, purchase_id: UUID | None = None,
             lot_ids: Iterable[UUID] = ()) -> WalletAccount | None:  # fmt: skip
        """Lock the member's wallet row and load its open lots (and a purchase's lots, and any named lots); None
        if it has none yet.

        Lock order: a member's points account first, then the wallet; every use case here keeps it."""
        return self._load(program_id, member_id, currency, lock=True, purchase_id=purchase_id, lot_ids=lot_ids)

    def load(self, program_id: UUID, member_id: UUID, currency: str) -> WalletAccount | None:
        return self._load(program_id, member_id, currency, lock=False, purchase_id=None)

    def _load(self, program_id: UUID, member_id: UUID, currency: str, *, lock: bool, purchase_id: UUID | None,
              lot_ids: Iterable[UUID] = ()) -> WalletAccount | None:  # fmt: skip
        account_id = member_account_id(member_id, currency)
        query = select(t.accounts.c.balance, t.accounts.c.negative_allowed).where(
            t.accounts.c.program_id == program_id, t.accounts.c.id == account_id
        )
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            return None
        account = PointsAccount(account_id, member_id, row.balance, row.negative_allowed)
        wl = t.wallet_lots
        wanted = wl.c.remaining > 0
        if purchase_id is not None:
            wanted = wanted | (wl.c.purchase_id == purchase_id)
        named = list(lot_ids)
        if named:
            wanted = or_(wanted, wl.c.id.in_(named))
        lots = self.conn.execute(select(wl).where(wl.c.program_id == program_id, wl.c.account_id == account_id, wanted))
        account.lots = [Lot(r.id, r.amount, r.remaining, r.available_at, r.expires_at, r.source_transfer_id,
                            r.purchase_id) for r in lots]  # fmt: skip
        return WalletAccount(currency, account)

    # -- writing a transfer ----------------------------------------------------------------------
    def record(self, program_id: UUID, transfer: Transfer, wallet: WalletAccount, draw: Draw, now: datetime,
               *, actor: str | None = None) -> None:  # fmt: skip
        """Write a transfer touching the wallet: postings, new lots, allocations, lot remainders, the balance.
        The wallet must be locked (`lock`) in this transaction: its balance is written as computed."""
        self.batch.add(t.transfers, [{
            "program_id": program_id, "id": transfer.id, "kind": transfer.kind.value,
            "occurred_at": transfer.occurred_at, "created_at": now, "member_id": transfer.member_id,
            "purchase_id": transfer.purchase_id, "redemption_id": transfer.redemption_id,
            "corrects_id": transfer.corrects_id, "actor": actor, "explanation": dict(transfer.explanation)}])  # fmt: skip
        self.batch.add(t.postings, [
            {"program_id": program_id, "transfer_id": transfer.id, "account_id": p.account_id, "unit": p.unit,
             "amount": p.amount} for p in transfer.postings
        ])  # fmt: skip
        account = wallet.account
        self.batch.add(t.wallet_lots, [
            {"program_id": program_id, "id": lot.id, "account_id": account.account_id, "member_id": account.member_id,
             "source_transfer_id": transfer.id, "purchase_id": lot.purchase_id, "amount": lot.amount,
             "remaining": lot.amount - draw.allocations.get(lot.id, 0), "available_at": lot.available_at,
             "expires_at": lot.expires_at}
            for lot in draw.new_lots
        ])  # fmt: skip
        rows = draw.allocation_rows()
        self.batch.add(t.wallet_allocations, [
            {"program_id": program_id, "transfer_id": transfer.id, "lot_id": a.lot_id, "amount": a.amount}
            for a in rows
        ])  # fmt: skip
        self.batch.flush()
        new_ids = {lot.id for lot in draw.new_lots}
        remaining = {lot.id: lot.remaining for lot in account.lots}
        existing = [{"b_pid": program_id, "b_id": a.lot_id, "b_remaining": remaining[a.lot_id]}
                    for a in rows if a.lot_id not in new_ids]  # fmt: skip
        if existing:
            self.conn.execute(
                update(t.wallet_lots)
                .where(t.wallet_lots.c.program_id == bindparam("b_pid"), t.wallet_lots.c.id == bindparam("b_id"))
                .values(remaining=bindparam("b_remaining")),
                existing,
            )
        self.conn.execute(
            update(t.accounts)
            .where(t.accounts.c.program_id == program_id, t.accounts.c.id == account.account_id)
            .values(balance=account.balance)
        )

    # -- reading the ledger ------------------------------------------------------------------------
    def allocations_of(self, program_id: UUID, transfer_id: UUID) -> list[Allocation]:
        wa = t.wallet_allocations
        rows = self.conn.execute(
            select(wa.c.lot_id, wa.c.amount).where(wa.c.program_id == program_id, wa.c.transfer_id == transfer_id)
        ).all()
        return [Allocation(r.lot_id, r.amount) for r in rows]

    def returns_of(self, program_id: UUID, member_id: UUID, corrected: list[UUID]) -> list[dict[str, Any]]:
        """The reverse transfers of a member that correct the named transfers (a checkout's payments), with what
        each credited to the member (points or wallet): `id`, `unit`, `amount`, `explanation`."""
        if not corrected:
            return []
        tr, p, a = t.transfers, t.postings, t.accounts
        rows = self.conn.execute(
            select(tr.c.id, tr.c.explanation, p.c.unit, p.c.amount)
            .join(p, and_(p.c.program_id == tr.c.program_id, p.c.transfer_id == tr.c.id))
            .join(a, and_(a.c.program_id == p.c.program_id, a.c.id == p.c.account_id))
            .where(tr.c.program_id == program_id, tr.c.member_id == member_id,
                   tr.c.kind == TransferKind.REVERSE.value, tr.c.corrects_id.in_(corrected),
                   a.c.member_id == member_id)
        )  # fmt: skip
        return [dict(r._mapping) for r in rows]

    def expiring_lots(self, program_id: UUID | None, now: datetime,
                      limit: int) -> list[tuple[UUID, UUID, str, UUID]]:  # fmt: skip
        """(program, member, currency, lot) of wallet lots past their expiry that still hold money."""
        wl, a = t.wallet_lots, t.accounts
        query = (
            select(wl.c.program_id, wl.c.member_id, a.c.unit, wl.c.id)
            .join(a, and_(a.c.program_id == wl.c.program_id, a.c.id == wl.c.account_id))
            .where(wl.c.remaining > 0, wl.c.expires_at <= now)
        )
        if program_id is not None:
            query = query.where(wl.c.program_id == program_id)
        rows = self.conn.execute(query.order_by(wl.c.program_id, wl.c.member_id, wl.c.id).limit(limit)).all()
        return [(r.program_id, r.member_id, r.unit, r.id) for r in rows]

    def cashback_of_purchase(self, program_id: UUID, purchase_id: UUID, account_id: UUID) -> tuple[int, UUID | None]:
        """(what the purchase's cashback transfers credited to the wallet, the first such transfer)."""
        tr, p = t.transfers, t.postings
        rows = self.conn.execute(
            select(tr.c.id, p.c.amount)
            .join(p, and_(p.c.program_id == tr.c.program_id, p.c.transfer_id == tr.c.id))
            .where(tr.c.program_id == program_id, tr.c.purchase_id == purchase_id, tr.c.kind == "cashback",
                   p.c.account_id == account_id)
            .order_by(tr.c.created_at)
        ).all()  # fmt: skip
        return sum(r.amount for r in rows), (rows[0].id if rows else None)

    def history(self, program_id: UUID, member_id: UUID, currency: str, limit: int,
                before: datetime | None) -> list[dict[str, Any]]:  # fmt: skip
        tr, p = t.transfers, t.postings
        query = (
            select(tr, p.c.amount.label("amount"))
            .join(p, and_(p.c.program_id == tr.c.program_id, p.c.transfer_id == tr.c.id))
            .where(p.c.program_id == program_id, p.c.account_id == member_account_id(member_id, currency))
        )
        if before is not None:
            query = query.where(tr.c.created_at < before)
        rows = self.conn.execute(query.order_by(tr.c.created_at.desc(), tr.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]

    # -- checkout holds ------------------------------------------------------------------------------
    def held(self, program_id: UUID, member_id: UUID, now: datetime) -> Held:
        """What the member's active holds keep (held and not yet expired)."""
        h = t.checkout_holds
        row = self.conn.execute(
            select(func.coalesce(func.sum(h.c.points), 0).label("points"),
                   func.coalesce(func.sum(h.c.wallet_minor), 0).label("wallet"))
            .where(h.c.program_id == program_id, h.c.member_id == member_id,
                   h.c.status == HoldStatus.HELD.value, h.c.expires_at > now)
        ).one()  # fmt: skip
        return Held(int(row.points), int(row.wallet))

    def add_hold(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.checkout_holds).values(**row))

    def get_hold(self, program_id: UUID, hold_id: UUID, *, lock: bool = False) -> dict[str, Any]:
        h = t.checkout_holds
        query = select(h).where(h.c.program_id == program_id, h.c.id == hold_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"hold {hold_id} not found", resource="hold")
        return dict(row._mapping)

    def finish_hold(self, program_id: UUID, hold_id: UUID, values: dict[str, Any]) -> bool:
        """Capture or release a hold that is still `held`; False if another request finished it first."""
        h = t.checkout_holds
        done = self.conn.execute(
            update(h).where(h.c.program_id == program_id, h.c.id == hold_id, h.c.status == HoldStatus.HELD.value)
            .values(**values)
        )  # fmt: skip
        return done.rowcount == 1

    def captured_hold_of(self, program_id: UUID, member_id: UUID, purchase_id: UUID) -> dict[str, Any] | None:
        """The captured hold that paid for a purchase, if any (found through the member's holds index)."""
        h = t.checkout_holds
        row = self.conn.execute(
            select(h).where(h.c.program_id == program_id, h.c.member_id == member_id,
                            h.c.status == HoldStatus.CAPTURED.value, h.c.purchase_id == purchase_id)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def holds_of(self, program_id: UUID, member_id: UUID, limit: int) -> list[dict[str, Any]]:
        h = t.checkout_holds
        rows = self.conn.execute(
            select(h).where(h.c.program_id == program_id, h.c.member_id == member_id)
            .order_by(h.c.created_at.desc(), h.c.id).limit(limit)
        )  # fmt: skip
        return [dict(r._mapping) for r in rows]
