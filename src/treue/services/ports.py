"""What the use cases need from storage. `treue.store` implements it; tests may substitute fakes."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from treue.domain.events import Event


class UnitOfWork(Protocol):
    """One transaction. `with uow:` begins it, `uow.commit()` commits, leaving without commit rolls back.

    Nested `with` blocks join the outer transaction, so an adapter can wrap a use case together
    with its own bookkeeping (e.g. the idempotency record) in one commit.
    """

    programs: Any
    members: Any
    ledger: Any
    purchases: Any
    rewards: Any
    keys: Any
    idempotency: Any
    outbox: Any
    audit: Any
    checks: Any
    rules: Any  # rules, versions, campaigns, budgets, usage counters (treue.store.rules.Rules)
    events: Any  # custom events
    tiers: Any  # tier ladders and member tier state (treue.store.tiers.Tiers)
    wallet: Any  # cashback wallets and checkout holds (treue.store.wallet.Wallet)
    club: Any  # paid club plans, subscriptions, payments (treue.store.club.Club)
    simulation: Any  # the simulator's bulk reads (treue.store.simulation.SimulationSource)
    staff: Any  # web UI: staff users and sessions, portal sign-in codes (treue.store.staff.Staff)
    partners: Any  # coalition partners and settlement runs (treue.store.partners.Partners)
    webhooks: Any  # outbound webhook endpoints, deliveries, attempts (treue.store.webhooks.Webhooks)
    shops: Any  # shop connections and inbound deliveries (treue.store.shops.Shops)
    tills: Any  # offline till batches (treue.store.tills.Tills)
    exports: Any  # bulk export reads (treue.store.exports.Exports)
    cards: Any  # linked payment cards, card feeds, offers (treue.store.cards.Cards)
    referrals: Any  # referrals and moderation (treue.store.referrals.Referrals)
    gamification: Any  # missions, streaks, badges, instant wins (treue.store.gamification.Gamification)
    notifications: Any  # triggers, templates, consents, inbox, deliveries (treue.store.notifications.Notifications)
    segments: Any  # segments, targeted offers, surveys (treue.store.segments.Segments)
    privacy: Any  # GDPR export and erasure, retention (treue.store.privacy.Privacy)
    fraud: Any  # velocity caps, anomaly alerts, held transactions (treue.store.fraud.Fraud)

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...
    def flush(self) -> None: ...
    def emit(self, program_id: UUID, event: Event) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork: ...
