"""Control groups and uplift statistics (issue 6: ROI with a control group)."""

from __future__ import annotations

import uuid
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from treue.domain.analytics.uplift import return_on, welch
from treue.domain.control import bucket, campaign_unit, in_control, percent_text, share_bp_of_percent
from treue.domain.errors import InvalidInput


def test_assignment_is_stable_and_the_share_is_close_to_the_setting():
    ids = [str(uuid.UUID(int=n * 7919 + 17)) for n in range(20_000)]
    held = [m for m in ids if in_control("program", m, 1_000)]
    assert 0.09 < len(held) / len(ids) < 0.11
    assert held == [m for m in ids if in_control("program", m, 1_000)]  # the same members every time
    # a larger share keeps every member of the smaller one: raising the share never moves a member out
    assert set(held) <= {m for m in ids if in_control("program", m, 2_000)}


def test_groups_of_different_campaigns_are_independent():
    ids = [str(uuid.UUID(int=n)) for n in range(20_000)]
    a = {m for m in ids if in_control(campaign_unit("spring"), m, 5_000)}
    b = {m for m in ids if in_control(campaign_unit("summer"), m, 5_000)}
    overlap = len(a & b) / len(ids)
    assert 0.23 < overlap < 0.27  # independent halves overlap on a quarter, not on all or nothing


@given(st.uuids())
def test_no_share_holds_nobody_out(member):
    assert not in_control("program", str(member), 0)
    assert 0 <= bucket("program", str(member)) < 10_000


def test_share_is_read_in_basis_points_and_refused_out_of_range():
    assert share_bp_of_percent(Fraction(10)) == 1_000
    assert share_bp_of_percent(Fraction("2.5")) == 250
    assert percent_text(250) == "2.5" and percent_text(1_000) == "10" and percent_text(1_205) == "12.05"
    for bad in (Fraction("50.01"), Fraction(-1), Fraction("0.001")):
        with pytest.raises(InvalidInput):
            share_bp_of_percent(bad)


def test_welch_interval_worked_example():
    # treated 10, 12, 14 (mean 12, variance 4); control 8, 9, 10 (mean 9, variance 1).
    # standard error sqrt(4/3 + 1/3) = 1.2910; Welch-Satterthwaite df = (5/3)^2 / ((4/3)^2/2 + (1/3)^2/2) = 2.9412
    found = welch([10, 12, 14], [8, 9, 10])
    assert (found.treated_mean, found.control_mean, found.difference) == (12, 9, 3)
    assert found.relative == pytest.approx(1 / 3)
    half = stats.t.ppf(0.975, 2.9411764705882355) * 1.2909944487358056
    assert found.low == pytest.approx(3 - half) and found.high == pytest.approx(3 + half)
    # scipy's own Welch test gives the same interval
    reference = stats.ttest_ind([10, 12, 14], [8, 9, 10], equal_var=False).confidence_interval(0.95)
    assert (found.low, found.high) == pytest.approx((reference.low, reference.high))


def test_welch_without_spread_or_with_one_member():
    same = welch([5, 5, 5], [3, 3])
    assert (same.low, same.high) == (2, 2)
    single = welch([5], [3, 4])
    assert single.difference == 1.5 and single.low is None and single.high is None
    with pytest.raises(ValueError):
        welch([], [1])


def test_return_on_rewards():
    uplift = welch([100, 100, 100], [0, 0, 0])  # 1.00 more revenue per treated member, no spread
    result = return_on(uplift, treated_members=1_000, margin=Fraction(3, 10), cost_minor=20_000)
    assert result.incremental_revenue == 100_000 and result.incremental_margin == pytest.approx(30_000)
    assert result.roi == pytest.approx(1.5) and result.roi_low == pytest.approx(1.5)
    assert return_on(uplift, 1_000, Fraction(3, 10), 0).roi is None
