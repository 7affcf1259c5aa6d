"""Giving back a checkout payment on refund, in the domain: cumulative shares that add up exactly, the undo order
over the payment's lots, expired lots replaced by new ones, a deficit settled first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treue.domain.errors import InvariantViolated
from treue.domain.holds import return_payment, returned_range
from treue.domain.lots import Allocation, Lot, NewLot
from treue.domain.money import Rounding
from treue.domain.points import PointsAccount

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def lot(amount: int, remaining: int, expires_in_days: int | None) -> Lot:
    expires = None if expires_in_days is None else NOW + timedelta(days=expires_in_days)
    return Lot(uuid.uuid4(), amount, remaining, NOW - timedelta(days=60), expires, uuid.uuid4(), None, "shop")


def fresh(old: Lot, amount: int) -> NewLot:
    return NewLot(uuid.uuid4(), amount, NOW, NOW + timedelta(days=365), None, old.partner)


@given(
    paid=st.integers(0, 10_000),
    total=st.integers(1, 100_000),
    cuts=st.lists(st.integers(1, 100_000), min_size=1, max_size=6),
    rounding=st.sampled_from(list(Rounding)),
)
def test_partial_refunds_give_back_exactly_what_was_paid_never_more(paid, total, cuts, rounding):
    refunds, left = [], total
    for cut in cuts:
        if left == 0:
            break
        refunds.append(min(cut, left))
        left -= refunds[-1]
    if left:
        refunds.append(left)
    before, position = 0, 0
    for refund in refunds:
        start, end = returned_range(paid, total, before, refund, rounding)
        assert start == position and start <= end  # contiguous slices, none negative
        position, before = end, before + refund
    assert position == paid


def test_a_free_purchase_gives_everything_back_on_its_first_refund():
    assert returned_range(300, 0, 0, 0, Rounding.FLOOR) == (0, 300)
    assert returned_range(300, 0, 10, 0, Rounding.FLOOR) == (300, 300)


def test_slices_come_back_in_undo_order_latest_expiring_lot_first():
    soon, late = lot(100, 0, 10), lot(100, 50, 90)
    account = PointsAccount(uuid.uuid4(), uuid.uuid4(), 50, False, [soon, late])
    drawn = [Allocation(soon.id, 100), Allocation(late.id, 50)]  # spending took the soonest-expiring first
    first = return_payment(account, drawn, 0, 80, NOW, uuid.uuid4(), fresh)
    assert first.draw.allocations == {late.id: -50, soon.id: -30}
    assert (first.to_lots, first.as_new_lots, account.balance, late.remaining, soon.remaining) == (80, 0, 130, 100, 30)
    rest = return_payment(account, drawn, 80, 150, NOW, uuid.uuid4(), fresh)
    assert rest.draw.allocations == {soon.id: -70} and soon.remaining == 100
    account.check()


def test_an_expired_lot_is_replaced_by_a_new_lot_and_a_deficit_is_settled_first():
    gone, alive = lot(40, 0, -1), lot(60, 0, 30)
    account = PointsAccount(uuid.uuid4(), uuid.uuid4(), -10, True, [gone, alive])
    back = return_payment(account, [Allocation(gone.id, 40), Allocation(alive.id, 60)], 0, 100, NOW, uuid.uuid4(),
                          fresh)  # fmt: skip
    assert (back.to_lots, back.as_new_lots, back.amount, account.balance) == (60, 40, 100, 90)
    assert gone.remaining == 0  # the expiry job would only write it off again
    (new,) = back.draw.new_lots
    assert (new.amount, new.partner, new.expires_at) == (40, "shop", NOW + timedelta(days=365))
    # The deficit of 10 is paid from the lot given back first (the alive one, in undo order).
    assert back.draw.allocations[alive.id] == -60 + 10
    account.check()


def test_a_slice_beyond_the_payment_or_an_unloaded_lot_is_refused():
    one = lot(10, 0, 30)
    account = PointsAccount(uuid.uuid4(), uuid.uuid4(), 0, False, [one])
    with pytest.raises(InvariantViolated):
        return_payment(account, [Allocation(one.id, 10)], 0, 11, NOW, uuid.uuid4(), fresh)
    with pytest.raises(InvariantViolated):
        return_payment(account, [Allocation(uuid.uuid4(), 10)], 0, 5, NOW, uuid.uuid4(), fresh)
