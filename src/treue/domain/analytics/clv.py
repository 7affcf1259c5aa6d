"""Predictive customer lifetime value: the BG/NBD model of purchase frequency and dropout (Fader, Hardie & Lee
2005, "Counting Your Customers the Easy Way") and the Gamma-Gamma model of spend per transaction (Fader, Hardie
& Lee 2005, "RFM and CLV: Using Iso-Value Curves"; Fader & Hardie, "The Gamma-Gamma Model of Monetary Value").

Inputs follow the papers: per customer `x` = number of repeat transactions, `t_x` = time of the last one and
`T` = length of observation, both measured from the customer's first transaction (weeks here), and `m` = mean
value of the repeat transactions. Both models are fitted by maximum likelihood with the log-likelihoods written
out below (vectorised numpy; scipy for gammaln/betaln/hyp2f1 and the optimiser). Parameters are optimised on
the log scale so that they stay positive.

Model parameters and probabilities are floats: they are statistics, not balances. Callers turn an expected
value of money into minor units with the programme's rounding before showing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

FloatArray = NDArray[np.float64]

WEEKS_PER_YEAR = 365.25 / 7  # the discount rate is annual; cash flows are weekly
_LOG_BOUND = 12.0  # parameters are searched in [e^-12, e^12]: far beyond any sensible value, never overflowing


@dataclass(frozen=True, slots=True)
class BgNbd:
    """Purchase rate lambda ~ Gamma(shape r, rate alpha); dropout probability after each repeat purchase
    p ~ Beta(a, b). `log_likelihood` is the maximised total over all customers."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan
    converged: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b, "log_likelihood": self.log_likelihood,
                "converged": self.converged}  # fmt: skip


@dataclass(frozen=True, slots=True)
class GammaGamma:
    """Transaction value z ~ Gamma(shape p, rate nu) per customer, nu ~ Gamma(shape q, rate gamma) across
    customers. `gamma` is in the currency unit the spend was given in."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = math.nan
    converged: bool = True

    @property
    def mean_spend(self) -> float:
        """The population mean transaction value p·gamma/(q-1); infinite unless q > 1."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma, "log_likelihood": self.log_likelihood,
                "converged": self.converged}  # fmt: skip


class NotEnoughData(ValueError):
    """The history cannot identify the model (too few customers or no repeat purchases)."""


def _floats(values: Any) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _check_rft(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise ValueError("x, t_x and T must be one-dimensional arrays of the same length")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T) or np.any((x == 0) & (t_x != 0)):
        raise ValueError("need x >= 0, 0 <= t_x <= T, and t_x = 0 where x = 0")


# -- BG/NBD ---------------------------------------------------------------------------------------------------
def bgnbd_log_likelihood(r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray,
                         T: FloatArray) -> FloatArray:  # fmt: skip
    """Each customer's log-likelihood (the paper's equation 6):

    L = B(a, b+x)/B(a, b) · Γ(r+x) alpha^r / Γ(r) · [ (alpha+T)^-(r+x) + δ(x>0) · a/(b+x-1) · (alpha+t_x)^-(r+x) ]
    """
    common = betaln(a, b + x) - betaln(a, b) + gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    survived = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    # For x = 0 the second term is absent; b+x-1 would be b-1 (possibly ≤ 0), so it is computed only where x > 0.
    died = np.full_like(survived, -np.inf)
    xr = x[repeat]
    died[repeat] = np.log(a) - np.log(b + xr - 1) - (r + xr) * np.log(alpha + t_x[repeat])
    return _floats(common + np.logaddexp(survived, died))


