"""Webhook endpoints, their deliveries (with claim leases) and the append-only attempt log."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from treue.domain.webhooks import FAILED, PENDING, SUCCEEDED
from treue.store import tables as t

E, D, A = t.webhook_endpoints, t.webhook_deliveries, t.webhook_attempts


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


class Webhooks:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- endpoints -------------------------------------------------------------------------------------
    def add_endpoint(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(E).values(**row))

    def endpoint(self, program_id: UUID, endpoint_id: UUID, *, lock: bool = False) -> dict[str, Any] | None:
        query = select(E).where(E.c.program_id == program_id, E.c.id == endpoint_id)
        found = self.conn.execute(query.with_for_update() if lock else query).first()
        return _row(found) if found else None

    def endpoints(self, program_id: UUID, *, enabled_only: bool = False) -> list[dict[str, Any]]:
        query = select(E).where(E.c.program_id == program_id)
        if enabled_only:
            query = query.where(E.c.enabled.is_(True))
        return [_row(r) for r in self.conn.execute(query.order_by(E.c.created_at, E.c.id))]

    def update_endpoint(self, program_id: UUID, endpoint_id: UUID, values: dict[str, Any]) -> None:
        self.conn.execute(update(E).where(E.c.program_id == program_id, E.c.id == endpoint_id).values(**values))

    # -- deliveries ------------------------------------------------------------------------------------
    def add_deliveries(self, rows: list[dict[str, Any]]) -> int:
        """Insert the deliveries that do not exist yet (by endpoint and message): a repeated fan-out adds none."""
        added = 0
        for row in rows:
            exists = self.conn.execute(
                select(D.c.id).where(D.c.program_id == row["program_id"], D.c.endpoint_id == row["endpoint_id"],
                                     D.c.message_id == row["message_id"])
            ).first()  # fmt: skip
            if exists is None:
                self.conn.execute(insert(D).values(**row))
                added += 1
        return added

    def claim_due(self, now: datetime, limit: int, owner: str, lease_until: datetime,
                  program_id: UUID | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Due pending deliveries of enabled endpoints whose lease is free or lapsed; each is leased to `owner`
        and its attempt counted now, so a worker killed mid-request leaves a numbered gap, never a duplicate.
        On PostgreSQL rows another worker is claiming are skipped (SKIP LOCKED)."""
        query = (
            select(D.c.program_id, D.c.id)
            .join(E, and_(E.c.program_id == D.c.program_id, E.c.id == D.c.endpoint_id))
            .where(D.c.status == PENDING, D.c.next_attempt_at <= now, E.c.enabled.is_(True),
                   or_(D.c.lease_until.is_(None), D.c.lease_until <= now))
            .order_by(D.c.next_attempt_at)
            .limit(limit)
            .with_for_update(of=D, skip_locked=True)
        )  # fmt: skip
        if program_id is not None:
            query = query.where(D.c.program_id == program_id)
        keys = [(r.program_id, r.id) for r in self.conn.execute(query)]
        claimed = []
        for program_id, delivery_id in keys:
            self.conn.execute(
                update(D).where(D.c.program_id == program_id, D.c.id == delivery_id)
                .values(lease_owner=owner, lease_until=lease_until, attempts=D.c.attempts + 1)
            )  # fmt: skip
            found = self.conn.execute(
                select(D, E.c.url, E.c.secret)
                .join(E, and_(E.c.program_id == D.c.program_id, E.c.id == D.c.endpoint_id))
                .where(D.c.program_id == program_id, D.c.id == delivery_id)
            ).one()  # fmt: skip
            claimed.append(_row(found))
        return claimed

    def delivery(self, program_id: UUID, delivery_id: UUID, *, lock: bool = False) -> dict[str, Any] | None:
        query = select(D).where(D.c.program_id == program_id, D.c.id == delivery_id)
        found = self.conn.execute(query.with_for_update() if lock else query).first()
        return _row(found) if found else None

    def finish(self, program_id: UUID, delivery_id: UUID, owner: str, values: dict[str, Any]) -> bool:
        """Record the outcome if this worker still holds the lease (else another worker has taken over)."""
        result = self.conn.execute(
            update(D).where(D.c.program_id == program_id, D.c.id == delivery_id, D.c.lease_owner == owner,
                            D.c.status == PENDING)
            .values(lease_owner=None, lease_until=None, **values)
        )  # fmt: skip
        return bool(result.rowcount)

    def requeue(self, program_id: UUID, endpoint_id: UUID, delivery_ids: list[UUID] | None,
                failed_since: datetime | None, now: datetime) -> int:  # fmt: skip
        """Manual redelivery: the chosen finished deliveries are pending again from now (a fresh schedule)."""
        query = update(D).where(D.c.program_id == program_id, D.c.endpoint_id == endpoint_id,
                                D.c.status.in_((SUCCEEDED, FAILED)))  # fmt: skip
        if delivery_ids is not None:
            query = query.where(D.c.id.in_(delivery_ids))
        if failed_since is not None:
            query = query.where(D.c.status == FAILED, D.c.created_at >= failed_since)
        result = self.conn.execute(query.values(status=PENDING, next_attempt_at=now, lease_owner=None,
                                                lease_until=None, delivered_at=None))  # fmt: skip
        return int(result.rowcount)

    def deliveries(self, program_id: UUID, endpoint_id: UUID, status: str | None, limit: int) -> list[dict[str, Any]]:
        query = select(D).where(D.c.program_id == program_id, D.c.endpoint_id == endpoint_id)
        if status:
            query = query.where(D.c.status == status)
        rows = [_row(r) for r in self.conn.execute(query.order_by(D.c.created_at.desc(), D.c.id.desc()).limit(limit))]
        if not rows:
            return rows
        attempts: dict[UUID, list[dict[str, Any]]] = {}
        found = self.conn.execute(
            select(A).where(A.c.program_id == program_id, A.c.delivery_id.in_([r["id"] for r in rows]))
            .order_by(A.c.delivery_id, A.c.number)
        )  # fmt: skip
        for attempt in found:
            attempts.setdefault(attempt.delivery_id, []).append(_row(attempt))
        for row in rows:
            row["attempt_log"] = attempts.get(row["id"], [])
        return rows

    def count(self, program_id: UUID, endpoint_id: UUID) -> dict[str, int]:
        found = self.conn.execute(
            select(D.c.status, func.count()).where(D.c.program_id == program_id, D.c.endpoint_id == endpoint_id)
            .group_by(D.c.status)
        )  # fmt: skip
        return {status: int(n) for status, n in found}

    # -- attempts --------------------------------------------------------------------------------------
    def add_attempt(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(A).values(**row))
