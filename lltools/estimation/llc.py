"""LLC estimators: pure functions of a :class:`~lltools.sampling.trace.Trace` (primer §2).

All of them work on a host float64 copy of the trace (:meth:`Trace.cpu`) and exclude chains
that diverged (``diverged_at >= 0``).  The central quantity is the per-draw excess loss

    X_{c,t} = nβ_c · (L_{c,t} − L(w*_c))          shape (C, T_draws)

whose mean over draws is the per-chain estimate λ̂_c = nβ (mean_t L_t − L_init) and whose
pooled mean over the chains of one setting is λ̂ (the mean of the λ̂_c; every chain has the
same number of draws).

Functions
---------
llc_per_chain, llc, llc_running
    The estimate, its error bar and its running ("online") trace (the per-setting table of
    a whole trace is :func:`lltools.estimation.summary.summarize`).
llc_bias_reduced, llc_temperature_slope
    Multi-temperature estimates from several nβ (regressions over settings).
wbic
    The local WBIC, E_{β=1/log n}[n L_n(w)].
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lltools.estimation.select import host, setting_chains, settings_of, valid_chains
from lltools.estimation.stats import ess_bulk, mcse_from, pooled_sd
from lltools.sampling.trace import Trace


# ---------------------------------------------------------------------------- per chain
def excess_loss_draws(trace: Trace) -> np.ndarray:
    """X_{c,t} = nβ_c (L_{c,t} − L_init,c) over the draws, float64 array of shape (C, T_draws).

    Diverged chains keep their (NaN-padded) rows; callers select the valid ones.
    """
    h = host(trace)
    # torch (threaded) and in place: one (C, T) allocation, not two.
    x = torch.sub(h.draw_loss, h.loss_init[:, None]).mul_(h.params.nbeta[:, None])
    return x.numpy()


def per_chain_means(excess: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """λ̂_c = mean_t X_{c,t} from the excess-loss draws ``(C, T)``; NaN for invalid chains
    (``valid`` False) and for every chain while there are no draws.  Shape (C,)."""
    if excess.shape[1] == 0:
        return np.full(excess.shape[0], np.nan)
    lam = torch.from_numpy(excess).mean(dim=1).numpy()  # threaded, unlike numpy's
    lam[~valid] = np.nan
    return lam


def llc_per_chain(trace: Trace) -> Tensor:
    """Per-chain estimates λ̂_c = nβ_c · (mean_t L_{c,t} − L(w*_c)) (primer §2).

    Parameters
    ----------
    trace : Trace
        Losses ``(C, T)``; only the draws after burn-in are used.

    Returns
    -------
    Tensor, shape (C,), float64 on the CPU
        λ̂_c, NaN for chains that diverged (and for all chains while there are no draws).
    """
    h = host(trace)
    return torch.from_numpy(per_chain_means(excess_loss_draws(h), valid_chains(h)))


@dataclass(frozen=True)
class LLCResult:
    """λ̂ for one hyperparameter setting.

    Attributes
    ----------
    mean : float
        λ̂ = mean over valid chains of λ̂_c.
    std : float
        Standard deviation of λ̂_c across valid chains (ddof=1; NaN with < 2 valid chains).
    sem : float
        Monte Carlo standard error of ``mean`` that accounts for autocorrelation:
        sd(X) / √ESS_bulk(X) with X_{c,t} = nβ (L_{c,t} − L(w*)) the valid chains' draws,
        i.e. nβ × MCSE of the pooled mean loss (see :func:`llc`).
    per_chain : np.ndarray, shape (num_chains,)
        λ̂_c of every chain of the setting in trace order, NaN for diverged chains.
    ess : float
        Bulk effective sample size of X (pooled over valid chains).
    num_chains, num_valid : int
        Chains in the setting, and those that never diverged.
    """

    mean: float
    std: float
    sem: float
    per_chain: np.ndarray
    ess: float
    num_chains: int
    num_valid: int


def llc(trace: Trace, setting: int | None = None) -> LLCResult:
    """λ̂ with its spread and autocorrelation-aware standard error (primer §2).

    λ̂ = mean_c λ̂_c over the valid chains of the setting.  The standard error ``sem`` is the
    Monte Carlo standard error of the pooled mean of X_{c,t} = nβ_c (L_{c,t} − L(w*_c)):

        sem = sd(X) / √ESS_bulk(X)

    where sd is over all valid draws and ESS_bulk is arviz-stats' rank-normalised bulk ESS
    of the (chains, draws) array (:func:`lltools.estimation.stats.mcse_mean`).  When all chains
    share w* and nβ this is exactly nβ × MCSE of the pooled mean loss.  It reflects sampling
    noise only, not the discretisation bias of SGLD or a finite-nβ bias.

    Parameters
    ----------
    trace : Trace
    setting : int, optional
        Which setting of a sweep (``trace.setting_index``); required when the trace holds
        several settings.

    Returns
    -------
    LLCResult
        All-NaN numbers (``num_valid == 0``) when every chain diverged.

    Raises
    ------
    ValueError
        If the trace holds several settings and ``setting`` is None, or ``setting`` is unknown.
    """
    h = host(trace)
    if setting is None:
        ids = settings_of(h)
        setting = ids[0] if len(ids) == 1 else None
    chains = setting_chains(h, setting)
    valid = valid_chains(h)
    excess = excess_loss_draws(h)
    per_chain = per_chain_means(excess, valid)[chains]
    ok = valid[chains]
    whole = ok.all() and chains.size == excess.shape[0]
    x = excess if whole else excess[chains[ok]]  # no copy of a (C, T) array when every chain counts
    num_valid = int(ok.sum())
    nan = float("nan")
    ess = float(ess_bulk(x)) if num_valid else nan
    return LLCResult(
        mean=float(per_chain[ok].mean()) if num_valid else nan,
        std=float(per_chain[ok].std(ddof=1)) if num_valid >= 2 else nan,
        sem=float(mcse_from(pooled_sd(x), ess)) if num_valid else nan,
        per_chain=per_chain,
        ess=ess,
        num_chains=int(chains.size),
        num_valid=num_valid,
    )


def llc_running(trace: Trace) -> Tensor:
    """Running ("online") estimate λ̂_c(t) = nβ_c (mean_{s≤t} L_{c,s} − L(w*_c)) (primer §2).

    The LLC trace that should flatten once a chain has converged; its last column equals
    :func:`llc_per_chain`.

    Returns
    -------
    Tensor, shape (C, T_draws), float64 on the CPU
        NaN rows for diverged chains.
    """
    h = host(trace)
    x = excess_loss_draws(h)
    counts = np.arange(1, x.shape[1] + 1, dtype=np.float64)
    running = np.cumsum(x, axis=1) / counts
    running[~valid_chains(h)] = np.nan
    return torch.from_numpy(running)


# ---------------------------------------------------------------------------- across temperatures
@dataclass(frozen=True)
class LineFit:
    """A weighted least-squares line y = intercept + slope·x with standard errors."""

    intercept: float
    intercept_se: float
    slope: float
    slope_se: float
    r2: float


@dataclass(frozen=True)
class BiasReducedResult(LineFit):
    """λ̂_j ≈ λ − (m − 1)/log nβ_j: ``intercept`` is the bias-reduced λ, ``slope`` ≈ −(m − 1)."""


@dataclass(frozen=True)
class SlopeResult(LineFit):
    """n·E_{1/T}[L] ≈ n L(w0) + λ T: ``slope`` is λ, ``intercept`` estimates n L(w0)."""


def _as_vector(name: str, value: Any, length: int | None = None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name} must have {length} entries, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


def _wls(x: np.ndarray, y: np.ndarray, sigma: np.ndarray | None) -> tuple[float, ...]:
    """Weighted least squares of y on [1, x]: (intercept, intercept_se, slope, slope_se, r2).

    Weights w = 1/σ² (or 1).  Standard errors: with σ given, cov = (XᵀWX)⁻¹ · max(1, χ²/dof)
    (the known errors, inflated when the points scatter more than they allow); without σ,
    the ordinary cov = s²(XᵀX)⁻¹ with s² = RSS/dof.  With dof = k − 2 = 0 the line goes
    through both points and the standard errors are NaN.
    """
    w = np.ones_like(y) if sigma is None else 1.0 / sigma**2
    design = np.column_stack((np.ones_like(x), x))
    gram = design.T @ (w[:, None] * design)
    coef = np.linalg.solve(gram, design.T @ (w * y))
    resid = y - design @ coef
    chi2 = float((w * resid**2).sum())
    dof = len(y) - 2
    if dof > 0:
        scale = max(1.0, chi2 / dof) if sigma is not None else chi2 / dof
        se = np.sqrt(np.diag(np.linalg.inv(gram)) * scale)
    else:
        se = np.array([np.nan, np.nan])
    y_bar = float((w * y).sum() / w.sum())
    ss_tot = float((w * (y - y_bar) ** 2).sum())
    r2 = 1.0 - chi2 / ss_tot if ss_tot > 0 else (1.0 if chi2 == 0 else float("nan"))
    return float(coef[0]), float(se[0]), float(coef[1]), float(se[1]), float(r2)


def _check_regression(nbeta: np.ndarray, sigma: np.ndarray | None, name: str) -> None:
    if len(np.unique(nbeta)) < 2:
        raise ValueError("need at least 2 distinct nβ values for a regression across temperatures")
    if sigma is not None and (sigma <= 0).any():
        raise ValueError(f"{name} must be > 0 (omit it for an unweighted fit)")


def llc_bias_reduced(
    nbeta: Any, llc_mean: Any, llc_sem: Any | None = None
) -> BiasReducedResult:
    """Bias-reduced λ from several temperatures (primer §2).

    At inverse temperature nβ the estimate has the bias
    nβ (E_β[L] − L*) ≈ λ − (m − 1)/log(nβ), m the multiplicity.  Fit

        λ̂_j = a + b / log(nβ_j)

    by weighted least squares (weights 1/sem_j² when ``llc_sem`` is given) and report the
    intercept a as the bias-reduced λ (b ≈ −(m − 1)).

    Parameters
    ----------
    nbeta : array-like, shape (k,)
        nβ_j > 1 (so that log nβ_j > 0); at least 2 distinct values.
    llc_mean : array-like, shape (k,)
        λ̂_j at each nβ_j (e.g. ``summarize(trace).table["llc_mean"]``).
    llc_sem : array-like, shape (k,), optional
        Their standard errors (> 0).

    Returns
    -------
    BiasReducedResult
        ``intercept`` (bias-reduced λ), ``intercept_se``, ``slope``, ``slope_se``, ``r2``;
        the standard errors need ≥ 3 points and are NaN with 2.

    Raises
    ------
    ValueError
        Fewer than 2 distinct nβ, nβ ≤ 1, mismatched lengths, non-finite or non-positive sem.
    """
    nb = _as_vector("nbeta", nbeta)
    y = _as_vector("llc_mean", llc_mean, len(nb))
    sigma = None if llc_sem is None else _as_vector("llc_sem", llc_sem, len(nb))
    if (nb <= 1).any():
        raise ValueError("nbeta must be > 1 for the 1/log(nβ) regression")
    _check_regression(nb, sigma, "llc_sem")
    return BiasReducedResult(*_wls(1.0 / np.log(nb), y, sigma))


def llc_temperature_slope(
    nbeta: Any, mean_loss: Any, n: float, mean_loss_sem: Any | None = None
) -> SlopeResult:
    """λ as the slope of the mean total loss against temperature (primer §2, Murfet et al.).

    Convention: the inverse temperature is β = nβ/n, so the temperature is T_j = n / nβ_j,
    and the mean total loss is y_j = n · E_{β_j}[L_n] (``n * mean_loss_j``).  Since
    λ̂ = nβ (E[L] − L(w0)),

        n · E_{1/T}[L_n] ≈ n L(w0) + λ T,

    so a weighted least-squares line y = a + λ T gives ``slope`` = λ and ``intercept`` =
    n L(w0).  Unlike :func:`llc`, this never uses L(w0) itself.

    Parameters
    ----------
    nbeta : array-like, shape (k,)
        nβ_j > 0, at least 2 distinct values.
    mean_loss : array-like, shape (k,)
        E_{β_j}[L_n] estimated by the mean draw loss at each nβ_j.
    n : float
        Dataset size (for potentials, any positive scale; the slope does not depend on it).
    mean_loss_sem : array-like, shape (k,), optional
        Standard errors of ``mean_loss`` (weights 1/(n·sem)²).

    Returns
    -------
    SlopeResult
        ``slope`` (λ), ``slope_se``, ``intercept`` (n L(w0)), ``intercept_se``, ``r2``.
    """
    if not n > 0:
        raise ValueError("n must be > 0")
    nb = _as_vector("nbeta", nbeta)
    loss = _as_vector("mean_loss", mean_loss, len(nb))
    sigma = None if mean_loss_sem is None else n * _as_vector("mean_loss_sem", mean_loss_sem, len(nb))
    if (nb <= 0).any():
        raise ValueError("nbeta must be > 0")
    _check_regression(nb, sigma, "mean_loss_sem")
    return SlopeResult(*_wls(n / nb, n * loss, sigma))


# ---------------------------------------------------------------------------- WBIC
def wbic(trace: Trace, n: int, setting: int | None = None, *, rtol: float = 0.01) -> float:
    """Local WBIC (Watanabe 2013): E_{β=1/log n}[n L_n(w)] from the draws (primer §2).

    Estimated as n × the mean draw loss over the valid chains of the setting.  It is only
    WBIC at the WBIC temperature nβ = n / log n, so the trace's nβ must match it; with
    γ > 0 it is the *local* WBIC of the basin around w*.  For data targets the draws are
    minibatch losses L_B, unbiased for L_n at each position.

    Parameters
    ----------
    trace : Trace
    n : int
        Dataset size (≥ 2).
    setting : int, optional
        Required when the trace holds several settings.
    rtol : float
        Allowed relative difference between the chains' nβ and n/log n.

    Returns
    -------
    float
        NaN (with a warning) when every chain diverged.

    Raises
    ------
    ValueError
        If nβ differs from n/log n by more than ``rtol`` (relative).
    """
    if n < 2:
        raise ValueError("n must be >= 2")
    h = host(trace)
    chains = setting_chains(h, setting)
    target_nbeta = n / math.log(n)
    nbeta = h.params.nbeta.numpy()[chains]
    worst = float(np.max(np.abs(nbeta / target_nbeta - 1.0)))
    if worst > rtol:
        raise ValueError(
            f"WBIC needs nβ = n/log n = {target_nbeta:.6g} for n = {n}, but the chains have "
            f"nβ = {float(nbeta[0]):.6g}; rerun with nbeta = n / log(n)"
        )
    chains = chains[valid_chains(h)[chains]]
    if chains.size == 0 or h.draw_loss.shape[1] == 0:
        warnings.warn("no valid draws (all chains diverged?): WBIC is NaN", stacklevel=2)
        return float("nan")
    return float(n * h.draw_loss.numpy()[chains].mean())


__all__ = [
    "BiasReducedResult",
    "LLCResult",
    "LineFit",
    "SlopeResult",
    "excess_loss_draws",
    "llc",
    "llc_bias_reduced",
    "llc_per_chain",
    "llc_running",
    "llc_temperature_slope",
    "per_chain_means",
    "wbic",
]
