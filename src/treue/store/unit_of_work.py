"""The unit of work: one transaction, its repositories, and the outbox written before commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine

from treue.domain.events import Event
from treue.ids import new_id
from treue.metrics import count_events
from treue.store import repositories as r
from treue.store.batch import InsertBatch
from treue.store.cards import Cards
from treue.store.checks import Checks
from treue.store.club import Club
from treue.store.database import READ_ONLY
from treue.store.exports import Exports
from treue.store.fraud import Fraud
from treue.store.gamification import Gamification
from treue.store.notifications import Notifications
from treue.store.partners import Partners
from treue.store.privacy import Privacy
from treue.store.referrals import Referrals
from treue.store.rules import Events, Rules
from treue.store.segments import Segments
from treue.store.shops import Shops
from treue.store.simulation import SimulationSource
from treue.store.staff import Staff
from treue.store.tiers import Tiers
from treue.store.tills import Tills
from treue.store.wallet import Wallet
from treue.store.webhooks import Webhooks


class SqlUnitOfWork:
    """`with uow:` begins, `commit()` commits, leaving without commit rolls back.

    Re-entering joins the running transaction: only the outermost block commits, so an adapter can
    put its own rows (the idempotency record) in the same commit as the use case's.
    """

    def __init__(self, engine: Engine, *, read_only: bool = False, clock: Any = None) -> None:
        self.engine = engine
        self.read_only = read_only
        self.clock = clock
        self._depth = 0
        self._committed = False
        self._events: list[tuple[UUID, Event]] = []
        self.conn: Connection | None = None

    def __enter__(self) -> SqlUnitOfWork:
        self._depth += 1
        if self._depth == 1:
            self._committed = False
            self._events = []
            conn = self.engine.connect()
            if self.read_only:
                conn = conn.execution_options(**{READ_ONLY: True})
            self.conn = conn
            conn.begin()
            self.batch = InsertBatch(conn)
            self.programs = r.Programs(conn)
            self.members = r.Members(conn)
            self.ledger = r.Ledger(conn, self.batch)
            self.purchases = r.Purchases(conn, self.batch)
            self.rewards = r.Rewards(conn)
            self.keys = r.Keys(conn)
            self.idempotency = r.Idempotency(conn, self.batch)
            self.outbox = r.Outbox(conn, self.batch)
            self.audit = r.Audit(conn)
            self.checks = Checks(conn)
            self.rules = Rules(conn, self.batch)
            self.events = Events(conn, self.batch)
            self.tiers = Tiers(conn, self.batch)
            self.wallet = Wallet(conn, self.batch)  # cashback wallets and checkout holds
            self.club = Club(conn, self.batch)
            self.simulation = SimulationSource(conn)  # what the simulator replays (read only)
            self.staff = Staff(conn, self.batch)  # web UI: staff, sessions, portal sign-in codes
            self.partners = Partners(conn, self.batch)  # coalition partners and settlement (issue 5)
            self.webhooks = Webhooks(conn)  # outbound webhook endpoints, deliveries, attempts
            self.shops = Shops(conn)  # shop connections and their inbound deliveries (issue 5)
            self.tills = Tills(conn, self.batch)  # offline till batches (issue 5)
            self.exports = Exports(conn)  # bulk export reads, streamed (issue 5)
            self.cards = Cards(conn, self.batch)  # linked payment cards, card feeds, offers (issue 11)
            self.referrals = Referrals(conn, self.batch)  # referrals and moderation (issue 7)
            self.gamification = Gamification(conn, self.batch)  # missions, streaks, badges, instant wins (issue 7)
            self.notifications = Notifications(conn, self.batch)  # triggers, templates, consents, inbox (issue 8)
            self.segments = Segments(conn, self.batch)  # segments, targeted offers, surveys (issue 8)
            self.privacy = Privacy(conn, self.batch)  # GDPR export and erasure, retention (issue 10)
            self.fraud = Fraud(conn, self.batch)  # velocity caps, anomaly alerts, held transactions (issue 10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        assert self.conn is not None
        try:
            if not self._committed:
                self.conn.rollback()
        finally:
            self.conn.close()
            self.conn = None

    def emit(self, program_id: UUID, event: Event) -> None:
        self._events.append((program_id, event))

    def flush(self) -> None:
        """Write the queued inserts now (refusals such as a duplicate order surface here)."""
        self.batch.flush()

    def commit(self) -> None:
        if self._depth > 1:
            return  # the outermost block commits
        assert self.conn is not None
        names = [event.name for _, event in self._events]
        if self._events:
            now = self.clock() if self.clock else _utcnow()
            self.outbox.add([r.event_row(pid, new_id(), event, now) for pid, event in self._events])
            self._events = []
        self.batch.flush()  # queued rows (purchase without earn, idempotency record, outbox) in one go
        self.conn.commit()
        self._committed = True
        count_events(names)  # committed: now they happened


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only=read_only)
