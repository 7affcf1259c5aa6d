"""Repositories: the SQL behind each area, on one connection inside the unit of work's transaction.

SQLAlchemy Core, not the ORM: the earn path is a handful of statements and must stay that way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, bindparam, exists, func, insert, or_, select, text, update

from treue.domain.coupons import Coupon, CouponStatus
from treue.domain.errors import DuplicateOrder, MemberErased, NotFound
from treue.domain.events import Event
from treue.domain.ledger import (
    POINTS,
    SYSTEM_ACCOUNT_KINDS,
    AccountKind,
    Transfer,
    member_account_id,
    system_account_id,
)
from treue.domain.lots import Allocation, Draw
from treue.domain.members import STATUS_ERASED
from treue.domain.points import PointsAccount
from treue.domain.programs import Program
from treue.domain.purchases import Purchase
from treue.domain.rewards import Reward
from treue.store import tables as t
from treue.store.batch import InsertBatch
from treue.store.rows import (
    coupon_from_row,
    lines_to_json,
    lot_from_row,
    program_from_row,
    program_to_row,
    purchase_from_row,
    reward_from_row,
    reward_to_row,
)


class Programs:
    _cache: dict[UUID, tuple[float, Program]] = {}
    _cache_lock = threading.Lock()
    CACHE_SECONDS = 5.0  # settings change rarely; other processes see an edit within this time

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, program: Program, now: datetime) -> None:
        self.conn.execute(
            insert(t.programs).values(id=program.id, created_at=now, updated_at=now, **program_to_row(program))
        )

    def update(self, program: Program, now: datetime) -> None:
        self.conn.execute(
            update(t.programs).where(t.programs.c.id == program.id).values(updated_at=now, **program_to_row(program))
        )
        with self._cache_lock:
            self._cache.pop(program.id, None)

    def get(self, program_id: UUID, *, cached: bool = False) -> Program:
        if cached:
            hit = self._cache.get(program_id)
            if hit and hit[0] > time.monotonic():
                return hit[1]
        row = self.conn.execute(select(t.programs).where(t.programs.c.id == program_id)).first()
        if row is None:
            raise NotFound(f"programme {program_id} not found")
        program = program_from_row(row)
        with self._cache_lock:
            self._cache[program_id] = (time.monotonic() + self.CACHE_SECONDS, program)
        return program

    def list(self) -> list[tuple[Program, datetime]]:
        rows = self.conn.execute(select(t.programs).order_by(t.programs.c.created_at)).all()
        return [(program_from_row(r), r.created_at) for r in rows]

    def members_below_zero(self, program_id: UUID) -> int:
        return int(self.conn.execute(
            select(func.count()).select_from(t.accounts)
            .where(t.accounts.c.program_id == program_id, t.accounts.c.member_id.is_not(None), t.accounts.c.balance < 0)
        ).scalar_one())  # fmt: skip

    def set_negative_allowed(self, program_id: UUID, allowed: bool) -> None:
        self.conn.execute(
            update(t.accounts)
            .where(t.accounts.c.program_id == program_id, t.accounts.c.member_id.is_not(None))
            .values(negative_allowed=allowed)
        )


class Members:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.members).values(**row))

    def update(self, program_id: UUID, member_id: UUID, values: dict[str, Any]) -> None:
        self.conn.execute(
            update(t.members).where(t.members.c.program_id == program_id, t.members.c.id == member_id).values(**values)
        )

    def get(self, program_id: UUID, member_id: UUID) -> dict[str, Any]:
        row = self.conn.execute(
            select(t.members).where(t.members.c.program_id == program_id, t.members.c.id == member_id)
        ).first()
        if row is None:
            raise NotFound(f"member {member_id} not found", resource="member")
        return dict(row._mapping)

    def find(self, program_id: UUID, **criteria: str | None) -> list[dict[str, Any]]:
        clauses = [getattr(t.members.c, k) == v for k, v in criteria.items() if v is not None]
        if not clauses:
            return []
        rows = self.conn.execute(
            select(t.members)
            .where(t.members.c.program_id == program_id, *clauses)
            .order_by(t.members.c.enrolled_at)
            .limit(50)
        ).all()
        return [dict(r._mapping) for r in rows]

    def search(self, program_id: UUID, text: str | None, limit: int, after: datetime | None) -> list[dict[str, Any]]:
        query = select(t.members).where(t.members.c.program_id == program_id)
        if text:
            like = f"%{text.lower()}%"
            query = query.where(
                or_(func.lower(t.members.c.first_name).like(like), func.lower(t.members.c.last_name).like(like),
                    t.members.c.email.like(like), t.members.c.card_number == text, t.members.c.external_ref == text)
            )  # fmt: skip
        if after is not None:
            query = query.where(t.members.c.enrolled_at > after)
        rows = self.conn.execute(query.order_by(t.members.c.enrolled_at).limit(limit)).all()
        return [dict(r._mapping) for r in rows]

    def id_by(self, program_id: UUID, *, card_number: str | None = None, external_ref: str | None = None) -> UUID:
        column, value = (
            (t.members.c.card_number, card_number) if card_number else (t.members.c.external_ref, external_ref)
        )
        found = self.conn.execute(
            select(t.members.c.id).where(t.members.c.program_id == program_id, column == value)
        ).scalar()
        if found is None:
            raise NotFound("no member with that " + ("card number" if card_number else "external reference"),
                           resource="member")  # fmt: skip
        return found  # type: ignore[no-any-return]

    def set_consent(self, program_id: UUID, member_id: UUID, channel: str, granted: bool, now: datetime,
                    source: str | None) -> None:  # fmt: skip
        key = and_(t.consents.c.program_id == program_id, t.consents.c.member_id == member_id,
                   t.consents.c.channel == channel, t.consents.c.purpose == "marketing")  # fmt: skip
        done = self.conn.execute(update(t.consents).where(key).values(granted=granted, updated_at=now, source=source))
        if done.rowcount == 0:
            self.conn.execute(insert(t.consents).values(program_id=program_id, member_id=member_id, channel=channel,
                              purpose="marketing", granted=granted, updated_at=now, source=source))  # fmt: skip

    def consents(self, program_id: UUID, member_id: UUID) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.consents).where(t.consents.c.program_id == program_id, t.consents.c.member_id == member_id)
            .order_by(t.consents.c.channel)
        ).all()  # fmt: skip
        return [dict(r._mapping) for r in rows]


class Ledger:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    # -- accounts ------------------------------------------------------------------------------
    def open_system_accounts(self, program_id: UUID, now: datetime, unit: str = POINTS) -> None:
        self.conn.execute(insert(t.accounts), [
            {"program_id": program_id, "id": system_account_id(program_id, kind, unit), "kind": kind.value,
             "member_id": None, "unit": unit, "balance": None, "negative_allowed": True, "created_at": now}
            for kind in SYSTEM_ACCOUNT_KINDS
        ])  # fmt: skip

    def open_member_account(self, program_id: UUID, member_id: UUID, negative_allowed: bool, now: datetime) -> UUID:
        account_id = member_account_id(member_id)
        self.conn.execute(insert(t.accounts).values(
            program_id=program_id, id=account_id, kind=AccountKind.MEMBER.value, member_id=member_id, unit=POINTS,
            balance=0, negative_allowed=negative_allowed, created_at=now))  # fmt: skip
        return account_id

    def add_to_balance(self, program_id: UUID, member_id: UUID, delta: int, *,
                       refuse_erased: bool = False) -> tuple[int, bool]:  # fmt: skip
        """Add to a member's cached balance and return (balance before, negative allowed). This also
        takes the account's row lock for the rest of the transaction. `refuse_erased`: raise MemberErased for
        an erased member - checked in the same statement, so an earn by member id costs no extra round trip."""
        m = t.members
        update_balance = (
            update(t.accounts)
            .where(t.accounts.c.program_id == program_id, t.accounts.c.id == member_account_id(member_id))
            .values(balance=t.accounts.c.balance + delta)
            .returning(t.accounts.c.balance, t.accounts.c.negative_allowed)
        )
        if refuse_erased:
            update_balance = update_balance.where(~exists().where(
                m.c.program_id == program_id, m.c.id == member_id, m.c.status == STATUS_ERASED))  # fmt: skip
        row = self.conn.execute(update_balance).first()
        if row is None:
            if refuse_erased and self.conn.execute(select(m.c.status).where(
                    m.c.program_id == program_id, m.c.id == member_id)).scalar() == STATUS_ERASED:  # fmt: skip
                raise MemberErased(f"member {member_id} was erased (GDPR); nothing new can be recorded for it")
            raise NotFound(f"member {member_id} not found", resource="member")
        return row.balance - delta, row.negative_allowed

    def lock_accounts(self, program_id: UUID, member_ids: Sequence[UUID], *, lot_ids: Iterable[UUID] = (),
                      purchase_id: UUID | None = None) -> dict[UUID, PointsAccount]:  # fmt: skip
        """Lock member accounts and load their open lots (plus any named lots).

        Locks are taken in ascending account id, in one statement, whatever order the caller names the
        members in: two transfers between the same two members in opposite directions then queue
        instead of deadlocking.
        """
        ids = sorted({member_account_id(m) for m in member_ids})
        query = (
            select(t.accounts.c.id, t.accounts.c.member_id, t.accounts.c.balance, t.accounts.c.negative_allowed)
            .where(t.accounts.c.program_id == program_id, t.accounts.c.id.in_(ids))
            .order_by(t.accounts.c.id)
            .with_for_update()
        )
        found = {row.member_id: PointsAccount(row.id, row.member_id, row.balance, row.negative_allowed)
                 for row in self.conn.execute(query)}  # fmt: skip
        for member_id in member_ids:
            if member_id not in found:
                raise NotFound(f"member {member_id} not found", resource="member")
        by_account = {account.account_id: account for account in found.values()}
        wanted = t.lots.c.remaining > 0
        named = list(lot_ids)
        if named:
            wanted = or_(wanted, t.lots.c.id.in_(named))
        if purchase_id is not None:
            wanted = or_(wanted, t.lots.c.purchase_id == purchase_id)
        lots = self.conn.execute(
            select(t.lots).where(t.lots.c.program_id == program_id, t.lots.c.account_id.in_(ids), wanted)
        ).all()
        for row in lots:
            by_account[row.account_id].lots.append(lot_from_row(row))
        return found

    def load_account(self, program_id: UUID, member_id: UUID) -> PointsAccount:
        """Read without locking (balances, verify)."""
        row = self.conn.execute(
            select(t.accounts).where(t.accounts.c.program_id == program_id,
                                     t.accounts.c.id == member_account_id(member_id))
        ).first()  # fmt: skip
        if row is None:
            raise NotFound(f"member {member_id} not found", resource="member")
        account = PointsAccount(row.id, member_id, row.balance, row.negative_allowed)
        lots = self.conn.execute(
            select(t.lots).where(t.lots.c.program_id == program_id, t.lots.c.account_id == row.id,
                                 t.lots.c.remaining > 0)
        ).all()  # fmt: skip
        account.lots = [lot_from_row(r) for r in lots]
        return account

    # -- writing a transfer ----------------------------------------------------------------------
    def record(self, program_id: UUID, transfer: Transfer, changes: Sequence[tuple[PointsAccount, Draw]], now: datetime,
               *, actor: str | None = None, balances_applied: bool = False) -> None:  # fmt: skip
        """Write a transfer with its postings, lots and allocations, and the members' new balances.

        The inserts go out together with anything already queued in the batch (e.g. the purchase).
        """
        self.batch.add(t.transfers, [{
            "program_id": program_id, "id": transfer.id, "kind": transfer.kind.value,
            "occurred_at": transfer.occurred_at, "created_at": now, "member_id": transfer.member_id,
            "purchase_id": transfer.purchase_id, "redemption_id": transfer.redemption_id,
            "corrects_id": transfer.corrects_id, "actor": actor, "explanation": dict(transfer.explanation)}])  # fmt: skip
        self.batch.add(t.postings, [
            {"program_id": program_id, "transfer_id": transfer.id, "account_id": p.account_id, "unit": p.unit,
             "amount": p.amount} for p in transfer.postings
        ])  # fmt: skip
        updates = []
        for account, draw in changes:
            updates.extend(self._queue(program_id, transfer, account, draw))
        self.batch.flush()
        for statement, params in updates:
            self.conn.execute(statement, params)
        if not balances_applied:
            for account, _ in changes:
                self.conn.execute(
                    update(t.accounts)
                    .where(t.accounts.c.program_id == program_id, t.accounts.c.id == account.account_id)
                    .values(balance=account.balance)
                )

    def _queue(self, program_id: UUID, transfer: Transfer, account: PointsAccount, draw: Draw) -> list[Any]:
        """Queue the draw's new lots and allocations; return the lot updates to run after them."""
        self.batch.add(t.lots, [
            {"program_id": program_id, "id": lot.id, "account_id": account.account_id,
             "member_id": account.member_id, "source_transfer_id": transfer.id, "purchase_id": lot.purchase_id,
             "partner": lot.partner, "amount": lot.amount, "remaining": lot.amount - draw.allocations.get(lot.id, 0),
             "available_at": lot.available_at, "expires_at": lot.expires_at}
            for lot in draw.new_lots
        ])  # fmt: skip
        rows = draw.allocation_rows()
        self.batch.add(t.allocations, [
            {"program_id": program_id, "transfer_id": transfer.id, "lot_id": a.lot_id, "amount": a.amount}
            for a in rows
        ])  # fmt: skip
        new_ids = {lot.id for lot in draw.new_lots}
        remaining = {lot.id: lot.remaining for lot in account.lots}
        existing = [{"b_pid": program_id, "b_id": a.lot_id, "b_remaining": remaining[a.lot_id]}
                    for a in rows if a.lot_id not in new_ids]  # fmt: skip
        if not existing:
            return []
        statement = (
            update(t.lots)
            .where(t.lots.c.program_id == _bind("b_pid"), t.lots.c.id == _bind("b_id"))
            .values(remaining=_bind("b_remaining"))
        )
        return [(statement, existing)]

    # -- reading -------------------------------------------------------------------------------
    def allocations_of(self, program_id: UUID, transfer_id: UUID) -> list[Allocation]:
        rows = self.conn.execute(
            select(t.allocations.c.lot_id, t.allocations.c.amount)
            .where(t.allocations.c.program_id == program_id, t.allocations.c.transfer_id == transfer_id)
        ).all()  # fmt: skip
        return [Allocation(r.lot_id, r.amount) for r in rows]

    def earn_of_purchase(self, program_id: UUID, purchase_id: UUID) -> dict[str, Any] | None:
        """The earn transfer of a purchase (id, explanation), or None if it earned nothing."""
        row = self.conn.execute(
            select(t.transfers.c.id, t.transfers.c.explanation)
            .where(t.transfers.c.program_id == program_id, t.transfers.c.purchase_id == purchase_id,
                   t.transfers.c.kind == "earn")
            .order_by(t.transfers.c.created_at).limit(1)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def history(self, program_id: UUID, member_id: UUID, limit: int, before: datetime | None) -> list[dict[str, Any]]:
        query = (
            select(t.transfers, t.postings.c.amount.label("points"))
            .join(t.postings, and_(t.postings.c.program_id == t.transfers.c.program_id,
                                   t.postings.c.transfer_id == t.transfers.c.id))
            .where(t.postings.c.program_id == program_id, t.postings.c.account_id == member_account_id(member_id))
        )  # fmt: skip
        if before is not None:
            query = query.where(t.transfers.c.created_at < before)
        rows = self.conn.execute(query.order_by(t.transfers.c.created_at.desc(), t.transfers.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]

    def expiring_lots(self, program_id: UUID | None, now: datetime, limit: int) -> list[tuple[UUID, UUID, UUID]]:
        """(program, member, lot) of lots past their expiry that still hold points."""
        query = select(t.lots.c.program_id, t.lots.c.member_id, t.lots.c.id).where(
            t.lots.c.remaining > 0, t.lots.c.expires_at <= now
        )
        if program_id is not None:
            query = query.where(t.lots.c.program_id == program_id)
        rows = self.conn.execute(query.order_by(t.lots.c.program_id, t.lots.c.member_id).limit(limit)).all()
        return [(r.program_id, r.member_id, r.id) for r in rows]


def _bind(name: str) -> Any:
    return bindparam(name)


class Purchases:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    def add(self, program_id: UUID, purchase: Purchase, points_earned: int, now: datetime) -> None:
        """Queue the purchase; it is written with the next flush (its earn transfer, or the commit)."""

        def duplicate() -> DuplicateOrder:
            return DuplicateOrder(
                f"order {purchase.external_order_id!r} of partner {purchase.partner!r} was already recorded",
                external_order_id=purchase.external_order_id, partner=purchase.partner,
            )  # fmt: skip

        self.batch.add(t.purchases, [{
            "program_id": program_id, "id": purchase.id, "member_id": purchase.member_id,
            "partner": purchase.partner, "store": purchase.store, "cashier": purchase.cashier,
            "channel": purchase.channel.value,
            "external_order_id": purchase.external_order_id, "occurred_at": purchase.occurred_at,
            "total_minor": purchase.total.minor, "currency": purchase.total.currency,
            "lines": lines_to_json(purchase.lines), "points_earned": points_earned, "refunded_minor": 0,
            "created_at": now}], on_conflict=("uq_purchases_order", duplicate))  # fmt: skip

    def find_id(self, program_id: UUID, partner: str, external_order_id: str) -> UUID | None:
        return self.conn.execute(
            select(t.purchases.c.id).where(t.purchases.c.program_id == program_id, t.purchases.c.partner == partner,
                                           t.purchases.c.external_order_id == external_order_id)
        ).scalar()  # fmt: skip

    def get(self, program_id: UUID, purchase_id: UUID, *, lock: bool = False) -> tuple[Purchase, dict[str, Any]]:
        query = select(t.purchases).where(t.purchases.c.program_id == program_id, t.purchases.c.id == purchase_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"purchase {purchase_id} not found", resource="purchase")
        return purchase_from_row(row), dict(row._mapping)

    def add_refund(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.refunds).values(**row))
        self.conn.execute(
            update(t.purchases)
            .where(t.purchases.c.program_id == row["program_id"], t.purchases.c.id == row["purchase_id"])
            .values(refunded_minor=t.purchases.c.refunded_minor + row["amount_minor"])
        )

    def refund_by_external_id(
        self, program_id: UUID, purchase_id: UUID, external_refund_id: str
    ) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(t.refunds).where(t.refunds.c.program_id == program_id, t.refunds.c.purchase_id == purchase_id,
                                    t.refunds.c.external_refund_id == external_refund_id)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def refunds_of(self, program_id: UUID, purchase_id: UUID) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.refunds).where(t.refunds.c.program_id == program_id, t.refunds.c.purchase_id == purchase_id)
            .order_by(t.refunds.c.created_at)
        ).all()  # fmt: skip
        return [dict(r._mapping) for r in rows]


