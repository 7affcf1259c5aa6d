"""The paid premium club: plans, joining, payments from the merchant's payment provider, cancelling, the
benefits a running membership gives, and the `club` job (recurring perks, past-due and expiry notices).

The state of a subscription is never stored: it is computed from its facts and the instant asked about
(treue.domain.club). What is stored for analytics: every payment (club fee revenue) and every recurring perk
granted (its cost: bonus points as an earn transfer, a voucher as a coupon whose reward cost is posted
issuance -> redemption), each linked to the subscription and the billing period.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.benefits import Benefits
from treue.domain.club import (
    BillingInterval,
    Payment,
    PaymentStatus,
    Plan,
    PlanBenefits,
    Subscription,
    SubscriptionStatus,
    start_subscription,
)
from treue.domain.coupons import Coupon, CouponStatus, coupon_valid_until, new_coupon_code
from treue.domain.durations import require_aware
from treue.domain.errors import (
    ClubAlreadySubscribed,
    ClubPaymentMismatch,
    ClubPaymentReferenceReused,
    ClubPaymentRequired,
    ClubPeriodInvalid,
    ClubPlanUnavailable,
    CurrencyMismatch,
    DomainError,
    InvalidInput,
    NotFound,
)
from treue.domain.events import Event
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.lots import NewLot
from treue.domain.money import Money
from treue.domain.programs import Program
from treue.ids import new_id, random_choice
from treue.services.audit import record_audit
from treue.services.ports import UnitOfWork, UnitOfWorkFactory
from treue.services.views import iso

log = logging.getLogger("treue.jobs")

PLAN_FIELDS = ("code", "name", "description", "price", "currency", "interval", "trial_days", "grace_days",
               "benefits", "bonus_points", "voucher_reward_id", "active")  # fmt: skip
EDITABLE = frozenset(PLAN_FIELDS) - {"code", "price", "currency", "interval"}  # terms of money are fixed
BATCH = 500
VOUCHER_REDEMPTION_STATUS = "club_perk"  # not "active": it cost the member no points, so it gives none back


# -- plans -------------------------------------------------------------------------------------------
def _plan(values: dict[str, Any], program: Program, base: Plan | None = None) -> Plan:
    unknown = set(values) - set(PLAN_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown plan fields: {', '.join(sorted(unknown))}")
    if base is not None:
        fixed = set(values) - EDITABLE
        if fixed:
            raise InvalidInput(f"{', '.join(sorted(fixed))} of a plan cannot change; create a new plan instead")
    currency = values.get("currency") or program.currency
    if currency != program.currency:
        raise CurrencyMismatch(f"plans are priced in the programme's currency {program.currency}")
    if base is None:
        if "price" not in values or "code" not in values or "name" not in values:
            raise InvalidInput("a plan needs a code, a name and a price")
        try:
            interval = BillingInterval(values.get("interval", "month"))
        except ValueError:
            raise InvalidInput("interval must be month or year") from None
        base = Plan(new_id(), values["code"], values["name"], Money.parse(values["price"], currency), interval)
    benefits = base.benefits
    if "benefits" in values:
        parsed = PlanBenefits.parse(values["benefits"] or {})
        benefits = dataclasses.replace(parsed, bonus_points=benefits.bonus_points,
                                       voucher_reward_id=benefits.voucher_reward_id)  # fmt: skip
    if "bonus_points" in values:
        benefits = dataclasses.replace(benefits, bonus_points=values["bonus_points"] or 0)
    if "voucher_reward_id" in values:
        reward = values["voucher_reward_id"]
        try:
            benefits = dataclasses.replace(benefits, voucher_reward_id=UUID(str(reward)) if reward else None)
        except ValueError:
            raise InvalidInput("voucher_reward_id: not a valid id") from None
    changes = {k: values[k] for k in ("name", "trial_days", "grace_days", "active") if values.get(k) is not None}
    if "description" in values:
        changes["description"] = values["description"] or {}
    return dataclasses.replace(base, benefits=benefits, **changes)


def plan_view(plan: Plan) -> dict[str, Any]:
    return {"id": str(plan.id), "code": plan.code, "name": plan.name, "description": plan.description,
            "price": plan.price.format(), "currency": plan.price.currency, "interval": plan.interval.value,
            "trial_days": plan.trial_days, "grace_days": plan.grace_days, "benefits": plan.benefits.to_json(),
            "bonus_points": plan.benefits.bonus_points,
            "voucher_reward_id": str(plan.benefits.voucher_reward_id) if plan.benefits.voucher_reward_id else None,
            "active": plan.active}  # fmt: skip


def create_plan(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                actor: str = "api") -> dict[str, Any]:  # fmt: skip
    with uow:
        program = uow.programs.get(program_id, cached=True)
        plan = _plan(values, program)
        if plan.benefits.voucher_reward_id is not None:
            uow.rewards.get(program_id, plan.benefits.voucher_reward_id)  # 404 for a reward of no one's
        uow.club.add_plan(program_id, plan, now)
        view = plan_view(plan)
        record_audit(uow, program_id, actor, "club_plan.create", "club_plan", plan.id, None, view, None, now)
        uow.commit()
    uow.tiers.forget(program_id)  # purchases now ask for club benefits (the flag is cached with the ladder)
    return view


def update_plan(uow: UnitOfWork, program_id: UUID, code: str, changes: dict[str, Any], now: datetime,
                actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Edit a plan's names, benefits, perks, trial, grace or availability. Running subscriptions keep the price
    and interval they joined at; benefits and perks follow the plan."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        before = uow.club.plan(program_id, code=code, lock=True)
        plan = _plan(changes, program, before)
        if plan.benefits.voucher_reward_id is not None:
            uow.rewards.get(program_id, plan.benefits.voucher_reward_id)
        uow.club.update_plan(program_id, plan, now)
        view = plan_view(plan)
        record_audit(uow, program_id, actor, "club_plan.update", "club_plan", plan.id, plan_view(before), view,
                     None, now)  # fmt: skip
        uow.commit()
    return view


def list_plans(uow: UnitOfWork, program_id: UUID) -> list[dict[str, Any]]:
    with uow:
        uow.programs.get(program_id, cached=True)
        return [plan_view(p) for p in uow.club.plans(program_id)]


# -- subscriptions -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PaymentInput:
    """A payment as the merchant's payment provider reported it."""

    provider_reference: str
    amount: str | int
    currency: str
    status: str = "succeeded"
    period_start: datetime | None = None  # default: the first period not yet paid
    plan: str | None = None  # the plan code, if the provider knows it: checked against the subscription's
    subscription_id: UUID | None = None  # checked against the member's running subscription
    paid_at: datetime | None = None


