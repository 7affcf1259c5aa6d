"""The paid club's use cases on SQLite and PostgreSQL, travelling through time by passing the clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any
from uuid import UUID

import pytest

from tests.integration.api_helpers import snapshot
from tests.integration.helpers import buy, enrol, race
from treue.domain import events
from treue.domain.errors import (
    AlreadyCancelled,
    ClubAlreadySubscribed,
    ClubPaymentMismatch,
    ClubPaymentReferenceReused,
    ClubPaymentRequired,
    ClubPeriodInvalid,
    ClubPeriodPaid,
    ClubPlanExists,
    ClubPlanUnavailable,
    ClubSubscriptionEnded,
    CurrencyMismatch,
    DomainError,
    NotFound,
)
from treue.services import club
from treue.services.points import get_balance
from treue.services.rewards import cancel_redemption, consume_coupon, create_reward, list_redemptions
from treue.services.verify import verify
from treue.services.views import iso

PLUS = {"code": "plus", "name": {"de": "Plus", "en": "Plus"}, "price": "9.90", "interval": "month", "trial_days": 14,
        "benefits": {"earn_multiplier": "1.5", "perks": ["free_shipping"]}, "bonus_points": 200}  # fmt: skip


def pay(ref: str, amount: str = "9.90", **kw: Any) -> club.PaymentInput:
    return club.PaymentInput(ref, amount, kw.pop("currency", "EUR"), **kw)


def topics(uow_factory, program_id, topic: str) -> list[dict[str, Any]]:
    with uow_factory() as uow:
        return [row["payload"] for row in uow.outbox.recent(program_id, topic, 100)]


def benefits_at(uow_factory, program_id, member_id, at):
    with uow_factory() as uow:
        return club.club_benefits(uow, uow.programs.get(program_id), member_id, at)


def test_trial_payment_renewal_past_due_and_expiry_by_time_travel(uow_factory, program_id, now):
    voucher = create_reward(uow_factory(), program_id, {"name": {"de": "Kaffee"}, "type": "free_product",
                                                         "cost_points": 150, "stock": 10}, now)  # fmt: skip
    plan = club.create_plan(uow_factory(), program_id, PLUS | {"voucher_reward_id": voucher["id"]}, now)
    assert plan["price"] == "9.90" and plan["benefits"]["earn_multiplier"] == "1.5"
    member = enrol(uow_factory, program_id, now)

    joined = club.join_club(uow_factory(), program_id, member, "plus", now)
    assert joined["status"] == "trialing" and joined["benefits_apply"]
    trial_end = now + timedelta(days=14)
    assert joined["trial_ends_at"] == iso(trial_end)
    found = benefits_at(uow_factory, program_id, member, now)
    assert found is not None and found.earn_multiplier == Fraction(3, 2) and found.source == "club:plus"
    assert benefits_at(uow_factory, program_id, member, now - timedelta(seconds=1)) is None  # before joining

    # The trial ends unpaid: past due, no benefits; the job says so once.
    assert club.member_club(uow_factory(), program_id, member, trial_end)["subscription"]["status"] == "past_due"
    assert benefits_at(uow_factory, program_id, member, trial_end) is None
    assert club.run_club_job(uow_factory, trial_end, program_id)["past_due"] == 1
    assert club.run_club_job(uow_factory, trial_end + timedelta(hours=1), program_id)["past_due"] == 0
    assert len(topics(uow_factory, program_id, events.CLUB_PAST_DUE)) == 1

    # A late payment for the first period: active again, renewed event, perks for the period on the job.
    late = trial_end + timedelta(days=2)
    payment = club.record_payment(uow_factory(), program_id, member, pay("pi_1"), late)
    assert payment["period"] == {"index": 0, "start": iso(trial_end),
                                 "end": payment["period"]["end"]}  # fmt: skip
    view = club.member_club(uow_factory(), program_id, member, late)
    assert view["subscription"]["status"] == "active" and view["benefits"]["perks"] == ["free_shipping"]
    assert len(topics(uow_factory, program_id, events.CLUB_RENEWED)) == 1
    done = club.run_club_job(uow_factory, late, program_id)
    assert (done["perks_granted"], done["bonus_points"], done["vouchers"]) == (1, 200, 1)
    again = club.run_club_job(uow_factory, late + timedelta(minutes=5), program_id)
    assert (again["perks_granted"], again["bonus_points"], again["vouchers"]) == (0, 0, 0)  # once per period
    assert get_balance(uow_factory(), program_id, member, late)["points"] == 200  # the voucher cost none
    perks = club.member_club(uow_factory(), program_id, member, late)["subscription"]["perks"]
    assert sorted((p["perk"], p["points"], p["status"]) for p in perks) == [
        ("bonus_points", 200, "granted"), ("voucher", 150, "granted")]  # fmt: skip
    coupon = next(p["coupon_code"] for p in perks if p["perk"] == "voucher")
    redemptions = list_redemptions(uow_factory(), program_id, member)
    assert [(r["coupon_code"], r["status"]) for r in redemptions] == [(coupon, "club_perk")]
    # The voucher cost the member no points, so cancelling its redemption cannot give any back; the till uses it.
    with pytest.raises(AlreadyCancelled):
        cancel_redemption(uow_factory(), program_id, UUID(redemptions[0]["id"]), late)
    assert consume_coupon(uow_factory(), program_id, coupon, late)["status"] == "consumed"
    assert get_balance(uow_factory(), program_id, member, late)["points"] == 200
    assert verify(uow_factory(), program_id) == []

    # The second period is never paid: past due at its start, expired after the grace period (7 days).
    period_end = club.member_club(uow_factory(), program_id, member, late)["subscription"]["current_period"]["end"]
    due = datetime.fromisoformat(period_end)
    assert club.member_club(uow_factory(), program_id, member, due)["subscription"]["status"] == "past_due"
    expired_at = due + timedelta(days=7)
    result = club.run_club_job(uow_factory, expired_at + timedelta(days=1), program_id)
    assert result["expired"] == 1
    assert club.run_club_job(uow_factory, expired_at + timedelta(days=2), program_id)["expired"] == 0
    assert [e["expired_at"] for e in topics(uow_factory, program_id, events.CLUB_EXPIRED)] == [iso(expired_at)]
    assert benefits_at(uow_factory, program_id, member, expired_at) is None
    # History is kept: at an instant during the paid period the member had the benefits.
    assert benefits_at(uow_factory, program_id, member, late + timedelta(days=1)) is not None
    with pytest.raises(ClubSubscriptionEnded):
        club.record_payment(uow_factory(), program_id, member, pay("pi_2"), expired_at + timedelta(days=1))

    # Joining again: no second trial, so the first period must come paid.
    back = expired_at + timedelta(days=3)
    with pytest.raises(ClubPaymentRequired):
        club.join_club(uow_factory(), program_id, member, "plus", back)
    rejoined = club.join_club(uow_factory(), program_id, member, "plus", back, pay("pi_3"))
    assert rejoined["status"] == "active" and rejoined["trial_ends_at"] is None
    assert rejoined["payment"]["period"]["index"] == 0
    view = club.member_club(uow_factory(), program_id, member, back)
    assert view["subscription"]["id"] == rejoined["id"] and len(view["earlier"]) == 1
    assert [e["plan"] for e in topics(uow_factory, program_id, events.CLUB_JOINED)] == ["plus", "plus"]
    assert verify(uow_factory(), program_id) == []


def test_cancel_at_period_end_keeps_benefits_until_then_and_immediately_ends_them(uow_factory, program_id, now):
    club.create_plan(uow_factory(), program_id, PLUS | {"trial_days": 0, "bonus_points": 0}, now)
    member = enrol(uow_factory, program_id, now)
    joined = club.join_club(uow_factory(), program_id, member, "plus", now, pay("c-1"))
    end = joined["current_period"]["end"]
    later = now + timedelta(days=3)
    cancelled = club.cancel_subscription(uow_factory(), program_id, member, later, reason="too expensive")
    assert cancelled["status"] == "active" and cancelled["cancel_at"] == end
    with pytest.raises(AlreadyCancelled):
        club.cancel_subscription(uow_factory(), program_id, member, later)
    with pytest.raises(ClubSubscriptionEnded):  # the next period cannot be paid any more
        club.record_payment(uow_factory(), program_id, member, pay("c-2"), later)
    assert benefits_at(uow_factory, program_id, member, later + timedelta(days=1)) is not None
    # Changing one's mind to "now" ends it now.
    now_cancelled = club.cancel_subscription(uow_factory(), program_id, member, later + timedelta(days=1),
                                             at_period_end=False)  # fmt: skip
    assert now_cancelled["status"] == "cancelled"
    assert benefits_at(uow_factory, program_id, member, later + timedelta(days=2)) is None
    with pytest.raises(AlreadyCancelled):
        club.cancel_subscription(uow_factory(), program_id, member, later + timedelta(days=2), at_period_end=False)
    payloads = topics(uow_factory, program_id, events.CLUB_CANCELLED)
    assert sorted(p["at_period_end"] for p in payloads) == [False, True]
    # Cancelled means ended: the member may join again (paying, no second trial).
    again = club.join_club(uow_factory(), program_id, member, "plus", later + timedelta(days=2), pay("c-3"))
    assert again["status"] == "active"


def test_payments_are_idempotent_by_provider_reference_and_failures_make_it_past_due(uow_factory, program_id, now):
    club.create_plan(uow_factory(), program_id, PLUS | {"trial_days": 0}, now)
    member = enrol(uow_factory, program_id, now)
    joined = club.join_club(uow_factory(), program_id, member, "plus", now, pay("i-0"))
    due = joined["current_period"]["end"]
    at = datetime.fromisoformat(due)
    failed = club.record_payment(uow_factory(), program_id, member, pay("i-1", status="failed"), at)
    assert failed["status"] == "failed" and failed["period"]["index"] == 1
    assert club.member_club(uow_factory(), program_id, member, at)["subscription"]["status"] == "past_due"
    assert len(topics(uow_factory, program_id, events.CLUB_PAYMENT_FAILED)) == 1

    first = club.record_payment(uow_factory(), program_id, member, pay("i-2"), at + timedelta(hours=1))
    before = snapshot(uow_factory.engine, program_id)
    replay = club.record_payment(uow_factory(), program_id, member, pay("i-2"), at + timedelta(hours=2))
    assert replay == first and snapshot(uow_factory.engine, program_id) == before
    with pytest.raises(ClubPaymentReferenceReused):
        club.record_payment(uow_factory(), program_id, member, pay("i-2", status="failed"), at)
    assert (
        club.member_club(uow_factory(), program_id, member, at + timedelta(hours=1))["subscription"]["status"]
        == "active"
    )
    # Paying a period twice, or out of order, is refused.
    with pytest.raises(ClubPeriodPaid):
        club.record_payment(uow_factory(), program_id, member, pay("i-3", period_start=at), at)
    with pytest.raises(ClubPeriodInvalid):
        club.record_payment(uow_factory(), program_id, member, pay("i-4", period_start=at + timedelta(days=1)), at)


def test_bad_input_is_refused_and_changes_nothing(uow_factory, program_id, now):
    club.create_plan(uow_factory(), program_id, PLUS, now)
    club.create_plan(uow_factory(), program_id, PLUS | {"code": "old", "active": False}, now)
    member = enrol(uow_factory, program_id, now)
    stranger = enrol(uow_factory, program_id, now)
    club.join_club(uow_factory(), program_id, member, "plus", now)
    before = snapshot(uow_factory.engine, program_id)
    refusals: list[tuple[type[DomainError], Any]] = [
        (NotFound, lambda: club.join_club(uow_factory(), program_id, stranger, "gold", now)),  # unknown plan
        (ClubPlanUnavailable, lambda: club.join_club(uow_factory(), program_id, stranger, "old", now)),
        (NotFound, lambda: club.join_club(uow_factory(), program_id, UUID(int=7), "plus", now)),  # unknown member
        (ClubAlreadySubscribed, lambda: club.join_club(uow_factory(), program_id, member, "plus", now)),
        (ClubPlanExists, lambda: club.create_plan(uow_factory(), program_id, PLUS, now)),
        (
            CurrencyMismatch,
            lambda: club.create_plan(uow_factory(), program_id, PLUS | {"code": "x", "currency": "USD"}, now),
        ),
        (
            NotFound,
            lambda: club.record_payment(uow_factory(), program_id, stranger, pay("b-1"), now),
        ),  # no subscription
        (NotFound, lambda: club.record_payment(uow_factory(), program_id, member, pay("b-2", plan="gold"), now)),
        (
            NotFound,
            lambda: club.record_payment(
                uow_factory(), program_id, member, pay("b-3", subscription_id=UUID(int=9)), now
            ),
        ),
        (
            ClubPlanUnavailable,
            lambda: club.record_payment(uow_factory(), program_id, member, pay("b-4", plan="old"), now),
        ),
        (
            CurrencyMismatch,
            lambda: club.record_payment(uow_factory(), program_id, member, pay("b-5", currency="USD"), now),
        ),
        (ClubPaymentMismatch, lambda: club.record_payment(uow_factory(), program_id, member, pay("b-6", "9.00"), now)),
        (NotFound, lambda: club.cancel_subscription(uow_factory(), program_id, stranger, now)),
    ]
    for expected, call in refusals:
        with pytest.raises(expected):
            call()
    assert snapshot(uow_factory.engine, program_id) == before


def test_two_joins_of_one_member_at_once_make_one_subscription(uow_factory, program_id, now, postgres_only):
    club.create_plan(uow_factory(), program_id, PLUS, now)
    member = enrol(uow_factory, program_id, now)
    results = race([lambda: club.join_club(uow_factory(), program_id, member, "plus", now) for _ in range(4)])
    assert sum(isinstance(r, dict) for r in results) == 1, results
    assert all(isinstance(r, ClubAlreadySubscribed) for r in results if not isinstance(r, dict))


def test_a_payment_reported_twice_at_once_is_recorded_once(uow_factory, program_id, now, postgres_only):
    club.create_plan(uow_factory(), program_id, PLUS, now)
    member = enrol(uow_factory, program_id, now)
    club.join_club(uow_factory(), program_id, member, "plus", now)
    results = race([lambda: club.record_payment(uow_factory(), program_id, member, pay("dup"), now) for _ in range(4)])
    assert all(isinstance(r, dict) for r in results), results
    assert len({r["id"] for r in results}) == 1
    other = race([lambda n=n: club.record_payment(uow_factory(), program_id, member, pay(f"p{n}"), now)
                  for n in range(3)])  # fmt: skip
    # Three different payments for "the next period" at once: they queue and each pays the next one in turn.
    assert sorted(r["period"]["index"] for r in other) == [1, 2, 3]


def test_club_benefits_apply_to_purchases_only_while_trialing_or_active(uow_factory, program_id, now):
    club.create_plan(uow_factory(), program_id, PLUS | {"benefits": {"earn_multiplier": "1.5", "cashback_percent": "2"}},
                     now)  # fmt: skip
    member, outsider = enrol(uow_factory, program_id, now), enrol(uow_factory, program_id, now)
    club.join_club(uow_factory(), program_id, member, "plus", now)
    during_trial = buy(uow_factory, program_id, member, "40.00", now + timedelta(days=1))
    by_rule = {line["rule"]: line["points"] for line in during_trial["explanation"]["rules"]}
    assert by_rule == {"base": 40, "club:plus": 20}  # x1.5 on the base points
    assert [h["amount"] for h in during_trial["explanation"]["hooks"] if h["type"] == "Cashback"] == ["0.80"]
    assert buy(uow_factory, program_id, outsider, "40.00", now + timedelta(days=1))["points_earned"] == 40
    # The trial ended without a payment: past due, no benefits.
    after = buy(uow_factory, program_id, member, "40.00", now + timedelta(days=20))
    assert after["points_earned"] == 40
