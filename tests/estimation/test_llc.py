"""Estimators on synthetic traces with known answers (primer §2)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from helpers import synthetic_trace
from scipy import optimize, stats

from lltools.estimation.llc import (
    LLCResult,
    llc,
    llc_bias_reduced,
    llc_per_chain,
    llc_running,
    llc_temperature_slope,
    wbic,
)
from lltools.estimation.stats import ess_bulk, mcse_mean, rhat
from lltools.estimation.summary import LLC_TABLE_COLUMNS, llc_by_setting, summarize


def known_trace(num_chains=4, num_draws=200, nbeta=50.0, loss_init=0.2, num_burnin=10):
    """Chain c has mean draw loss L_init + (c + 1)/(10 nβ) exactly (± alternating noise), so
    λ̂_c = (c + 1)/10; burn-in columns hold 1e3 (must be ignored)."""
    sign = np.where(np.arange(num_draws) % 2 == 0, 1.0, -1.0)
    draws = loss_init + (np.arange(num_chains)[:, None] + 1) / (10 * nbeta) + 1e-3 * sign
    burn = np.full((num_chains, num_burnin), 1e3)
    return synthetic_trace(
        np.hstack([burn, draws]), nbeta=nbeta, loss_init=loss_init, num_burnin=num_burnin
    )


def ar1(shape, phi, rng, sigma=1.0):
    """Stationary AR(1) series along the last axis: x_t = φ x_{t−1} + √(1−φ²) σ ξ_t."""
    x = np.empty(shape)
    x[..., 0] = sigma * rng.standard_normal(shape[:-1])
    innov = math.sqrt(1 - phi**2) * sigma * rng.standard_normal(shape)
    for t in range(1, shape[-1]):
        x[..., t] = phi * x[..., t - 1] + innov[..., t]
    return x


# ---------------------------------------------------------------------------- per chain, llc
def test_llc_per_chain_known_values_ignores_burnin() -> None:
    lam = llc_per_chain(known_trace())
    assert lam.dtype == torch.float64 and lam.shape == (4,)
    np.testing.assert_allclose(lam.numpy(), [0.1, 0.2, 0.3, 0.4], rtol=1e-12)


def test_llc_per_chain_nan_for_diverged() -> None:
    tr = known_trace()
    tr.diverged_at[1] = 50
    tr.loss[1, 50:] = math.nan
    lam = llc_per_chain(tr).numpy()
    assert math.isnan(lam[1]) and np.isfinite(lam[[0, 2, 3]]).all()


def test_llc_mean_std_sem_known() -> None:
    tr = known_trace()
    res = llc(tr)
    assert isinstance(res, LLCResult)
    assert res.mean == pytest.approx(0.25, rel=1e-12)
    assert res.std == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4], ddof=1), rel=1e-12)
    assert (res.num_chains, res.num_valid) == (4, 4)
    # sem = nβ × (sd/√ESS_bulk) of the pooled loss (same w* for all chains), via arviz-stats.
    draws = tr.loss[:, 10:].numpy()
    assert res.sem == pytest.approx(50.0 * mcse_mean(draws), rel=1e-10)
    assert res.sem == pytest.approx(50.0 * draws.std(ddof=1) / math.sqrt(ess_bulk(draws)), rel=1e-10)
    assert res.ess == pytest.approx(ess_bulk(draws), rel=1e-12)


def test_llc_excludes_diverged_chains() -> None:
    tr = known_trace()
    tr.diverged_at[3] = 20
    tr.loss[3, 20:] = math.nan
    res = llc(tr)
    assert res.mean == pytest.approx(0.2, rel=1e-12)
    assert (res.num_chains, res.num_valid) == (4, 3)
    assert math.isnan(res.per_chain[3])
    assert np.isfinite(res.sem) and np.isfinite(res.ess)


def test_llc_all_diverged_is_nan() -> None:
    tr = synthetic_trace(np.ones((3, 20)), diverged_at=[1, 2, 3])
    res = llc(tr)
    assert res.num_valid == 0
    assert all(math.isnan(v) for v in (res.mean, res.std, res.sem, res.ess))


def test_llc_per_chain_centres() -> None:
    """λ̂_c subtracts each chain's own L(w*_c) (e.g. one chain per checkpoint)."""
    tr = synthetic_trace(np.array([[1.0, 1.2], [5.0, 5.2]]), nbeta=10.0, loss_init=[1.0, 5.0])
    np.testing.assert_allclose(llc_per_chain(tr).numpy(), [1.0, 1.0])


