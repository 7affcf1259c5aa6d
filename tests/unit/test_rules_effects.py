"""Each effect: integer points by the programme's rounding, pending windows, grants and hooks."""

from __future__ import annotations

from datetime import UTC, datetime

from treue.domain.money import Money, Rounding
from treue.domain.rules.context import EventFacts
from treue.domain.rules.effects import BadgeAward, Cashback, Grant, MissionProgress, TierCredit

from .test_rules_fixtures import WEDNESDAY, fixed, line, member, points_by_rule, program, purchase, rule, run

CART = (
    line("COFFEE-1", 2, "4.50", "coffee"),  # 9.00
    line("TEA-1", 1, "3.00", "tea"),  # 3.00
    line("GIFTCARD", 1, "20.00", "giftcard"),  # 20.00
)


def test_points_per_amount_counts_only_eligible_lines():
    per_euro = {"type": "points_per_amount", "points": 2, "per": "1.00", "lines": 'line.category != "tea"',
                "exclude_skus": ["GIFTCARD"]}  # fmt: skip
    result = run([rule("coffee", per_euro)], purchase("32.00", *CART))
    assert points_by_rule(result)["coffee"] == 18  # 2 points x 9.00 EUR of coffee
    assert result.outcome.contributions[1].details == {"eligible_amount": "9.00", "lines": [0]}  # the lines counted


def test_points_per_amount_on_a_discounted_order_counts_what_was_paid():
    per_euro = {"type": "points_per_amount", "points": 1, "per": "1.00", "lines": 'line.category == "coffee"'}
    # Lines add up to 32.00 but 16.00 was paid: the coffee's share of what was paid is 4.50.
    result = run([rule("coffee", per_euro)], purchase("16.00", *CART))
    assert points_by_rule(result)["coffee"] == 4  # 4.50 -> 4 points (floor)
    half_up = run([rule("coffee", per_euro)], purchase("16.00", *CART), prog=program(rounding=Rounding.HALF_UP))
    assert points_by_rule(half_up)["coffee"] == 5


def test_points_per_amount_without_lines_uses_the_total_unless_filtered():
    plain = {"type": "points_per_amount", "points": 1, "per": "2.00"}
    assert points_by_rule(run([rule("plain", plain)], purchase("9.99")))["plain"] == 4
    filtered = {**plain, "lines": 'line.category == "coffee"'}
    assert "filtered" not in points_by_rule(run([rule("filtered", filtered)], purchase("9.99")))


def test_points_per_item_counts_quantities_of_eligible_lines():
    per_item = {"type": "points_per_item", "points": 5, "lines": 'line.category in ["coffee", "tea"]'}
    assert points_by_rule(run([rule("items", per_item)], purchase("32.00", *CART)))["items"] == 15


def test_fixed_points():
    result = run([rule("bonus", fixed(100))])
    assert points_by_rule(result)["bonus"] == 100
    assert result.outcome.contributions[-1].reason == "100 bonus point(s)"


def test_multiplier_adds_the_base_points_times_the_factor_minus_one():
    result = run([rule("double", {"type": "multiplier", "factor": "2"})], purchase("50.00"))
    base, double = result.outcome.contributions
    assert (base.rule, base.points) == ("base", 50)
    assert (double.points, double.base, double.multiplier) == (50, 50, "2")
    assert result.points == 100
    one_and_a_half = run([rule("x", {"type": "multiplier", "factor": "1.5"})], purchase("50.99"))
    assert points_by_rule(one_and_a_half) == {"base": 50, "x": 25}


def test_multiplier_without_base_gives_nothing():
    result = run([rule("double", {"type": "multiplier", "factor": "3"})], include_base=False)
    assert result.points == 0
    assert result.skipped[-1].reason == "nothing to award"


def test_grants_carry_no_points_and_name_their_rule():
    result = run([rule("welcome", {"type": "grant_reward", "reward": "free-coffee"},
                       {"type": "grant_coupon", "coupon": "WELCOME10", "quantity": 2})])  # fmt: skip
    assert result.points == 50  # only the base rule
    assert result.grants == (
        Grant("reward", "free-coffee", 1, "welcome", 1),
        Grant("coupon", "WELCOME10", 2, "welcome", 1),
    )
    assert result.explanation()["grants"][1] == {
        "kind": "coupon",
        "code": "WELCOME10",
        "quantity": 2,
        "rule": "welcome",
    }


def test_hook_effects_are_typed_value_objects():
    result = run([rule("hooks", {"type": "cashback_percent", "percent": "2.5", "exclude_skus": ["GIFTCARD"]},
                       {"type": "tier_credit", "points": 100}, {"type": "mission_progress", "mission": "coffee-week"},
                       {"type": "badge", "badge": "big-spender"})], purchase("32.00", *CART))  # fmt: skip
    assert result.hooks == (
        Cashback(Money(30, "EUR"), "2.5", "hooks", 1),  # 2.5% of 12.00
        TierCredit(100, "hooks", 1),
        MissionProgress("coffee-week", 1, "hooks", 1),
        BadgeAward("big-spender", "hooks", 1),
    )
    assert result.explanation()["hooks"][0] == {"type": "Cashback", "rule": "hooks", "amount": "0.30", "percent": "2.5"}


def test_pending_windows_are_per_effect_and_calendar_based():
    result = run([rule("pending", fixed(10, pending="14D"), fixed(5, pending="1M"), fixed(1, pending="0D"), fixed(2))])
    fourteen, month, now, default = result.outcome.contributions[1:]
    assert (fourteen.pending_days, fourteen.available_at) == (14, datetime(2026, 3, 18, 10, 0, tzinfo=UTC))
    # A month later at the same local time: 11:00 CET on Mar 4 is 11:00 CEST on Apr 4.
    assert (month.pending_days, month.available_at) == (None, datetime(2026, 4, 4, 9, 0, tzinfo=UTC))
    assert (now.pending_days, now.available_at) == (0, WEDNESDAY)
    assert (default.pending_days, default.available_at) == (None, None)  # the programme's own window
    assert month.as_dict()["pending"] == "1M"


def test_non_purchase_events_can_award_fixed_points():
    review = EventFacts("review.created", WEDNESDAY, member(), attributes={"stars": 5})
    rules = [rule("review", fixed(25), trigger="review.created", condition="event.attributes.stars >= 4")]
    result = run(rules, facts=review)
    assert points_by_rule(result) == {"review": 25}  # no base rule outside purchases
    low = EventFacts("review.created", WEDNESDAY, member(), attributes={"stars": 2})
    assert run(rules, facts=low).points == 0
