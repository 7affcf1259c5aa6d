"""BG/NBD and Gamma-Gamma: the likelihoods against direct numerical integration of the models' definitions, the
fits against data simulated from known parameters, and the predictions against simulated futures.

The CDNOW figures of the papers are not reproduced here: the CDNOW data set is not part of the repository, so
recovery is checked on simulated data instead (seeded, so every run sees the same numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from treue.domain.analytics import clv

TRUE = clv.BgNbd(r=0.25, alpha=4.0, a=0.8, b=2.5)  # close to the CDNOW estimates (r .243, alpha 4.41, a .79, b 2.43)
SPEND_P, SPEND_Q, SPEND_GAMMA = 6.0, 3.0, 15.0


def simulate_bgnbd(rng: np.random.Generator, model: clv.BgNbd, T: np.ndarray,
                   holdout: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The BG/NBD story, customer by customer (vectorised): lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); from the
    first purchase at 0, purchases follow a Poisson process and after each repeat purchase the customer drops out
    with probability p. Returns (x, t_x) in (0, T] and the purchases in the following `holdout` weeks."""
    n = T.size
    rate = rng.gamma(model.r, 1 / model.alpha, n)
    dropout = rng.beta(model.a, model.b, n)
    x, t_x, later = np.zeros(n), np.zeros(n), np.zeros(n)
    t, alive = np.zeros(n), np.ones(n, dtype=bool)
    while alive.any():
        who = np.flatnonzero(alive)
        t[who] += rng.exponential(1 / rate[who])
        ended = t[who] > T[who] + holdout
        alive[who[ended]] = False
        who = who[~ended]
        calibration = t[who] <= T[who]
        x[who[calibration]] += 1
        t_x[who[calibration]] = t[who[calibration]]
        later[who[~calibration]] += 1
        alive[who[rng.random(who.size) < dropout[who]]] = False
    return x, t_x, later