class Rewards:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, program_id: UUID, reward: Reward, now: datetime) -> None:
        self.conn.execute(insert(t.rewards).values(program_id=program_id, id=reward.id, created_at=now, updated_at=now,
                                                   **reward_to_row(reward)))  # fmt: skip

    def update(self, program_id: UUID, reward: Reward, now: datetime) -> None:
        self.conn.execute(update(t.rewards).where(t.rewards.c.program_id == program_id, t.rewards.c.id == reward.id)
                          .values(updated_at=now, **reward_to_row(reward)))  # fmt: skip

    def get(self, program_id: UUID, reward_id: UUID, *, lock: bool = False) -> Reward:
        query = select(t.rewards).where(t.rewards.c.program_id == program_id, t.rewards.c.id == reward_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"reward {reward_id} not found", resource="reward")
        return reward_from_row(row)

    def all(self, program_id: UUID, active_only: bool) -> list[Reward]:
        query = select(t.rewards).where(t.rewards.c.program_id == program_id)
        if active_only:
            query = query.where(t.rewards.c.active.is_(True))
        return [reward_from_row(r) for r in self.conn.execute(query.order_by(t.rewards.c.cost_points, t.rewards.c.id))]

    def take_from_stock(self, program_id: UUID, reward_id: UUID) -> bool:
        """Atomically take one from stock; False if none is left. Unlimited rewards always succeed."""
        done = self.conn.execute(
            update(t.rewards)
            .where(t.rewards.c.program_id == program_id, t.rewards.c.id == reward_id,
                   or_(t.rewards.c.stock.is_(None), t.rewards.c.stock > 0))
            .values(stock=t.rewards.c.stock - 1)
        )  # fmt: skip
        return done.rowcount == 1

    def return_to_stock(self, program_id: UUID, reward_id: UUID) -> None:
        self.conn.execute(
            update(t.rewards)
            .where(
                t.rewards.c.program_id == program_id,
                t.rewards.c.id == reward_id,
                t.rewards.c.stock.is_not(None),
            )
            .values(stock=t.rewards.c.stock + 1)
        )

    def count_active_redemptions(self, program_id: UUID, member_id: UUID, reward_id: UUID) -> int:
        return int(self.conn.execute(
            select(func.count()).select_from(t.redemptions)
            .where(t.redemptions.c.program_id == program_id, t.redemptions.c.member_id == member_id,
                   t.redemptions.c.reward_id == reward_id, t.redemptions.c.status == "active")
        ).scalar_one())  # fmt: skip

    def add_redemption(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.redemptions).values(**row))

    def get_redemption(self, program_id: UUID, redemption_id: UUID) -> dict[str, Any]:
        row = self.conn.execute(
            select(t.redemptions).where(t.redemptions.c.program_id == program_id, t.redemptions.c.id == redemption_id)
        ).first()
        if row is None:
            raise NotFound(f"redemption {redemption_id} not found", resource="redemption")
        return dict(row._mapping)

    def cancel_redemption(self, program_id: UUID, redemption_id: UUID, transfer_id: UUID, now: datetime) -> bool:
        done = self.conn.execute(
            update(t.redemptions)
            .where(t.redemptions.c.program_id == program_id, t.redemptions.c.id == redemption_id,
                   t.redemptions.c.status == "active")
            .values(status="cancelled", cancelled_at=now, cancel_transfer_id=transfer_id)
        )  # fmt: skip
        return done.rowcount == 1

    def redemptions_of(self, program_id: UUID, member_id: UUID) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.redemptions, t.coupons.c.code, t.coupons.c.status.label("coupon_status"))
            .join(t.coupons, and_(t.coupons.c.program_id == t.redemptions.c.program_id,
                                  t.coupons.c.redemption_id == t.redemptions.c.id), isouter=True)
            .where(t.redemptions.c.program_id == program_id, t.redemptions.c.member_id == member_id)
            .order_by(t.redemptions.c.created_at.desc())
        ).all()  # fmt: skip
        return [dict(r._mapping) for r in rows]

    def add_coupon(self, program_id: UUID, coupon: Coupon, now: datetime) -> None:
        self.conn.execute(insert(t.coupons).values(
            program_id=program_id, id=coupon.id, code=coupon.code, member_id=coupon.member_id,
            reward_id=coupon.reward_id, redemption_id=coupon.redemption_id, status=coupon.status.value,
            valid_until=coupon.valid_until, created_at=now))  # fmt: skip

    def coupon_by_code(self, program_id: UUID, code: str, *, lock: bool = False) -> Coupon:
        query = select(t.coupons).where(t.coupons.c.program_id == program_id, t.coupons.c.code == code)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound("no coupon with that code", resource="coupon")
        return coupon_from_row(row)

    def coupon_of_redemption(self, program_id: UUID, redemption_id: UUID) -> Coupon | None:
        row = self.conn.execute(
            select(t.coupons).where(t.coupons.c.program_id == program_id, t.coupons.c.redemption_id == redemption_id)
        ).first()
        return coupon_from_row(row) if row else None

    def set_coupon_status(self, program_id: UUID, coupon_id: UUID, status: CouponStatus, *,
                          expected: CouponStatus, now: datetime | None = None, order_id: str | None = None) -> bool:  # fmt: skip
        values: dict[str, Any] = {"status": status.value}
        if status is CouponStatus.CONSUMED:
            values.update(consumed_at=now, consumed_order_id=order_id)
        done = self.conn.execute(
            update(t.coupons)
            .where(t.coupons.c.program_id == program_id, t.coupons.c.id == coupon_id,
                   t.coupons.c.status == expected.value)
            .values(**values)
        )  # fmt: skip
        return done.rowcount == 1


