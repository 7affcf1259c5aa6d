"""Checkout: preview, reserve (a hold), capture together with the purchase, release; expiry computed from time.
Every refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from tests.integration.helpers import buy, enrol
from tests.integration.rules_helpers import rule
from treue.domain.errors import (
    BelowMinimumRedemption,
    CurrencyMismatch,
    HoldExceeded,
    HoldNotActive,
    InsufficientPoints,
    InsufficientWallet,
    PaymentExceedsTotal,
)
from treue.services.checkout import CaptureHold, ReserveHold, capture, get_hold, preview_checkout, release, reserve
from treue.services.points import adjust_points, get_balance, transfer_points
from treue.services.programs import update_program
from treue.services.purchases import LineInput, RecordPurchase
from treue.services.rewards import create_reward, redeem_reward
from treue.services.verify import verify
from treue.services.wallet import get_wallet, wallet_history


def order(total: str, at, order_id: str = "till-1", member: UUID | None = None) -> RecordPurchase:
    return RecordPurchase(external_order_id=order_id, total=total, currency="EUR", occurred_at=at, member_id=member,
                          lines=[LineInput("SOFA", 1, total, "furniture")])  # fmt: skip


@pytest.fixture
def member(uow_factory, program_id, now) -> UUID:
    """1,000 points (worth 10.00 at the default 1 ct per point) and 5.00 in the wallet."""
    rule(uow_factory, program_id, now, "cashback", {"type": "cashback_percent", "percent": "5"})
    member = enrol(uow_factory, program_id, now)
    adjust_points(uow_factory(), program_id, member, 1000, "start", now)
    buy(uow_factory, program_id, member, "100.00", now)  # +100 points, +5.00 cashback
    adjust_points(uow_factory(), program_id, member, -100, "back to 1000", now)
    return member


def test_preview_shows_earn_usable_points_and_wallet_and_max_points_payable(uow_factory, program_id, now, member):
    view = preview_checkout(uow_factory(), program_id, order("7.50", now, "", member), now)
    assert view["earn"]["points"] == 7
    assert (view["points"]["usable"], view["points"]["max_payable"], view["points"]["max_payable_value"]) == (
        1000, 750, "7.50")  # fmt: skip
    assert (view["wallet"]["usable"], view["wallet"]["max_payable"]) == ("5.00", "5.00")


def test_reserve_capture_pays_with_points_and_wallet_and_records_the_purchase(uow_factory, program_id, now, member):
    hold = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=500, wallet_amount="2.00",
                                                          cart_total="50.00"), now)  # fmt: skip
    assert (hold["state"], hold["points_value"], hold["wallet_amount"]) == ("active", "5.00", "2.00")
    assert get_wallet(uow_factory(), program_id, member, now)["usable"] == "3.00"
    done = capture(uow_factory(), program_id, UUID(hold["id"]), CaptureHold(order("50.00", now)), now)
    assert done["state"] == "captured"
    assert done["paid"] == {"points": 500, "points_value": "5.00", "wallet": "2.00", "money": "43.00",
                            "currency": "EUR"}  # fmt: skip
    assert done["purchase"]["points_earned"] == 50  # earns on the whole cart by default
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 1000 - 500 + 50
    wallet = get_wallet(uow_factory(), program_id, member, now)
    assert wallet["balance"] == "5.50"  # 5.00 - 2.00 + 5% of 50.00
    assert [e["kind"] for e in wallet_history(uow_factory(), program_id, member)][:2] == ["cashback", "pay"]
    assert verify(uow_factory(), program_id, now) == []


def test_earn_on_money_only_earns_on_the_part_paid_with_money(uow_factory, program_id, now, member):
    update_program(uow_factory(), program_id, {"earn_on_money_only": True}, now)
    hold = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=1000, wallet_amount="5.00"), now)
    done = capture(uow_factory(), program_id, UUID(hold["id"]), CaptureHold(order("40.00", now)), now)
    assert done["paid"]["money"] == "25.00"
    assert (done["purchase"]["total"], done["purchase"]["points_earned"]) == ("25.00", 25)
    assert verify(uow_factory(), program_id, now) == []


def test_capture_may_use_less_than_held_never_more(uow_factory, program_id, now, member):
    hold = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=300), now)
    hold_id = UUID(hold["id"])
    with pytest.raises(HoldExceeded):
        capture(uow_factory(), program_id, hold_id, CaptureHold(order("50.00", now), points=301), now)
    with pytest.raises(HoldExceeded):
        capture(uow_factory(), program_id, hold_id, CaptureHold(order("50.00", now), wallet_amount="0.01"), now)
    assert get_hold(uow_factory(), program_id, hold_id, now)["state"] == "active"  # nothing changed
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 1000
    done = capture(uow_factory(), program_id, hold_id, CaptureHold(order("50.00", now), points=200), now)
    assert (done["captured_points"], done["paid"]["points_value"]) == (200, "2.00")
    assert verify(uow_factory(), program_id, now) == []


def test_never_reserve_more_than_usable_and_holds_add_up(uow_factory, program_id, now, member):
    reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=600), now)
    with pytest.raises(InsufficientPoints):
        reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=401), now)
    with pytest.raises(InsufficientWallet):
        reserve(uow_factory(), program_id, ReserveHold(member_id=member, wallet_amount="5.01"), now)
    reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=400, wallet_amount="5.00"), now)
    assert get_wallet(uow_factory(), program_id, member, now)["usable"] == "0.00"


def test_an_expired_hold_releases_itself_and_cannot_be_captured(uow_factory, program_id, now, member):
    hold = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=1000, expires_in_minutes=5), now)
    later = now + timedelta(minutes=5)
    assert get_hold(uow_factory(), program_id, UUID(hold["id"]), later)["state"] == "expired"
    with pytest.raises(HoldNotActive) as refused:
        capture(uow_factory(), program_id, UUID(hold["id"]), CaptureHold(order("50.00", later)), later)
    assert refused.value.extra["reason"] == "expired"
    again = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=1000), later)  # usable again
    assert again["state"] == "active"
    assert get_balance(uow_factory(), program_id, member, later)["points"] == 1000


def test_a_released_or_captured_hold_cannot_be_captured_again(uow_factory, program_id, now, member):
    released = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=100), now)
    assert release(uow_factory(), program_id, UUID(released["id"]), now)["state"] == "released"
    assert release(uow_factory(), program_id, UUID(released["id"]), now)["state"] == "released"  # no-op
    with pytest.raises(HoldNotActive) as refused:
        capture(uow_factory(), program_id, UUID(released["id"]), CaptureHold(order("50.00", now)), now)
    assert refused.value.extra["reason"] == "released"
    captured = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=100), now)
    capture(uow_factory(), program_id, UUID(captured["id"]), CaptureHold(order("50.00", now, "o-2")), now)
    with pytest.raises(HoldNotActive):
        capture(uow_factory(), program_id, UUID(captured["id"]), CaptureHold(order("50.00", now, "o-3")), now)
    with pytest.raises(HoldNotActive):
        release(uow_factory(), program_id, UUID(captured["id"]), now)
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 1000 - 100 + 50


def test_minimum_redemption_rounding_wrong_currency_and_paying_more_than_the_cart(uow_factory, program_id, now,
                                                                                  member):  # fmt: skip
    update_program(uow_factory(), program_id, {"min_redemption_points": 200, "point_value": "0.05",
                                               "point_value_points": 3, "rounding": "half_up"}, now)  # fmt: skip
    with pytest.raises(BelowMinimumRedemption):
        reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=199), now)
    with pytest.raises(CurrencyMismatch):
        reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=300, currency="CHF"), now)
    with pytest.raises(PaymentExceedsTotal):  # 601 points = 10.016... -> 10.02 > 10.01
        reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=601, cart_total="10.01"), now)
    hold = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=601, cart_total="10.02"), now)
    assert hold["points_value"] == "10.02"
    view = preview_checkout(uow_factory(), program_id, order("10.01", now, "", member), now)
    assert (view["points"]["max_payable"], view["points"]["max_payable_value"]) == (399, "6.65")  # 1000 - 601 usable
    assert verify(uow_factory(), program_id, now) == []


def test_points_held_for_a_checkout_cannot_be_redeemed_transferred_or_deducted_meanwhile(uow_factory, program_id, now,
                                                                                        member):  # fmt: skip
    reward = create_reward(uow_factory(), program_id, {"name": {"de": "Kissen"}, "type": "merchandise",
                                                       "cost_points": 400}, now)  # fmt: skip
    other = enrol(uow_factory, program_id, now)
    hold = reserve(uow_factory(), program_id, ReserveHold(member_id=member, points=700), now)
    with pytest.raises(InsufficientPoints, match="700 held for a checkout"):
        redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)
    with pytest.raises(InsufficientPoints, match="700 held"):
        transfer_points(uow_factory(), program_id, member, other, 301, now)
    with pytest.raises(InsufficientPoints, match="700 held"):
        adjust_points(uow_factory(), program_id, member, -301, "correction", now)
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 1000
    transfer_points(uow_factory(), program_id, member, other, 300, now)  # what is not held stays free
    release(uow_factory(), program_id, UUID(hold["id"]), now)
    redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 300
    assert verify(uow_factory(), program_id, now) == []
