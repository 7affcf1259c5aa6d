"""Reward catalogue, redemptions and coupons."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain import events
from treue.domain.coupons import (
    Coupon,
    CouponStatus,
    coupon_valid_until,
    new_coupon_code,
    normalise_coupon_code,
)
from treue.domain.durations import require_aware
from treue.domain.errors import AlreadyCancelled, CouponInvalid, InvalidInput, RewardOutOfStock
from treue.domain.events import Event
from treue.domain.fraud import Origin
from treue.domain.ledger import AccountKind, Transfer, TransferKind, move, system_account_id
from treue.domain.money import Money
from treue.domain.rewards import Reward, RewardType
from treue.ids import new_id, random_choice
from treue.services.audit import record_audit
from treue.services.fraud import refuse_redemption
from treue.services.partners import require_partner
from treue.services.ports import UnitOfWork
from treue.services.views import coupon_view, iso, reward_view

EDITABLE = ("name", "description", "type", "cost_points", "stock", "per_member_limit", "valid_from", "valid_until",
            "active", "value", "percent", "sku", "coupon_valid_days")  # fmt: skip


def _reward_fields(values: dict[str, Any], currency: str) -> dict[str, Any]:
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"unknown reward fields: {', '.join(sorted(unknown))}")
    out = dict(values)
    if "type" in out:
        try:
            out["type"] = RewardType(out["type"])
        except ValueError:
            raise InvalidInput("type must be one of: " + ", ".join(x.value for x in RewardType)) from None
    if "value" in out:
        value = out.pop("value")
        out["value_minor"] = Money.parse(value, currency).minor if value is not None else None
    for key in ("valid_from", "valid_until"):
        if out.get(key) is not None:
            out[key] = require_aware(out[key], key)
    return out


def create_reward(uow: UnitOfWork, program_id: UUID, values: dict[str, Any], now: datetime,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    with uow:
        program = uow.programs.get(program_id, cached=True)
        reward = Reward(id=new_id(), **_reward_fields(values, program.currency))
        uow.rewards.add(program_id, reward, now)
        view = reward_view(reward, program.currency)
        record_audit(uow, program_id, actor, "reward.create", "reward", reward.id, None, view, None, now)
        uow.commit()
    return view


def update_reward(uow: UnitOfWork, program_id: UUID, reward_id: UUID, changes: dict[str, Any], now: datetime,
                  actor: str = "api") -> dict[str, Any]:  # fmt: skip
    with uow:
        program = uow.programs.get(program_id, cached=True)
        before = uow.rewards.get(program_id, reward_id, lock=True)
        reward = dataclasses.replace(before, **_reward_fields(changes, program.currency))
        uow.rewards.update(program_id, reward, now)
        view = reward_view(reward, program.currency)
        record_audit(uow, program_id, actor, "reward.update", "reward", reward_id,
                     reward_view(before, program.currency), view, None, now)  # fmt: skip
        uow.commit()
    return view


def list_rewards(uow: UnitOfWork, program_id: UUID, active_only: bool = False) -> list[dict[str, Any]]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        return [reward_view(r, program.currency) for r in uow.rewards.all(program_id, active_only)]


def get_reward(uow: UnitOfWork, program_id: UUID, reward_id: UUID) -> dict[str, Any]:
    with uow:
        program = uow.programs.get(program_id, cached=True)
        return reward_view(uow.rewards.get(program_id, reward_id), program.currency)


def redeem_reward(uow: UnitOfWork, program_id: UUID, member_id: UUID, reward_id: UUID,
                  now: datetime, partner: str | None = None, origin: Origin | None = None) -> dict[str, Any]:  # fmt: skip
    """Spend points on a reward: soonest-expiring points first, one from stock, a new coupon code.

    `partner` is where the points are spent (a coalition partner's code; "default": the programme itself).
    `origin` (device id, client IP) is counted by the programme's velocity caps (issue 10): over one, the
    redemption is refused (`velocity_cap_exceeded`) and nothing changes."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        partner = require_partner(uow, program_id, partner)
        # Lock order everywhere: member accounts (by id) first, then the reward row. Redeeming and
        # cancelling take them in this order, so they can queue but never deadlock.
        account = uow.ledger.lock_accounts(program_id, [member_id])[member_id]
        reward = uow.rewards.get(program_id, reward_id)
        reward.check_redeemable(now, uow.rewards.count_active_redemptions(program_id, member_id, reward_id))
        draw = account.spend(reward.cost_points, now, uow.wallet.held(program_id, member_id, now).points)
        refuse_redemption(uow, program, member_id, reward.cost_points, now, origin)  # after the account lock
        if not uow.rewards.take_from_stock(program_id, reward_id):
            raise RewardOutOfStock("the reward is out of stock")
        redemption_id, transfer_id = new_id(), new_id()
        transfer = Transfer(
            transfer_id, TransferKind.REDEEM, now,
            move(account.account_id, system_account_id(program_id, AccountKind.REDEMPTION), reward.cost_points),
            member_id=member_id, redemption_id=redemption_id,
            explanation={"reason": "redemption", "reward": reward.localized_name(program.default_locale),
                         "reward_id": str(reward_id), "cost_points": reward.cost_points, "partner": partner},
        )  # fmt: skip
        uow.ledger.record(program_id, transfer, [(account, draw)], now)
        uow.rewards.add_redemption({"program_id": program_id, "id": redemption_id, "member_id": member_id,
                                    "reward_id": reward_id, "transfer_id": transfer_id,
                                    "cost_points": reward.cost_points, "status": "active", "created_at": now,
                                    "partner": partner})  # fmt: skip
        coupon = Coupon(new_id(), new_coupon_code(random_choice), member_id, reward_id, redemption_id,
                        CouponStatus.ISSUED, coupon_valid_until(now, reward.coupon_valid_days, reward.valid_until))  # fmt: skip
        uow.rewards.add_coupon(program_id, coupon, now)
        uow.emit(program_id, Event(events.REWARD_REDEEMED, {
            "member_id": str(member_id), "reward_id": str(reward_id), "redemption_id": str(redemption_id),
            "points": reward.cost_points, "coupon_code": coupon.code}))  # fmt: skip
        uow.commit()
    return {
        "id": str(redemption_id), "member_id": str(member_id), "reward_id": str(reward_id),
        "cost_points": reward.cost_points, "status": "active", "created_at": iso(now), "partner": partner,
        "transfer_id": str(transfer_id), "balance_after": account.balance,
        "coupon": coupon_view(coupon), "drawn_from": [
            {"lot_id": str(a.lot_id), "points": a.amount} for a in draw.allocation_rows()],
    }  # fmt: skip


def cancel_redemption(uow: UnitOfWork, program_id: UUID, redemption_id: UUID, now: datetime,
                      actor: str = "api", reason: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Give the points back to the very lots they came from, and the reward back to stock."""
    with uow:
        redemption = uow.rewards.get_redemption(program_id, redemption_id)
        member_id = redemption["member_id"]
        drawn = uow.ledger.allocations_of(program_id, redemption["transfer_id"])
        account = uow.ledger.lock_accounts(program_id, [member_id], lot_ids=[a.lot_id for a in drawn])[member_id]
        transfer_id = new_id()
        if not uow.rewards.cancel_redemption(program_id, redemption_id, transfer_id, now):
            raise AlreadyCancelled("the redemption was already cancelled")
        coupon = uow.rewards.coupon_of_redemption(program_id, redemption_id)
        if coupon is not None and not uow.rewards.set_coupon_status(
            program_id, coupon.id, CouponStatus.CANCELLED, expected=CouponStatus.ISSUED
        ):
            raise CouponInvalid("the coupon has already been used; the redemption cannot be cancelled",
                                reason="consumed")  # fmt: skip
        draw = account.give_back(drawn)
        transfer = Transfer(
            transfer_id, TransferKind.REVERSE, now,
            move(system_account_id(program_id, AccountKind.REDEMPTION), account.account_id, redemption["cost_points"]),
            member_id=member_id, redemption_id=redemption_id, corrects_id=redemption["transfer_id"],
            explanation={"reason": "redemption cancelled", "note": reason, "reward_id": str(redemption["reward_id"]),
                         "points_returned": redemption["cost_points"]},
        )  # fmt: skip
        uow.ledger.record(program_id, transfer, [(account, draw)], now, actor=actor)
        uow.rewards.return_to_stock(program_id, redemption["reward_id"])
        record_audit(uow, program_id, actor, "redemption.cancel", "redemption", redemption_id,
                     {"status": "active"}, {"status": "cancelled"}, reason, now)  # fmt: skip
        uow.emit(program_id, Event(events.REDEMPTION_CANCELLED, {
            "member_id": str(member_id), "redemption_id": str(redemption_id),
            "points": redemption["cost_points"]}))  # fmt: skip
        uow.commit()
    return {"id": str(redemption_id), "status": "cancelled", "points_returned": redemption["cost_points"],
            "transfer_id": str(transfer_id), "balance_after": account.balance}  # fmt: skip


def list_redemptions(uow: UnitOfWork, program_id: UUID, member_id: UUID) -> list[dict[str, Any]]:
    with uow:
        uow.members.get(program_id, member_id)  # 404 for an unknown member rather than an empty list
        rows = uow.rewards.redemptions_of(program_id, member_id)
    return [{"id": str(r["id"]), "reward_id": str(r["reward_id"]), "cost_points": r["cost_points"],
             "status": r["status"], "created_at": iso(r["created_at"]), "cancelled_at": iso(r["cancelled_at"]),
             "coupon_code": r["code"], "coupon_status": r["coupon_status"]} for r in rows]  # fmt: skip


def validate_coupon(uow: UnitOfWork, program_id: UUID, code: str, now: datetime) -> dict[str, Any]:
    """What a till asks before applying a coupon: is it valid, and what does it give."""
    with uow:
        program = uow.programs.get(program_id, cached=True)
        coupon = uow.rewards.coupon_by_code(program_id, normalise_coupon_code(code))
        reward = uow.rewards.get(program_id, coupon.reward_id)
    view = coupon_view(coupon, reward, program.currency)
    try:
        coupon.check_usable(now)
        view.update(valid=True, reason=None)
    except CouponInvalid as refused:
        view.update(valid=False, reason=refused.extra.get("reason"))
    return view


def consume_coupon(uow: UnitOfWork, program_id: UUID, code: str, now: datetime, order_id: str | None = None,
                   actor: str = "api") -> dict[str, Any]:  # fmt: skip
    with uow:
        program = uow.programs.get(program_id, cached=True)
        coupon = uow.rewards.coupon_by_code(program_id, normalise_coupon_code(code), lock=True)
        coupon.check_usable(now)
        if not uow.rewards.set_coupon_status(program_id, coupon.id, CouponStatus.CONSUMED,
                                             expected=CouponStatus.ISSUED, now=now, order_id=order_id):  # fmt: skip
            raise CouponInvalid("the coupon has already been used", reason="consumed")
        reward = uow.rewards.get(program_id, coupon.reward_id)
        uow.emit(program_id, Event(events.COUPON_CONSUMED, {
            "code": coupon.code, "member_id": str(coupon.member_id), "order_id": order_id}))  # fmt: skip
        uow.commit()
    consumed = dataclasses.replace(coupon, status=CouponStatus.CONSUMED)
    return coupon_view(consumed, reward, program.currency) | {"consumed_at": iso(now), "order_id": order_id}
