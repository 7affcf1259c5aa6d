"""Pure domain tests (no I/O): the points account, integer rounding, refunds, cards, calendar, expiry dates."""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from treue.domain.durations import add_local_days, add_months, end_of_local_day
from treue.domain.errors import InsufficientPoints, InvalidInput, InvariantViolated
from treue.domain.lots import Allocation, NewLot
from treue.domain.members import (
    CARD_LENGTH,
    CARD_PREFIX,
    luhn_check_digit,
    luhn_valid,
    new_card_number,
    normalise_card_number,
)
from treue.domain.money import Rounding, divide
from treue.domain.points import PointsAccount
from treue.domain.programs import ExpiryPolicy, Program, ReturnPolicy
from treue.domain.purchases import points_to_take_back

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def _id() -> UUID:
    return uuid.uuid4()


def account(balance: int = 0, negative_allowed: bool = False) -> PointsAccount:
    member = _id()
    return PointsAccount(member, member, balance, negative_allowed)


def lot(amount: int, available_at: datetime = T0, expires_at: datetime | None = None, **kw: object) -> NewLot:
    return NewLot(_id(), amount, available_at, expires_at, **kw)  # type: ignore[arg-type]


# -- PointsAccount ------------------------------------------------------------------------------------------


def test_credit_adds_lots_and_balance():
    acc = account()
    acc.credit([lot(30), lot(20)], _id())
    assert acc.balance == 50
    assert acc.available(T0) == 50 and acc.pending(T0) == 0
    acc.check()


def test_credit_refuses_an_empty_lot():
    with pytest.raises(InvariantViolated):
        account().credit([lot(0)], _id())


def test_pending_and_available_are_computed_from_time():
    acc = account()
    acc.credit([lot(40, available_at=T0 + timedelta(days=14))], _id())
    b = acc.balance_at(T0)
    assert (b.total, b.available, b.pending) == (40, 0, 40)
    b = acc.balance_at(T0 + timedelta(days=14))
    assert (b.total, b.available, b.pending) == (40, 40, 0)


def test_spend_draws_soonest_expiring_first_and_never_expiring_last():
    acc = account()
    never, late, soon = (
        lot(50),
        lot(50, expires_at=T0 + timedelta(days=300)),
        lot(50, expires_at=T0 + timedelta(days=10)),
    )
    acc.credit([never, late, soon], _id())
    draw = acc.spend(80, T0)
    assert draw.allocations == {soon.id: 50, late.id: 30}
    assert acc.balance == 70
    acc.check()


def test_spend_ignores_pending_and_expired_lots_and_refuses_without_changing_anything():
    acc = account()
    pending = lot(50, available_at=T0 + timedelta(days=1))
    expired = lot(50, expires_at=T0)
    ok = lot(10)
    acc.credit([pending, expired, ok], _id())
    with pytest.raises(InsufficientPoints) as refused:
        acc.spend(11, T0)
    assert refused.value.extra == {"needed": 11, "available": 10}
    assert acc.balance == 110 and [x.remaining for x in acc.lots] == [50, 50, 10]
    assert acc.spend(10, T0).allocations == {ok.id: 10}


def test_spend_and_deduct_refuse_non_positive_amounts():
    acc = account()
    acc.credit([lot(10)], _id())
    for points in (0, -1):
        with pytest.raises(InvariantViolated):
            acc.spend(points, T0)
        with pytest.raises(InvariantViolated):
            acc.deduct(points, T0)


def test_deduct_uses_available_then_pending_but_not_expired_and_never_goes_below_zero():
    acc = account()
    available, pending, expired = lot(10), lot(20, available_at=T0 + timedelta(days=5)), lot(30, expires_at=T0)
    acc.credit([available, pending, expired], _id())
    with pytest.raises(InsufficientPoints):
        acc.deduct(31, T0)
    draw = acc.deduct(25, T0)
    assert draw.allocations == {available.id: 10, pending.id: 15}
    assert acc.balance == 35
    acc.check()


