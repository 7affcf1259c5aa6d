"""Linked payment cards, card-transaction feeds and offers (issue 11)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from treue.domain.errors import CardNotFound, CardTokenTaken, OfferExists, OfferNotFound
from treue.store import tables as t
from treue.store.batch import InsertBatch, violates


class Cards:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn, self.batch = conn, batch

    # -- links ------------------------------------------------------------------------------------------------
    def active_link(self, program_id: UUID, token: str) -> dict[str, Any] | None:
        c = t.payment_cards
        row = self.conn.execute(
            select(c).where(c.c.program_id == program_id, c.c.token == token, c.c.unlinked_at.is_(None))
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def link(self, row: dict[str, Any]) -> None:
        """Insert a link; a concurrent link of the same token by anyone is refused by the partial unique index."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(t.payment_cards).values(**row))
        except IntegrityError as error:
            if violates(error, "uq_payment_cards_active_token") or "payment_cards.token" in str(error.orig):
                raise CardTokenTaken("this card is linked to a member already") from None
            raise

    def links_of(self, program_id: UUID, member_id: UUID, *, include_unlinked: bool) -> list[dict[str, Any]]:
        c = t.payment_cards
        query = select(c).where(c.c.program_id == program_id, c.c.member_id == member_id)
        if not include_unlinked:
            query = query.where(c.c.unlinked_at.is_(None))
        return [dict(row._mapping) for row in self.conn.execute(query.order_by(c.c.linked_at, c.c.id))]

    def get_link(self, program_id: UUID, member_id: UUID, card_id: UUID, *, lock: bool = False) -> dict[str, Any]:
        c = t.payment_cards
        query = select(c).where(c.c.program_id == program_id, c.c.member_id == member_id, c.c.id == card_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise CardNotFound(f"card {card_id} is not linked to this member", resource="card")
        return dict(row._mapping)

    def unlink(self, program_id: UUID, card_id: UUID, at: datetime, reason: str | None) -> None:
        c = t.payment_cards
        self.conn.execute(
            update(c).where(c.c.program_id == program_id, c.c.id == card_id, c.c.unlinked_at.is_(None))
            .values(unlinked_at=at, unlink_reason=reason)
        )  # fmt: skip

    def match(self, program_id: UUID, token: str, at: datetime) -> tuple[UUID, UUID] | None:
        """(card id, member id) of the link of `token` in force at `at`: linked_at <= at < unlinked_at."""
        c = t.payment_cards
        row = self.conn.execute(
            select(c.c.id, c.c.member_id)
            .where(c.c.program_id == program_id, c.c.token == token, c.c.linked_at <= at,
                   or_(c.c.unlinked_at.is_(None), c.c.unlinked_at > at))
            .order_by(c.c.linked_at.desc()).limit(1)
        ).first()  # fmt: skip
        return (row.id, row.member_id) if row else None

    # -- payments of purchases ---------------------------------------------------------------------------------
    def add_payment(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.purchase_payments).values(**row))

    def payment_of(self, program_id: UUID, purchase_id: UUID) -> dict[str, Any] | None:
        p = t.purchase_payments
        row = self.conn.execute(
            select(p).where(p.c.program_id == program_id, p.c.purchase_id == purchase_id)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    # -- merchants and feeds ------------------------------------------------------------------------------------
    def set_merchant(self, program_id: UUID, merchant_id: str, partner: str, now: datetime) -> None:
        m = t.card_merchants
        done = self.conn.execute(
            update(m).where(m.c.program_id == program_id, m.c.merchant_id == merchant_id).values(partner=partner)
        ).rowcount  # fmt: skip
        if not done:
            self.conn.execute(insert(m).values(program_id=program_id, merchant_id=merchant_id, partner=partner,
                                               created_at=now))  # fmt: skip

    def merchants(self, program_id: UUID) -> dict[str, str]:
        m = t.card_merchants
        rows = self.conn.execute(select(m.c.merchant_id, m.c.partner).where(m.c.program_id == program_id))
        return {row.merchant_id: row.partner for row in rows}

    def add_feed(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.card_feeds).values(**row))

    def set_feed_summary(self, program_id: UUID, feed_id: UUID, summary: dict[str, Any]) -> None:
        f = t.card_feeds
        self.conn.execute(update(f).where(f.c.program_id == program_id, f.c.id == feed_id).values(summary=summary))

    def feeds(self, program_id: UUID, limit: int = 50) -> list[dict[str, Any]]:
        f = t.card_feeds
        query = (
            select(f).where(f.c.program_id == program_id).order_by(f.c.imported_at.desc(), f.c.id.desc()).limit(limit)
        )
        return [dict(row._mapping) for row in self.conn.execute(query)]

    def feed_line(self, program_id: UUID, partner: str, code: str, kind: str) -> dict[str, Any] | None:
        f = t.card_feed_lines
        row = self.conn.execute(
            select(f).where(f.c.program_id == program_id, f.c.partner == partner, f.c.authorisation_code == code,
                            f.c.kind == kind)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def add_feed_line(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.card_feed_lines).values(**row))

    # -- offers -------------------------------------------------------------------------------------------------
    def add_offer(self, row: dict[str, Any]) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(t.offers).values(**row))
        except IntegrityError:
            raise OfferExists(f"an offer with the code {row['code']!r} exists already") from None

    def offer_exists(self, program_id: UUID, code: str) -> bool:
        o = t.offers
        return (
            self.conn.execute(select(o.c.code).where(o.c.program_id == program_id, o.c.code == code)).first()
            is not None
        )

    def offers(self, program_id: UUID) -> list[dict[str, Any]]:
        o = t.offers
        query = select(o).where(o.c.program_id == program_id).order_by(o.c.starts_at, o.c.code)
        return [dict(row._mapping) for row in self.conn.execute(query)]

    def get_offer(self, program_id: UUID, code: str) -> dict[str, Any]:
        o = t.offers
        row = self.conn.execute(select(o).where(o.c.program_id == program_id, o.c.code == code)).first()
        if row is None:
            raise OfferNotFound(f"no offer {code!r}", resource="offer")
        return dict(row._mapping)

    def activation(self, program_id: UUID, code: str, member_id: UUID, *, lock: bool = False) -> dict[str, Any] | None:
        a = t.offer_activations
        query = select(a).where(a.c.program_id == program_id, a.c.offer_code == code, a.c.member_id == member_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return dict(row._mapping) if row else None

    def activations_of(self, program_id: UUID, member_id: UUID) -> dict[str, dict[str, Any]]:
        a = t.offer_activations
        rows = self.conn.execute(select(a).where(a.c.program_id == program_id, a.c.member_id == member_id))
        return {row.offer_code: dict(row._mapping) for row in rows}

    def activate(self, program_id: UUID, code: str, member_id: UUID, at: datetime) -> None:
        a = t.offer_activations
        done = self.conn.execute(
            update(a).where(a.c.program_id == program_id, a.c.offer_code == code, a.c.member_id == member_id,
                            a.c.activated_at.is_(None)).values(activated_at=at)
        ).rowcount  # fmt: skip
        if not done and self.activation(program_id, code, member_id) is None:
            self.conn.execute(insert(a).values(program_id=program_id, offer_code=code, member_id=member_id,
                                               activated_at=at, uses=0))  # fmt: skip

    def show(self, program_id: UUID, codes: Sequence[str], member_id: UUID, at: datetime) -> None:
        """Note that these offers were shown to the member (the first time counts)."""
        a = t.offer_activations
        known = self.activations_of(program_id, member_id)
        for code in codes:
            if code not in known:
                self.conn.execute(insert(a).values(program_id=program_id, offer_code=code, member_id=member_id,
                                                   shown_at=at, uses=0))  # fmt: skip
            elif known[code]["shown_at"] is None:
                self.conn.execute(update(a).where(a.c.program_id == program_id, a.c.offer_code == code,
                                                  a.c.member_id == member_id).values(shown_at=at))  # fmt: skip

    def activated_offers(self, program_id: UUID, member_id: UUID, at: datetime) -> tuple[str, ...]:
        """Codes of the offers the member had activated by `at` (the rule context's member.offers)."""
        a = t.offer_activations
        rows = self.conn.execute(
            select(a.c.offer_code).where(a.c.program_id == program_id, a.c.member_id == member_id,
                                         a.c.activated_at <= at).order_by(a.c.offer_code)
        )  # fmt: skip
        return tuple(row.offer_code for row in rows)

    def use_offers(self, program_id: UUID, codes: Sequence[str], member_id: UUID, at: datetime) -> list[str]:
        """Count a use of each offer (its activation row, or a new one for an offer without activation); returns
        the codes that are offers."""
        a = t.offer_activations
        used = []
        for code in codes:
            done = self.conn.execute(
                update(a).where(a.c.program_id == program_id, a.c.offer_code == code, a.c.member_id == member_id)
                .values(uses=a.c.uses + 1, last_used_at=at)
            ).rowcount  # fmt: skip
            if not done:
                if not self.offer_exists(program_id, code):
                    continue
                self.conn.execute(insert(a).values(program_id=program_id, offer_code=code, member_id=member_id,
                                                   uses=1, last_used_at=at))  # fmt: skip
            self.conn.execute(
                update(a).where(and_(a.c.program_id == program_id, a.c.offer_code == code, a.c.member_id == member_id,
                                     a.c.first_used_at.is_(None))).values(first_used_at=at)
            )  # fmt: skip
            used.append(code)
        return used

    def use_counts(self, program_id: UUID) -> dict[str, tuple[int, int, int]]:
        """Per offer: (members shown, members activated, uses)."""
        a = t.offer_activations
        rows = self.conn.execute(
            select(a.c.offer_code, func.sum(case((a.c.shown_at.is_not(None), 1), else_=0)),
                   func.sum(case((a.c.activated_at.is_not(None), 1), else_=0)), func.sum(a.c.uses))
            .where(a.c.program_id == program_id).group_by(a.c.offer_code)
        )  # fmt: skip
        return {row[0]: (int(row[1] or 0), int(row[2] or 0), int(row[3] or 0)) for row in rows}

    def funnel(self, program_id: UUID, code: str) -> tuple[int, int, int, int]:
        """An offer's (members shown, members activated, members who used it, uses) - issue 8."""
        a = t.offer_activations
        row = self.conn.execute(
            select(func.sum(case((a.c.shown_at.is_not(None), 1), else_=0)),
                   func.sum(case((a.c.activated_at.is_not(None), 1), else_=0)),
                   func.sum(case((a.c.uses > 0, 1), else_=0)), func.sum(a.c.uses))
            .where(a.c.program_id == program_id, a.c.offer_code == code)
        ).one()  # fmt: skip
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0)
