"""The line-by-line view of an evaluation: every point lands on a line or on the cart, none lost or made up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from treue.domain.programs import EarnBasis
from treue.domain.rules.attribution import apportion, attribute
from treue.domain.rules.outcome import Contribution

from .test_rules_fixtures import line, program, purchase, rule, run


def test_apportion_gives_remainders_to_the_largest_fractions_then_the_earlier_line():
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(7, [500, 300, 200]) == [4, 2, 1]  # 3.5, 2.1, 1.4: the one left goes to 0.5
    assert apportion(5, [0, 3, 0]) == [0, 5, 0]


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=8).filter(any))
def test_apportion_always_adds_up_and_follows_the_weights(points, weights):
    shares = apportion(points, weights)
    assert sum(shares) == points
    total = sum(weights)
    for share, weight in zip(shares, weights, strict=True):
        assert points * weight // total <= share <= points * weight // total + 1


def test_line_filters_multipliers_and_cart_bonuses_are_attributed_where_they_were_earned():
    rules = [
        rule("sofa", {"type": "points_per_amount", "points": 1, "per": "1.00", "lines": "line.category == 'sofa'"}),
        rule("items", {"type": "points_per_item", "points": 5, "exclude_skus": ["LAMP"]}),
        rule("double", {"type": "multiplier", "factor": "2"}),
        rule("bonus", {"type": "fixed_points", "points": 7}),
    ]
    cart = purchase("130.00", line("SOFA", 1, "100.00", "sofa"), line("LAMP", 3, "10.00", "light"))
    evaluation = run(rules, cart)
    spread = attribute(cart.lines, evaluation.outcome.contributions)
    assert [(x.points, x.rules) for x in spread.lines] == [
        (100 + 100 + 100 + 5, [("base", 100), ("double", 100), ("items", 5), ("sofa", 100)]),
        (30 + 30, [("base", 30), ("double", 30)]),
    ]
    assert spread.cart == (("bonus", 7),)
    assert sum(x.points for x in spread.lines) + 7 == evaluation.points


def test_a_cart_without_lines_keeps_every_point_on_the_cart():
    evaluation = run([rule("double", {"type": "multiplier", "factor": "2"})], purchase("20.00"))
    spread = attribute((), evaluation.outcome.contributions)
    assert spread.lines == () and spread.cart == (("base", 20), ("double", 20))


def test_a_per_item_base_spreads_the_base_and_its_multiplier_by_quantity():
    cart = purchase("30.00", line("A", 1, "20.00"), line("B", 2, "5.00"))
    evaluation = run([rule("double", {"type": "multiplier", "factor": "2"})], cart,
                     prog=program(earn_basis=EarnBasis.PER_ITEM, earn_points=10))  # fmt: skip
    spread = attribute(cart.lines, evaluation.outcome.contributions)
    assert [x.points for x in spread.lines] == [10 + 10, 20 + 20]


def test_contributions_without_points_are_left_out():
    assert attribute((), [Contribution("r", 0, "nothing")]).cart == ()
