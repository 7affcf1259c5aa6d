"""Uplift of a programme or campaign over its control group, and the return on what its rewards cost.

Per member of each group the analysis has one value per measure (net revenue in the period, purchases in the
period; members without a purchase count with 0). The difference of the group means is estimated with Welch's
t-interval (unequal variances and group sizes); incremental revenue is that difference times the treated members,
incremental margin that times the gross margin, and ROI = incremental margin / cost of the rewards, each with the
bounds that follow from the interval of the revenue difference.

Means and intervals are floats: they are statistics, not balances; callers round money to minor units for display.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import stats


@dataclass(frozen=True, slots=True)
class Difference:
    """treated mean - control mean, with a two-sided confidence interval (None when it cannot be estimated)."""

    treated_mean: float
    control_mean: float
    difference: float
    low: float | None
    high: float | None
    confidence: float

    @property
    def relative(self) -> float | None:
        """The difference as a share of the control mean (None for a control mean of 0)."""
        return None if self.control_mean == 0 else self.difference / self.control_mean


def welch(treated: Sequence[float], control: Sequence[float], confidence: float = 0.95) -> Difference:
    """The difference of the means of two independent samples with Welch's t-interval."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    if not treated or not control:
        raise ValueError("both groups need members")
    t = np.asarray(treated, dtype=np.float64)
    c = np.asarray(control, dtype=np.float64)
    mean_t, mean_c = float(t.mean()), float(c.mean())
    difference = mean_t - mean_c
    if len(t) < 2 or len(c) < 2:
        return Difference(mean_t, mean_c, difference, None, None, confidence)
    var_t, var_c = float(t.var(ddof=1)) / len(t), float(c.var(ddof=1)) / len(c)
    error = math.sqrt(var_t + var_c)
    if error == 0:
        return Difference(mean_t, mean_c, difference, difference, difference, confidence)
    freedom = (var_t + var_c) ** 2 / (var_t**2 / (len(t) - 1) + var_c**2 / (len(c) - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, freedom)) * error
    return Difference(mean_t, mean_c, difference, difference - half, difference + half, confidence)


@dataclass(frozen=True, slots=True)
class Return:
    """What the uplift earned against what the rewards cost, in minor units of the programme's currency."""

    incremental_revenue: float
    incremental_margin: float
    cost: int
    roi: float | None  # incremental margin / cost; None without cost
    roi_low: float | None
    roi_high: float | None


def return_on(revenue: Difference, treated_members: int, margin: Fraction, cost_minor: int) -> Return:
    """ROI of the rewards: the revenue difference per member, scaled to the treated members, times the margin."""
    if not 0 <= margin <= 1:
        raise ValueError("the margin is a share between 0 and 1")
    share = float(margin)
    incremental = revenue.difference * treated_members
    gained = incremental * share

    def roi(per_member: float | None) -> float | None:
        if per_member is None or cost_minor <= 0:
            return None
        return per_member * treated_members * share / cost_minor

    return Return(incremental, gained, cost_minor, roi(revenue.difference), roi(revenue.low), roi(revenue.high))