def test_give_back_returns_points_to_the_very_lots_they_came_from():
    acc = account()
    soon, late = lot(50, expires_at=T0 + timedelta(days=10)), lot(50, expires_at=T0 + timedelta(days=100))
    acc.credit([soon, late], _id())
    spent = acc.spend(70, T0)
    acc.give_back(spent.allocation_rows())
    assert acc.balance == 100
    assert {x.id: x.remaining for x in acc.lots} == {soon.id: 50, late.id: 50}
    acc.check()


def test_give_back_into_a_deficit_pays_the_deficit_first():
    acc = account(negative_allowed=True)
    bought, other = lot(100), lot(20, available_at=T0 - timedelta(days=1))
    acc.credit([bought, other], _id())
    spent = acc.spend(50, T0)  # 20 from the older lot, 30 from the purchase's
    acc.take_back(100, T0, {bought.id}, ReturnPolicy.ALLOW_NEGATIVE)  # 70 held, 100 due: 30 short
    assert acc.balance == -30
    draw = acc.give_back(spent.allocation_rows())
    assert acc.balance == 20
    assert sum(x.remaining for x in acc.lots) == 20  # 50 returned to the lots, 30 of it settles the deficit
    assert sum(draw.allocations.values()) == -20
    acc.check()


def test_give_back_refuses_to_overfill_a_lot():
    acc = account()
    only = lot(10)
    acc.credit([only], _id())
    with pytest.raises(InvariantViolated):
        acc.give_back([Allocation(only.id, 1)])


def test_expire_moves_only_an_expired_lots_remainder():
    acc = account()
    ending = lot(40, expires_at=T0 + timedelta(days=1))
    acc.credit([ending, lot(5)], _id())
    draw, amount = acc.expire(ending.id, T0)  # not yet expired: nothing
    assert amount == 0 and not draw.allocations
    assert acc.balance == 45
    draw, amount = acc.expire(ending.id, T0 + timedelta(days=1))
    assert amount == 40 and draw.allocations == {ending.id: 40}
    assert acc.balance == 5
    assert acc.expire(ending.id, T0 + timedelta(days=2))[1] == 0  # already expired: nothing more
    acc.check()


def test_take_back_within_balance_takes_what_is_there_and_reports_the_rest_as_forgiven():
    acc = account()
    bought = lot(100)
    acc.credit([bought], _id())
    acc.spend(70, T0)
    result = acc.take_back(100, T0, {bought.id}, ReturnPolicy.WITHIN_BALANCE)
    assert (result.taken, result.forgiven) == (30, 70)
    assert acc.balance == 0
    acc.check()


def test_take_back_within_balance_uses_other_points_after_the_purchases_own():
    acc = account()
    bought, other = lot(100), lot(50, available_at=T0 - timedelta(days=1))
    acc.credit([bought, other], _id())
    acc.spend(80, T0)  # both lots never expire: the older one (other) goes first
    result = acc.take_back(100, T0, {bought.id}, ReturnPolicy.WITHIN_BALANCE)
    assert (result.taken, result.forgiven) == (70, 30)
    assert acc.balance == 0


def test_take_back_only_pending_takes_nothing_that_became_available():
    acc = account()
    pending, available = lot(60, available_at=T0 + timedelta(days=3)), lot(40)
    acc.credit([pending, available], _id())
    result = acc.take_back(100, T0, {pending.id, available.id}, ReturnPolicy.ONLY_PENDING)
    assert (result.taken, result.forgiven) == (60, 40)
    assert acc.balance == 40
    acc.check()


def test_take_back_allow_negative_takes_everything_and_a_later_credit_pays_the_deficit():
    acc = account(negative_allowed=True)
    bought = lot(100)
    acc.credit([bought], _id())
    acc.spend(70, T0)
    result = acc.take_back(100, T0, {bought.id}, ReturnPolicy.ALLOW_NEGATIVE)
    assert (result.taken, result.forgiven) == (100, 0)
    assert acc.balance == -70
    acc.check()
    new = lot(100)
    draw = acc.credit([new], _id())
    assert draw.allocations == {new.id: 70}
    assert acc.balance == 30 and acc.available(T0) == 30
    acc.check()


