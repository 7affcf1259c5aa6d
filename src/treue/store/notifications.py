"""Notification settings, template overrides, the message log (with claim leases; the inbox is its inbox rows),
double opt-ins, hashed link tokens and the daily digest's sums (issue 8)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from treue.domain.ledger import POINTS
from treue.store import tables as t
from treue.store.batch import InsertBatch

S, TPL, M = t.notification_settings, t.notification_templates, t.notification_messages
OPT, TOK, DG = t.notification_optins, t.notification_tokens, t.notification_digests


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


class Notifications:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert)(table)

    # -- settings and templates ------------------------------------------------------------------------
    def settings(self, program_id: UUID) -> dict[str, Any] | None:
        found = self.conn.execute(select(S.c.settings).where(S.c.program_id == program_id)).scalar()
        return dict(found) if found is not None else None

    def save_settings(self, program_id: UUID, settings: dict[str, Any], now: datetime) -> None:
        stmt = self._insert(S).values(program_id=program_id, settings=settings, updated_at=now)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=[S.c.program_id],
                                                     set_={"settings": settings, "updated_at": now}))  # fmt: skip

    def templates(self, program_id: UUID, trigger: str | None = None) -> list[dict[str, Any]]:
        query = select(TPL).where(TPL.c.program_id == program_id)
        if trigger is not None:
            query = query.where(TPL.c.trigger == trigger)
        return [_row(r) for r in self.conn.execute(query.order_by(TPL.c.trigger, TPL.c.channel, TPL.c.locale))]

    def template(self, program_id: UUID, trigger: str, channel: str, locale: str) -> dict[str, Any] | None:
        found = self.conn.execute(select(TPL).where(TPL.c.program_id == program_id, TPL.c.trigger == trigger,
                                                    TPL.c.channel == channel, TPL.c.locale == locale)).first()  # fmt: skip
        return _row(found) if found else None

    def save_template(self, row: dict[str, Any]) -> None:
        keys = ("program_id", "trigger", "channel", "locale")
        stmt = self._insert(TPL).values(**row)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=[TPL.c[k] for k in keys],
                                                     set_={k: v for k, v in row.items() if k not in keys}))  # fmt: skip

    def delete_template(self, program_id: UUID, trigger: str, channel: str, locale: str) -> bool:
        done = self.conn.execute(delete(TPL).where(TPL.c.program_id == program_id, TPL.c.trigger == trigger,
                                                   TPL.c.channel == channel, TPL.c.locale == locale))  # fmt: skip
        return bool(done.rowcount)

    # -- messages --------------------------------------------------------------------------------------
    def add_message(self, row: dict[str, Any]) -> bool:
        """Insert unless a message with this (channel, dedupe key) exists: True if inserted. Two workers racing
        on the same key both return, one of them with False (the unique index decides)."""
        stmt = self._insert(M).values(**row).on_conflict_do_nothing(
            index_elements=[M.c.program_id, M.c.channel, M.c.dedupe_key]).returning(M.c.id)  # fmt: skip
        return self.conn.execute(stmt).first() is not None  # (rowcount is not reliable for ON CONFLICT here)

    def marketing_since(self, program_id: UUID, member_id: UUID, since: datetime) -> int:
        """Marketing messages queued or sent to the member (email and push) since a time: the weekly cap."""
        return int(self.conn.execute(
            select(func.count()).select_from(M).where(
                M.c.program_id == program_id, M.c.member_id == member_id, M.c.purpose == "marketing",
                M.c.channel != "inbox", M.c.status.in_(("queued", "sent")), M.c.created_at >= since)
        ).scalar() or 0)  # fmt: skip

    def claim_due(self, now: datetime, limit: int, owner: str, lease_until: datetime,
                  program_id: UUID | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Due queued messages whose lease is free or lapsed, leased to `owner` with the attempt counted. The
        conditional update makes the claim exclusive on SQLite too; PostgreSQL also skips locked rows."""
        free = or_(M.c.lease_until.is_(None), M.c.lease_until <= now)
        query = (select(M.c.program_id, M.c.id).where(M.c.status == "queued", M.c.not_before <= now, free)
                 .order_by(M.c.not_before).limit(limit).with_for_update(skip_locked=True))  # fmt: skip
        if program_id is not None:
            query = query.where(M.c.program_id == program_id)
        claimed = []
        for pid, message_id in [(r.program_id, r.id) for r in self.conn.execute(query)]:
            done = self.conn.execute(
                update(M).where(M.c.program_id == pid, M.c.id == message_id, M.c.status == "queued", free)
                .values(lease_owner=owner, lease_until=lease_until, attempts=M.c.attempts + 1))  # fmt: skip
            if done.rowcount:
                claimed.append(_row(self.conn.execute(select(M).where(M.c.program_id == pid, M.c.id == message_id))
                                    .one()))  # fmt: skip
        return claimed

    def finish(self, program_id: UUID, message_id: UUID, owner: str, values: dict[str, Any]) -> bool:
        """Record a send's outcome if this worker still holds the lease."""
        done = self.conn.execute(
            update(M).where(M.c.program_id == program_id, M.c.id == message_id, M.c.lease_owner == owner,
                            M.c.status == "queued")
            .values(lease_owner=None, lease_until=None, **values))  # fmt: skip
        return bool(done.rowcount)

    def message(self, program_id: UUID, message_id: UUID, *, lock: bool = False) -> dict[str, Any] | None:
        query = select(M).where(M.c.program_id == program_id, M.c.id == message_id)
        found = self.conn.execute(query.with_for_update() if lock else query).first()
        return _row(found) if found else None

    def update_message(self, program_id: UUID, message_id: UUID, values: dict[str, Any]) -> None:
        self.conn.execute(update(M).where(M.c.program_id == program_id, M.c.id == message_id).values(**values))

    def messages(self, program_id: UUID, *, member_id: UUID | None = None, status: str | None = None,
                 channel: str | None = None, trigger: str | None = None, unread: bool = False,
                 limit: int = 50) -> list[dict[str, Any]]:  # fmt: skip
        query = select(M).where(M.c.program_id == program_id)
        for column, value in ((M.c.member_id, member_id), (M.c.status, status), (M.c.channel, channel),
                              (M.c.trigger, trigger)):  # fmt: skip
            if value is not None:
                query = query.where(column == value)
        if unread:
            query = query.where(M.c.read_at.is_(None))
        query = query.order_by(M.c.created_at.desc(), M.c.id.desc()).limit(limit)
        return [_row(r) for r in self.conn.execute(query)]

    def unread_count(self, program_id: UUID, member_id: UUID) -> int:
        return int(self.conn.execute(
            select(func.count()).select_from(M).where(M.c.program_id == program_id, M.c.member_id == member_id,
                                                      M.c.channel == "inbox", M.c.read_at.is_(None))
        ).scalar() or 0)  # fmt: skip

    # -- double opt-in and tokens ----------------------------------------------------------------------
    def optin(self, program_id: UUID, member_id: UUID, channel: str) -> dict[str, Any] | None:
        found = self.conn.execute(select(OPT).where(OPT.c.program_id == program_id, OPT.c.member_id == member_id,
                                                  OPT.c.channel == channel)).first()  # fmt: skip
        return _row(found) if found else None

    def optins(self, program_id: UUID, member_id: UUID) -> list[dict[str, Any]]:
        found = self.conn.execute(select(OPT).where(OPT.c.program_id == program_id, OPT.c.member_id == member_id))
        return [_row(r) for r in found]

    def save_optin(self, row: dict[str, Any]) -> None:
        keys = ("program_id", "member_id", "channel")
        stmt = self._insert(OPT).values(**row)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=[OPT.c[k] for k in keys],
                                                     set_={k: v for k, v in row.items() if k not in keys}))  # fmt: skip

    def delete_optin(self, program_id: UUID, member_id: UUID, channel: str) -> None:
        self.conn.execute(delete(OPT).where(OPT.c.program_id == program_id, OPT.c.member_id == member_id,
                                          OPT.c.channel == channel))  # fmt: skip

    def add_token(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(TOK).values(**row))

    def token(self, program_id: UUID, token_id: str) -> dict[str, Any] | None:
        found = self.conn.execute(select(TOK).where(TOK.c.program_id == program_id, TOK.c.id == token_id)).first()
        return _row(found) if found else None

    def use_token(self, program_id: UUID, token_id: str, now: datetime) -> None:
        self.conn.execute(update(TOK).where(TOK.c.program_id == program_id, TOK.c.id == token_id,
                                            TOK.c.used_at.is_(None)).values(used_at=now))  # fmt: skip

    # -- daily digest ----------------------------------------------------------------------------------
    def add_to_digest(self, program_id: UUID, member_id: UUID, day: date, points: int, now: datetime) -> None:
        """Atomic running sum (concurrent relays add, never overwrite)."""
        stmt = self._insert(DG).values(program_id=program_id, member_id=member_id, day=day, points=points, count=1,
                                       updated_at=now)  # fmt: skip
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=[DG.c.program_id, DG.c.member_id, DG.c.day],
            set_={"points": DG.c.points + points, "count": DG.c.count + 1, "updated_at": now}))  # fmt: skip

    def digests_before(self, program_id: UUID, day: date, limit: int) -> list[dict[str, Any]]:
        found = self.conn.execute(select(DG).where(DG.c.program_id == program_id, DG.c.day < day)
                                  .order_by(DG.c.day, DG.c.member_id).limit(limit))  # fmt: skip
        return [_row(r) for r in found]

    def remove_digest(self, program_id: UUID, member_id: UUID, day: date) -> None:
        self.conn.execute(delete(DG).where(DG.c.program_id == program_id, DG.c.member_id == member_id,
                                           DG.c.day == day))  # fmt: skip

    # -- what the job scans ----------------------------------------------------------------------------
    def expiring_lots(self, program_id: UUID, now: datetime, until: datetime, after: UUID | None,
                      limit: int) -> list[dict[str, Any]]:  # fmt: skip
        L = t.lots
        query = (select(L.c.id, L.c.member_id, L.c.remaining, L.c.expires_at)
                 .where(L.c.program_id == program_id, L.c.remaining > 0, L.c.expires_at > now,
                        L.c.expires_at <= until).order_by(L.c.id).limit(limit))  # fmt: skip
        if after is not None:
            query = query.where(L.c.id > after)
        return [_row(r) for r in self.conn.execute(query)]

    def lots_became_available(self, program_id: UUID, since: datetime, now: datetime, after: UUID | None,
                              limit: int) -> list[dict[str, Any]]:  # fmt: skip
        """Lots that were pending and became available in (since, now] and still hold points."""
        L, X = t.lots, t.transfers
        query = (select(L.c.id, L.c.member_id, L.c.remaining, L.c.available_at)
                 .join(X, and_(X.c.program_id == L.c.program_id, X.c.id == L.c.source_transfer_id))
                 .where(L.c.program_id == program_id, L.c.remaining > 0, L.c.available_at > since,
                        L.c.available_at <= now, L.c.available_at > X.c.created_at)
                 .order_by(L.c.id).limit(limit))  # fmt: skip
        if after is not None:
            query = query.where(L.c.id > after)
        return [_row(r) for r in self.conn.execute(query)]

    def active_members(self, program_id: UUID, after: UUID | None, limit: int) -> list[UUID]:
        Mb = t.members
        query = select(Mb.c.id).where(Mb.c.program_id == program_id, Mb.c.status == "active")
        if after is not None:
            query = query.where(Mb.c.id > after)
        return list(self.conn.execute(query.order_by(Mb.c.id).limit(limit)).scalars())

    def flows(self, program_id: UUID, member_id: UUID, start: datetime, end: datetime) -> tuple[int, int]:
        """Points credited (every kind) and points redeemed or paid in [start, end) on the member's account."""
        A, P, X = t.accounts, t.postings, t.transfers
        rows = list(self.conn.execute(
            select(X.c.kind, P.c.amount)
            .join(P, and_(P.c.program_id == X.c.program_id, P.c.transfer_id == X.c.id))
            .join(A, and_(A.c.program_id == P.c.program_id, A.c.id == P.c.account_id))
            .where(X.c.program_id == program_id, A.c.member_id == member_id, A.c.kind == "member",
                   P.c.unit == POINTS, X.c.occurred_at >= start, X.c.occurred_at < end)))  # fmt: skip
        earned = sum(int(a) for kind, a in rows if a > 0 and kind == "earn")
        spent = -sum(int(a) for kind, a in rows if a < 0 and kind in ("redeem", "pay"))
        return earned, spent