def simulate_spend(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Gamma-Gamma: nu ~ Gamma(q, rate gamma) per customer; each transaction ~ Gamma(p, rate nu), so the sum of x
    of them is Gamma(p·x, rate nu) and the mean is that over x."""
    nu = rng.gamma(SPEND_Q, 1 / SPEND_GAMMA, x.size)
    return rng.gamma(SPEND_P * x, 1 / nu) / x


# -- the formulas against the models' definitions --------------------------------------------------------------
LAMBDA_MAX = 10.0  # the Gamma(1.3, rate 6) density used below is below e^-55 beyond: the rest of [0, inf) is nothing


def _mixing(model: clv.BgNbd):
    """The Gamma(r, alpha) and Beta(a, b) densities, written out (scipy.stats per point is too slow to integrate)."""
    log_gamma_norm = model.r * math.log(model.alpha) - math.lgamma(model.r)
    log_beta_norm = math.lgamma(model.a + model.b) - math.lgamma(model.a) - math.lgamma(model.b)

    def density(lam: float, p: float) -> float:
        if lam <= 0 or not 0 < p < 1:
            return 0.0
        return math.exp(log_gamma_norm + (model.r - 1) * math.log(lam) - model.alpha * lam + log_beta_norm
                        + (model.a - 1) * math.log(p) + (model.b - 1) * math.log(1 - p))  # fmt: skip

    return density


def _integrated_likelihood(model: clv.BgNbd, x: int, t_x: float, T: float) -> float:
    """∫∫ L(lambda, p | x, t_x, T) g(lambda) f(p) dlambda dp with the individual-level likelihood of the paper:
    (1-p)^x lambda^x e^(-lambda T) + δ(x>0) p (1-p)^(x-1) lambda^x e^(-lambda t_x)."""

    density = _mixing(model)

    def integrand(lam: float, p: float) -> float:
        alive = (1 - p) ** x * lam**x * math.exp(-lam * T)
        dead = p * (1 - p) ** (x - 1) * lam**x * math.exp(-lam * t_x) if x > 0 else 0.0
        return (alive + dead) * density(lam, p)

    value, _ = integrate.dblquad(integrand, 0, 1, 0, LAMBDA_MAX, epsabs=0, epsrel=1e-9)
    return value


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 30.0), (1, 5.0, 30.0), (3, 20.5, 38.0), (6, 37.0, 39.0)])
def test_bgnbd_likelihood_equals_the_integrated_individual_likelihood(x, t_x, T):
    model = clv.BgNbd(r=1.3, alpha=6.0, a=1.5, b=3.0)
    closed = clv.bgnbd_log_likelihood(model.r, model.alpha, model.a, model.b, np.array([x], float),
                                      np.array([t_x]), np.array([T]))[0]  # fmt: skip
    assert closed == pytest.approx(math.log(_integrated_likelihood(model, x, t_x, T)), abs=1e-6)


def test_probability_alive_is_bayes_rule_on_the_two_likelihood_terms():
    model = clv.BgNbd(r=1.3, alpha=6.0, a=1.5, b=3.0)
    x, t_x, T = 3, 10.0, 38.0
    density = _mixing(model)

    def term(alive: bool) -> float:
        def integrand(lam: float, p: float) -> float:
            body = (1 - p) ** x * math.exp(-lam * T) if alive else p * (1 - p) ** (x - 1) * math.exp(-lam * t_x)
            return body * lam**x * density(lam, p)

        return integrate.dblquad(integrand, 0, 1, 0, LAMBDA_MAX, epsabs=0, epsrel=1e-9)[0]

    expected = term(True) / (term(True) + term(False))
    assert clv.probability_alive(model, [x], [t_x], [T])[0] == pytest.approx(expected, rel=1e-6)
    assert clv.probability_alive(model, [0, 0], [0, 0], [10, 50]).tolist() == [1.0, 1.0]  # no repeat: cannot die
    # The longer the silence since the last purchase, the less likely the customer is still alive.
    alive = clv.probability_alive(model, [5, 5, 5], [39, 30, 10], [39, 39, 39])
    assert alive[0] > alive[1] > alive[2]


def test_gamma_gamma_likelihood_is_a_density_of_the_mean():
    # ∫ f(m | x) dm = 1, and for x = 1 it is the marginal of one Gamma(p, nu) value with nu ~ Gamma(q, gamma).
    for x in (1.0, 4.0):
        total, _ = integrate.quad(lambda m, x=x: math.exp(clv.gamma_gamma_log_likelihood(
            SPEND_P, SPEND_Q, SPEND_GAMMA, np.array([x]), np.array([m]))[0]), 0, np.inf)  # fmt: skip
        assert total == pytest.approx(1.0, abs=1e-7)
    m = 20.0
    marginal, _ = integrate.quad(lambda nu: stats.gamma.pdf(m, SPEND_P, scale=1 / nu)
                                 * stats.gamma.pdf(nu, SPEND_Q, scale=1 / SPEND_GAMMA), 0, np.inf)  # fmt: skip
    ll = clv.gamma_gamma_log_likelihood(SPEND_P, SPEND_Q, SPEND_GAMMA, np.array([1.0]), np.array([m]))[0]
    assert ll == pytest.approx(math.log(marginal), abs=1e-8)


# -- fits recover the parameters the data was generated with ----------------------------------------------------
def test_bgnbd_fit_recovers_simulated_parameters():
    rng = np.random.default_rng(20260301)
    T = rng.uniform(30, 80, 20_000)  # customers acquired over a year, observed 30-80 weeks
    x, t_x, _ = simulate_bgnbd(rng, TRUE, T)
    fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.converged
    # Tolerances: about two standard errors at n = 20,000 (a and b are the least precisely identified).
    assert fit.r == pytest.approx(TRUE.r, rel=0.10)
    assert fit.alpha == pytest.approx(TRUE.alpha, rel=0.10)
    assert fit.a == pytest.approx(TRUE.a, rel=0.20)
    assert fit.b == pytest.approx(TRUE.b, rel=0.25)
    # The maximum is a maximum: the true parameters explain the data no better.
    at_truth = clv.bgnbd_log_likelihood(TRUE.r, TRUE.alpha, TRUE.a, TRUE.b, x, t_x, T).sum()
    assert fit.log_likelihood >= at_truth


def test_gamma_gamma_fit_recovers_simulated_parameters():
    rng = np.random.default_rng(7)
    x = rng.integers(1, 11, 20_000).astype(float)
    m = simulate_spend(rng, x)
    fit = clv.fit_gamma_gamma(x, m)
    assert fit.converged
    assert fit.p == pytest.approx(SPEND_P, rel=0.20)
    assert fit.q == pytest.approx(SPEND_Q, rel=0.10)
    assert fit.gamma == pytest.approx(SPEND_GAMMA, rel=0.20)
    assert fit.mean_spend == pytest.approx(SPEND_P * SPEND_GAMMA / (SPEND_Q - 1), rel=0.03)  # 45.0


# -- predictions against simulated futures ------------------------------------------------------------------------
def test_conditional_expectation_predicts_the_simulated_holdout():
    rng = np.random.default_rng(11)
    T = rng.uniform(30, 80, 20_000)
    x, t_x, later = simulate_bgnbd(rng, TRUE, T, holdout=39.0)
    predicted = clv.expected_purchases(TRUE, 39.0, x, t_x, T)
    assert predicted.sum() == pytest.approx(later.sum(), rel=0.06)
    rows = clv.holdout_by_frequency(x, predicted, later)
    assert [r["calibration_repeat_purchases"] for r in rows][:3] == ["0", "1", "2"] and rows[-1][
        "calibration_repeat_purchases"] == "7+"  # fmt: skip
    for row in rows[:4]:  # well-populated groups: mean predicted within 20 % of mean actual
        assert row["predicted_mean"] == pytest.approx(row["actual_mean"], rel=0.2), row
    assert sum(r["members"] for r in rows) == x.size


def test_new_customer_expectation_matches_simulation():
    rng = np.random.default_rng(5)
    T = np.full(20_000, 52.0)
    x, _, _ = simulate_bgnbd(rng, TRUE, T)
    assert clv.expected_purchases_new_customer(TRUE, 52.0) == pytest.approx(x.mean(), rel=0.05)
    # With no history (x = t_x = T = 0) the conditional expectation is the new customer's.
    assert clv.expected_purchases(TRUE, 52.0, [0.0], [0.0], [0.0])[0] == pytest.approx(
        float(clv.expected_purchases_new_customer(TRUE, 52.0)), rel=1e-9)  # fmt: skip


def test_expected_spend_shrinks_towards_the_population_mean():
    model = clv.GammaGamma(p=SPEND_P, q=SPEND_Q, gamma=SPEND_GAMMA)
    spend = clv.expected_spend(model, [0, 1, 100], [0, 90.0, 90.0])
    assert spend[0] == pytest.approx(model.mean_spend)  # no repeat purchase: the population mean (45)
    assert model.mean_spend < spend[1] < spend[2] < 90.0  # more purchases, more weight on the own mean
    with pytest.raises(clv.NotEnoughData):
        clv.expected_spend(clv.GammaGamma(p=1.0, q=0.9, gamma=1.0), [1], [10.0])


def test_clv_is_spend_times_discounted_weekly_increments():
    model = clv.GammaGamma(p=SPEND_P, q=SPEND_Q, gamma=SPEND_GAMMA)
    x, t_x, T, m = np.array([0.0, 2, 8]), np.array([0.0, 20, 50]), np.array([10.0, 40, 52]), np.array([0.0, 30, 60])
    undiscounted = clv.discounted_purchases(TRUE, x, t_x, T, 52, 0.0)
    assert undiscounted == pytest.approx(clv.expected_purchases(TRUE, 52.0, x, t_x, T), rel=1e-9)
    discounted = clv.discounted_purchases(TRUE, x, t_x, T, 52, 0.1)
    assert np.all(discounted < undiscounted) and np.all(discounted > undiscounted / 1.1)
    # By hand for one customer: weekly increments of E[Y(k)], each discounted by 1.1^(-k/52.18).
    weeks = np.arange(53.0)
    cumulative = clv.expected_purchases(TRUE, weeks, np.full(53, 8.0), np.full(53, 50.0), np.full(53, 52.0))
    by_hand = float(np.sum(np.diff(cumulative) * 1.1 ** (-weeks[1:] / (365.25 / 7))))
    assert discounted[2] == pytest.approx(by_hand, rel=1e-12)
    value = clv.expected_clv(TRUE, model, x, t_x, T, m, 52, 0.1)
    assert value == pytest.approx(clv.expected_spend(model, x, m) * discounted, rel=1e-12)


def test_refuses_what_cannot_be_fitted():
    with pytest.raises(clv.NotEnoughData):
        clv.fit_bgnbd([0, 0, 0], [0, 0, 0], [5, 6, 7])  # nobody came back
    with pytest.raises(clv.NotEnoughData):
        clv.fit_gamma_gamma([2], [10.0])
    with pytest.raises(ValueError):
        clv.fit_bgnbd([1, 2], [5, 8], [4, 9])  # t_x after T
    with pytest.raises(ValueError):
        clv.fit_gamma_gamma([0, 1], [5.0, 6.0])  # x = 0 belongs out of the spend fit
    with pytest.raises(ValueError):
        clv.discounted_purchases(TRUE, [1], [1], [2], 0, 0.1)