def test_llc_requires_setting_for_sweeps() -> None:
    tr = synthetic_trace(np.ones((4, 10)), setting_index=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="setting"):
        llc(tr)
    with pytest.raises(ValueError, match="no chains with setting 5"):
        llc(tr, 5)
    assert llc(tr, 1).num_chains == 2


def test_llc_partial_trace_without_draws() -> None:
    tr = synthetic_trace(np.ones((2, 5)), num_burnin=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = llc(tr)
    assert math.isnan(res.mean) and res.num_valid == 2


def test_sem_accounts_for_autocorrelation() -> None:
    """Over 300 independent synthetic traces of AR(1) losses (φ = 0.8, 4 chains × 500 draws)
    the mean reported sem matches the actual spread of λ̂ (ratio within 0.85–1.15), whereas
    the iid formula std/√N is too small by √((1−φ)/(1+φ)) = 0.33."""
    gen = np.random.default_rng(0)
    phi, nbeta, reps = 0.8, 10.0, 300
    means, sems, naive = [], [], []
    for _ in range(reps):
        draws = 1.0 + 0.01 * ar1((4, 500), phi, gen)
        res = llc(synthetic_trace(draws, nbeta=nbeta, loss_init=1.0))
        means.append(res.mean)
        sems.append(res.sem)
        naive.append(nbeta * draws.std(ddof=1) / math.sqrt(draws.size))
    spread = np.std(means, ddof=1)
    assert 0.85 < np.mean(sems) / spread < 1.15, (np.mean(sems), spread)
    assert np.mean(naive) / spread < 0.45


# ---------------------------------------------------------------------------- by setting
def test_llc_by_setting_table() -> None:
    gen = np.random.default_rng(1)
    loss = 0.1 + 0.01 * gen.standard_normal((6, 300))
    settings = [0, 0, 1, 1, 2, 2]
    nbeta = [10.0, 10.0, 20.0, 20.0, 40.0, 40.0]
    eps = [1e-3, 1e-3, 2e-3, 2e-3, 3e-3, 3e-3]
    acc = np.full((6, 300), 0.9)
    acc[2:4] = 0.7
    acc[:, ::2] = np.nan  # acceptance only every other step
    tr = synthetic_trace(loss, nbeta=nbeta, epsilon=eps, loss_init=0.1, acceptance=acc,
                         setting_index=settings, diverged_at=[-1, -1, -1, -1, -1, 100])
    table = llc_by_setting(tr)
    assert list(table.columns) == list(LLC_TABLE_COLUMNS)
    assert table["setting"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(table["nbeta"], [10.0, 20.0, 40.0])
    np.testing.assert_allclose(table["epsilon"], [1e-3, 2e-3, 3e-3], rtol=1e-12)
    assert table["num_chains"].tolist() == [2, 2, 2]
    assert table["n_diverged"].tolist() == [0, 0, 1]
    np.testing.assert_allclose(table["acceptance"], [0.9, 0.7, 0.9])
    for s in range(3):
        res = llc(tr, s)
        row = table.loc[s]
        assert row["llc_mean"] == res.mean and row["llc_sem"] == res.sem and row["ess"] == res.ess
    x = 10.0 * (loss[:2] - 0.1)
    assert table.loc[0, "rhat"] == pytest.approx(rhat(x), rel=1e-12)
    assert math.isnan(table.loc[2, "rhat"])  # one valid chain left
    assert math.isnan(table.loc[2, "llc_std"])


# ---------------------------------------------------------------------------- running
def test_llc_running_known() -> None:
    loss = np.array([[9.0, 1.0, 2.0, 3.0, 4.0], [9.0, 1.0, 1.0, 1.0, 1.0]])
    tr = synthetic_trace(loss, nbeta=2.0, loss_init=0.5, num_burnin=1)
    run = llc_running(tr)
    assert run.shape == (2, 4)
    np.testing.assert_allclose(run[0].numpy(), 2.0 * (np.array([1.0, 1.5, 2.0, 2.5]) - 0.5))
    np.testing.assert_allclose(run[:, -1].numpy(), llc_per_chain(tr).numpy())
    tr.diverged_at[1] = 3
    assert torch.isnan(llc_running(tr)[1]).all()


# ---------------------------------------------------------------------------- bias reduced
NBETAS = np.array([20.0, 50.0, 100.0, 300.0, 1000.0])


def test_bias_reduced_exact_line() -> None:
    """λ̂_j = λ − (m−1)/log nβ_j exactly: intercept λ, slope −(m−1), R² = 1."""
    lam, m = 1.5, 3
    y = lam - (m - 1) / np.log(NBETAS)
    res = llc_bias_reduced(NBETAS, y)
    assert res.intercept == pytest.approx(lam, abs=1e-10)
    assert res.slope == pytest.approx(-(m - 1), abs=1e-10)
    assert res.r2 == pytest.approx(1.0)
    assert res.intercept_se == pytest.approx(0.0, abs=1e-8)


def test_bias_reduced_matches_linregress_unweighted() -> None:
    gen = np.random.default_rng(2)
    y = 0.5 - 0.4 / np.log(NBETAS) + 0.01 * gen.standard_normal(NBETAS.size)
    res = llc_bias_reduced(NBETAS, y)
    ref = stats.linregress(1 / np.log(NBETAS), y)
    assert res.intercept == pytest.approx(ref.intercept, rel=1e-10)
    assert res.slope == pytest.approx(ref.slope, rel=1e-10)
    assert res.intercept_se == pytest.approx(ref.intercept_stderr, rel=1e-8)
    assert res.slope_se == pytest.approx(ref.stderr, rel=1e-8)
    assert res.r2 == pytest.approx(ref.rvalue**2, rel=1e-10)


@pytest.mark.parametrize("noise_scale", [0.3, 3.0])
def test_bias_reduced_weighted_matches_curve_fit(noise_scale: float) -> None:
    """With sems: the weighted fit equals curve_fit; the covariance is the known-error one
    (absolute_sigma=True) when the points scatter less than their errors, and the residual-
    scaled one (absolute_sigma=False) when they scatter more."""
    gen = np.random.default_rng(3)
    sem = np.array([0.01, 0.02, 0.01, 0.03, 0.05])
    x = 1 / np.log(NBETAS)
    y = 0.5 - 0.4 * x + noise_scale * sem * gen.standard_normal(x.size)
    res = llc_bias_reduced(NBETAS, y, sem)
    chi2_big = noise_scale > 1

    def line(xx, a, b):
        return a + b * xx

    popt, pcov = optimize.curve_fit(line, x, y, sigma=sem, absolute_sigma=not chi2_big)
    chi2 = float((((y - line(x, *popt)) / sem) ** 2).sum())
    assert (chi2 / 3 > 1) == chi2_big
    # curve_fit is iterative (tolerance ~1e-8); ours is the closed-form solution.
    assert res.intercept == pytest.approx(popt[0], rel=1e-6)
    assert res.slope == pytest.approx(popt[1], rel=1e-6)
    assert res.intercept_se == pytest.approx(math.sqrt(pcov[0, 0]), rel=1e-5)
    assert res.slope_se == pytest.approx(math.sqrt(pcov[1, 1]), rel=1e-5)


def test_bias_reduced_se_is_calibrated() -> None:
    """Simulated λ̂_j = λ + b/log nβ_j + sem_j z: the intercept is unbiased and ±2 SE covers
    λ in ≥ 95% of 2000 replicates (the max(1, χ²/dof) rule is conservative)."""
    gen = np.random.default_rng(4)
    sem = np.array([0.02, 0.02, 0.03, 0.03, 0.04])
    x = 1 / np.log(NBETAS)
    cover, est = 0, []
    for _ in range(2000):
        y = 1.0 - 0.5 * x + sem * gen.standard_normal(x.size)
        res = llc_bias_reduced(NBETAS, y, sem)
        est.append(res.intercept)
        cover += abs(res.intercept - 1.0) < 2 * res.intercept_se
    assert abs(np.mean(est) - 1.0) < 4 * np.std(est) / math.sqrt(2000)
    assert 0.95 <= cover / 2000 <= 0.995


def test_bias_reduced_two_points_and_errors() -> None:
    res = llc_bias_reduced([10.0, 100.0], [0.3, 0.4])
    assert math.isnan(res.intercept_se) and math.isnan(res.slope_se) and np.isfinite(res.intercept)
    # Two points: the line passes through both.
    assert res.intercept + res.slope / math.log(10.0) == pytest.approx(0.3)
    assert res.intercept + res.slope / math.log(100.0) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="2 distinct"):
        llc_bias_reduced([10.0, 10.0, 10.0], [0.3, 0.4, 0.5])
    with pytest.raises(ValueError, match="> 1"):
        llc_bias_reduced([0.5, 10.0], [0.3, 0.4])
    with pytest.raises(ValueError, match="entries"):
        llc_bias_reduced([10.0, 100.0], [0.3])
    with pytest.raises(ValueError, match="> 0"):
        llc_bias_reduced([10.0, 100.0], [0.3, 0.4], [0.0, 0.1])
    with pytest.raises(ValueError, match="finite"):
        llc_bias_reduced([10.0, 100.0], [0.3, math.nan])


# ---------------------------------------------------------------------------- temperature slope
def test_temperature_slope_exact() -> None:
    """E[L]_j = L0 + λ/nβ_j ⇒ n·E[L] = n L0 + λ T with T = n/nβ: slope λ, intercept n·L0."""
    n, lam, loss0 = 1000, 0.75, 0.02
    nbeta = n / np.log(n) * np.array([0.5, 1.0, 2.0, 4.0])
    res = llc_temperature_slope(nbeta, loss0 + lam / nbeta, n)
    assert res.slope == pytest.approx(lam, rel=1e-10)
    assert res.intercept == pytest.approx(n * loss0, rel=1e-10)
    assert res.r2 == pytest.approx(1.0)


def test_temperature_slope_weighted_and_errors() -> None:
    gen = np.random.default_rng(5)
    n = 500
    nbeta = np.array([50.0, 80.0, 120.0, 200.0])
    sem = np.array([2e-4, 1e-4, 1e-4, 5e-5])
    loss = 0.01 + 2.0 / nbeta + sem * gen.standard_normal(4)
    res = llc_temperature_slope(nbeta, loss, n, sem)
    popt, _ = optimize.curve_fit(lambda t, a, b: a + b * t, n / nbeta, n * loss, sigma=n * sem)
    assert res.slope == pytest.approx(popt[1], rel=1e-6)
    assert abs(res.slope - 2.0) < 4 * res.slope_se
    with pytest.raises(ValueError, match="n must be"):
        llc_temperature_slope(nbeta, loss, 0)
    with pytest.raises(ValueError, match="2 distinct"):
        llc_temperature_slope([50.0, 50.0], [0.1, 0.1], n)


# ---------------------------------------------------------------------------- WBIC
def test_wbic_value_and_checks() -> None:
    n = 2000
    nb = n / math.log(n)
    loss = np.array([[0.10, 0.12, 0.14], [0.20, 0.22, 0.24], [9.0, 9.0, 9.0]])
    tr = synthetic_trace(loss, nbeta=nb, diverged_at=[-1, -1, 1])
    assert wbic(tr, n) == pytest.approx(n * 0.17, rel=1e-12)
    with pytest.raises(ValueError, match="n/log n"):
        wbic(tr, 10 * n)
    off = synthetic_trace(loss, nbeta=1.05 * nb)
    with pytest.raises(ValueError, match="n/log n"):
        wbic(off, n)
    assert np.isfinite(wbic(off, n, rtol=0.1))
    dead = synthetic_trace(loss, nbeta=nb, diverged_at=[0, 0, 0])
    with pytest.warns(UserWarning, match="diverged"):
        assert math.isnan(wbic(dead, n))


def test_trace_is_frozen_and_summary_rows_equal_llc() -> None:
    """Nothing is cached on a Trace (it is frozen); the one-pass summary's row of a setting
    equals llc() of that setting, and a trace with other values gives other numbers."""
    import dataclasses

    trace = known_trace()
    with pytest.raises(dataclasses.FrozenInstanceError):
        trace.complete = False  # type: ignore[misc]
    first = llc(trace)
    row = summarize(trace).row()
    assert row["llc_mean"] == pytest.approx(first.mean, rel=1e-12)
    assert row["llc_sem"] == pytest.approx(first.sem, rel=1e-12)
    assert row["ess"] == pytest.approx(first.ess, rel=1e-12)
    assert first.mean == pytest.approx(np.mean([0.1, 0.2, 0.3, 0.4]), abs=1e-9)
    shifted = dataclasses.replace(trace, loss=trace.loss + 1e-3)
    assert llc(shifted).mean == pytest.approx(first.mean + 50.0 * 1e-3, abs=1e-9)
    assert summarize(shifted).row()["llc_mean"] == pytest.approx(first.mean + 50.0 * 1e-3, abs=1e-9)
