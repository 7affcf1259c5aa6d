"""Checkout holds in the domain: state from time, capture limits, points to money, minimum redemption."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from treue.domain.errors import (
    BelowMinimumRedemption,
    HoldExceeded,
    HoldNotActive,
    InsufficientPoints,
    InsufficientWallet,
    InvalidInput,
    PaymentExceedsTotal,
)
from treue.domain.holds import (
    Hold,
    HoldState,
    HoldStatus,
    check_payment_within_total,
    check_redemption,
    check_reservable,
    hold_expiry,
    max_points_payable,
    points_value,
)
from treue.domain.money import Money, Rounding
from treue.domain.programs import Program

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def program(**kw) -> Program:
    return Program(uuid.uuid4(), "P", "EUR", "Europe/Berlin", **kw)


def hold(points: int = 100, wallet: int = 0, status: HoldStatus = HoldStatus.HELD) -> Hold:
    return Hold(uuid.uuid4(), uuid.uuid4(), "EUR", points, wallet, NOW + timedelta(minutes=15), status)


def test_a_hold_is_active_until_its_expiry_then_expired_without_any_write():
    h = hold()
    assert h.state(NOW) is HoldState.ACTIVE
    assert h.state(NOW + timedelta(minutes=15)) is HoldState.EXPIRED
    assert hold(status=HoldStatus.CAPTURED).state(NOW) is HoldState.CAPTURED
    assert hold(status=HoldStatus.RELEASED).state(NOW - timedelta(days=1)) is HoldState.RELEASED


@pytest.mark.parametrize("status", list(HoldStatus))
def test_only_an_active_hold_can_be_captured(status):
    h = hold(status=status)
    if status is HoldStatus.HELD:
        h.check_capturable(NOW)
        with pytest.raises(HoldNotActive) as expired:
            h.check_capturable(NOW + timedelta(hours=1))
        assert expired.value.extra["reason"] == "expired"
    else:
        with pytest.raises(HoldNotActive) as refused:
            h.check_capturable(NOW)
        assert refused.value.extra["reason"] == status.value


def test_a_capture_takes_at_most_what_is_held():
    h = hold(points=100, wallet=250)
    h.check_capture(100, 250)
    h.check_capture(0, 10)
    with pytest.raises(HoldExceeded):
        h.check_capture(101, 0)
    with pytest.raises(HoldExceeded):
        h.check_capture(0, 251)
    with pytest.raises(InvalidInput):
        h.check_capture(-1, 0)


def test_a_hold_keeps_something_and_nothing_negative():
    with pytest.raises(InvalidInput):
        hold(points=0, wallet=0)
    with pytest.raises(InvalidInput):
        hold(points=-5, wallet=10)


@pytest.mark.parametrize(("rounding", "points", "minor"), [
    (Rounding.FLOOR, 2, 3), (Rounding.CEIL, 2, 4), (Rounding.HALF_UP, 1, 2), (Rounding.HALF_EVEN, 1, 2),
    (Rounding.HALF_EVEN, 3, 5),
])  # fmt: skip
def test_points_turn_into_money_at_the_point_value_by_the_rounding_policy(rounding, points, minor):
    p = program(point_value_minor=5, point_value_points=3, rounding=rounding)  # 1 point = 1.666... ct
    assert points_value(p, points) == Money(minor, "EUR")


def test_max_points_payable_never_pays_more_than_the_cart_even_when_rounding_up():
    p = program(point_value_minor=5, point_value_points=3, rounding=Rounding.CEIL)
    best = max_points_payable(p, 10_000, 1001)
    assert points_value(p, best).minor <= 1001 < points_value(p, best + 1).minor
    assert max_points_payable(p, 100, 1001) == 100  # limited by what is usable
    assert max_points_payable(program(point_value_minor=0), 100, 1000) == 0  # points worth nothing
    assert max_points_payable(program(min_redemption_points=500), 499, 10_000) == 0  # below the minimum


def test_minimum_redemption_and_payment_within_total():
    p = program(min_redemption_points=200)
    check_redemption(p, 0)  # paying no points is always fine
    check_redemption(p, 200)
    with pytest.raises(BelowMinimumRedemption):
        check_redemption(p, 199)
    assert check_payment_within_total(program(), 500, 500, 1000) == Money(500, "EUR")
    with pytest.raises(PaymentExceedsTotal):
        check_payment_within_total(program(), 501, 500, 1000)


def test_reservable_within_usable_amounts_only():
    check_reservable(10, 100, 10, Money(100, "EUR"))
    with pytest.raises(InsufficientPoints):
        check_reservable(11, 0, 10, Money(100, "EUR"))
    with pytest.raises(InsufficientWallet):
        check_reservable(0, 101, 10, Money(100, "EUR"))


def test_hold_expiry_defaults_to_the_programme_and_is_bounded():
    assert hold_expiry(program(hold_minutes=30), NOW, None) == NOW + timedelta(minutes=30)
    assert hold_expiry(program(), NOW, 5) == NOW + timedelta(minutes=5)
    with pytest.raises(InvalidInput):
        hold_expiry(program(), NOW, 0)
    with pytest.raises(InvalidInput):
        Program(uuid.uuid4(), "P", "EUR", "Europe/Berlin", hold_minutes=0)