def fit_bgnbd(x: Any, t_x: Any, T: Any) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters. Customers with identical (x, t_x, T) are evaluated once, weighted."""
    x, t_x, T = _floats(x), _floats(t_x), _floats(T)
    _check_rft(x, t_x, T)
    if x.size < 2 or not np.any(x > 0):
        raise NotEnoughData("the BG/NBD model needs at least two customers and one repeat purchase")
    rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    ux, ut, uT, w = rows[:, 0], rows[:, 1], rows[:, 2], counts.astype(np.float64)
    n = float(w.sum())

    def negative(log_params: FloatArray) -> float:
        r, alpha, a, b = np.exp(log_params)
        value = -float(np.dot(w, bgnbd_log_likelihood(r, alpha, a, b, ux, ut, uT))) / n
        return value if math.isfinite(value) else 1e300

    # Start from a purchase rate matching the observed repeat rate (alpha = r / rate) and a mild dropout.
    rate = max(float(np.dot(w, ux)) / max(float(np.dot(w, uT)), 1e-9), 1e-6)
    start = np.log([1.0, 1.0 / rate, 1.0, 2.0])
    result = _minimise(negative, start)
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return BgNbd(r, alpha, a, b, -float(result.fun) * n, bool(result.success))


def _minimise(objective: Any, start: Any) -> Any:
    """L-BFGS-B within generous log-bounds, then Nelder-Mead from its answer if it did not report success (a
    flat or noisy likelihood can stop the gradient method early)."""
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(start)
    first = minimize(objective, start, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    if first.success:
        return first
    second = minimize(objective, first.x, method="Nelder-Mead", bounds=bounds,
                      options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-10})  # fmt: skip
    return second if second.fun <= first.fun else first


def probability_alive(model: BgNbd, x: Any, t_x: Any, T: Any) -> FloatArray:
    """P(alive | x, t_x, T) = 1 / (1 + δ(x>0) · a/(b+x-1) · ((alpha+T)/(alpha+t_x))^(r+x)) (the paper's equation 11).
    A customer without repeat purchases cannot have dropped out in this model, so the answer is 1 for x = 0."""
    x, t_x, T = _floats(x), _floats(t_x), _floats(T)
    return 1.0 / (1.0 + _death_odds(model, x, t_x, T))


def _death_odds(model: BgNbd, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    odds = np.zeros_like(x)
    repeat = x > 0
    xr = x[repeat]
    log_odds = (np.log(model.a) - np.log(model.b + xr - 1)
                + (model.r + xr) * (np.log(model.alpha + T[repeat]) - np.log(model.alpha + t_x[repeat])))  # fmt: skip
    odds[repeat] = np.exp(np.minimum(log_odds, 700.0))
    return odds


def expected_purchases(model: BgNbd, t: Any, x: Any, t_x: Any, T: Any) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected transactions in the next t weeks of a customer with history (x, t_x, T)
    (the paper's equation 10):

    (a+b+x-1)/(a-1) · [1 - ((alpha+T)/(alpha+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))] / (1 + death odds)

    `t` broadcasts against the customers (e.g. shape (n, 1) against (1, H) gives an n*H table).
    """
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    t = _floats(t)
    x, t_x, T = _floats(x), _floats(t_x), _floats(T)
    odds = _death_odds(model, x.ravel(), t_x.ravel(), T.ravel()).reshape(x.shape)
    z = t / (alpha + T + t)
    ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    bracket = 1.0 - ratio * hyp2f1(r + x, b + x, a + b + x - 1, z)
    return _floats((a + b + x - 1) / (a - 1) * bracket / (1.0 + odds))


def expected_purchases_new_customer(model: BgNbd, t: Any) -> FloatArray:
    """E[X(t)]: expected repeat transactions of a new customer within t weeks of the first (equation 9)."""
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    t = _floats(t)
    bracket = 1.0 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return _floats((a + b - 1) / (a - 1) * bracket)


# -- Gamma-Gamma ----------------------------------------------------------------------------------------------
def gamma_gamma_log_likelihood(p: float, q: float, gamma: float, x: FloatArray, m: FloatArray) -> FloatArray:
    """Each customer's log-density of the mean repeat value m over x transactions (Fader & Hardie's note, eq. 3):

    f(m | x) = Γ(px+q) / (Γ(px) Γ(q)) · gamma^q · x^(px) · m^(px-1) / (gamma + x·m)^(px+q)
    """
    px = p * x
    return _floats(gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + px * np.log(x)
                   + (px - 1) * np.log(m) - (px + q) * np.log(gamma + x * m))  # fmt: skip


def fit_gamma_gamma(x: Any, m: Any) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters from customers with x ≥ 1 repeat transactions of mean value
    m > 0 (customers without repeat purchases say nothing about spend and must be left out by the caller)."""
    x, m = _floats(x), _floats(m)
    if x.shape != m.shape or x.ndim != 1:
        raise ValueError("x and m must be one-dimensional arrays of the same length")
    if np.any(x < 1) or np.any(m <= 0):
        raise ValueError("the Gamma-Gamma fit takes customers with x >= 1 and a positive mean value")
    if x.size < 2:
        raise NotEnoughData("the Gamma-Gamma model needs at least two customers with repeat purchases")

    def negative(log_params: FloatArray) -> float:
        p, q, gamma = np.exp(log_params)
        value = -float(gamma_gamma_log_likelihood(p, q, gamma, x, m).sum()) / x.size
        return value if math.isfinite(value) else 1e300

    # Start at p = 1, q = 2 and gamma putting the population mean p·gamma/(q-1) at the observed mean.
    start = np.log([1.0, 2.0, float(np.mean(m))])
    result = _minimise(negative, start)
    p, q, gamma = (float(v) for v in np.exp(result.x))
    return GammaGamma(p, q, gamma, -float(result.fun) * x.size, bool(result.success))


def expected_spend(model: GammaGamma, x: Any, m: Any) -> FloatArray:
    """E[Z | x, m] = (gamma + x·m)·p / (p·x + q - 1): the expected value of a future transaction, a weighted mean of
    the population mean and the customer's own mean (m is ignored where x = 0). Needs q > 1."""
    if model.q <= 1:
        raise NotEnoughData("the Gamma-Gamma mean spend is infinite (q <= 1): the spend data cannot price CLV")
    x, m = _floats(x), _floats(m)
    own = np.where(x > 0, x * m, 0.0)
    return _floats((model.gamma + own) * model.p / (model.p * x + model.q - 1))


# -- CLV --------------------------------------------------------------------------------------------------------
def discounted_purchases(model: BgNbd, x: Any, t_x: Any, T: Any, horizon_weeks: int,
                         annual_discount_rate: float) -> FloatArray:  # fmt: skip
    """Σ_{k=1..H} (E[Y(k)] - E[Y(k-1)]) / (1+d)^(k / 52.18): the expected transactions in each of the next H
    weeks, each discounted to today at the annual rate d (E[Y(0)] = 0)."""
    if horizon_weeks < 1:
        raise ValueError("the horizon is at least one week")
    if annual_discount_rate <= -1:
        raise ValueError("the discount rate must be greater than -1")
    x, t_x, T = _floats(x), _floats(t_x), _floats(T)
    weeks = np.arange(horizon_weeks + 1, dtype=np.float64)
    total = np.zeros_like(x)
    chunk = max(1, 200_000 // (horizon_weeks + 1))  # bounded memory for many customers * long horizons
    factors = (1.0 + annual_discount_rate) ** (-weeks[1:] / WEEKS_PER_YEAR)
    for start in range(0, x.size, chunk):
        part = slice(start, start + chunk)
        cumulative = expected_purchases(model, weeks[None, :], x[part, None], t_x[part, None], T[part, None])
        total[part] = np.diff(cumulative, axis=1) @ factors
    return _floats(total)


def expected_clv(bgnbd: BgNbd, gamma_gamma: GammaGamma, x: Any, t_x: Any, T: Any, m: Any, horizon_weeks: int,
                 annual_discount_rate: float) -> FloatArray:  # fmt: skip
    """Expected value of the customer's purchases over the horizon, discounted: E[Z | x, m] * discounted E[Y]."""
    spend = expected_spend(gamma_gamma, x, m)
    return _floats(spend * discounted_purchases(bgnbd, x, t_x, T, horizon_weeks, annual_discount_rate))


# -- holdout validation -----------------------------------------------------------------------------------------
def holdout_by_frequency(x: Any, predicted: Any, actual: Any, cap: int = 7) -> list[dict[str, Any]]:
    """Predicted vs actual holdout transactions grouped by calibration repeat purchases 0, 1, ..., cap-1 and
    "cap+" (the papers' conditional-expectation figure): per group the customers and the mean of each."""
    x, predicted, actual = _floats(x), _floats(predicted), _floats(actual)
    rows = []
    for group in range(cap + 1):
        mask = x >= cap if group == cap else x == group
        n = int(mask.sum())
        if n == 0:
            continue
        rows.append({"calibration_repeat_purchases": f"{cap}+" if group == cap else str(group), "members": n,
                     "predicted_mean": float(predicted[mask].mean()), "actual_mean": float(actual[mask].mean()),
                     "predicted_total": float(predicted[mask].sum()), "actual_total": int(actual[mask].sum())})  # fmt: skip
    return rows