def test_take_back_allow_negative_uses_expired_unprocessed_points_before_going_negative():
    acc = account(negative_allowed=True)
    bought, stale = lot(10), lot(5, expires_at=T0)
    acc.credit([bought, stale], _id())
    result = acc.take_back(12, T0, {bought.id}, ReturnPolicy.ALLOW_NEGATIVE)
    assert result.taken == 12 and acc.balance == 3
    acc.check()


def test_check_catches_a_broken_account():
    acc = account()
    acc.credit([lot(10)], _id())
    acc.balance += 1
    with pytest.raises(InvariantViolated):
        acc.check()
    negative = account(balance=-1)
    with pytest.raises(InvariantViolated):
        negative.check()
    account(balance=-1, negative_allowed=True).check()


# -- money.divide -------------------------------------------------------------------------------------------

F, HU, HE, C = Rounding.FLOOR, Rounding.HALF_UP, Rounding.HALF_EVEN, Rounding.CEIL


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        # n, d, {policy: result}
        (7, 2, {F: 3, HU: 4, HE: 4, C: 4}),  # 3.5
        (5, 2, {F: 2, HU: 3, HE: 2, C: 3}),  # 2.5
        (-5, 2, {F: -3, HU: -3, HE: -2, C: -2}),  # -2.5: half away from zero / to even
        (-7, 2, {F: -4, HU: -4, HE: -4, C: -3}),  # -3.5
        (-3, 2, {F: -2, HU: -2, HE: -2, C: -1}),  # -1.5
        (1, 2, {F: 0, HU: 1, HE: 0, C: 1}),  # 0.5
        (-1, 2, {F: -1, HU: -1, HE: 0, C: 0}),  # -0.5
        (10, 3, {F: 3, HU: 3, HE: 3, C: 4}),  # 3.33
        (20, 3, {F: 6, HU: 7, HE: 7, C: 7}),  # 6.67
        (-10, 3, {F: -4, HU: -3, HE: -3, C: -3}),  # -3.33
        (-20, 3, {F: -7, HU: -7, HE: -7, C: -6}),  # -6.67
        (12, 4, {F: 3, HU: 3, HE: 3, C: 3}),  # exact
        (-12, 4, {F: -3, HU: -3, HE: -3, C: -3}),
        (0, 7, {F: 0, HU: 0, HE: 0, C: 0}),
        (12345, 100, {F: 123, HU: 123, HE: 123, C: 124}),
        (12350, 100, {F: 123, HU: 124, HE: 124, C: 124}),
        (12250, 100, {F: 122, HU: 123, HE: 122, C: 123}),
    ],
)
def test_divide_rounds_by_policy(numerator, denominator, expected):
    for rounding, result in expected.items():
        assert divide(numerator, denominator, rounding) == result, (numerator, denominator, rounding)


def _reference(numerator: int, denominator: int, rounding: Rounding) -> int:
    x = Fraction(numerator, denominator)
    if rounding is Rounding.FLOOR:
        return math.floor(x)
    if rounding is Rounding.CEIL:
        return math.ceil(x)
    if rounding is Rounding.HALF_EVEN:
        return round(x)  # Fraction rounds half to even
    sign = -1 if x < 0 else 1
    return sign * math.floor(abs(x) + Fraction(1, 2))


@given(st.integers(-(10**15), 10**15), st.integers(1, 10**6), st.sampled_from(Rounding))
def test_divide_matches_exact_rational_rounding(numerator, denominator, rounding):
    assert divide(numerator, denominator, rounding) == _reference(numerator, denominator, rounding)


@pytest.mark.parametrize("denominator", [0, -1])
def test_divide_refuses_a_non_positive_denominator(denominator):
    with pytest.raises(ValueError):
        divide(1, denominator, Rounding.FLOOR)


# -- refunds: points_to_take_back ---------------------------------------------------------------------------


@st.composite
def refund_plans(draw: st.DrawFn) -> tuple[int, int, list[int], Rounding]:
    total = draw(st.integers(1, 10**7))
    earned = draw(st.integers(0, 10**6))
    cuts = sorted(set(draw(st.lists(st.integers(1, total - 1), max_size=12)))) if total > 1 else []
    bounds = [0, *cuts, total]
    parts = [b - a for a, b in itertools.pairwise(bounds)]
    return earned, total, parts, draw(st.sampled_from(Rounding))


