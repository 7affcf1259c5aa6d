"""Storage for the web UI: staff users and sessions, member sign-in codes and portal sessions, and the few
aggregate reads of the admin overview (see services/staff.py and services/portal.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from treue.domain.errors import Conflict
from treue.domain.ledger import POINTS
from treue.domain.staff import SignInState
from treue.store import tables as t
from treue.store.batch import InsertBatch

USERS, SESSIONS, CODES, MEMBER_SESSIONS = t.staff_users, t.staff_sessions, t.member_sign_in_codes, t.member_sessions


class Staff:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    # -- staff users ------------------------------------------------------------------------------------
    def add_user(self, row: dict[str, Any]) -> None:
        try:
            self.conn.execute(insert(USERS).values(**row))
        except IntegrityError:  # the transaction is lost anyway: the use case refuses as a whole
            raise Conflict(f"a staff user with the email {row['email']} exists in this programme") from None

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        """Every active account with this email, over all programmes (sign-in does not know the programme)."""
        rows = self.conn.execute(
            select(USERS).where(USERS.c.email == email, USERS.c.disabled_at.is_(None)).order_by(USERS.c.created_at)
        ).all()
        return [dict(r._mapping) for r in rows]

    def user(self, program_id: UUID, staff_id: UUID, *, lock: bool = False) -> dict[str, Any] | None:
        query = select(USERS).where(USERS.c.program_id == program_id, USERS.c.id == staff_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return dict(row._mapping) if row else None

    def users(self, program_id: UUID) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(USERS).where(USERS.c.program_id == program_id).order_by(USERS.c.email))
        return [dict(r._mapping) for r in rows]

    def set_sign_in_state(self, program_id: UUID, staff_id: UUID, state: SignInState) -> None:
        self.conn.execute(
            update(USERS)
            .where(USERS.c.program_id == program_id, USERS.c.id == staff_id)
            .values(failures=state.failures, failure_window_start=state.window_start, locked_until=state.locked_until)
        )

    def set_password_hash(self, program_id: UUID, staff_id: UUID, password_hash: str) -> None:
        self.conn.execute(
            update(USERS).where(USERS.c.program_id == program_id, USERS.c.id == staff_id)
            .values(password_hash=password_hash)
        )  # fmt: skip

    # -- staff sessions -----------------------------------------------------------------------------------
    def add_session(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(SESSIONS).values(**row))

    def session(self, program_id: UUID, token_hash: str, now: datetime) -> dict[str, Any] | None:
        """The live session with this token and its user (None when expired, unknown or the user is disabled)."""
        row = self.conn.execute(
            select(SESSIONS.c.csrf_token, SESSIONS.c.expires_at, USERS)
            .join(USERS, (USERS.c.program_id == SESSIONS.c.program_id) & (USERS.c.id == SESSIONS.c.staff_id))
            .where(SESSIONS.c.program_id == program_id, SESSIONS.c.token_hash == token_hash,
                   SESSIONS.c.expires_at > now, USERS.c.disabled_at.is_(None))
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def end_session(self, program_id: UUID, token_hash: str) -> None:
        self.conn.execute(delete(SESSIONS).where(SESSIONS.c.program_id == program_id,
                                                 SESSIONS.c.token_hash == token_hash))  # fmt: skip

    # -- member sign-in codes and portal sessions ---------------------------------------------------------------
    def add_code(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(CODES).values(**row))

    def open_codes(self, program_id: UUID, member_id: UUID, now: datetime) -> list[dict[str, Any]]:
        """Unused, unexpired codes of a member, newest first, locked against a concurrent try."""
        rows = self.conn.execute(
            select(CODES).where(CODES.c.program_id == program_id, CODES.c.member_id == member_id,
                                CODES.c.used_at.is_(None), CODES.c.expires_at > now)
            .order_by(CODES.c.created_at.desc()).with_for_update()
        ).all()  # fmt: skip
        return [dict(r._mapping) for r in rows]

    def count_codes_since(self, program_id: UUID, member_id: UUID, since: datetime) -> int:
        return int(self.conn.execute(
            select(func.count()).select_from(CODES)
            .where(CODES.c.program_id == program_id, CODES.c.member_id == member_id, CODES.c.created_at >= since)
        ).scalar_one())  # fmt: skip

    def update_code(self, program_id: UUID, code_id: UUID, **values: Any) -> None:
        self.conn.execute(update(CODES).where(CODES.c.program_id == program_id, CODES.c.id == code_id).values(**values))

    def add_member_session(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(MEMBER_SESSIONS).values(**row))

    def member_session(self, program_id: UUID, token_hash: str, now: datetime) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(MEMBER_SESSIONS).where(MEMBER_SESSIONS.c.program_id == program_id,
                                          MEMBER_SESSIONS.c.token_hash == token_hash,
                                          MEMBER_SESSIONS.c.expires_at > now)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def end_member_session(self, program_id: UUID, token_hash: str) -> None:
        self.conn.execute(delete(MEMBER_SESSIONS).where(MEMBER_SESSIONS.c.program_id == program_id,
                                                        MEMBER_SESSIONS.c.token_hash == token_hash))  # fmt: skip

    # -- the overview's figures -------------------------------------------------------------------------------
    def count_members(self, program_id: UUID) -> int:
        return int(self.conn.execute(
            select(func.count()).select_from(t.members).where(t.members.c.program_id == program_id)
        ).scalar_one())  # fmt: skip

    def points_by_kind(self, program_id: UUID, start: datetime, end: datetime,
                       partner: str | None = None) -> dict[str, int]:  # fmt: skip
        """Points moved on member accounts in [start, end) per transfer kind (credits positive, debits negative).

        With a partner: only the earn transfers of that partner's purchases (a partner sees its own issuing)."""
        member_accounts = (t.accounts.c.kind == "member") & (t.accounts.c.unit == POINTS)
        query = (
            select(t.transfers.c.kind, func.coalesce(func.sum(t.postings.c.amount), 0))
            .join(t.postings, (t.postings.c.program_id == t.transfers.c.program_id)
                  & (t.postings.c.transfer_id == t.transfers.c.id))
            .join(t.accounts, (t.accounts.c.program_id == t.postings.c.program_id)
                  & (t.accounts.c.id == t.postings.c.account_id))
            .where(t.transfers.c.program_id == program_id, t.transfers.c.occurred_at >= start,
                   t.transfers.c.occurred_at < end, member_accounts)
            .group_by(t.transfers.c.kind)
        )  # fmt: skip
        if partner is not None:
            query = query.join(
                t.purchases,
                (t.purchases.c.program_id == t.transfers.c.program_id)
                & (t.purchases.c.id == t.transfers.c.purchase_id),
            ).where(t.purchases.c.partner == partner, t.transfers.c.kind == "earn")
        return {kind: int(total) for kind, total in self.conn.execute(query).all()}

    def count_purchases(self, program_id: UUID, start: datetime, end: datetime, partner: str | None = None) -> int:
        query = (
            select(func.count())
            .select_from(t.purchases)
            .where(
                t.purchases.c.program_id == program_id,
                t.purchases.c.occurred_at >= start,
                t.purchases.c.occurred_at < end,
            )
        )
        if partner is not None:
            query = query.where(t.purchases.c.partner == partner)
        return int(self.conn.execute(query).scalar_one())
