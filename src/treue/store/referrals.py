"""Referral codes, referrals, the coupons rules grant, moderation of social events (issue 7)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from treue.domain.referrals import ReferralSettings, parse_settings
from treue.store import tables as t
from treue.store.batch import InsertBatch
from treue.store.program_settings import ProgramSettingsAccess, SettingsRow

NOT_REJECTED = ("pending", "completed", "expired", "reversed")


_SETTINGS: SettingsRow[ReferralSettings] = SettingsRow(t.referral_settings, parse_settings)


class Referrals(ProgramSettingsAccess[ReferralSettings]):
    SETTINGS = _SETTINGS  # settings(), save_settings()

    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch

    # -- codes -------------------------------------------------------------------------------------------
    def code_of(self, program_id: UUID, member_id: UUID) -> dict[str, Any] | None:
        c = t.referral_codes
        row = self.conn.execute(
            select(c).where(c.c.program_id == program_id, c.c.member_id == member_id, c.c.active.is_(True))
        ).first()
        return dict(row._mapping) if row else None

    def add_code(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.referral_codes).values(**row))

    def retire_codes(self, program_id: UUID, member_id: UUID) -> None:
        c = t.referral_codes
        self.conn.execute(
            update(c).where(c.c.program_id == program_id, c.c.member_id == member_id).values(active=False)
        )

    def by_code(self, program_id: UUID, code: str) -> dict[str, Any] | None:
        """The code with its member's identity (status, email, phone, external reference) and digests."""
        c, m = t.referral_codes, t.members
        row = self.conn.execute(
            select(c.c.code, c.c.member_id, c.c.active, c.c.device_hash, c.c.payment_hash, m.c.status, m.c.email,
                   m.c.phone, m.c.external_ref)
            .join(m, and_(m.c.program_id == c.c.program_id, m.c.id == c.c.member_id))
            .where(c.c.program_id == program_id, c.c.code == code)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    # -- the fraud screen's counts -----------------------------------------------------------------------
    def referee_known(self, program_id: UUID, new_member: UUID, email: str | None, phone: str | None,
                      email_key: str | None, referrer: UUID) -> bool:  # fmt: skip
        """Another member (not the referrer: that is the household check) has this email address or phone, or an
        earlier referee had this canonical email."""
        m, r = t.members, t.referrals
        same = [
            c for c in (m.c.email == email if email else None, m.c.phone == phone if phone else None) if c is not None
        ]
        if same:
            hit = self.conn.execute(
                select(m.c.id).where(m.c.program_id == program_id, m.c.id.not_in([new_member, referrer]), or_(*same))
                .limit(1)
            ).first()  # fmt: skip
            if hit is not None:
                return True
        if email_key:
            hit = self.conn.execute(
                select(r.c.id).where(r.c.program_id == program_id, r.c.email_key == email_key,
                                     r.c.referee_id != new_member).limit(1)
            ).first()  # fmt: skip
            return hit is not None
        return False

    def velocity(self, program_id: UUID, ip_hash: str | None, device_hash: str | None, since: datetime) -> int:
        """Referrals (of any outcome) recorded from this IP address or this device since `since`: the larger."""
        r = t.referrals
        most = 0
        for column, value in ((r.c.ip_hash, ip_hash), (r.c.device_hash, device_hash)):
            if value:
                count = self.conn.execute(
                    select(func.count()).select_from(r)
                    .where(r.c.program_id == program_id, column == value, r.c.created_at >= since)
                ).scalar_one()  # fmt: skip
                most = max(most, int(count))
        return most

    def referrer_count(self, program_id: UUID, referrer_id: UUID, since: datetime | None) -> int:
        r = t.referrals
        query = (
            select(func.count())
            .select_from(r)
            .where(r.c.program_id == program_id, r.c.referrer_id == referrer_id, r.c.status.in_(NOT_REJECTED))
        )
        if since is not None:
            query = query.where(r.c.created_at >= since)
        return int(self.conn.execute(query).scalar_one())

    # -- referrals ---------------------------------------------------------------------------------------
    def add(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.referrals).values(**row))

    def get(self, program_id: UUID, referral_id: UUID) -> dict[str, Any] | None:
        r = t.referrals
        row = self.conn.execute(select(r).where(r.c.program_id == program_id, r.c.id == referral_id)).first()
        return dict(row._mapping) if row else None

    def pending_of_referee(self, program_id: UUID, referee_id: UUID) -> dict[str, Any] | None:
        """The one query a purchase of a configured programme costs: is this member a pending referee?
        (The unique index on (program_id, referee_id) for referrals that were not rejected serves it.)"""
        r = t.referrals
        row = self.conn.execute(
            select(r).where(r.c.program_id == program_id, r.c.referee_id == referee_id, r.c.status != "rejected")
        ).first()
        return dict(row._mapping) if row is not None and row.status == "pending" else None

    def of_referee(self, program_id: UUID, referee_id: UUID) -> dict[str, Any] | None:
        r = t.referrals
        row = self.conn.execute(
            select(r).where(r.c.program_id == program_id, r.c.referee_id == referee_id)
            .order_by(r.c.created_at.desc()).limit(1)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def completed_by_purchase(self, program_id: UUID, purchase_id: UUID) -> dict[str, Any] | None:
        r = t.referrals
        row = self.conn.execute(
            select(r).where(r.c.program_id == program_id, r.c.purchase_id == purchase_id, r.c.status == "completed")
        ).first()
        return dict(row._mapping) if row else None

    def set_status(self, program_id: UUID, referral_id: UUID, expected: str, values: dict[str, Any]) -> bool:
        """Move a referral on from `expected` (a conditional UPDATE: of two concurrent moves one wins)."""
        r = t.referrals
        done = self.conn.execute(
            update(r)
            .where(r.c.program_id == program_id, r.c.id == referral_id, r.c.status == expected)
            .values(**values)
        ).rowcount
        return bool(done)

    def due_to_expire(self, program_id: UUID | None, now: datetime, limit: int) -> list[tuple[UUID, UUID]]:
        r = t.referrals
        query = select(r.c.program_id, r.c.id).where(r.c.status == "pending", r.c.expires_at <= now)
        if program_id is not None:
            query = query.where(r.c.program_id == program_id)
        return [(row.program_id, row.id) for row in self.conn.execute(query.order_by(r.c.expires_at).limit(limit))]

    def of_referrer(self, program_id: UUID, referrer_id: UUID) -> list[dict[str, Any]]:
        r = t.referrals
        rows = self.conn.execute(
            select(r).where(r.c.program_id == program_id, r.c.referrer_id == referrer_id).order_by(r.c.created_at)
        )
        return [dict(row._mapping) for row in rows]

    def listing(self, program_id: UUID, status: str | None, limit: int) -> list[dict[str, Any]]:
        r = t.referrals
        query = select(r).where(r.c.program_id == program_id)
        if status:
            query = query.where(r.c.status == status)
        return [dict(row._mapping) for row in self.conn.execute(query.order_by(r.c.created_at.desc()).limit(limit))]

    def counts(self, program_id: UUID, referrer_id: UUID | None = None) -> list[dict[str, Any]]:
        """(status, reason, count, reward points) for the programme, or for one referrer."""
        r = t.referrals
        query = (
            select(r.c.status, r.c.reason, func.count().label("n"), func.sum(r.c.reward_points).label("points"))
            .where(r.c.program_id == program_id)
            .group_by(r.c.status, r.c.reason)
        )
        if referrer_id is not None:
            query = query.where(r.c.referrer_id == referrer_id)
        return [dict(row._mapping) for row in self.conn.execute(query)]

    def grant_cost(self, program_id: UUID, source_prefix: str, member_id: UUID | None = None) -> int:
        """What the coupons granted for referrals cost in points (their rewards' prices)."""
        g, red = t.reward_grants, t.redemptions
        query = (
            select(func.coalesce(func.sum(red.c.cost_points), 0))
            .select_from(g.join(red, and_(red.c.program_id == g.c.program_id, red.c.id == g.c.redemption_id)))
            .where(g.c.program_id == program_id, g.c.source.like(source_prefix + "%"), g.c.status == "granted")
        )
        if member_id is not None:
            query = query.where(g.c.member_id == member_id)
        return int(self.conn.execute(query).scalar_one())

    # -- grants ------------------------------------------------------------------------------------------
    def grants_of(self, program_id: UUID, member_id: UUID, source: str) -> list[dict[str, Any]]:
        g = t.reward_grants
        rows = self.conn.execute(
            select(g).where(g.c.program_id == program_id, g.c.member_id == member_id, g.c.source == source)
            .order_by(g.c.rule, g.c.code, g.c.seq)
        )  # fmt: skip
        return [dict(row._mapping) for row in rows]

    def add_grants(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(t.reward_grants), rows)

    def cancel_grant(self, program_id: UUID, grant_id: UUID, now: datetime) -> bool:
        g = t.reward_grants
        done = self.conn.execute(
            update(g).where(g.c.program_id == program_id, g.c.id == grant_id, g.c.status == "granted")
            .values(status="cancelled", cancelled_at=now)
        ).rowcount  # fmt: skip
        return bool(done)

    def set_redemption_status(self, program_id: UUID, redemption_id: UUID, status: str, now: datetime) -> None:
        red = t.redemptions
        self.conn.execute(
            update(red).where(red.c.program_id == program_id, red.c.id == redemption_id)
            .values(status=status, cancelled_at=now)
        )  # fmt: skip

    # -- moderation --------------------------------------------------------------------------------------
    def add_moderation(self, row: dict[str, Any]) -> None:
        """Queued after the event row it names (written together with the next flush or the commit)."""
        self.batch.add(t.event_moderations, [row])

    def moderation(self, program_id: UUID, event_id: UUID) -> dict[str, Any] | None:
        e = t.event_moderations
        row = self.conn.execute(select(e).where(e.c.program_id == program_id, e.c.event_id == event_id)).first()
        return dict(row._mapping) if row else None

    def decide(self, program_id: UUID, event_id: UUID, values: dict[str, Any]) -> bool:
        e = t.event_moderations
        done = self.conn.execute(
            update(e).where(e.c.program_id == program_id, e.c.event_id == event_id, e.c.status == "pending")
            .values(**values)
        ).rowcount  # fmt: skip
        return bool(done)

    def pending_moderations(self, program_id: UUID, limit: int) -> list[dict[str, Any]]:
        e, ev = t.event_moderations, t.events
        rows = self.conn.execute(
            select(e, ev.c.name, ev.c.attributes, ev.c.occurred_at)
            .join(ev, and_(ev.c.program_id == e.c.program_id, ev.c.id == e.c.event_id))
            .where(e.c.program_id == program_id, e.c.status == "pending")
            .order_by(e.c.created_at).limit(limit)
        )  # fmt: skip
        return [dict(row._mapping) for row in rows]

    # -- lots (reversals and moderation) -----------------------------------------------------------------
    def lots_of(self, program_id: UUID, transfer_ids: Sequence[UUID]) -> list[UUID]:
        lots = t.lots
        if not transfer_ids:
            return []
        rows = self.conn.execute(
            select(lots.c.id).where(lots.c.program_id == program_id, lots.c.source_transfer_id.in_(transfer_ids))
        )
        return [row.id for row in rows]

    def release_lot(self, program_id: UUID, lot_id: UUID, available_at: datetime) -> None:
        """A moderated event was approved: its held lot becomes available at `available_at` (the only change
        of a lot's availability; amounts, remainders and postings stay as they are)."""
        lots = t.lots
        self.conn.execute(
            update(lots).where(lots.c.program_id == program_id, lots.c.id == lot_id).values(available_at=available_at)
        )

    def decide_reverse(self, program_id: UUID, event_id: UUID, transfer_id: UUID) -> None:
        e = t.event_moderations
        self.conn.execute(
            update(e).where(e.c.program_id == program_id, e.c.event_id == event_id)
            .values(reverse_transfer_id=transfer_id)
        )  # fmt: skip