def subscription_view(sub: Subscription, plan_code: str, now: datetime) -> dict[str, Any]:
    status = sub.status_at(now)
    period = sub.current_period(now)
    view: dict[str, Any] = {
        "id": str(sub.id), "member_id": str(sub.member_id), "plan": plan_code, "plan_id": str(sub.plan_id),
        "status": status.value, "benefits_apply": status.grants_benefits,
        "price": sub.price.format(), "currency": sub.price.currency, "interval": sub.interval.value,
        "started_at": iso(sub.started_at), "trial_ends_at": iso(sub.trial_ends_at) if sub.has_trial else None,
        "current_period": {"index": period.index, "start": iso(period.start), "end": iso(period.end),
                           "kind": "trial" if period.index < 0 else "billing"},
        "paid_periods": sub.paid_periods(now), "paid_through": iso(sub.paid_through(now)),
        "grace_ends_at": iso(sub.grace_ends(now)) if status is SubscriptionStatus.PAST_DUE else None,
        "cancel_requested_at": iso(sub.cancel_requested_at), "cancel_at": iso(sub.cancel_at),
        "ended_at": iso(sub.ended_at(now)),
    }  # fmt: skip
    return view


def payment_view(row: dict[str, Any], plan_code: str) -> dict[str, Any]:
    return {"id": str(row["id"]), "subscription_id": str(row["subscription_id"]), "member_id": str(row["member_id"]),
            "plan": plan_code, "provider_reference": row["provider_reference"], "status": row["status"],
            "amount": Money(row["amount_minor"], row["currency"]).format(), "currency": row["currency"],
            "period": {"index": row["period_index"], "start": iso(row["period_start"]), "end": iso(row["period_end"])},
            "paid_at": iso(row["paid_at"]), "recorded_at": iso(row["recorded_at"])}  # fmt: skip