@given(refund_plans())
def test_partial_refunds_adding_up_to_the_purchase_take_back_exactly_what_it_earned(plan):
    earned, total, parts, rounding = plan
    assert sum(parts) == total and all(part > 0 for part in parts)
    refunded, taken = 0, []
    for part in parts:
        points = points_to_take_back(earned, total, refunded, part, rounding)
        assert 0 <= points <= earned
        taken.append(points)
        refunded += part
        # After each refund the cumulative take-back is the rounded proportion of the cumulative amount.
        assert sum(taken) == divide(earned * refunded, total, rounding)
    assert sum(taken) == earned


def test_partial_refunds_of_thirds_sum_to_the_earned_points():
    for rounding in Rounding:
        parts = [points_to_take_back(100, 10000, before, amount, rounding)
                 for before, amount in ((0, 3333), (3333, 3333), (6666, 3334))]  # fmt: skip
        assert sum(parts) == 100, rounding


def test_refund_of_a_zero_total_purchase_takes_back_its_points_once():
    assert points_to_take_back(5, 0, 0, 0, Rounding.FLOOR) == 5
    assert points_to_take_back(5, 0, 1, 0, Rounding.FLOOR) == 0


# -- members: cards -----------------------------------------------------------------------------------------


def test_luhn_known_numbers():
    assert luhn_check_digit("7992739871") == 3
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("7")  # too short to carry a check digit
    assert not luhn_valid("12a4")


@given(st.text(alphabet="0123456789", min_size=1, max_size=30), st.data())
def test_luhn_detects_every_single_digit_error(body, data):
    number = body + str(luhn_check_digit(body))
    assert luhn_valid(number)
    position = data.draw(st.integers(0, len(number) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    assert not luhn_valid(number[:position] + wrong + number[position + 1 :])


def test_new_card_number_has_prefix_length_and_check_digit():
    number = new_card_number(lambda n: "1234567890123456789"[:n])
    assert number.startswith(CARD_PREFIX) and len(number) == CARD_LENGTH
    assert number[:-1] == CARD_PREFIX + "12345678901234"
    assert luhn_valid(number)


def test_card_numbers_are_normalised_and_checked():
    number = new_card_number(lambda n: "9" * n)
    spaced = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    assert normalise_card_number(spaced) == number
    assert normalise_card_number(number[:8] + "-" + number[8:]) == number
    assert normalise_card_number(f"\t{number}\n") == number
    broken = number[:-1] + str((int(number[-1]) + 1) % 10)
    for bad in (broken, number[:-1], number + "0", "x" * CARD_LENGTH, ""):
        with pytest.raises(InvalidInput):
            normalise_card_number(bad)


# -- durations ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 1, 31), 2, date(2026, 3, 31)),  # clamping does not carry over
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 11, 30), 14, date(2028, 1, 30)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 1, 10), -1, date(2025, 12, 10)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2026, 5, 17), 0, date(2026, 5, 17)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(day, months, expected):
    assert add_months(day, months) == expected


def test_add_local_days_keeps_wall_clock_time_across_spring_forward():
    before = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)  # 10:00 CET
    after = add_local_days(before, 1, BERLIN)
    assert after.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 10, 0)
    assert after == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # 10:00 CEST
    assert after - before == timedelta(hours=23)


def test_add_local_days_keeps_wall_clock_time_across_fall_back():
    before = datetime(2026, 10, 24, 8, 0, tzinfo=UTC)  # 10:00 CEST
    after = add_local_days(before, 1, BERLIN)
    assert after.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 10, 25, 10, 0)
    assert after - before == timedelta(hours=25)
    assert add_local_days(before, 14, BERLIN) == datetime(2026, 11, 7, 9, 0, tzinfo=UTC)


def test_end_of_local_day_on_dst_days():
    assert end_of_local_day(date(2026, 3, 28), BERLIN) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert end_of_local_day(date(2026, 3, 29), BERLIN) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert end_of_local_day(date(2026, 10, 25), BERLIN) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)


# -- programme expiry dates ---------------------------------------------------------------------------------


def program(**kw: object) -> Program:
    return Program(id=_id(), name="Test", currency="EUR", timezone="Europe/Berlin", **kw)  # type: ignore[arg-type]


