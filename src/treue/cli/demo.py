"""`treue demo`: the furniture store "Möbelhaus Demo" with a year of history, ready to explore."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from rich.progress import Progress

from treue.cli.staff import add_demo_staff
from treue.domain.errors import DomainError
from treue.domain.money import Money
from treue.services.expiry import expire_points
from treue.services.keys import create_api_key
from treue.services.members import EnrolMember, enrol_member
from treue.services.programs import create_program, list_programs
from treue.services.purchases import LineInput, RecordPurchase, RefundPurchase, record_purchase, refund_purchase
from treue.services.rewards import create_reward, redeem_reward
from treue.services.rules import create_rule
from treue.services.tiers import set_ladder
from treue.store.unit_of_work import SqlUnitOfWorkFactory

NAME = "Möbelhaus Demo"
CATALOGUE = [
    ("SOFA", "sofa", "Sofa Lena", 79900), ("CHAIR", "chair", "Stuhl Jonas", 8900), ("TABLE", "table", "Tisch Eiche", 49900),
    ("LAMP", "lighting", "Leuchte Nova", 5990), ("RUG", "textiles", "Teppich Mila", 19900),
    ("CUSHION", "textiles", "Kissen Lino", 1990), ("SHELF", "storage", "Regal Kai", 14900),
    ("BED", "bed", "Bett Luna", 69900), ("MIRROR", "decor", "Spiegel Ida", 7900), ("VASE", "decor", "Vase Ole", 2490),
]  # fmt: skip
REWARDS: list[dict[str, Any]] = [
    {"name": {"de": "5-€-Gutschein", "en": "€5 voucher"}, "type": "discount_fixed", "value": "5.00",
     "cost_points": 500, "description": {"de": "5 € Rabatt auf Ihren nächsten Einkauf", "en": "€5 off your next purchase"}},
    {"name": {"de": "10 % Rabatt", "en": "10% off"}, "type": "discount_percent", "percent": 10, "cost_points": 900,
     "coupon_valid_days": 30},
    {"name": {"de": "Kissen Lino gratis", "en": "Free Lino cushion"}, "type": "free_product", "sku": "CUSHION",
     "cost_points": 1200, "stock": 50},
    {"name": {"de": "Geschenkkarte 25 €", "en": "€25 gift card"}, "type": "gift_card", "value": "25.00",
     "cost_points": 2500},
    {"name": {"de": "Einrichtungsberatung zu Hause", "en": "Interior design consultation at home"},
     "type": "experience", "cost_points": 6000, "stock": 10, "per_member_limit": 1},
]  # fmt: skip
# The seed's tiers: Basis 5% back on the first purchase (a rule for members of the lowest tier), Bronze 10% back
# on all purchases within 6 months, Silber/Gold 20% back within 12 months plus free shipping.
TIERS: dict[str, Any] = {
    "basis": "spend", "review": "window_end", "grace_days": 14, "notice_days": 30,
    "tiers": [
        {"code": "basis", "name": {"de": "Basis", "en": "Basic"}, "threshold": "0", "window": "6M"},
        {"code": "bronze", "name": {"de": "Bronze", "en": "Bronze"}, "threshold": "500.00", "window": "6M",
         "benefits": {"cashback_percent": "10"}},
        {"code": "silber", "name": {"de": "Silber", "en": "Silver"}, "threshold": "1500.00", "window": "12M",
         "benefits": {"cashback_percent": "20", "perks": ["free_shipping"]}},
        {"code": "gold", "name": {"de": "Gold", "en": "Gold"}, "threshold": "3000.00", "window": "12M",
         "benefits": {"cashback_percent": "20", "perks": ["free_shipping", "early_access"], "earn_multiplier": "2"}},
    ],
}  # fmt: skip
FIRST_PURCHASE_CASHBACK = {"id": "basis-first-purchase", "name": "Basis: 5 % zurück beim ersten Einkauf",
                           "trigger": "purchase", "condition": 'member.tier == "basis" && member.purchase_count == 0',
                           "effects": [{"type": "cashback_percent", "percent": "5"}]}  # fmt: skip
FIRST = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Lena", "Max", "Nora",
         "Oskar", "Paula", "Tim", "Sophie", "Lukas", "Mia", "Paul"]  # fmt: skip
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann"]  # fmt: skip


def find_demo(uow: SqlUnitOfWorkFactory) -> str | None:
    return next((p["id"] for p in list_programs(uow()) if p["name"] == NAME), None)


def seed(uow: SqlUnitOfWorkFactory, now: datetime, members: int = 200, seed_value: int = 42) -> dict[str, Any]:
    """Create the demo programme with members, a year of purchases, refunds and redemptions."""
    rng = random.Random(seed_value)
    start = now - timedelta(days=365)
    program = create_program(uow(), NAME, "EUR", "Europe/Berlin", {
        "earn_points": 1, "earn_per_amount": "1.00", "pending_days": 14, "expiry_policy": "rolling",
        "expiry_months": 24, "return_policy": "within_balance", "point_value": "0.01", "default_locale": "de"},
        start)  # fmt: skip
    pid = UUID(program["id"])
    rewards = [UUID(create_reward(uow(), pid, r, start)["id"]) for r in REWARDS]
    set_ladder(uow(), pid, TIERS, start, actor="demo")
    create_rule(uow(), pid, FIRST_PURCHASE_CASHBACK, start)
    counts = {"members": 0, "purchases": 0, "refunds": 0, "redemptions": 0}
    with Progress(transient=True) as progress:
        task = progress.add_task("Seeding Möbelhaus Demo", total=members)
        for index in range(members):
            enrolled = start + timedelta(days=rng.randint(0, 300), hours=rng.randint(8, 19))
            first, last = rng.choice(FIRST), rng.choice(LAST)
            member = enrol_member(uow(), pid, EnrolMember(
                external_ref=f"KD-{10000 + index}", first_name=first, last_name=last,
                email=f"{first.lower()}.{last.lower().replace('ü', 'ue').replace('ö', 'oe')}.{index}@example.org",
                locale="de" if rng.random() < 0.8 else "en", consents={"email": rng.random() < 0.6},
                consent_source="demo"), enrolled)  # fmt: skip
            counts["members"] += 1
            member_id = UUID(member["id"])
            when = enrolled
            for number in range(rng.choice([0, 1, 2, 3, 4, 6, 8, 12])):
                when = when + timedelta(days=rng.randint(3, 60), hours=rng.randint(0, 5))
                if when >= now:
                    break
                lines = [rng.choice(CATALOGUE) for _ in range(rng.randint(1, 3))]
                total = sum(price for *_, price in lines)
                purchase = record_purchase(uow(), pid, RecordPurchase(
                    external_order_id=f"MD-{index:03d}-{number:02d}", total=Money(total, "EUR").format(), currency="EUR",
                    occurred_at=when, member_id=member_id, channel=rng.choice(["store", "store", "online", "app"]),
                    store="berlin-mitte" if rng.random() < 0.6 else "hamburg",
                    lines=[LineInput(sku, 1, Money(price, "EUR").format(), cat, name) for sku, cat, name, price in lines],
                ), when)  # fmt: skip
                counts["purchases"] += 1
                if rng.random() < 0.06:
                    refund_purchase(uow(), pid, UUID(purchase["id"]), RefundPurchase(), when + timedelta(days=5))
                    counts["refunds"] += 1
                elif rng.random() < 0.25:
                    try:
                        redeem_reward(uow(), pid, member_id, rng.choice(rewards), when + timedelta(days=20))
                        counts["redemptions"] += 1
                    except DomainError:
                        pass  # not enough available points yet, out of stock, limit: a real member would see this
            progress.advance(task)
    expire_points(uow, now, pid)
    admin = create_api_key(uow(), pid, "admin", "demo admin", now)
    pos = create_api_key(uow(), pid, "pos", "demo till", now)
    operator = create_api_key(uow(), None, "operator", "demo operator", now)
    add_demo_staff(uow, pid, now)  # one admin-dashboard user per role, credentials printed
    return {"program_id": str(pid), "counts": counts, "keys": {"admin": admin["key"], "pos": pos["key"],
                                                                "operator": operator["key"]}}  # fmt: skip
