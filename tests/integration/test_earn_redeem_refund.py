"""The core ledger flows through the use cases, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from tests.integration.helpers import buy, enrol
from treue.domain.errors import (
    CouponInvalid,
    DuplicateOrder,
    InsufficientPoints,
    RedemptionLimitReached,
    RefundExceedsPurchase,
    RewardOutOfStock,
)
from treue.services.expiry import expire_points
from treue.services.points import adjust_points, get_balance, get_history, transfer_points
from treue.services.programs import update_program
from treue.services.purchases import RefundPurchase, get_purchase, refund_purchase
from treue.services.rewards import (
    cancel_redemption,
    consume_coupon,
    create_reward,
    redeem_reward,
    validate_coupon,
)
from treue.services.verify import verify


def balance(uow, pid, member, at):
    return get_balance(uow(), pid, member, at)


def assert_verified(uow, pid):
    assert verify(uow(), pid) == []


def test_purchase_earns_one_point_per_euro_with_explanation(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now, email="Anna@Example.org")
    result = buy(uow_factory, program_id, member, "123.45", now)
    assert result["points_earned"] == 123  # floor by default
    assert result["explanation"]["rules"][0]["rule"] == "base"
    history = get_history(uow_factory(), program_id, member)
    assert [h["kind"] for h in history] == ["earn"]
    assert history[0]["points"] == 123 and history[0]["explanation"]["order"] == result["external_order_id"]
    assert balance(uow_factory, program_id, member, now)["available"] == 123
    assert_verified(uow_factory, program_id)


def test_duplicate_order_is_refused_and_changes_nothing(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "10.00", now, external_order_id="A-1")
    with pytest.raises(DuplicateOrder):
        buy(uow_factory, program_id, member, "99.00", now, external_order_id="A-1")
    assert balance(uow_factory, program_id, member, now)["points"] == 10
    # Another partner may use the same order number.
    buy(uow_factory, program_id, member, "5.00", now, external_order_id="A-1", partner="other")
    assert balance(uow_factory, program_id, member, now)["points"] == 15


def test_pending_points_become_available_by_time_alone(uow_factory, program_id, now):
    update_program(uow_factory(), program_id, {"pending_days": 14}, now)
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "50.00", now)
    b = balance(uow_factory, program_id, member, now)
    assert (b["available"], b["pending"]) == (0, 50)
    later = balance(uow_factory, program_id, member, now + timedelta(days=14))
    assert (later["available"], later["pending"]) == (50, 0)


def test_partial_refunds_take_back_exactly_what_was_earned(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    purchase = buy(uow_factory, program_id, member, "100.00", now)
    pid = UUID(purchase["id"])
    takes = [refund_purchase(uow_factory(), program_id, pid, RefundPurchase(amount=a), now)["points_taken_back"]
             for a in ("33.33", "33.33", "33.34")]  # fmt: skip
    assert sum(takes) == 100
    assert balance(uow_factory, program_id, member, now)["points"] == 0
    with pytest.raises(RefundExceedsPurchase):
        refund_purchase(uow_factory(), program_id, pid, RefundPurchase(amount="0.01"), now)
    assert get_purchase(uow_factory(), program_id, pid)["refunded"] == "100.00"
    assert_verified(uow_factory, program_id)


def test_refund_by_external_id_is_idempotent(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    pid = UUID(buy(uow_factory, program_id, member, "80.00", now)["id"])
    first = refund_purchase(
        uow_factory(), program_id, pid, RefundPurchase(amount="40.00", external_refund_id="R1"), now
    )
    again = refund_purchase(
        uow_factory(), program_id, pid, RefundPurchase(amount="40.00", external_refund_id="R1"), now
    )
    assert again["id"] == first["id"] and again.get("replayed")
    assert balance(uow_factory, program_id, member, now)["points"] == 40


@pytest.mark.parametrize(
    ("policy", "taken", "forgiven", "final"),
    [("within_balance", 30, 70, 0), ("allow_negative", 100, 0, -70), ("only_pending", 0, 100, 30)],
)
def test_refund_after_points_were_spent_follows_the_return_policy(
    uow_factory, program_id, now, policy, taken, forgiven, final
):
    update_program(uow_factory(), program_id, {"return_policy": policy}, now)
    member = enrol(uow_factory, program_id, now)
    pid = UUID(buy(uow_factory, program_id, member, "100.00", now)["id"])
    reward = create_reward(uow_factory(), program_id, {"name": {"de": "Kissen"}, "type": "merchandise",
                                                       "cost_points": 70}, now)  # fmt: skip
    redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)
    refund = refund_purchase(uow_factory(), program_id, pid, RefundPurchase(), now)
    assert (refund["points_taken_back"], refund["points_forgiven"]) == (taken, forgiven)
    assert balance(uow_factory, program_id, member, now)["points"] == final
    assert_verified(uow_factory, program_id)
    # A later earn first pays off a deficit.
    buy(uow_factory, program_id, member, "100.00", now)
    assert balance(uow_factory, program_id, member, now)["points"] == final + 100
    assert_verified(uow_factory, program_id)


def test_redeem_spends_soonest_expiring_first_and_cancel_returns_to_the_same_lots(uow_factory, program_id, now):
    update_program(uow_factory(), program_id, {"expiry_policy": "rolling", "expiry_months": 12}, now)
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "60.00", now - timedelta(days=200))  # expires sooner
    buy(uow_factory, program_id, member, "60.00", now)
    reward = create_reward(uow_factory(), program_id, {"name": {"de": "Gutschein", "en": "Voucher"},
                           "type": "discount_fixed", "value": "10.00", "cost_points": 80, "stock": 1}, now)  # fmt: skip
    redemption = redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)
    drawn = sorted(d["points"] for d in redemption["drawn_from"])
    assert drawn == [20, 60]
    b = balance(uow_factory, program_id, member, now)
    assert b["points"] == 40 and b["next_expiry"]["points"] == 40
    with pytest.raises(RewardOutOfStock):
        redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)
    cancel_redemption(uow_factory(), program_id, UUID(redemption["id"]), now)
    b = balance(uow_factory, program_id, member, now)
    assert b["points"] == 120 and b["next_expiry"]["points"] == 60
    redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)  # stock came back
    assert_verified(uow_factory, program_id)


def test_coupon_validate_consume_once(uow_factory, program_id, now):
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "100.00", now)
    reward = create_reward(uow_factory(), program_id, {"name": {"de": "Rabatt"}, "type": "discount_percent",
                           "percent": 10, "cost_points": 50, "per_member_limit": 1}, now)  # fmt: skip
    redemption = redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)
    with pytest.raises(RedemptionLimitReached):
        redeem_reward(uow_factory(), program_id, member, UUID(reward["id"]), now)
    code = redemption["coupon"]["code"]
    assert validate_coupon(uow_factory(), program_id, code.lower(), now)["valid"] is True
    consume_coupon(uow_factory(), program_id, code, now, order_id="T-9")
    assert validate_coupon(uow_factory(), program_id, code, now)["reason"] == "consumed"
    with pytest.raises(CouponInvalid):
        consume_coupon(uow_factory(), program_id, code, now)
    with pytest.raises(CouponInvalid):
        cancel_redemption(uow_factory(), program_id, UUID(redemption["id"]), now)


def test_expiry_job_moves_points_to_breakage_once(uow_factory, program_id, now):
    update_program(uow_factory(), program_id, {"expiry_policy": "rolling", "expiry_months": 1}, now)
    member = enrol(uow_factory, program_id, now)
    buy(uow_factory, program_id, member, "30.00", now)
    assert expire_points(uow_factory, now, program_id)["lots_expired"] == 0
    later = now + timedelta(days=40)
    first = expire_points(uow_factory, later, program_id)
    second = expire_points(uow_factory, later, program_id)
    assert (first["points_expired"], second["points_expired"]) == (30, 0)
    assert balance(uow_factory, program_id, member, later)["points"] == 0
    assert [h["kind"] for h in get_history(uow_factory(), program_id, member)] == ["expire", "earn"]
    assert_verified(uow_factory, program_id)


def test_adjust_and_transfer_between_members(uow_factory, program_id, now):
    a, b = enrol(uow_factory, program_id, now), enrol(uow_factory, program_id, now)
    adjust_points(uow_factory(), program_id, a, 100, "goodwill", now, actor="staff:1")
    with pytest.raises(InsufficientPoints):
        adjust_points(uow_factory(), program_id, a, -101, "too much", now)
    transfer_points(uow_factory(), program_id, a, b, 60, now)
    with pytest.raises(InsufficientPoints):
        transfer_points(uow_factory(), program_id, b, a, 61, now)
    assert balance(uow_factory, program_id, a, now)["points"] == 40
    assert balance(uow_factory, program_id, b, now)["points"] == 60
    adjust_points(uow_factory(), program_id, b, -10, "correction", now)
    assert balance(uow_factory, program_id, b, now)["points"] == 50
    assert_verified(uow_factory, program_id)
