"""Mapping between table rows and domain objects."""

from __future__ import annotations

from typing import Any

from treue.domain.coupons import Coupon, CouponStatus
from treue.domain.lots import Lot
from treue.domain.money import Money, Rounding
from treue.domain.programs import EarnBasis, ExpiryPolicy, Program, ReturnPolicy
from treue.domain.purchases import Channel, Purchase, PurchaseLine
from treue.domain.rewards import Reward, RewardType

PROGRAM_FIELDS = (
    "name", "currency", "timezone", "point_value_minor", "point_value_points", "rounding", "earn_basis",
    "earn_points", "earn_per_minor", "pending_days", "expiry_policy", "expiry_months", "expiry_day",
    "expiry_years", "return_policy", "default_locale", "earn_on_money_only", "min_redemption_points",
    "hold_minutes", "cashback_expiry_months", "control_bp",
)  # fmt: skip


def program_from_row(row: Any) -> Program:
    m = row._mapping
    return Program(
        id=m["id"], name=m["name"], currency=m["currency"], timezone=m["timezone"],
        point_value_minor=m["point_value_minor"], point_value_points=m["point_value_points"],
        rounding=Rounding(m["rounding"]), earn_basis=EarnBasis(m["earn_basis"]), earn_points=m["earn_points"],
        earn_per_minor=m["earn_per_minor"], pending_days=m["pending_days"],
        expiry_policy=ExpiryPolicy(m["expiry_policy"]), expiry_months=m["expiry_months"],
        expiry_day=m["expiry_day"], expiry_years=m["expiry_years"],
        return_policy=ReturnPolicy(m["return_policy"]), default_locale=m["default_locale"],
        earn_on_money_only=m["earn_on_money_only"], min_redemption_points=m["min_redemption_points"],
        hold_minutes=m["hold_minutes"], cashback_expiry_months=m["cashback_expiry_months"],
        control_bp=m["control_bp"],
    )  # fmt: skip


def program_to_row(program: Program) -> dict[str, Any]:
    row = {name: getattr(program, name) for name in PROGRAM_FIELDS}
    return {k: (v.value if hasattr(v, "value") else v) for k, v in row.items()}


def lot_from_row(row: Any) -> Lot:
    m = row._mapping
    return Lot(m["id"], m["amount"], m["remaining"], m["available_at"], m["expires_at"],
               m["source_transfer_id"], m["purchase_id"], m["partner"])  # fmt: skip


def lines_to_json(lines: tuple[PurchaseLine, ...]) -> list[dict[str, Any]]:
    return [
        {"sku": x.sku, "quantity": x.quantity, "unit_price_minor": x.unit_price_minor, "category": x.category,
         "name": x.name}
        for x in lines
    ]  # fmt: skip


def lines_from_json(data: list[dict[str, Any]]) -> tuple[PurchaseLine, ...]:
    return tuple(PurchaseLine(x["sku"], x["quantity"], x["unit_price_minor"], x.get("category"), x.get("name"))
                 for x in data)  # fmt: skip


def purchase_from_row(row: Any) -> Purchase:
    m = row._mapping
    lines = lines_from_json(m["lines"])
    return Purchase(
        id=m["id"], member_id=m["member_id"], partner=m["partner"], store=m["store"], channel=Channel(m["channel"]),
        external_order_id=m["external_order_id"], occurred_at=m["occurred_at"],
        total=Money(m["total_minor"], m["currency"]), lines=lines, cashier=m.get("cashier"),
    )  # fmt: skip


REWARD_FIELDS = (
    "name", "description", "type", "cost_points", "stock", "per_member_limit", "valid_from", "valid_until",
    "active", "value_minor", "percent", "sku", "coupon_valid_days",
)  # fmt: skip


def reward_from_row(row: Any) -> Reward:
    m = dict(row._mapping)
    m["type"] = RewardType(m["type"])
    return Reward(id=m["id"], **{k: m[k] for k in REWARD_FIELDS})


def reward_to_row(reward: Reward) -> dict[str, Any]:
    row = {k: getattr(reward, k) for k in REWARD_FIELDS}
    row["type"] = reward.type.value
    return row


def coupon_from_row(row: Any) -> Coupon:
    m = row._mapping
    return Coupon(m["id"], m["code"], m["member_id"], m["reward_id"], m["redemption_id"],
                  CouponStatus(m["status"]), m["valid_until"])  # fmt: skip
