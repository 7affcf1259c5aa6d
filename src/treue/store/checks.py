"""The SQL behind `treue verify`: each query returns the rows that break one invariant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, case, func, literal, or_, select

from treue.domain.ledger import POINTS
from treue.store import tables as t

Row = tuple[str, UUID, str, str]


class Checks:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def run(self, program_id: UUID | None, now: datetime | None = None) -> list[Row]:
        """Every violation; `now` decides which checkout holds are active (default: the current time)."""
        found: list[Row] = []
        for check in (self._unbalanced, self._single_sided, self._balances, self._negative, self._lot_allocations,
                      self._lots_vs_balance, self._refunds, self._wallet_lot_allocations,
                      self._wallet_lots_vs_balance, self._captured_holds):  # fmt: skip
            found.extend(check(program_id))
        found.extend(self._holds_vs_balance(program_id, now or datetime.now(UTC)))
        return found

    @staticmethod
    def _scope(query: Any, column: Any, program_id: UUID | None) -> Any:
        return query.where(column == program_id) if program_id else query

    def _unbalanced(self, pid: UUID | None) -> list[Row]:
        p = t.postings
        q = select(p.c.program_id, p.c.transfer_id, p.c.unit, func.sum(p.c.amount).label("total"))
        q = self._scope(q, p.c.program_id, pid).group_by(p.c.program_id, p.c.transfer_id, p.c.unit)
        q = q.having(func.sum(p.c.amount) != 0)
        return [("transfer_unbalanced", r.program_id, f"transfer {r.transfer_id}", f"{r.unit} postings sum to {r.total}")
                for r in self.conn.execute(q)]  # fmt: skip

    def _single_sided(self, pid: UUID | None) -> list[Row]:
        tr, p = t.transfers, t.postings
        q = (
            select(tr.c.program_id, tr.c.id, func.count(p.c.account_id).label("n"))
            .join(p, and_(p.c.program_id == tr.c.program_id, p.c.transfer_id == tr.c.id), isouter=True)
            .group_by(tr.c.program_id, tr.c.id)
            .having(func.count(p.c.account_id) < 2)
        )
        q = self._scope(q, tr.c.program_id, pid)
        return [("transfer_single_sided", r.program_id, f"transfer {r.id}", f"{r.n} posting(s)")
                for r in self.conn.execute(q)]  # fmt: skip

    def _posted(self) -> Any:
        p = t.postings
        return (
            select(p.c.program_id, p.c.account_id, func.sum(p.c.amount).label("posted"))
            .group_by(p.c.program_id, p.c.account_id)
            .subquery()
        )

    def _balances(self, pid: UUID | None) -> list[Row]:
        a, posted = t.accounts, self._posted()
        total = func.coalesce(posted.c.posted, 0)
        q = (
            select(a.c.program_id, a.c.member_id, a.c.balance, total.label("posted"))
            .join(
                posted,
                and_(posted.c.program_id == a.c.program_id, posted.c.account_id == a.c.id),
                isouter=True,
            )
            .where(a.c.member_id.is_not(None), a.c.balance != total)
        )
        q = self._scope(q, a.c.program_id, pid)
        return [("balance_mismatch", r.program_id, f"member {r.member_id}",
                 f"cached balance {r.balance}, postings sum to {r.posted}") for r in self.conn.execute(q)]  # fmt: skip

    def _negative(self, pid: UUID | None) -> list[Row]:
        a = t.accounts
        q = select(a.c.program_id, a.c.member_id, a.c.balance).where(
            a.c.member_id.is_not(None), a.c.balance < 0, a.c.negative_allowed.is_(False)
        )
        q = self._scope(q, a.c.program_id, pid)
        return [("negative_balance", r.program_id, f"member {r.member_id}", f"balance {r.balance}")
                for r in self.conn.execute(q)]  # fmt: skip

    def _lot_allocations(self, pid: UUID | None) -> list[Row]:
        return self._allocations_of(pid, t.lots, t.allocations, "lot_allocation_mismatch", "lot")

    def _lots_vs_balance(self, pid: UUID | None) -> list[Row]:
        return self._lots_against_balance(pid, t.lots, points=True, code="lots_balance_mismatch", what="lots")

    # Points lots and wallet lots keep the same two invariants, each in its own pair of tables.
    def _allocations_of(self, pid: UUID | None, lo: Any, al: Any, code: str, what: str) -> list[Row]:
        """Every lot's remainder equals its amount less what allocations drew from it."""
        drawn = (
            select(al.c.program_id, al.c.lot_id, func.sum(al.c.amount).label("drawn"))
            .group_by(al.c.program_id, al.c.lot_id)
            .subquery()
        )
        expected = lo.c.amount - func.coalesce(drawn.c.drawn, 0)
        q = (
            select(lo.c.program_id, lo.c.id, lo.c.remaining, expected.label("expected"))
            .join(drawn, and_(drawn.c.program_id == lo.c.program_id, drawn.c.lot_id == lo.c.id), isouter=True)
            .where(lo.c.remaining != expected)
        )
        q = self._scope(q, lo.c.program_id, pid)
        return [(code, r.program_id, f"{what} {r.id}", f"remaining {r.remaining}, amount less allocations {r.expected}")
                for r in self.conn.execute(q)]  # fmt: skip

    def _lots_against_balance(self, pid: UUID | None, lo: Any, *, points: bool, code: str, what: str) -> list[Row]:
        """The lots' remainders sum to the member account's balance (zero when it is below zero)."""
        a = t.accounts
        held = (
            select(lo.c.program_id, lo.c.account_id, func.sum(lo.c.remaining).label("held"))
            .group_by(lo.c.program_id, lo.c.account_id)
            .subquery()
        )
        want = case((a.c.balance > 0, a.c.balance), else_=literal(0))
        have = func.coalesce(held.c.held, 0)
        unit = a.c.unit == POINTS if points else a.c.unit != POINTS
        q = (
            select(a.c.program_id, a.c.member_id, a.c.unit, a.c.balance, have.label("held"))
            .join(held, and_(held.c.program_id == a.c.program_id, held.c.account_id == a.c.id), isouter=True)
            .where(a.c.member_id.is_not(None), unit, have != want)
        )
        q = self._scope(q, a.c.program_id, pid)
        shown = "" if points else " {unit}"
        return [(code, r.program_id, f"member {r.member_id}",
                 f"{what} hold {r.held}{shown.format(unit=r.unit)}, balance {r.balance}") for r in self.conn.execute(q)]  # fmt: skip

    def _refunds(self, pid: UUID | None) -> list[Row]:
        pu, rf = t.purchases, t.refunds
        refunded = (
            select(rf.c.program_id, rf.c.purchase_id, func.sum(rf.c.amount_minor).label("total"))
            .group_by(rf.c.program_id, rf.c.purchase_id)
            .subquery()
        )
        total = func.coalesce(refunded.c.total, 0)
        q = (
            select(pu.c.program_id, pu.c.id, pu.c.refunded_minor, total.label("total"))
            .join(refunded, and_(refunded.c.program_id == pu.c.program_id, refunded.c.purchase_id == pu.c.id),
                  isouter=True)
            .where(pu.c.refunded_minor != total)
        )  # fmt: skip
        q = self._scope(q, pu.c.program_id, pid)
        return [("refund_total_mismatch", r.program_id, f"purchase {r.id}",
                 f"refunded {r.refunded_minor}, refunds sum to {r.total}") for r in self.conn.execute(q)]  # fmt: skip

    # -- cashback wallets and checkout holds (issue 4) ---------------------------------------------------------
    def _wallet_lot_allocations(self, pid: UUID | None) -> list[Row]:
        return self._allocations_of(pid, t.wallet_lots, t.wallet_allocations, "wallet_lot_allocation_mismatch",
                                    "wallet lot")  # fmt: skip

    def _wallet_lots_vs_balance(self, pid: UUID | None) -> list[Row]:
        return self._lots_against_balance(pid, t.wallet_lots, points=False, code="wallet_lots_balance_mismatch",
                                          what="wallet lots")  # fmt: skip

    def _holds_vs_balance(self, pid: UUID | None, now: datetime) -> list[Row]:
        """Active holds (held, expiry ahead) never keep more than the member's balance, points or wallet."""
        h, a = t.checkout_holds, t.accounts
        active = (
            select(h.c.program_id, h.c.member_id, h.c.currency, func.sum(h.c.points).label("points"),
                   func.sum(h.c.wallet_minor).label("wallet"))
            .where(h.c.status == "held", h.c.expires_at > now)
            .group_by(h.c.program_id, h.c.member_id, h.c.currency)
        )  # fmt: skip
        active = self._scope(active, h.c.program_id, pid).subquery()
        found: list[Row] = []
        for unit, held in ((POINTS, active.c.points), (None, active.c.wallet)):
            balance = func.coalesce(a.c.balance, 0)
            q = (
                select(active.c.program_id, active.c.member_id, held.label("held"), balance.label("balance"))
                .join(a, and_(a.c.program_id == active.c.program_id, a.c.member_id == active.c.member_id,
                              a.c.unit == (unit or active.c.currency)), isouter=True)
                .where(held > 0, held > balance)
            )  # fmt: skip
            name = "points" if unit else "wallet"
            found.extend(("hold_exceeds_balance", r.program_id, f"member {r.member_id}",
                          f"active holds keep {r.held} of the {name} balance {r.balance}")
                         for r in self.conn.execute(q))  # fmt: skip
        return found

    def _captured_holds(self, pid: UUID | None) -> list[Row]:
        """A captured hold's payment equals its transfers: the member's posting in each is minus what was paid."""
        h, p = t.checkout_holds, t.postings
        found: list[Row] = []
        for paid, transfer in ((h.c.captured_points, h.c.points_transfer_id),
                               (h.c.captured_wallet_minor, h.c.wallet_transfer_id)):  # fmt: skip
            posted = (
                select(p.c.program_id, p.c.transfer_id, func.sum(p.c.amount).label("moved"))
                .where(p.c.amount < 0)
                .group_by(p.c.program_id, p.c.transfer_id)
                .subquery()
            )
            moved = func.coalesce(-posted.c.moved, 0)
            q = (
                select(h.c.program_id, h.c.id, paid.label("paid"), moved.label("moved"))
                .join(posted, and_(posted.c.program_id == h.c.program_id, posted.c.transfer_id == transfer),
                      isouter=True)
                .where(h.c.status == "captured",
                       or_(func.coalesce(paid, 0) != moved, and_(func.coalesce(paid, 0) > 0, transfer.is_(None))))
            )  # fmt: skip
            q = self._scope(q, h.c.program_id, pid)
            found.extend(("captured_hold_mismatch", r.program_id, f"hold {r.id}",
                          f"captured {r.paid}, its transfer moved {r.moved}") for r in self.conn.execute(q))  # fmt: skip
        return found
