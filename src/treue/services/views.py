"""JSON-ready views of what the use cases return; the API and the CLI print the same shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from treue.domain.control import percent_text
from treue.domain.coupons import Coupon
from treue.domain.money import Money
from treue.domain.points import Balance
from treue.domain.programs import Program
from treue.domain.purchases import Purchase
from treue.domain.rewards import Reward


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def program_view(program: Program, created_at: datetime | None = None) -> dict[str, Any]:
    return {
        "id": str(program.id), "name": program.name, "currency": program.currency, "timezone": program.timezone,
        "point_value": {"amount": Money(program.point_value_minor, program.currency).format(),
                        "per_points": program.point_value_points},
        "rounding": program.rounding.value,
        "earning": {"basis": program.earn_basis.value, "points": program.earn_points,
                    "per_amount": Money(program.earn_per_minor, program.currency).format()},
        "pending_days": program.pending_days,
        "expiry": {"policy": program.expiry_policy.value, "months": program.expiry_months or None,
                   "day": program.expiry_day, "years": program.expiry_years},
        "return_policy": program.return_policy.value, "default_locale": program.default_locale,
        "checkout": {"earn_on_money_only": program.earn_on_money_only,
                     "min_redemption_points": program.min_redemption_points, "hold_minutes": program.hold_minutes},
        "cashback_expiry_months": program.cashback_expiry_months,
        "control_percent": percent_text(program.control_bp),
        "created_at": iso(created_at),
    }  # fmt: skip


def member_view(row: dict[str, Any], consents: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    view = {
        "id": str(row["id"]), "card_number": row["card_number"], "external_ref": row["external_ref"],
        "first_name": row["first_name"], "last_name": row["last_name"], "email": row["email"],
        "phone": row["phone"], "birthday": row["birthday"].isoformat() if row["birthday"] else None,
        "locale": row["locale"], "status": row["status"], "attributes": row["attributes"],
        "enrolled_at": iso(row["enrolled_at"]), "updated_at": iso(row["updated_at"]),
    }  # fmt: skip
    if consents is not None:
        view["consents"] = {
            c["channel"]: {"granted": c["granted"], "updated_at": iso(c["updated_at"]), "source": c["source"]}
            for c in consents
        }
    return view


def balance_view(member_id: UUID, balance: Balance, program: Program) -> dict[str, Any]:
    return {
        "member_id": str(member_id), "points": balance.total, "available": balance.available,
        "pending": balance.pending, "value": program.points_value(max(balance.available, 0)).format(),
        "currency": program.currency,
        "next_expiry": ({"at": iso(balance.next_expiry_at), "points": balance.next_expiry_points}
                        if balance.next_expiry_at else None),
    }  # fmt: skip


def transfer_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "kind": row["kind"], "points": row["points"], "occurred_at": iso(row["occurred_at"]),
        "recorded_at": iso(row["created_at"]),
        "purchase_id": str(row["purchase_id"]) if row["purchase_id"] else None,
        "redemption_id": str(row["redemption_id"]) if row["redemption_id"] else None,
        "corrects": str(row["corrects_id"]) if row["corrects_id"] else None,
        "actor": row["actor"], "explanation": row["explanation"],
    }  # fmt: skip


def purchase_view(
    purchase: Purchase, row: dict[str, Any], refunds: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    currency = purchase.total.currency
    view = {
        "id": str(purchase.id), "member_id": str(purchase.member_id) if purchase.member_id else None,
        "partner": purchase.partner, "store": purchase.store, "cashier": purchase.cashier,
        "channel": purchase.channel.value,
        "external_order_id": purchase.external_order_id, "occurred_at": iso(purchase.occurred_at),
        "total": purchase.total.format(), "currency": currency,
        "lines": [{"sku": x.sku, "category": x.category, "name": x.name, "quantity": x.quantity,
                   "unit_price": Money(x.unit_price_minor, currency).format()} for x in purchase.lines],
        "points_earned": row["points_earned"], "refunded": Money(row["refunded_minor"], currency).format(),
    }  # fmt: skip
    if refunds is not None:
        view["refunds"] = [refund_view(x) for x in refunds]
    return view


def refund_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "purchase_id": str(row["purchase_id"]), "external_refund_id": row["external_refund_id"],
        "amount": Money(row["amount_minor"], row["currency"]).format(), "currency": row["currency"],
        "occurred_at": iso(row["occurred_at"]), "points_taken_back": row["points_taken"],
        "points_forgiven": row["points_forgiven"],
        "transfer_id": str(row["transfer_id"]) if row["transfer_id"] else None,
    }  # fmt: skip


def reward_view(reward: Reward, currency: str) -> dict[str, Any]:
    return {
        "id": str(reward.id), "name": reward.name, "description": reward.description, "type": reward.type.value,
        "cost_points": reward.cost_points, "stock": reward.stock, "per_member_limit": reward.per_member_limit,
        "valid_from": iso(reward.valid_from), "valid_until": iso(reward.valid_until), "active": reward.active,
        "value": Money(reward.value_minor, currency).format() if reward.value_minor is not None else None,
        "percent": reward.percent, "sku": reward.sku, "coupon_valid_days": reward.coupon_valid_days,
    }  # fmt: skip


def coupon_view(coupon: Coupon, reward: Reward | None = None, currency: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "code": coupon.code, "status": coupon.status.value, "valid_until": iso(coupon.valid_until),
        "member_id": str(coupon.member_id), "reward_id": str(coupon.reward_id),
        "redemption_id": str(coupon.redemption_id),
    }  # fmt: skip
    if reward is not None and currency is not None:
        view["reward"] = reward_view(reward, currency)
    return view
