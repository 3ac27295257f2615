"""Array statistics over ``(…, chain, draw)`` axes: R-hat, bulk ESS, MCSE (primer §3).

The bottom of :mod:`lltools.estimation`: plain arrays in, numbers out, no traces.  The
functions are thin wrappers over the array interface of arviz-stats
(``arviz_stats.base.array_stats``), which implements the rank-normalised split R-hat and
bulk ESS of Vehtari et al. (2021); nothing is re-derived here.  Like arviz-stats they batch
over leading axes: an array of shape ``(S, C, T)`` (S settings of C chains of T draws)
gives ``S`` values in one call, a ``(C, T)`` array one float.

Rank normalisation sorts every draw.  With more than ``MAX_DIAGNOSTIC_CHAINS`` chains the
statistics are computed on an evenly spaced subset of them (:func:`chain_subset`); ESS is
then scaled by C / C_sub (chains are independent, so ESS adds up over chains).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from arviz_stats.base import array_stats

#: R-hat and ESS of more chains than this are computed on an evenly spaced subset of them ...
MAX_DIAGNOSTIC_CHAINS = 4096
#: ... of at most this many draws per batch entry (but never fewer than MIN_DIAGNOSTIC_CHAINS chains).
MAX_DIAGNOSTIC_VALUES = 1_000_000
MIN_DIAGNOSTIC_CHAINS = 256

RHAT_METHODS = ("rank", "split", "folded", "z_scale", "identity")
MCSE_METHODS = ("bulk", "mean")


def as_draws(draws: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float64 array of shape ``(…, C, T)``; a 1-D input is one chain ``(1, T)``.

    Raises
    ------
    ValueError
        For a 0-D input.
    """
    if isinstance(draws, torch.Tensor):
        draws = draws.detach().cpu().double().numpy()
    ary = np.asarray(draws, dtype=np.float64)
    if ary.ndim == 1:
        ary = ary[None, :]
    if ary.ndim < 2:
        raise ValueError(f"draws must have shape (..., chains, draws), got {ary.shape}")
    return ary


def subset_limit(num_draws: int) -> int:
    """How many chains :func:`chain_subset` keeps for chains of ``num_draws`` draws."""
    by_values = MAX_DIAGNOSTIC_VALUES // max(1, num_draws)
    return min(MAX_DIAGNOSTIC_CHAINS, max(MIN_DIAGNOSTIC_CHAINS, by_values))


def chain_subset(ary: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, float]:
    """At most ``limit`` evenly spaced chains of a ``(…, C, T)`` array, and the factor C / C_sub.

    Rank normalisation sorts all C·T draws; at 65 536 chains that is seconds per call, while
    R-hat and bulk ESS of independent, identically run chains are estimated as well from a
    few thousand of them.  The default limit is :func:`subset_limit` (``MAX_DIAGNOSTIC_CHAINS``
    chains, ``MAX_DIAGNOSTIC_VALUES`` draws, at least ``MIN_DIAGNOSTIC_CHAINS`` chains).  The
    subset is deterministic (the same rows every time) and the same for every batch entry.
    """
    num_chains = ary.shape[-2]
    if limit is None:
        limit = subset_limit(ary.shape[-1])
    if num_chains <= limit:
        return ary, 1.0
    rows = np.unique(np.linspace(0, num_chains - 1, limit).round().astype(np.int64))
    return ary[..., rows, :], num_chains / rows.size


def _check_method(method: str, valid: tuple[str, ...]) -> str:
    if method not in valid:
        raise ValueError(f"unknown method {method!r}; valid methods are {', '.join(valid)}")
    return method


def _scalar_or_array(values: np.ndarray, ary: np.ndarray) -> float | np.ndarray:
    return float(values) if ary.ndim == 2 else np.asarray(values, dtype=np.float64)


def _finite_batches(ary: np.ndarray) -> np.ndarray:
    """Boolean of the batch shape ``ary.shape[:-2]``: the entries without NaN/inf."""
    return np.isfinite(ary).all(axis=(-2, -1))


def _batched(ary: np.ndarray, compute, *, min_chains: int) -> float | np.ndarray:
    """``compute(sub)`` over the finite batch entries of ``ary``; NaN elsewhere or when the
    chains are too few (< ``min_chains``) or too short (< 4 draws)."""
    batch_shape = ary.shape[:-2]
    out = np.full(batch_shape, np.nan)
    if ary.shape[-2] < min_chains or ary.shape[-1] < 4:
        return _scalar_or_array(out, ary)
    finite = _finite_batches(ary)
    with np.errstate(divide="ignore", invalid="ignore"):  # constant draws: R-hat is 0/0 = NaN
        if finite.all():
            out = np.asarray(compute(ary), dtype=np.float64).reshape(batch_shape)
        elif finite.any():
            out[finite] = np.asarray(compute(ary[finite]), dtype=np.float64).reshape(-1)
    return _scalar_or_array(out, ary)


