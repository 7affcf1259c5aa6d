"""Fraud controls: velocity counters, anomaly alerts, held transactions (issue 10)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from treue.domain.fraud import Action, FraudSettings, Tally, Total, Window, parse_settings
from treue.domain.ledger import POINTS, TransferKind
from treue.store import tables as t
from treue.store.batch import InsertBatch
from treue.store.program_settings import ProgramSettingsAccess, SettingsRow

_SETTINGS: SettingsRow[FraudSettings] = SettingsRow(t.fraud_settings, parse_settings)


class Fraud(ProgramSettingsAccess[FraudSettings]):
    SETTINGS = _SETTINGS  # settings(), save_settings()

    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch

    # -- counters ----------------------------------------------------------------------------------------
    def count(self, program_id: UUID, tallies: Sequence[Tally], points: int) -> dict[Tally, Total]:
        """Add one action of `points` to every counter row named, and return each row's new totals: one
        INSERT ... ON CONFLICT DO UPDATE ... RETURNING. The upsert takes each row's lock until commit, so a
        concurrent request for the same subject waits here and then sees this one's count (rows in the fixed
        order of `tallies`: no deadlock)."""
        if not tallies:
            return {}
        c = t.fraud_counters
        rows = [{"program_id": program_id, "action": x.action.value, "subject": x.subject, "span": x.window.value,
                 "window_start": x.start, "hits": 1, "points": points} for x in tallies]  # fmt: skip
        make = postgres_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        values = make(c).values(rows)
        statement = values.on_conflict_do_update(
            index_elements=[c.c.program_id, c.c.action, c.c.subject, c.c.span, c.c.window_start],
            set_={"hits": c.c.hits + values.excluded.hits, "points": c.c.points + values.excluded.points},
        ).returning(c.c.action, c.c.subject, c.c.span, c.c.window_start, c.c.hits, c.c.points)
        found = {}
        for row in self.conn.execute(statement):
            key = Tally(Action(row.action), row.subject, Window(row.span), row.window_start)
            found[key] = Total(row.hits, row.points)
        return found

    def prune_counters(self, program_id: UUID, before: datetime) -> int:
        c = t.fraud_counters
        return self.conn.execute(delete(c).where(c.c.program_id == program_id, c.c.window_start < before)).rowcount

    # -- holds -------------------------------------------------------------------------------------------
    def add_hold(self, row: dict[str, Any]) -> None:
        """Queued after the earn transfer it names (written with the next flush or the commit)."""
        self.batch.add(t.fraud_holds, [row])

    def hold(self, program_id: UUID, hold_id: UUID) -> dict[str, Any] | None:
        h = t.fraud_holds
        row = self.conn.execute(select(h).where(h.c.program_id == program_id, h.c.id == hold_id)).first()
        return dict(row._mapping) if row else None

    def decide(self, program_id: UUID, hold_id: UUID, values: dict[str, Any]) -> bool:
        """Record a decision if none was made yet (a conditional UPDATE: two deciders cannot both succeed)."""
        h = t.fraud_holds
        done = self.conn.execute(
            update(h).where(h.c.program_id == program_id, h.c.id == hold_id, h.c.status == "pending").values(**values)
        ).rowcount
        return bool(done)

    def decide_reverse(self, program_id: UUID, hold_id: UUID, transfer_id: UUID) -> None:
        h = t.fraud_holds
        self.conn.execute(
            update(h).where(h.c.program_id == program_id, h.c.id == hold_id).values(reverse_transfer_id=transfer_id)
        )

    def holds(self, program_id: UUID, status: str | None, limit: int) -> list[dict[str, Any]]:
        h, m = t.fraud_holds, t.members
        query = (
            select(h, m.c.card_number, m.c.email, m.c.first_name, m.c.last_name)
            .join(m, and_(m.c.program_id == h.c.program_id, m.c.id == h.c.member_id))
            .where(h.c.program_id == program_id)
        )  # fmt: skip
        if status is not None:
            query = query.where(h.c.status == status)
        rows = self.conn.execute(query.order_by(h.c.created_at.desc(), h.c.id).limit(limit))
        return [dict(row._mapping) for row in rows]

    def clear_purchase_points(self, program_id: UUID, purchase_id: UUID) -> None:
        """A rejected hold leaves nothing of the purchase's earn: a later refund must not take points again."""
        p = t.purchases
        self.conn.execute(update(p).where(p.c.program_id == program_id, p.c.id == purchase_id).values(points_earned=0))

    # -- alerts ------------------------------------------------------------------------------------------
    def add_alert(self, row: dict[str, Any]) -> bool:
        """Insert unless the same kind, subject and period was raised already; True if inserted."""
        a = t.fraud_alerts
        make = postgres_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        statement = (
            make(a)
            .values(**row)
            .on_conflict_do_nothing(index_elements=[a.c.program_id, a.c.kind, a.c.subject, a.c.period])
        )
        # RETURNING, not rowcount: psycopg does not count the rows of INSERT ... ON CONFLICT DO NOTHING reliably
        return self.conn.execute(statement.returning(a.c.id)).first() is not None

    def alert(self, program_id: UUID, alert_id: UUID) -> dict[str, Any] | None:
        a = t.fraud_alerts
        row = self.conn.execute(select(a).where(a.c.program_id == program_id, a.c.id == alert_id)).first()
        return dict(row._mapping) if row else None

    def acknowledge(self, program_id: UUID, alert_id: UUID, values: dict[str, Any]) -> bool:
        a = t.fraud_alerts
        done = self.conn.execute(
            update(a).where(a.c.program_id == program_id, a.c.id == alert_id, a.c.status == "open").values(**values)
        ).rowcount
        return bool(done)

    def alerts(self, program_id: UUID, status: str | None, limit: int) -> list[dict[str, Any]]:
        a = t.fraud_alerts
        query = select(a).where(a.c.program_id == program_id)
        if status is not None:
            query = query.where(a.c.status == status)
        rows = self.conn.execute(query.order_by(a.c.raised_at.desc(), a.c.id).limit(limit))
        return [dict(row._mapping) for row in rows]

    # -- the scan ----------------------------------------------------------------------------------------
    def claim_scan(self, program_id: UUID, period: str, now: datetime) -> bool:
        """Claim the scan of one programme for one period: two workers never scan the same hour twice."""
        s = t.fraud_scans
        make = postgres_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        statement = make(s).values(program_id=program_id, period=period, scanned_at=now, alerts=0)
        return self.conn.execute(statement.on_conflict_do_nothing().returning(s.c.period)).first() is not None

    def finish_scan(self, program_id: UUID, period: str, alerts: int) -> None:
        s = t.fraud_scans
        self.conn.execute(update(s).where(s.c.program_id == program_id, s.c.period == period).values(alerts=alerts))

    def programs_with_settings(self) -> list[UUID]:
        return [row.program_id for row in self.conn.execute(select(t.fraud_settings.c.program_id))]

    def redemptions_and_refunds(self, program_id: UUID, since: datetime,
                                refunds_since: datetime) -> dict[UUID, tuple[list[datetime], list[datetime]]]:  # fmt: skip
        """Per member: their redemptions since `since` and their refunds since `refunds_since` (the refund's
        purchase names the member)."""
        r, f, p = t.redemptions, t.refunds, t.purchases
        found: dict[UUID, tuple[list[datetime], list[datetime]]] = {}
        refunds = self.conn.execute(
            select(p.c.member_id, f.c.created_at)
            .join(p, and_(p.c.program_id == f.c.program_id, p.c.id == f.c.purchase_id))
            .where(f.c.program_id == program_id, f.c.created_at >= refunds_since, p.c.member_id.is_not(None))
        ).all()  # fmt: skip
        if not refunds:
            return found
        members = {row.member_id for row in refunds}
        for row in self.conn.execute(
            select(r.c.member_id, r.c.created_at)
            .where(r.c.program_id == program_id, r.c.created_at >= since, r.c.member_id.in_(members))
        ):  # fmt: skip
            found.setdefault(row.member_id, ([], []))[0].append(row.created_at)
        for row in refunds:
            if row.member_id in found:
                found[row.member_id][1].append(row.created_at)
        return found

    def referral_fingerprints(self, program_id: UUID, since: datetime, minimum: int) -> dict[tuple[str, str], int]:
        """Referrals per device, IP address and payment digest since `since`, where at least `minimum`."""
        r = t.referrals
        found = {}
        for kind, column in (("device", r.c.device_hash), ("ip", r.c.ip_hash), ("payment", r.c.payment_hash)):
            rows = self.conn.execute(
                select(column.label("digest"), func.count().label("n"))
                .where(r.c.program_id == program_id, r.c.created_at >= since, column.is_not(None))
                .group_by(column).having(func.count() >= minimum)
            )  # fmt: skip
            found.update({(kind, row.digest): row.n for row in rows})
        return found

    def points_earned(self, program_id: UUID, since: datetime, until: datetime) -> dict[UUID, int]:
        """Points each member earned (earn transfers recorded in [since, until)), from the earn's postings."""
        tr, po = t.transfers, t.postings
        rows = self.conn.execute(
            select(tr.c.member_id, func.sum(po.c.amount).label("points"))
            .join(po, and_(po.c.program_id == tr.c.program_id, po.c.transfer_id == tr.c.id))
            .where(tr.c.program_id == program_id, tr.c.kind == TransferKind.EARN.value,
                   tr.c.created_at >= since, tr.c.created_at < until, tr.c.member_id.is_not(None),
                   po.c.account_id == tr.c.member_id, po.c.unit == POINTS)
            .group_by(tr.c.member_id)
        )  # fmt: skip
        return {row.member_id: int(row.points) for row in rows}

    def holds_per_member(self, program_id: UUID, since: datetime) -> dict[UUID, int]:
        h = t.fraud_holds
        rows = self.conn.execute(
            select(h.c.member_id, func.count().label("n"))
            .where(h.c.program_id == program_id, h.c.created_at >= since).group_by(h.c.member_id)
        )  # fmt: skip
        return {row.member_id: row.n for row in rows}
