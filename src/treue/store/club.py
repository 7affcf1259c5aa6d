"""Storage of the paid premium club: plans, subscriptions (facts), payments and perk grants (see services/club.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from treue.domain.club import (
    BillingInterval,
    Payment,
    PaymentStatus,
    Plan,
    PlanBenefits,
    Subscription,
)
from treue.domain.errors import ClubPaymentReferenceReused, ClubPeriodPaid, ClubPlanExists, NotFound
from treue.domain.money import Money
from treue.store import tables as t
from treue.store.batch import InsertBatch, violates

PLANS, SUBS, PAYMENTS, GRANTS = t.club_plans, t.club_subscriptions, t.club_payments, t.club_perk_grants


def plan_from_row(m: Mapping[Any, Any]) -> Plan:
    stored = m["benefits"]
    benefits = PlanBenefits(
        earn_multiplier=Fraction(Decimal(stored.get("earn_multiplier", "1"))),
        cashback_percent=Fraction(Decimal(stored.get("cashback_percent", "0"))),
        perks=frozenset(stored.get("perks", ())), birthday_bonus_points=stored.get("birthday_bonus_points", 0),
        bonus_points=m["bonus_points"], voucher_reward_id=m["voucher_reward_id"],
    )  # fmt: skip
    return Plan(id=m["id"], code=m["code"], name=m["name"], price=Money(m["price_minor"], m["currency"]),
                interval=BillingInterval(m["billing_interval"]), trial_days=m["trial_days"],
                grace_days=m["grace_days"], benefits=benefits, description=m["description"], active=m["active"])  # fmt: skip


def plan_to_row(plan: Plan) -> dict[str, Any]:
    return {"code": plan.code, "name": plan.name, "description": plan.description, "price_minor": plan.price.minor,
            "currency": plan.price.currency, "billing_interval": plan.interval.value, "trial_days": plan.trial_days,
            "grace_days": plan.grace_days, "benefits": plan.benefits.to_json(),
            "bonus_points": plan.benefits.bonus_points, "voucher_reward_id": plan.benefits.voucher_reward_id,
            "active": plan.active}  # fmt: skip


def subscription_from_row(m: Mapping[Any, Any], timezone: str, payments: Sequence[Any] = ()) -> Subscription:
    return Subscription(
        id=m["id"], member_id=m["member_id"], plan_id=m["plan_id"], interval=BillingInterval(m["billing_interval"]),
        price=Money(m["price_minor"], m["currency"]), grace_days=m["grace_days"], started_at=m["started_at"],
        trial_ends_at=m["trial_ends_at"], timezone=timezone,
        payments=tuple(Payment(p["period_index"], PaymentStatus(p["status"]), p["recorded_at"]) for p in payments),
        cancel_requested_at=m["cancel_requested_at"], cancel_at=m["cancel_at"],
    )  # fmt: skip


class Club:
    def __init__(self, conn: Connection, batch: InsertBatch) -> None:
        self.conn = conn
        self.batch = batch

    # -- plans ---------------------------------------------------------------------------------
    def add_plan(self, program_id: UUID, plan: Plan, now: datetime) -> None:
        if self.conn.execute(
            select(PLANS.c.id).where(PLANS.c.program_id == program_id, PLANS.c.code == plan.code)
        ).first():
            raise ClubPlanExists(f"a plan with code '{plan.code}' exists already", plan=plan.code)
        try:
            self.conn.execute(insert(PLANS).values(program_id=program_id, id=plan.id, created_at=now,
                                                   updated_at=now, **plan_to_row(plan)))  # fmt: skip
        except IntegrityError:  # a concurrent request created the same code
            raise ClubPlanExists(f"a plan with code '{plan.code}' exists already", plan=plan.code) from None

    def update_plan(self, program_id: UUID, plan: Plan, now: datetime) -> None:
        self.conn.execute(update(PLANS).where(PLANS.c.program_id == program_id, PLANS.c.id == plan.id)
                          .values(updated_at=now, **plan_to_row(plan)))  # fmt: skip

    def plan(self, program_id: UUID, *, code: str | None = None, plan_id: UUID | None = None,
             lock: bool = False) -> Plan:  # fmt: skip
        where = PLANS.c.code == code if code is not None else PLANS.c.id == plan_id
        query = select(PLANS).where(PLANS.c.program_id == program_id, where)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"club plan {code or plan_id} not found", resource="club_plan")
        return plan_from_row(row._mapping)

    def plans(self, program_id: UUID) -> list[Plan]:
        rows = self.conn.execute(select(PLANS).where(PLANS.c.program_id == program_id).order_by(PLANS.c.code))
        return [plan_from_row(r._mapping) for r in rows]

    # -- subscriptions -------------------------------------------------------------------------
    def add_subscription(self, program_id: UUID, sub: Subscription, now: datetime) -> None:
        self.conn.execute(insert(SUBS).values(
            program_id=program_id, id=sub.id, member_id=sub.member_id, plan_id=sub.plan_id,
            billing_interval=sub.interval.value, price_minor=sub.price.minor, currency=sub.price.currency,
            grace_days=sub.grace_days, started_at=sub.started_at, trial_ends_at=sub.trial_ends_at, created_at=now))  # fmt: skip

    def _payments(self, program_id: UUID, subscription_ids: list[UUID]) -> dict[UUID, list[Any]]:
        found: dict[UUID, list[Any]] = {s: [] for s in subscription_ids}
        if not subscription_ids:
            return found
        rows = self.conn.execute(
            select(PAYMENTS).where(PAYMENTS.c.program_id == program_id, PAYMENTS.c.subscription_id.in_(subscription_ids))
            .order_by(PAYMENTS.c.recorded_at, PAYMENTS.c.period_index)
        )  # fmt: skip
        for row in rows:
            found[row.subscription_id].append(row._mapping)
        return found

    def subscriptions_of(self, program_id: UUID, member_id: UUID, timezone: str,
                         limit: int = 20) -> list[tuple[Subscription, dict[str, Any]]]:  # fmt: skip
        """The member's subscriptions, newest first, each with its stored row."""
        rows = self.conn.execute(
            select(SUBS).where(SUBS.c.program_id == program_id, SUBS.c.member_id == member_id)
            .order_by(SUBS.c.started_at.desc(), SUBS.c.id).limit(limit)
        ).all()  # fmt: skip
        payments = self._payments(program_id, [r.id for r in rows])
        return [(subscription_from_row(r._mapping, timezone, payments[r.id]), dict(r._mapping)) for r in rows]

    def unended_of(self, program_id: UUID, member_id: UUID, timezone: str,
                   at: datetime) -> list[tuple[Subscription, dict[str, Any]]]:  # fmt: skip
        """The member's subscriptions not known to have ended by `at` (the state decides whether they have)."""
        rows = self.conn.execute(
            select(SUBS).where(SUBS.c.program_id == program_id, SUBS.c.member_id == member_id,
                               SUBS.c.started_at <= at, or_(SUBS.c.ended_at.is_(None), SUBS.c.ended_at > at))
            .order_by(SUBS.c.started_at.desc(), SUBS.c.id)
        ).all()  # fmt: skip
        payments = self._payments(program_id, [r.id for r in rows])
        return [(subscription_from_row(r._mapping, timezone, payments[r.id]), dict(r._mapping)) for r in rows]

    def benefits_source(
        self, program_id: UUID, member_id: UUID, at: datetime, timezone: str
    ) -> tuple[Subscription, Plan] | None:
        """The earn path's question, in at most two small queries: the subscription running at `at` (the newest
        started by then and not known to have ended) with its plan; payments only once the trial is over."""
        row = self.conn.execute(
            select(SUBS, PLANS).join(PLANS, and_(PLANS.c.program_id == SUBS.c.program_id, PLANS.c.id == SUBS.c.plan_id))
            .where(SUBS.c.program_id == program_id, SUBS.c.member_id == member_id, SUBS.c.started_at <= at,
                   or_(SUBS.c.ended_at.is_(None), SUBS.c.ended_at > at))
            .order_by(SUBS.c.started_at.desc()).limit(1)
        ).first()  # fmt: skip
        if row is None:
            return None
        sub_cols = {c.name: row._mapping[SUBS.c[c.name]] for c in SUBS.c}
        plan_cols = {c.name: row._mapping[PLANS.c[c.name]] for c in PLANS.c}
        payments = (
            self._payments(program_id, [sub_cols["id"]])[sub_cols["id"]] if at >= sub_cols["trial_ends_at"] else []
        )
        return subscription_from_row(sub_cols, timezone, payments), plan_from_row(plan_cols)

    def get_subscription(self, program_id: UUID, subscription_id: UUID, timezone: str, *,
                         lock: bool = False) -> tuple[Subscription, dict[str, Any]]:  # fmt: skip
        query = select(SUBS).where(SUBS.c.program_id == program_id, SUBS.c.id == subscription_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"club subscription {subscription_id} not found", resource="club_subscription")
        payments = self._payments(program_id, [row.id])[row.id]
        return subscription_from_row(row._mapping, timezone, payments), dict(row._mapping)

    def set_cancellation(self, program_id: UUID, subscription_id: UUID, requested_at: datetime, cancel_at: datetime,
                         reason: str | None) -> None:  # fmt: skip
        self.conn.execute(update(SUBS).where(SUBS.c.program_id == program_id, SUBS.c.id == subscription_id)
                          .values(cancel_requested_at=requested_at, cancel_at=cancel_at, cancel_reason=reason,
                                  ended_at=cancel_at))  # fmt: skip

    def mark_ended(self, program_id: UUID, subscription_id: UUID, ended_at: datetime) -> bool:
        """Note an expiry; False if another run noted it first (so its event is emitted once)."""
        done = self.conn.execute(update(SUBS).where(SUBS.c.program_id == program_id, SUBS.c.id == subscription_id,
                                                    SUBS.c.ended_at.is_(None)).values(ended_at=ended_at))  # fmt: skip
        return done.rowcount == 1

    def mark_past_due(self, program_id: UUID, subscription_id: UUID, due: datetime) -> bool:
        """Note that the period due at `due` went unpaid; False if it was noted before."""
        done = self.conn.execute(
            update(SUBS).where(SUBS.c.program_id == program_id, SUBS.c.id == subscription_id,
                               or_(SUBS.c.past_due_notice_at.is_(None), SUBS.c.past_due_notice_at != due))
            .values(past_due_notice_at=due)
        )  # fmt: skip
        return done.rowcount == 1

    def unended(self, program_id: UUID, timezone: str, after: UUID | None,
                limit: int) -> list[tuple[Subscription, dict[str, Any]]]:  # fmt: skip
        """Subscriptions of the programme not known to have ended, by id (for the club job, in batches)."""
        query = select(SUBS).where(SUBS.c.program_id == program_id, SUBS.c.ended_at.is_(None))
        if after is not None:
            query = query.where(SUBS.c.id > after)
        rows = self.conn.execute(query.order_by(SUBS.c.id).limit(limit)).all()
        payments = self._payments(program_id, [r.id for r in rows])
        return [(subscription_from_row(r._mapping, timezone, payments[r.id]), dict(r._mapping)) for r in rows]

    # -- payments ------------------------------------------------------------------------------
    def payment_by_reference(self, program_id: UUID, reference: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(PAYMENTS).where(PAYMENTS.c.program_id == program_id,
                                                       PAYMENTS.c.provider_reference == reference)).first()  # fmt: skip
        return dict(row._mapping) if row else None

    def add_payment(self, row: dict[str, Any]) -> None:
        # Refusals raise: the unit of work rolls the whole transaction back.
        try:
            self.conn.execute(insert(PAYMENTS).values(**row))
        except IntegrityError as error:  # a concurrent request recorded the reference or paid the period
            if violates(error, "uq_club_payments_reference") or "provider_reference" in str(error.orig):
                raise ClubPaymentReferenceReused("this provider reference was recorded concurrently",
                                                 provider_reference=row["provider_reference"]) from None  # fmt: skip
            raise ClubPeriodPaid("the period was paid concurrently", period=row["period_index"]) from None

    def payments_of(self, program_id: UUID, subscription_id: UUID) -> list[dict[str, Any]]:
        return self._payments(program_id, [subscription_id])[subscription_id]

    # -- perk grants ---------------------------------------------------------------------------
    def periods_owed_perks(self, program_id: UUID, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Paid periods that have started by `now` (and before any cancellation took effect) whose plan has a
        recurring perk and for which nothing was granted yet."""
        granted = exists().where(GRANTS.c.program_id == PAYMENTS.c.program_id,
                                 GRANTS.c.subscription_id == PAYMENTS.c.subscription_id,
                                 GRANTS.c.period_index == PAYMENTS.c.period_index)  # fmt: skip
        query = (
            select(PAYMENTS.c.subscription_id, PAYMENTS.c.member_id, PAYMENTS.c.plan_id, PAYMENTS.c.period_index,
                   PAYMENTS.c.period_start, PAYMENTS.c.period_end)
            .join(SUBS, and_(SUBS.c.program_id == PAYMENTS.c.program_id, SUBS.c.id == PAYMENTS.c.subscription_id))
            .join(PLANS, and_(PLANS.c.program_id == SUBS.c.program_id, PLANS.c.id == SUBS.c.plan_id))
            .where(PAYMENTS.c.program_id == program_id, PAYMENTS.c.status == PaymentStatus.SUCCEEDED.value,
                   PAYMENTS.c.period_start <= now, or_(SUBS.c.cancel_at.is_(None), SUBS.c.cancel_at > PAYMENTS.c.period_start),
                   or_(PLANS.c.bonus_points > 0, PLANS.c.voucher_reward_id.is_not(None)), ~granted)
            .order_by(PAYMENTS.c.period_start, PAYMENTS.c.subscription_id).limit(limit)
        )  # fmt: skip
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def perks_granted(self, program_id: UUID, subscription_id: UUID, period_index: int) -> bool:
        return self.conn.execute(
            select(GRANTS.c.perk).where(GRANTS.c.program_id == program_id, GRANTS.c.subscription_id == subscription_id,
                                        GRANTS.c.period_index == period_index).limit(1)
        ).first() is not None  # fmt: skip

    def add_grants(self, rows: list[dict[str, Any]]) -> None:
        self.conn.execute(insert(GRANTS), rows)

    def grants_of(self, program_id: UUID, subscription_id: UUID) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(GRANTS).where(GRANTS.c.program_id == program_id, GRANTS.c.subscription_id == subscription_id)
            .order_by(GRANTS.c.period_index, GRANTS.c.perk)
        )  # fmt: skip
        return [dict(r._mapping) for r in rows]