def test_no_expiry_policy_means_points_never_expire():
    assert program().expires_at(T0) is None


@pytest.mark.parametrize(
    ("earned_at", "months", "expected"),
    [
        # valid until the end of the same local day N months later
        (datetime(2026, 3, 2, 10, 0, tzinfo=UTC), 12, datetime(2027, 3, 2, 23, 0, tzinfo=UTC)),
        (datetime(2026, 6, 15, 10, 0, tzinfo=UTC), 1, datetime(2026, 7, 15, 22, 0, tzinfo=UTC)),  # CEST
        (datetime(2026, 1, 31, 12, 0, tzinfo=UTC), 1, datetime(2026, 2, 28, 23, 0, tzinfo=UTC)),  # clamped
        # 23:30 UTC on Jan 31 is already Feb 1 in Berlin: the local day counts
        (datetime(2026, 1, 31, 23, 30, tzinfo=UTC), 1, datetime(2026, 3, 1, 23, 0, tzinfo=UTC)),
        (datetime(2026, 2, 28, 12, 0, tzinfo=UTC), 1, datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),
    ],
)
def test_rolling_expiry(earned_at, months, expected):
    p = program(expiry_policy=ExpiryPolicy.ROLLING, expiry_months=months)
    assert p.expires_at(earned_at) == expected


@pytest.mark.parametrize(
    ("earned_at", "day", "years", "expected"),
    [
        (datetime(2026, 5, 5, 10, 0, tzinfo=UTC), "12-31", 1, datetime(2027, 12, 31, 23, 0, tzinfo=UTC)),
        (datetime(2026, 1, 1, 10, 0, tzinfo=UTC), "12-31", 1, datetime(2027, 12, 31, 23, 0, tzinfo=UTC)),
        # New Year's Eve 23:30 UTC is already next year in Berlin
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "12-31", 1, datetime(2028, 12, 31, 23, 0, tzinfo=UTC)),
        (datetime(2026, 5, 5, 10, 0, tzinfo=UTC), "06-30", 2, datetime(2028, 6, 30, 22, 0, tzinfo=UTC)),  # CEST
        (datetime(2026, 5, 5, 10, 0, tzinfo=UTC), "12-31", 0, datetime(2026, 12, 31, 23, 0, tzinfo=UTC)),
    ],
)
def test_fixed_day_expiry(earned_at, day, years, expected):
    p = program(expiry_policy=ExpiryPolicy.FIXED_DAY, expiry_day=day, expiry_years=years)
    assert p.expires_at(earned_at) == expected


def test_expiry_settings_are_validated():
    for bad in (
        {"expiry_policy": ExpiryPolicy.ROLLING, "expiry_months": 0},
        {"expiry_policy": ExpiryPolicy.FIXED_DAY},
        {"expiry_policy": ExpiryPolicy.FIXED_DAY, "expiry_day": "02-29"},
        {"expiry_policy": ExpiryPolicy.FIXED_DAY, "expiry_day": "13-01"},
    ):
        with pytest.raises(InvalidInput):
            program(**bad)


# -- stateful: a bare PointsAccount under random operations ---------------------------------------------------


