"""The CEL context carries what the rules read and no more: line filters get only the line fields they name,
unless something reads the lines whole; the outcome is the same either way."""

from __future__ import annotations

from treue.domain.rules.conditions import condition, line_fields, line_filter, merge_needs

from .test_rules_fixtures import line, purchase, rule, run

SOFA = purchase("520.00", line("SOFA", 1, "499.00", "sofa"), line("CUSHION", 2, "10.50", "deco"))


def test_line_fields_are_those_named_and_everything_for_other_uses():
    assert line_fields("line.category == 'sofa' && line.quantity > 1") == {"category", "quantity"}
    assert line_fields("'line.name' == line.sku") == {"sku"}  # not inside a string
    assert line_fields("line.size() > 2") == {"*"}
    assert line_fields("[1].exists(line, line > 0)") == {"*"}
    assert line_filter("line.category == 'sofa'", "f").needs == {"purchase": {"lines"}, "line": {"category"}}
    # A condition reading the lines whole needs every field, whatever the filters name.
    whole = condition("purchase.lines.exists(l, l.sku == 'SOFA')", "c").needs
    assert "*" in merge_needs([whole, line_filter("line.category == 'sofa'", "f").needs])["line"]


def test_a_filter_on_one_field_and_a_condition_on_the_lines_whole_both_see_what_they_read():
    category = rule(
        "sofa", {"type": "points_per_amount", "points": 1, "per": "1.00", "lines": "line.category == 'sofa'"}
    )
    whole = rule(
        "cushions",
        {"type": "fixed_points", "points": 7},
        condition="purchase.lines.exists(l, l.quantity == 2 && l.sku == 'CUSHION')",
    )
    both = run([category, whole], SOFA)
    assert [(a.rule, a.points) for a in both.awards] == [("cushions", 7), ("sofa", 499)]
    alone = run([category], SOFA)
    assert [(a.rule, a.points) for a in alone.awards] == [("sofa", 499)]
