"""Storage of coalition partners and settlement runs, and the month's ledger sums per partner (SQL aggregates)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, func, insert, literal, or_, select, update

from treue.domain.errors import PartnerNotFound
from treue.domain.ledger import TransferKind
from treue.domain.partners import DEFAULT_PARTNER, Billing, Partner, Price
from treue.domain.settlement import Flows
from treue.store import tables as t
from treue.store.batch import InsertBatch


def _partner(row: Any) -> Partner:
    return Partner(row.code, row.name, Price(row.issue_price_minor, row.issue_price_points),
                   Price(row.redeem_price_minor, row.redeem_price_points), Billing(row.billing),
                   tuple(row.stores), tuple(row.channels))  # fmt: skip


def _row(program_id: UUID, partner: Partner) -> dict[str, Any]:
    return {"program_id": program_id, "code": partner.code, "name": partner.name, "stores": list(partner.stores),
            "channels": list(partner.channels), "issue_price_minor": partner.issue_price.minor,
            "issue_price_points": partner.issue_price.points, "redeem_price_minor": partner.redeem_price.minor,
            "redeem_price_points": partner.redeem_price.points, "billing": partner.billing.value}  # fmt: skip


class Partners:
    def __init__(self, conn: Connection, batch: InsertBatch | None = None) -> None:
        self.conn = conn
        self.batch = batch

    # -- partners ------------------------------------------------------------------------------
    def exists(self, program_id: UUID, code: str) -> bool:
        query = select(t.partners.c.code).where(t.partners.c.program_id == program_id, t.partners.c.code == code)
        return self.conn.execute(query).first() is not None

    def get(self, program_id: UUID, code: str, *, lock: bool = False) -> Partner:
        query = select(t.partners).where(t.partners.c.program_id == program_id, t.partners.c.code == code)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise PartnerNotFound(f"no partner '{code}' in this programme")
        return _partner(row)

    def all(self, program_id: UUID) -> list[Partner]:
        query = select(t.partners).where(t.partners.c.program_id == program_id).order_by(t.partners.c.code)
        return [_partner(row) for row in self.conn.execute(query)]

    def add(self, program_id: UUID, partner: Partner, now: datetime) -> None:
        self.conn.execute(insert(t.partners).values(_row(program_id, partner) | {"created_at": now, "updated_at": now}))

    def update(self, program_id: UUID, partner: Partner, now: datetime) -> None:
        self.conn.execute(update(t.partners).where(t.partners.c.program_id == program_id,
                                                   t.partners.c.code == partner.code)
                          .values(_row(program_id, partner) | {"updated_at": now}))  # fmt: skip

    # -- settlements ---------------------------------------------------------------------------
    def settlement(self, program_id: UUID, period: str) -> dict[str, Any] | None:
        s = t.settlements
        head = self.conn.execute(select(s).where(s.c.program_id == program_id, s.c.period == period)).first()
        if head is None:
            return None
        lines = t.settlement_lines
        rows = self.conn.execute(select(lines).where(lines.c.program_id == program_id, lines.c.period == period)
                                 .order_by(lines.c.partner != DEFAULT_PARTNER, lines.c.partner))  # fmt: skip
        return dict(head._mapping) | {"lines": [dict(row._mapping) for row in rows]}

    def add_settlement(self, head: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        self.conn.execute(insert(t.settlements).values(head))
        if lines:
            self.conn.execute(insert(t.settlement_lines), lines)

    # -- the month's sums ----------------------------------------------------------------------
    def flows(self, program_id: UUID, start: datetime, end: datetime) -> Flows:
        """Points issued, taken back, expired (by funding partner) and spent (by place and funder), booked in
        [start, end). Each is one GROUP BY over lots/allocations joined to their transfers: no partner balance
        is ever kept, so earning at one partner does not serialise on a row."""
        tr, lots, alloc = t.transfers, t.lots, t.allocations
        funder = func.coalesce(lots.c.partner, literal(DEFAULT_PARTNER))
        booked = and_(tr.c.program_id == program_id, tr.c.created_at >= start, tr.c.created_at < end)

        issued = (select(funder.label("funder"), func.sum(lots.c.amount).label("points"))
                  .select_from(lots.join(tr, and_(tr.c.program_id == lots.c.program_id,
                                                  tr.c.id == lots.c.source_transfer_id)))
                  .where(booked, lots.c.program_id == program_id, tr.c.kind == TransferKind.EARN.value)
                  .group_by(funder))  # fmt: skip

        drawn = alloc.join(tr, and_(tr.c.program_id == alloc.c.program_id, tr.c.id == alloc.c.transfer_id)).join(
            lots, and_(lots.c.program_id == alloc.c.program_id, lots.c.id == alloc.c.lot_id)
        )

        def by_funder(*where: Any) -> Any:
            return (select(funder.label("funder"), func.sum(alloc.c.amount).label("points")).select_from(drawn)
                    .where(booked, alloc.c.program_id == program_id, *where).group_by(funder))  # fmt: skip

        taken_back = by_funder(tr.c.kind == TransferKind.REVERSE.value, tr.c.purchase_id.is_not(None),
                               tr.c.redemption_id.is_(None))  # fmt: skip
        expired = by_funder(tr.c.kind == TransferKind.EXPIRE.value)

        # Where points were spent: a redemption's partner, or a checkout hold's. A cancelled redemption and the
        # points a refund gives back to a checkout payment (a reverse naming the payment) count back, negative.
        red, hold = t.redemptions, t.checkout_holds
        place = func.coalesce(red.c.partner, hold.c.partner, literal(DEFAULT_PARTNER))
        spent = (select(place.label("place"), funder.label("funder"), func.sum(alloc.c.amount).label("points"))
                 .select_from(drawn
                              .outerjoin(red, and_(red.c.program_id == tr.c.program_id,
                                                   red.c.id == tr.c.redemption_id))
                              .outerjoin(hold, and_(hold.c.program_id == tr.c.program_id,
                                                    hold.c.points_transfer_id == func.coalesce(tr.c.corrects_id,
                                                                                               tr.c.id))))
                 .where(booked, alloc.c.program_id == program_id,
                        or_(tr.c.kind.in_([TransferKind.REDEEM.value, TransferKind.PAY.value]),
                            and_(tr.c.kind == TransferKind.REVERSE.value,
                                 or_(tr.c.redemption_id.is_not(None), hold.c.id.is_not(None)))))
                 .group_by(place, funder))  # fmt: skip

        def sums(query: Any) -> dict[str, int]:
            return {row.funder: int(row.points) for row in self.conn.execute(query) if row.points}

        places: dict[tuple[str, str], int] = defaultdict(int)
        for row in self.conn.execute(spent):
            if row.points:
                places[(row.place, row.funder)] += int(row.points)
        return Flows(sums(issued), sums(taken_back), sums(expired), dict(places))