class Keys:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.api_keys).values(**row))

    def by_prefix(self, prefix: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.api_keys).where(t.api_keys.c.prefix == prefix)).first()
        return dict(row._mapping) if row else None

    def list(self, program_id: UUID | None) -> list[dict[str, Any]]:
        query = select(t.api_keys).order_by(t.api_keys.c.created_at)
        query = query.where(t.api_keys.c.program_id == program_id) if program_id else query
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def touch(self, key_id: UUID, now: datetime) -> None:
        self.conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=now))

    def revoke(self, key_id: UUID, program_id: UUID | None, now: datetime) -> bool:
        query = update(t.api_keys).where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
        if program_id is not None:
            query = query.where(t.api_keys.c.program_id == program_id)
        return self.conn.execute(query.values(revoked_at=now)).rowcount == 1

    def get(self, key_id: UUID, program_id: UUID | None, *, lock: bool = False) -> dict[str, Any] | None:
        """A key by id; with a programme, only that programme's (None: any key, as the operator sees them)."""
        query = select(t.api_keys).where(t.api_keys.c.id == key_id)
        if program_id is not None:
            query = query.where(t.api_keys.c.program_id == program_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return dict(row._mapping) if row else None

    def rotate(self, key_id: UUID, secret_hash: str, previous_hash: str | None, previous_valid_until: datetime | None,
               now: datetime) -> bool:  # fmt: skip
        """Put a new secret's hash in place; the replaced one stays valid until `previous_valid_until`."""
        query = update(t.api_keys).where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
        return self.conn.execute(query.values(secret_hash=secret_hash, previous_secret_hash=previous_hash,
                                              previous_valid_until=previous_valid_until, rotated_at=now)).rowcount == 1  # fmt: skip


class Idempotency:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    def get(self, api_key_id: UUID, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(t.idempotency_keys).where(t.idempotency_keys.c.api_key_id == api_key_id,
                                             t.idempotency_keys.c.key == key)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def add(self, row: dict[str, Any]) -> None:
        """Queued: written with the commit, in the same round trip as the outbox rows."""
        self.batch.add(t.idempotency_keys, [row])

    def claim(self, api_key_id: UUID, key: str) -> tuple[bool, dict[str, Any] | None]:
        """(this transaction holds the key, the stored response if any) in one round trip.

        On PostgreSQL a transaction-scoped advisory lock marks the key as in flight across processes;
        SQLite has one writer at a time, so holding the write lock is enough.
        """
        if self.conn.dialect.name != "postgresql":
            return True, self.get(api_key_id, key)
        row = self.conn.execute(
            text(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(:lock_key, 0)) AS locked, "
                "i.request_hash, i.status_code, i.response FROM (SELECT 1) AS one "
                "LEFT JOIN idempotency_keys i ON i.api_key_id = :kid AND i.key = :key"
            ),
            {"lock_key": f"{api_key_id}:{key}", "kid": api_key_id, "key": key},
        ).one()
        stored = None if row.status_code is None else {
            "request_hash": row.request_hash, "status_code": row.status_code, "response": row.response}  # fmt: skip
        return bool(row.locked), stored


class Outbox:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Queued: written with the commit."""
        self.batch.add(t.outbox, rows)

    def claim(self, limit: int) -> list[dict[str, Any]]:
        """Pending messages, oldest first; on PostgreSQL rows another worker holds are skipped."""
        query = (
            select(t.outbox).where(t.outbox.c.dispatched_at.is_(None)).order_by(t.outbox.c.created_at).limit(limit)
            .with_for_update(skip_locked=True)
        )  # fmt: skip
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def mark(self, program_id: UUID, message_id: UUID, now: datetime | None, error: str | None) -> None:
        self.conn.execute(
            update(t.outbox).where(t.outbox.c.program_id == program_id, t.outbox.c.id == message_id)
            .values(dispatched_at=now, attempts=t.outbox.c.attempts + 1, last_error=error)
        )  # fmt: skip

    def recent(self, program_id: UUID, topic: str | None, limit: int) -> list[dict[str, Any]]:
        query = select(t.outbox).where(t.outbox.c.program_id == program_id)
        if topic:
            query = query.where(t.outbox.c.topic == topic)
        return [dict(r._mapping) for r in self.conn.execute(query.order_by(t.outbox.c.created_at.desc()).limit(limit))]


class Audit:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.audit_log).values(**row))

    def list(self, program_id: UUID, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.audit_log).where(t.audit_log.c.program_id == program_id).order_by(t.audit_log.c.at.desc())
            .limit(limit)
        )  # fmt: skip
        return [dict(r._mapping) for r in rows]


def event_row(program_id: UUID, message_id: UUID, event: Event, now: datetime) -> dict[str, Any]:
    return {"program_id": program_id, "id": message_id, "topic": event.name, "payload": event.payload,
            "created_at": now, "attempts": 0}  # fmt: skip
