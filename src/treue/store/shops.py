"""Storage of shop connections and the log of their inbound deliveries (see services/shops.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from treue.domain.errors import NotFound, ShopConnectionExists
from treue.store import tables as t

CONNECTIONS, DELIVERIES = t.shop_connections, t.shop_deliveries


class Shops:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- connections ----------------------------------------------------------------------------------------
    def add(self, row: dict[str, Any]) -> None:
        taken = select(CONNECTIONS.c.id).where(CONNECTIONS.c.program_id == row["program_id"],
                                               CONNECTIONS.c.code == row["code"])  # fmt: skip
        if self.conn.execute(taken).first():
            raise ShopConnectionExists(f"a shop connection with code '{row['code']}' exists already", shop=row["code"])
        try:
            with self.conn.begin_nested():  # a concurrent create of the same code fails alone
                self.conn.execute(insert(CONNECTIONS).values(**row))
        except IntegrityError:
            raise ShopConnectionExists(f"a shop connection with code '{row['code']}' exists already",
                                       shop=row["code"]) from None  # fmt: skip

    def update(self, program_id: UUID, code: str, values: dict[str, Any]) -> None:
        self.conn.execute(update(CONNECTIONS).where(CONNECTIONS.c.program_id == program_id,
                                                    CONNECTIONS.c.code == code).values(**values))  # fmt: skip

    def get(self, program_id: UUID, code: str) -> dict[str, Any]:
        row = self.conn.execute(
            select(CONNECTIONS).where(CONNECTIONS.c.program_id == program_id, CONNECTIONS.c.code == code)
        ).first()
        if row is None:
            raise NotFound(f"no shop connection '{code}'", resource="shop")
        return dict(row._mapping)

    def all(self, program_id: UUID) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(CONNECTIONS).where(CONNECTIONS.c.program_id == program_id).order_by(CONNECTIONS.c.code)
        ).all()
        return [dict(r._mapping) for r in rows]

    def by_id(self, connection_id: UUID) -> dict[str, Any] | None:
        """The connection an inbound URL names (its programme comes from the row, never from the request)."""
        row = self.conn.execute(select(CONNECTIONS).where(CONNECTIONS.c.id == connection_id)).first()
        return dict(row._mapping) if row else None

    # -- deliveries -----------------------------------------------------------------------------------------
    def delivery(self, program_id: UUID, connection_id: UUID, delivery_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(DELIVERIES).where(DELIVERIES.c.program_id == program_id,
                                     DELIVERIES.c.connection_id == connection_id,
                                     DELIVERIES.c.delivery_id == delivery_id)
        ).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def add_delivery(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(DELIVERIES).values(**row))

    def order_skipped(self, program_id: UUID, connection_id: UUID, external_order_id: str) -> bool:
        """Was a purchase of this order skipped (no member, by the connection's policy)?"""
        found = self.conn.execute(
            select(DELIVERIES.c.delivery_id).where(DELIVERIES.c.program_id == program_id,
                                                   DELIVERIES.c.connection_id == connection_id,
                                                   DELIVERIES.c.external_order_id == external_order_id,
                                                   DELIVERIES.c.outcome == "skipped").limit(1)
        ).first()  # fmt: skip
        return found is not None

    def deliveries(self, program_id: UUID, connection_id: UUID, limit: int, before: datetime | None = None
                   ) -> list[dict[str, Any]]:  # fmt: skip
        query = select(DELIVERIES).where(DELIVERIES.c.program_id == program_id,
                                         DELIVERIES.c.connection_id == connection_id)  # fmt: skip
        if before is not None:
            query = query.where(DELIVERIES.c.received_at < before)
        rows = self.conn.execute(query.order_by(DELIVERIES.c.received_at.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in rows]