def _running(uow: UnitOfWork, program: Program, member_id: UUID, now: datetime) -> Subscription | None:
    found: list[tuple[Subscription, dict[str, Any]]] = uow.club.unended_of(program.id, member_id, program.timezone, now)
    return next((sub for sub, _ in found if not sub.status_at(now).ended), None)


def join_club(uow: UnitOfWork, program_id: UUID, member_id: UUID, plan_code: str, now: datetime,
              payment: PaymentInput | None = None, actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Subscribe a member to a plan. With a trial (only on a member's first subscription) the first period is
    due when it ends; without one the first period's succeeded payment comes with the request."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        plan = uow.club.plan(program_id, code=plan_code)
        if not plan.active:
            raise ClubPlanUnavailable(f"plan '{plan.code}' takes no new members", plan=plan.code)
        # The member's account lock: two joins of one member queue here, so only one of them can pass.
        uow.ledger.add_to_balance(program_id, member_id, 0)
        running = _running(uow, program, member_id, now)
        if running is not None:
            raise ClubAlreadySubscribed("the member has a club subscription that has not ended",
                                        subscription_id=str(running.id), subscription_status=running.status_at(now).value)  # fmt: skip
        first_time = not uow.club.subscriptions_of(program_id, member_id, program.timezone, limit=1)
        sub = start_subscription(new_id(), member_id, plan, now, program.timezone, trial=first_time)
        if not sub.has_trial and (payment is None or payment.status != PaymentStatus.SUCCEEDED.value):
            raise ClubPaymentRequired("without a trial the first period must be paid: send its succeeded payment",
                                      plan=plan.code, price=plan.price.format(), currency=plan.price.currency)  # fmt: skip
        uow.club.add_subscription(program_id, sub, now)
        paid: dict[str, Any] | None = None
        if payment is not None:
            paid, sub = _pay(uow, program, sub, plan, payment, now)
        uow.emit(program_id, Event(events.CLUB_JOINED, {
            "member_id": str(member_id), "subscription_id": str(sub.id), "plan": plan.code,
            "status": sub.status_at(now).value, "trial_ends_at": iso(sub.trial_ends_at) if sub.has_trial else None,
            "payment_id": str(paid["id"]) if paid else None}))  # fmt: skip
        uow.commit()
    view = subscription_view(sub, plan.code, now)
    view["payment"] = payment_view(paid, plan.code) if paid else None
    return view


def _pay(uow: UnitOfWork, program: Program, sub: Subscription, plan: Plan, payment: PaymentInput,
         now: datetime) -> tuple[dict[str, Any], Subscription]:  # fmt: skip
    """Check and store a payment of `sub` (whose row is locked or new); return its row and the new facts."""
    try:
        status = PaymentStatus(payment.status)
    except ValueError:
        raise InvalidInput("status must be succeeded or failed") from None
    reference = (payment.provider_reference or "").strip()
    if not reference or len(reference) > 200:
        raise InvalidInput("a payment needs the provider's reference (1-200 characters)")
    if payment.currency != sub.price.currency:
        raise CurrencyMismatch(f"the plan is paid in {sub.price.currency}, not {payment.currency}",
                               expected=sub.price.currency)  # fmt: skip
    amount = Money.parse(payment.amount, payment.currency)
    if amount != sub.price:
        raise ClubPaymentMismatch(f"a period costs {sub.price}, the payment is {amount}",
                                  expected=sub.price.format(), currency=sub.price.currency)  # fmt: skip
    if payment.period_start is not None:
        index = sub.index_of_start(require_aware(payment.period_start, "period_start"))
        if index is None:
            due = sub.period(sub.due_period(now))
            raise ClubPeriodInvalid("period_start is not the start of a billing period of this subscription",
                                    due_period_start=iso(due.start))  # fmt: skip
    else:
        index = sub.due_period(now)
    sub.check_payable(index, now)
    period = sub.period(index)
    row = {"program_id": program.id, "id": new_id(), "subscription_id": sub.id, "member_id": sub.member_id,
           "plan_id": plan.id, "provider_reference": reference, "status": status.value,
           "amount_minor": amount.minor, "currency": amount.currency, "period_index": index,
           "period_start": period.start, "period_end": period.end,
           "paid_at": require_aware(payment.paid_at, "paid_at") if payment.paid_at else None, "recorded_at": now}  # fmt: skip
    uow.club.add_payment(row)
    return row, sub.with_payment(Payment(index, status, now))


def _same_payment(row: dict[str, Any], sub_id: UUID, payment: PaymentInput) -> bool:
    try:
        amount = Money.parse(payment.amount, payment.currency)
    except DomainError:
        return False
    same = (row["subscription_id"] == sub_id and row["status"] == payment.status
            and (row["amount_minor"], row["currency"]) == (amount.minor, amount.currency))  # fmt: skip
    if payment.period_start is not None:
        same = same and row["period_start"] == require_aware(payment.period_start, "period_start")
    return bool(same)


def record_payment(uow: UnitOfWork, program_id: UUID, member_id: UUID, payment: PaymentInput,
                   now: datetime) -> dict[str, Any]:  # fmt: skip
    """Record what the payment provider reported for the member's subscription. Idempotent by the provider
    reference: the same report again returns the first answer and changes nothing."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        subs = uow.club.subscriptions_of(program_id, member_id, program.timezone, limit=1)
        if not subs:
            raise NotFound("the member has no club subscription", resource="club_subscription")
        sub = subs[0][0]
        if payment.subscription_id is not None and payment.subscription_id != sub.id:
            raise NotFound(f"club subscription {payment.subscription_id} not found", resource="club_subscription")
        plan = uow.club.plan(program_id, code=payment.plan) if payment.plan else None
        if plan is not None and plan.id != sub.plan_id:
            raise ClubPlanUnavailable(f"the member's subscription is not to plan '{plan.code}'", plan=plan.code)
        plan = plan or uow.club.plan(program_id, plan_id=sub.plan_id)
        # Payments of one subscription queue on its row; a provider's duplicate report waits here too, then
        # finds the first one by its reference and gets the same answer.
        sub, _ = uow.club.get_subscription(program_id, sub.id, program.timezone, lock=True)
        known = uow.club.payment_by_reference(program_id, payment.provider_reference.strip())
        if known is not None:
            if not _same_payment(known, sub.id, payment):
                raise ClubPaymentReferenceReused("this provider reference was recorded with other details",
                                                 provider_reference=payment.provider_reference)  # fmt: skip
            return payment_view(known, plan.code)
        paid, sub = _pay(uow, program, sub, plan, payment, now)
        topic = events.CLUB_RENEWED if paid["status"] == PaymentStatus.SUCCEEDED.value else events.CLUB_PAYMENT_FAILED
        uow.emit(program_id, Event(topic, {
            "member_id": str(member_id), "subscription_id": str(sub.id), "plan": plan.code,
            "payment_id": str(paid["id"]), "provider_reference": paid["provider_reference"],
            "amount": payment_view(paid, plan.code)["amount"], "currency": paid["currency"],
            "period_index": paid["period_index"], "period_start": iso(paid["period_start"]),
            "period_end": iso(paid["period_end"]), "status": sub.status_at(now).value}))  # fmt: skip
        uow.commit()
    return payment_view(paid, plan.code)


def cancel_subscription(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime, *,
                        at_period_end: bool = True, reason: str | None = None,
                        actor: str = "api") -> dict[str, Any]:  # fmt: skip
    """Cancel the member's subscription at the end of what was paid (or the trial), or immediately."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        subs = uow.club.subscriptions_of(program_id, member_id, program.timezone, limit=1)
        if not subs:
            raise NotFound("the member has no club subscription", resource="club_subscription")
        sub, _ = uow.club.get_subscription(program_id, subs[0][0].id, program.timezone, lock=True)
        effective = sub.cancellation(now, at_period_end)
        before = sub.status_at(now).value
        uow.club.set_cancellation(program_id, sub.id, now, effective, reason)
        sub = dataclasses.replace(sub, cancel_requested_at=now, cancel_at=effective)
        plan = uow.club.plan(program_id, plan_id=sub.plan_id)
        record_audit(uow, program_id, actor, "club.cancel", "club_subscription", sub.id, {"status": before},
                     {"cancel_at": iso(effective), "at_period_end": at_period_end}, reason, now)  # fmt: skip
        uow.emit(program_id, Event(events.CLUB_CANCELLED, {
            "member_id": str(member_id), "subscription_id": str(sub.id), "plan": plan.code,
            "at_period_end": at_period_end, "effective_at": iso(effective), "reason": reason}))  # fmt: skip
        uow.commit()
    return subscription_view(sub, plan.code, now)


def member_club(uow: UnitOfWork, program_id: UUID, member_id: UUID, now: datetime) -> dict[str, Any]:
    """The member's latest subscription (running or ended) with its payments and perks, the benefits in force
    now, and the earlier subscriptions."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        uow.members.get(program_id, member_id)
        subs = uow.club.subscriptions_of(program_id, member_id, program.timezone)
        plans = {p.id: p for p in uow.club.plans(program_id)}
        latest = subs[0][0] if subs else None
        payments = uow.club.payments_of(program_id, latest.id) if latest else []
        grants = uow.club.grants_of(program_id, latest.id) if latest else []
    benefits = None
    if latest is not None and latest.status_at(now).grants_benefits:
        plan = plans[latest.plan_id]
        benefits = plan.benefits.to_json() | {"source": f"club:{plan.code}"}
    current = None
    if latest is not None:
        current = subscription_view(latest, plans[latest.plan_id].code, now)
        current["payments"] = [payment_view(p, plans[latest.plan_id].code) for p in payments]
        current["perks"] = [_grant_view(g) for g in grants]
    return {"member_id": str(member_id), "subscription": current, "benefits": benefits,
            "earlier": [subscription_view(s, plans[s.plan_id].code, now) for s, _ in subs[1:]]}  # fmt: skip


def _grant_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"period_index": row["period_index"], "perk": row["perk"], "status": row["status"],
            "points": row["points"], "coupon_code": row["coupon_code"], "note": row["note"],
            "transfer_id": str(row["transfer_id"]) if row["transfer_id"] else None,
            "granted_at": iso(row["granted_at"])}  # fmt: skip


def club_benefits(uow: UnitOfWork, program: Program, member_id: UUID, at: datetime) -> Benefits | None:
    """The benefits of the member's club at `at`, or None (only while trialing or active)."""
    found = uow.club.benefits_source(program.id, member_id, at, program.timezone)
    if found is None:
        return None
    sub, plan = found
    return plan.member_benefits() if sub.status_at(at).grants_benefits else None


# -- the club job ------------------------------------------------------------------------------------
def run_club_job(uow_factory: UnitOfWorkFactory, now: datetime, program_id: UUID | None = None) -> dict[str, int]:
    """Grant the recurring perks of every paid period that has started (once per subscription and period, also
    for periods a missed run left out), and announce subscriptions that went past due or expired (once each).
    Safe to run as often as wanted, and by several workers at once."""
    now = require_aware(now, "now").astimezone(UTC)
    counts = {"past_due": 0, "expired": 0, "perks_granted": 0, "bonus_points": 0, "vouchers": 0, "skipped": 0,
              "already_done": 0}  # fmt: skip
    with uow_factory(read_only=True) as uow:
        programs = [uow.programs.get(program_id)] if program_id else [p for p, _ in uow.programs.list()]
    for program in programs:
        _announce(uow_factory, program, now, counts)
        _grant_owed_perks(uow_factory, program, now, counts)
    return counts


def _announce(uow_factory: UnitOfWorkFactory, program: Program, now: datetime, counts: dict[str, int]) -> None:
    after: UUID | None = None
    while True:
        with uow_factory(read_only=True) as uow:
            batch = uow.club.unended(program.id, program.timezone, after, BATCH)
        if not batch:
            return
        after = batch[-1][0].id
        for sub, _ in batch:
            status = sub.status_at(now)
            if status not in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.EXPIRED):
                continue
            with uow_factory() as uow:
                payload = {"member_id": str(sub.member_id), "subscription_id": str(sub.id)}
                if status is SubscriptionStatus.EXPIRED:
                    ended = sub.grace_ends(now)
                    if not uow.club.mark_ended(program.id, sub.id, ended):
                        counts["already_done"] += 1
                        continue
                    uow.emit(program.id, Event(events.CLUB_EXPIRED, payload | {"expired_at": iso(ended)}))
                    counts["expired"] += 1
                else:
                    due = sub.paid_through(now)
                    if not uow.club.mark_past_due(program.id, sub.id, due):
                        counts["already_done"] += 1
                        continue
                    uow.emit(program.id, Event(events.CLUB_PAST_DUE, payload | {
                        "due_at": iso(due), "grace_ends_at": iso(sub.grace_ends(now))}))  # fmt: skip
                    counts["past_due"] += 1
                uow.commit()


def _grant_owed_perks(uow_factory: UnitOfWorkFactory, program: Program, now: datetime, counts: dict[str, int]) -> None:
    seen: set[tuple[UUID, int]] = set()
    while True:
        with uow_factory(read_only=True) as uow:
            owed = [o for o in uow.club.periods_owed_perks(program.id, now, BATCH)
                    if (o["subscription_id"], o["period_index"]) not in seen]  # fmt: skip
        if not owed:
            return
        for period in owed:
            seen.add((period["subscription_id"], period["period_index"]))
            _grant(uow_factory, program, period, now, counts)


def _grant(uow_factory: UnitOfWorkFactory, program: Program, period: dict[str, Any], now: datetime,
           counts: dict[str, int]) -> None:  # fmt: skip
    sub_id, index, member_id = period["subscription_id"], period["period_index"], period["member_id"]
    with uow_factory() as uow:
        # The member's account lock first (as in redeeming): a second worker waits here, then finds the grant.
        account = uow.ledger.lock_accounts(program.id, [member_id])[member_id]
        if uow.club.perks_granted(program.id, sub_id, index):
            counts["already_done"] += 1
            return
        plan = uow.club.plan(program.id, plan_id=period["plan_id"])
        source = {"reason": "club perk", "plan": plan.code, "subscription_id": str(sub_id), "period_index": index,
                  "period_start": iso(period["period_start"])}  # fmt: skip
        base = {"program_id": program.id, "subscription_id": sub_id, "period_index": index, "member_id": member_id,
                "plan_id": plan.id, "period_start": period["period_start"], "period_end": period["period_end"],
                "granted_at": now, "transfer_id": None, "reward_id": None, "redemption_id": None,
                "coupon_code": None, "note": None}  # fmt: skip
        rows = []
        points = plan.benefits.bonus_points
        if points > 0:
            transfer_id = new_id()
            draw = account.credit([NewLot(new_id(), points, now, program.expires_at(now))], transfer_id)
            transfer = Transfer(transfer_id, TransferKind.EARN, now,
                                move(system_account_id(program.id, AccountKind.ISSUANCE), account.account_id, points),
                                member_id=member_id, explanation=source | {"points": points})  # fmt: skip
            uow.ledger.record(program.id, transfer, [(account, draw)], now, actor="club")
            rows.append(base | {"perk": "bonus_points", "status": "granted", "points": points,
                                "transfer_id": transfer_id})  # fmt: skip
            uow.emit(program.id, Event(events.POINTS_EARNED, {"member_id": str(member_id), "points": points,
                                                              "transfer_id": str(transfer_id), "reason": "club perk"}))  # fmt: skip
            counts["bonus_points"] += points
        if plan.benefits.voucher_reward_id is not None:
            rows.append(_voucher(uow, program, plan.benefits.voucher_reward_id, member_id, base, source, now))
            counts["vouchers" if rows[-1]["status"] == "granted" else "skipped"] += 1
        if not rows:
            return
        uow.club.add_grants(rows)
        for row in rows:
            uow.emit(program.id, Event(events.CLUB_PERK_GRANTED, {
                "member_id": str(member_id), "subscription_id": str(sub_id), "plan": plan.code,
                "period_index": index, "perk": row["perk"], "status": row["status"], "points": row["points"],
                "coupon_code": row["coupon_code"], "note": row["note"]}))  # fmt: skip
        uow.commit()
    counts["perks_granted"] += 1


def _voucher(uow: UnitOfWork, program: Program, reward_id: UUID, member_id: UUID, base: dict[str, Any],
             source: dict[str, Any], now: datetime) -> dict[str, Any]:  # fmt: skip
    """Issue the plan's voucher: a coupon of the catalogue reward, one from stock. Its cost in points goes
    issuance -> redemption (the member's balance is untouched), so the perk's cost is in the ledger."""
    reward = uow.rewards.get(program.id, reward_id)
    row = base | {"perk": "voucher", "reward_id": reward_id, "points": reward.cost_points}
    try:
        reward.check_redeemable(now, 0)
    except DomainError as refused:
        return row | {"status": "skipped", "note": f"{refused.code}: {refused.detail}"}
    if not uow.rewards.take_from_stock(program.id, reward_id):
        return row | {"status": "skipped", "note": "reward_out_of_stock: the reward is out of stock"}
    redemption_id, transfer_id = new_id(), new_id()
    transfer = Transfer(transfer_id, TransferKind.REDEEM, now,
                        move(system_account_id(program.id, AccountKind.ISSUANCE),
                             system_account_id(program.id, AccountKind.REDEMPTION), reward.cost_points),
                        member_id=member_id, redemption_id=redemption_id,
                        explanation=source | {"reward_id": str(reward_id), "cost_points": reward.cost_points})  # fmt: skip
    uow.ledger.record(program.id, transfer, [], now, actor="club")
    uow.rewards.add_redemption({"program_id": program.id, "id": redemption_id, "member_id": member_id,
                                "reward_id": reward_id, "transfer_id": transfer_id, "cost_points": reward.cost_points,
                                "status": VOUCHER_REDEMPTION_STATUS, "created_at": now})  # fmt: skip
    coupon = Coupon(new_id(), new_coupon_code(random_choice), member_id, reward_id, redemption_id,
                    CouponStatus.ISSUED, coupon_valid_until(now, reward.coupon_valid_days, reward.valid_until))  # fmt: skip
    uow.rewards.add_coupon(program.id, coupon, now)
    return row | {"status": "granted", "transfer_id": transfer_id, "redemption_id": redemption_id,
                  "coupon_code": coupon.code}  # fmt: skip