class PointsAccountMachine(RuleBasedStateMachine):
    """Every operation keeps the account's own invariants, and the balance is the running sum of deltas."""

    @initialize(negative_allowed=st.booleans())
    def open(self, negative_allowed: bool) -> None:
        self.account = account(negative_allowed=negative_allowed)
        self.now = T0
        self.expected = 0
        self.credits: list[set[UUID]] = []  # lot ids of each credit (a "purchase" to take back from)
        self.spends: list[list[Allocation]] = []  # spends not yet given back

    def _policies(self) -> list[ReturnPolicy]:
        safe = [ReturnPolicy.ONLY_PENDING, ReturnPolicy.WITHIN_BALANCE]
        # ALLOW_NEGATIVE twice: deficits are where credits and give-backs must settle first.
        return (
            [*safe, ReturnPolicy.ALLOW_NEGATIVE, ReturnPolicy.ALLOW_NEGATIVE] if self.account.negative_allowed else safe
        )

    @rule(
        amounts=st.lists(st.integers(1, 100), min_size=1, max_size=3),
        pending_hours=st.sampled_from([0, 0, 1, 24, 72]),
        expires_in_hours=st.none() | st.integers(1, 400),
    )
    def credit(self, amounts: list[int], pending_hours: int, expires_in_hours: int | None) -> None:
        expires_at = None if expires_in_hours is None else self.now + timedelta(hours=expires_in_hours)
        lots = [lot(a, self.now + timedelta(hours=pending_hours), expires_at) for a in amounts]
        deficit = max(0, -self.account.balance)
        draw = self.account.credit(lots, _id())
        assert sum(draw.allocations.values()) == min(deficit, sum(amounts))  # a deficit is paid off first
        self.credits.append({x.id for x in lots})
        self.expected += sum(amounts)

    @rule(points=st.integers(1, 120), fit=st.booleans())
    def spend(self, points: int, fit: bool) -> None:
        available = self.account.available(self.now)
        if fit and available:  # mostly what is there, so that there are spends to give back
            points = 1 + (points - 1) % available
        usable = {x.id for x in self.account.lots if x.is_available(self.now)}
        if points > available:
            before = [x.remaining for x in self.account.lots]
            with pytest.raises(InsufficientPoints):
                self.account.spend(points, self.now)
            assert [x.remaining for x in self.account.lots] == before
            return
        draw = self.account.spend(points, self.now)
        assert sum(draw.allocations.values()) == points
        assert set(draw.allocations) <= usable
        self.spends.append(draw.allocation_rows())
        self.expected -= points

    @rule(points=st.integers(1, 300))
    def deduct(self, points: int) -> None:
        have = sum(x.remaining for x in self.account.lots if not x.is_expired(self.now))
        if points > have:
            with pytest.raises(InsufficientPoints):
                self.account.deduct(points, self.now)
            return
        draw = self.account.deduct(points, self.now)
        assert sum(draw.allocations.values()) == points
        self.expected -= points

    @precondition(lambda self: self.credits)
    @rule(points=st.integers(1, 300), beyond=st.booleans(), index=st.integers(0, 10**6), data=st.data())
    def take_back(self, points: int, beyond: bool, index: int, data: st.DataObject) -> None:
        policy = data.draw(st.sampled_from(self._policies()))
        if beyond:  # more than the account holds: forgiven, or a deficit under ALLOW_NEGATIVE
            points = max(self.account.balance, 0) + points
        own = self.credits[index % len(self.credits)]
        result = self.account.take_back(points, self.now, own, policy)
        assert result.taken >= 0 and result.forgiven >= 0
        assert result.taken + result.forgiven == points
        if policy is ReturnPolicy.ALLOW_NEGATIVE:
            assert result.forgiven == 0
        if policy is ReturnPolicy.ONLY_PENDING:
            assert all(x.id in own for x in self.account.lots if result.draw.allocations.get(x.id))
        self.expected -= result.taken

    @precondition(lambda self: self.spends)
    @rule(index=st.integers(0, 10**6))
    def give_back(self, index: int) -> None:
        allocations = self.spends.pop(index % len(self.spends))
        self.account.give_back(allocations)
        self.expected += sum(a.amount for a in allocations)

    @rule(hours=st.integers(0, 100))
    def expire(self, hours: int) -> None:
        self.now += timedelta(hours=hours)
        for x in list(self.account.lots):
            remaining = x.remaining
            draw, amount = self.account.expire(x.id, self.now)
            assert amount == (remaining if x.is_expired(self.now) else 0)
            assert sum(draw.allocations.values()) == amount
            self.expected -= amount
        assert all(x.remaining == 0 for x in self.account.lots if x.is_expired(self.now))

    @invariant()
    def account_is_consistent(self) -> None:
        if not hasattr(self, "account"):
            return
        self.account.check()
        assert self.account.balance == self.expected
        b = self.account.balance_at(self.now)
        assert b.available + b.pending <= max(b.total, 0)
        assert b.available == sum(x.remaining for x in self.account.lots if x.is_available(self.now))


PointsAccountMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_points_account_state_machine = PointsAccountMachine.TestCase
