"""The checkout preview: the same evaluator and inputs as the purchase, nothing written; preview == award."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import enrol
from tests.integration.rules_helpers import SATURDAY_2330_BERLIN, WEDNESDAY, campaign, double, fixed, rule
from treue.services.points import get_balance
from treue.services.purchases import LineInput, RecordPurchase, preview_purchase, record_purchase
from treue.services.rules import get_campaign

_orders = itertools.count(1)


def cart(total: str, lines: list[LineInput], at: datetime, member: UUID | None, **kw) -> RecordPurchase:
    return RecordPurchase(external_order_id=kw.pop("order", ""), total=total, currency="EUR", occurred_at=at,
                          member_id=member, lines=lines, **kw)  # fmt: skip


def setup_rules(uow, pid, now) -> None:
    rule(uow, pid, now, "saturday", double(), condition="now.weekday == 6", mode="exclusive", group="promo",
         priority=2)  # fmt: skip
    rule(uow, pid, now, "big-cart", fixed(40), condition="purchase.total >= 10000", mode="exclusive", group="promo",
         priority=1)  # fmt: skip
    rule(uow, pid, now, "sofa", {"type": "points_per_amount", "points": 3, "per": "2.00",
                                 "lines": "line.category == 'sofa'", "exclude_skus": ["SOFA-GIFT"], "pending": "14D"})  # fmt: skip
    rule(uow, pid, now, "per-item", {"type": "points_per_item", "points": 1, "lines": "line.category == 'deco'"},
         limits={"per_member": [{"points": 15, "per": "month"}]})  # fmt: skip
    rule(uow, pid, now, "welcome", fixed(100), condition="member.purchase_count == 0")
    rule(uow, pid, now, "online", fixed(3), channels=["online"], limits={"min_purchase": "20.00"})
    campaign(uow, pid, now, "spring", {"id": "spring-bonus", "trigger": "purchase", "effects": [fixed(25)]},
             budget=100)  # fmt: skip


def test_a_preview_explains_rule_by_rule_and_writes_nothing(uow_factory, program_id, now):
    setup_rules(uow_factory, program_id, now)
    member = enrol(uow_factory, program_id, now)
    lines = [LineInput("SOFA-1", 1, "400.00", "sofa"), LineInput("VASE", 2, "10.00", "deco")]
    preview = preview_purchase(uow_factory(read_only=True), program_id, cart("420.00", lines, SATURDAY_2330_BERLIN,
                                                                            member), now)  # fmt: skip
    assert preview["points"] == 420 + 420 + 600 + 2 + 100 + 25
    # Priority first (higher first), then rule id.
    assert [r["rule"] for r in preview["rules"]] == ["base", "saturday", "per-item", "sofa", "spring-bonus",
                                                     "welcome"]  # fmt: skip
    assert [line["amount"] for line in preview["lines"]] == ["400.00", "20.00"]
    # Line by line: the base and the multiplier by amount, each line filter's rule on its own lines only.
    assert [(line["points"], line["rules"]) for line in preview["lines"]] == [
        (1400, [{"rule": "base", "points": 400}, {"rule": "saturday", "points": 400}, {"rule": "sofa", "points": 600}]),
        (42, [{"rule": "base", "points": 20}, {"rule": "saturday", "points": 20}, {"rule": "per-item", "points": 2}]),
    ]  # fmt: skip
    assert preview["cart_points"] == [{"rule": "spring-bonus", "points": 25}, {"rule": "welcome", "points": 100}]
    skipped = {s["rule"]: s["reason"] for s in preview["skipped"]}
    assert skipped["big-cart"] == "exclusive group promo: rule saturday applies instead"
    assert skipped["online"] == "not for this channel"
    pending = SATURDAY_2330_BERLIN + timedelta(days=14)
    assert preview["lots"] == [{"points": 967, "available_at": SATURDAY_2330_BERLIN.isoformat()},
                               {"points": 600, "available_at": pending.isoformat()}]  # fmt: skip
    assert get_balance(uow_factory(), program_id, member, now)["points"] == 0
    assert get_campaign(uow_factory(), program_id, "spring")["budget"]["spent"] == 0


def test_an_anonymous_cart_previews_the_rules_but_earns_nothing(uow_factory, program_id, now):
    rule(uow_factory, program_id, now, "bonus", fixed(5))
    preview = preview_purchase(uow_factory(), program_id, cart("12.00", [], WEDNESDAY, None), now)
    assert preview["points"] == 0 and preview["note"].startswith("no member")
    assert [r["rule"] for r in preview["rules"]] == ["base", "bonus"]


CATEGORIES = ["sofa", "deco", "lamp", None]


def _line(i: int, quantity: int, cents: int, category: str | None) -> LineInput:
    return LineInput(f"SKU-{i}" if i else "SOFA-GIFT", quantity, f"{cents // 100}.{cents % 100:02d}", category)


line_strategy = st.builds(
    _line, st.integers(0, 6), st.integers(1, 4), st.integers(0, 30_000), st.sampled_from(CATEGORIES)
)
cart_strategy = st.tuples(
    st.lists(line_strategy, min_size=0, max_size=4),
    st.integers(0, 9_999),  # discount in cents off the lines' sum (or the total of a cart without lines)
    st.integers(0, 30 * 24 * 2 - 1).map(lambda half_hours: datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=30 * half_hours)),
    st.sampled_from(["store", "online", "app"]),
)  # fmt: skip


def test_preview_equals_the_award_for_random_carts(uow_factory, program_id, now):
    setup_rules(uow_factory, program_id, now)
    members = [enrol(uow_factory, program_id, now) for _ in range(2)]

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(cart_strategy, st.sampled_from([0, 1]))
    def check(drawn, which):
        lines, discount, at, channel = drawn
        gross = sum(int(x.unit_price.replace(".", "")) * x.quantity for x in lines) if lines else 20_000
        total = max(gross - discount, 0)
        text = f"{total // 100}.{total % 100:02d}"
        command = cart(text, lines, at, members[which], channel=channel, order=f"prop-{next(_orders)}")
        preview = preview_purchase(uow_factory(read_only=True), program_id, command, at)
        recorded = record_purchase(uow_factory(), program_id, command, at)
        assert preview["points"] == recorded["points_earned"]
        assert preview["rules"] == recorded["explanation"]["rules"]
        assert preview["grants"] == recorded["explanation"].get("grants", [])
        if preview["points"] > 1 and len(preview["lots"]) > 1:
            assert preview["lots"] == recorded["lots"]

    check()
    spent = get_campaign(uow_factory(), program_id, "spring")["budget"]["spent"]
    assert spent <= 100