def rhat(draws: np.ndarray | torch.Tensor, *, method: str = "rank") -> float | np.ndarray:
    """Potential scale reduction factor R-hat of draws of shape ``(…, C, T)``.

    The default ``method="rank"`` is the rank-normalised split R-hat of Vehtari et al.
    (2021): split every chain in half (2C chains of T//2 draws), replace the draws by
    normal scores z = Φ⁻¹((r − 3/8)/(N + 1/4)) of their pooled ranks r, compute the
    classic R-hat = √((B/W + T' − 1)/T') (B: T'× variance of chain means, W: mean
    within-chain variance), once on z and once on the folded draws |x − median|, and
    return the larger.  Computed by ``arviz_stats.base.array_stats.rhat``; with more than
    ``MAX_DIAGNOSTIC_CHAINS`` chains, on an evenly spaced subset of them (:func:`chain_subset`).

    Parameters
    ----------
    draws : array or Tensor, shape (…, C, T)
        Draws per chain (a 1-D array is one chain); leading axes are batch axes.
    method : {"rank", "split", "folded", "z_scale", "identity"}
        arviz-stats' variants; "rank" is the recommended one.

    Returns
    -------
    float, or ndarray of shape (…) for batched input
        R-hat (≈1 when the chains agree), NaN with fewer than 2 chains or 4 draws, or for
        batch entries that contain NaN.
    """
    _check_method(method, RHAT_METHODS)
    ary = as_draws(draws)
    sub, _ = chain_subset(ary)
    return _batched(sub, lambda a: array_stats.rhat(a, method=method), min_chains=2)


def ess_bulk(draws: np.ndarray | torch.Tensor) -> float | np.ndarray:
    """Bulk effective sample size of draws of shape ``(…, C, T)`` (Vehtari et al. 2021).

    Split chains, rank-normalise as in :func:`rhat`, then Geyer's initial-positive-sequence
    estimate ESS = C·T / (1 + 2 Σ_t ρ̂_t) of the autocorrelations ρ̂_t pooled over chains.
    Computed by ``arviz_stats.base.array_stats.ess(method="bulk")``.  With more than
    ``MAX_DIAGNOSTIC_CHAINS`` chains it is computed on an evenly spaced subset of C_sub chains
    and scaled by C / C_sub.

    Returns
    -------
    float, or ndarray of shape (…) for batched input
        ESS in draws (can slightly exceed C·T for anticorrelated draws); NaN with fewer than
        4 draws or non-finite values.
    """
    ary = as_draws(draws)
    sub, scale = chain_subset(ary)
    out = _batched(sub, lambda a: array_stats.ess(a, method="bulk"), min_chains=1)
    return scale * out


def pooled_sd(draws: np.ndarray | torch.Tensor) -> float | np.ndarray:
    """Standard deviation (ddof=1) of all C·T draws of each batch entry of ``(…, C, T)``.

    torch's reduction is threaded and makes no copy of a contiguous input, unlike numpy's.
    """
    ary = as_draws(draws)
    flat = torch.from_numpy(ary).reshape(*ary.shape[:-2], -1)
    if flat.shape[-1] < 2:
        return _scalar_or_array(np.full(ary.shape[:-2], np.nan), ary)
    return _scalar_or_array(flat.std(dim=-1).numpy(), ary)


def mcse_mean(draws: np.ndarray | torch.Tensor, *, method: str = "bulk") -> float | np.ndarray:
    """Monte Carlo standard error of the pooled mean of draws of shape ``(…, C, T)``.

    MCSE = sd / √ESS, with sd the standard deviation of all C·T draws (ddof=1) and ESS

    - ``method="bulk"`` (default, the convention of :func:`lltools.estimation.llc.llc`): the
      rank-normalised bulk ESS of :func:`ess_bulk`, robust to heavy tails;
    - ``method="mean"``: arviz-stats' ``mcse(method="mean")``, whose ESS is computed on the
      split draws without rank normalisation.

    The two agree closely for near-Gaussian draws.  NaN with fewer than 4 draws or
    non-finite values.
    """
    _check_method(method, MCSE_METHODS)
    ary = as_draws(draws)
    if method == "mean":
        return _batched(ary, lambda a: array_stats.mcse(a, method="mean"), min_chains=1)
    return mcse_from(pooled_sd(ary), ess_bulk(ary))


def mcse_from(sd: float | np.ndarray, ess: float | np.ndarray) -> float | np.ndarray:
    """sd / √ESS (NaN where ESS is NaN or not positive)."""
    if np.ndim(sd) == 0 and np.ndim(ess) == 0:
        return sd / math.sqrt(ess) if ess > 0 else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.asarray(ess) > 0, np.asarray(sd) / np.sqrt(np.asarray(ess)), np.nan)


__all__ = [
    "MAX_DIAGNOSTIC_CHAINS",
    "MAX_DIAGNOSTIC_VALUES",
    "MCSE_METHODS",
    "MIN_DIAGNOSTIC_CHAINS",
    "RHAT_METHODS",
    "as_draws",
    "chain_subset",
    "ess_bulk",
    "mcse_from",
    "mcse_mean",
    "pooled_sd",
    "rhat",
    "subset_limit",
]
