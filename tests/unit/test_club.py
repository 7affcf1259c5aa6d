"""The club's subscription state machine, computed from facts and the instant passed in (time travel)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from uuid import uuid4

import pytest

from treue.domain.club import (
    BillingInterval,
    Payment,
    PaymentStatus,
    Plan,
    PlanBenefits,
    SubscriptionStatus,
    format_fraction,
    parse_fraction,
    start_subscription,
)
from treue.domain.errors import (
    AlreadyCancelled,
    ClubPeriodInvalid,
    ClubPeriodPaid,
    ClubSubscriptionEnded,
    InvalidInput,
)
from treue.domain.money import Money

TZ = "Europe/Berlin"
T0 = datetime(2026, 1, 31, 11, 0, tzinfo=UTC)  # 12:00 in Berlin, the last day of a long month
S = SubscriptionStatus


def plan(trial_days: int = 14, interval: BillingInterval = BillingInterval.MONTH, grace_days: int = 7) -> Plan:
    return Plan(uuid4(), "plus", {"de": "Plus", "en": "Plus"}, Money(990, "EUR"), interval, trial_days, grace_days,
                PlanBenefits(earn_multiplier=Fraction(3, 2), perks=frozenset({"free_shipping"})))  # fmt: skip


def paid(sub, index: int, at: datetime, status: PaymentStatus = PaymentStatus.SUCCEEDED):
    return sub.with_payment(Payment(index, status, at))


def test_trial_then_active_while_paid_then_past_due_then_expired_after_grace():
    sub = start_subscription(uuid4(), uuid4(), plan(trial_days=14), T0, TZ)
    trial_end = T0 + timedelta(days=14)
    assert sub.trial_ends_at == trial_end
    assert sub.status_at(T0) is S.TRIALING
    assert sub.status_at(trial_end - timedelta(seconds=1)) is S.TRIALING
    # The trial ended unpaid: past due for the grace period, then expired.
    assert sub.status_at(trial_end) is S.PAST_DUE
    assert sub.status_at(trial_end + timedelta(days=7) - timedelta(seconds=1)) is S.PAST_DUE
    assert sub.status_at(trial_end + timedelta(days=7)) is S.EXPIRED
    assert sub.ended_at(trial_end + timedelta(days=30)) == trial_end + timedelta(days=7)

    sub = paid(sub, 0, trial_end - timedelta(hours=1))
    assert sub.status_at(trial_end) is S.ACTIVE
    first = sub.period(0)
    assert (first.start, first.end) == (trial_end, datetime(2026, 3, 14, 11, 0, tzinfo=UTC))
    assert sub.status_at(first.end) is S.PAST_DUE  # the next period is due and unpaid
    # A late payment during the grace period makes it active again from the instant it was recorded...
    late = first.end + timedelta(days=2)
    sub = paid(sub, 1, late)
    assert sub.status_at(late - timedelta(seconds=1)) is S.PAST_DUE  # ...history before it is unchanged
    assert sub.status_at(late) is S.ACTIVE
    assert sub.paid_through(late) == sub.period(1).end


def test_a_failed_payment_does_not_pay_the_period():
    sub = start_subscription(uuid4(), uuid4(), plan(trial_days=0), T0, TZ)
    sub = paid(sub, 0, T0, PaymentStatus.FAILED)
    assert sub.status_at(T0) is S.PAST_DUE
    assert sub.due_period(T0) == 0


def test_periods_are_counted_from_the_anchor_in_the_programme_timezone():
    sub = start_subscription(uuid4(), uuid4(), plan(trial_days=0), T0, TZ)
    starts = [sub.period(n).start for n in range(4)]
    # 31 January, 28 February, 31 March (not 28 March), 30 April - at noon Berlin time across the DST change.
    assert [s.astimezone(sub._tz()).strftime("%m-%d %H:%M") for s in starts] == [
        "01-31 12:00", "02-28 12:00", "03-31 12:00", "04-30 12:00"]  # fmt: skip
    for n in range(4):
        assert sub.period_index_at(sub.period(n).start) == n
        assert sub.period_index_at(sub.period(n).end - timedelta(microseconds=1)) == n
        assert sub.index_of_start(sub.period(n).start) == n
    assert sub.index_of_start(sub.period(1).start + timedelta(hours=1)) is None
    yearly = start_subscription(uuid4(), uuid4(), plan(trial_days=0, interval=BillingInterval.YEAR), T0, TZ)
    assert yearly.period(1).start == datetime(2027, 1, 31, 11, 0, tzinfo=UTC)
    assert yearly.period_index_at(datetime(2028, 6, 1, tzinfo=UTC)) == 2


def test_periods_are_paid_in_order_and_once():
    sub = start_subscription(uuid4(), uuid4(), plan(trial_days=0), T0, TZ)
    with pytest.raises(ClubPeriodInvalid):
        sub.check_payable(1, T0)
    sub.check_payable(0, T0)
    sub = paid(sub, 0, T0)
    with pytest.raises(ClubPeriodPaid):
        sub.check_payable(0, T0)
    sub.check_payable(1, T0)  # paying ahead: the next period


def test_cancel_at_period_end_keeps_what_was_paid_and_immediately_ends_now():
    sub = paid(start_subscription(uuid4(), uuid4(), plan(trial_days=0), T0, TZ), 0, T0)
    asked = T0 + timedelta(days=3)
    end = sub.cancellation(asked, at_period_end=True)
    assert end == sub.period(0).end
    scheduled = sub.__class__(**{**{f: getattr(sub, f) for f in sub.__dataclass_fields__},
                                 "cancel_requested_at": asked, "cancel_at": end})  # fmt: skip
    assert scheduled.status_at(end - timedelta(seconds=1)) is S.ACTIVE
    assert scheduled.status_at(end) is S.CANCELLED
    with pytest.raises(AlreadyCancelled):
        scheduled.cancellation(asked, at_period_end=True)
    with pytest.raises(ClubSubscriptionEnded):  # the period after the cancellation cannot be paid
        scheduled.check_payable(1, asked)
    assert scheduled.cancellation(asked, at_period_end=False) == asked  # switching to "now" is allowed
    with pytest.raises(AlreadyCancelled):
        scheduled.cancellation(end, at_period_end=False)
    # In the trial, "at period end" means the end of the trial.
    trial = start_subscription(uuid4(), uuid4(), plan(trial_days=14), T0, TZ)
    assert trial.cancellation(T0, at_period_end=True) == trial.trial_ends_at


def test_an_expired_subscription_can_be_neither_paid_nor_cancelled():
    sub = start_subscription(uuid4(), uuid4(), plan(trial_days=0, grace_days=0), T0, TZ)
    assert sub.status_at(T0) is S.EXPIRED
    with pytest.raises(ClubSubscriptionEnded):
        sub.check_payable(0, T0)
    with pytest.raises(ClubSubscriptionEnded):
        sub.cancellation(T0, at_period_end=False)


def test_benefits_only_while_trialing_or_active():
    assert [s.value for s in S if s.grants_benefits] == ["trialing", "active"]
    benefits = plan().member_benefits()
    assert benefits.source == "club:plus" and benefits.earn_multiplier == Fraction(3, 2)
    assert benefits.perks == frozenset({"free_shipping"})


def test_plans_refuse_bad_terms():
    with pytest.raises(InvalidInput):
        Plan(uuid4(), "Plus!", {"de": "Plus"}, Money(990, "EUR"), BillingInterval.MONTH)
    with pytest.raises(InvalidInput):
        Plan(uuid4(), "plus", {"de": "Plus"}, Money(0, "EUR"), BillingInterval.MONTH)
    with pytest.raises(InvalidInput):
        Plan(uuid4(), "plus", {"fr": "Plus"}, Money(990, "EUR"), BillingInterval.MONTH)
    with pytest.raises(InvalidInput):
        PlanBenefits.parse({"earn_multiplier": 1.5})  # a float is never a multiplier
    with pytest.raises(InvalidInput):
        PlanBenefits.parse({"cashback_percent": "101"})
    with pytest.raises(InvalidInput):
        PlanBenefits.parse({"perks": ["Free Shipping"]})
    parsed = PlanBenefits.parse({"earn_multiplier": "1.25", "cashback_percent": "2.5", "perks": ["early_access"]})
    assert parsed.to_json() == {"earn_multiplier": "1.25", "cashback_percent": "2.5", "perks": ["early_access"],
                                "birthday_bonus_points": 0}  # fmt: skip
    assert format_fraction(parse_fraction("2", "x", Fraction(0), Fraction(5))) == "2"
