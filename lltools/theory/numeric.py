"""Numerical references for λ: the Jacobian rank and volume scaling (primer §4).

- :func:`jacobian_rank_llc` — λ = rank(J)/2 for minimally singular models.
- :func:`volume_scaling` — V(ε) = Vol{L − L(w*) < ε} ∝ ε^λ, slope of log V vs log ε.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

__all__ = ["JacobianRankResult", "VolumeScaling", "jacobian_rank_llc", "volume_scaling"]


# ============================================================================ rank of the Jacobian
@dataclass(frozen=True)
class JacobianRankResult:
    """λ = rank(J)/2 at w* for a minimally singular model (primer §4).

    Attributes
    ----------
    llc : float
        rank / 2.
    rank : int
        Numerical rank of J = ∂(outputs)/∂w at w*.
    dim : int
        Number of parameters d (a regular model has rank = d, λ = d/2).
    n_outputs : int
        Number of scalar outputs (rows of J).
    singular_values : numpy.ndarray
        Singular values of J, descending.
    tol : float
        The threshold: singular values above it count toward the rank.
    dtype : str
        The floating type J was computed in.
    """

    llc: float
    rank: int
    dim: int
    n_outputs: int
    singular_values: np.ndarray = field(repr=False)
    tol: float
    dtype: str


def jacobian_rank_llc(
    target: Any,
    *,
    rtol: float | None = None,
    max_outputs: int = 200_000,
    max_entries: int = 20_000_000,
) -> JacobianRankResult:
    """λ = rank(J)/2, with J the Jacobian of the model's outputs on the data at w*.

    ``target`` must provide ``target.w_star`` (d,) and ``target.outputs(w)`` mapping a
    parameter vector of shape (d,) to the model's outputs on the full dataset (any
    shape).  The target is moved to float64 with ``target.to(dtype=torch.float64)`` when
    it has that method.  J (n_outputs × d) is computed with ``torch.func.jacrev`` in
    chunks of outputs, falling back to ``torch.autograd.functional.jacobian``.

    The rank counts singular values σ_i > rtol·σ_max, with the default
    rtol = max(n_outputs, d)·ε_machine (NumPy's ``matrix_rank`` convention, with ε of the
    target's own weights' dtype, so float32 rounding of stored weights is not counted).

    Raises
    ------
    TypeError
        If the target has no ``outputs`` method.
    ValueError
        If n_outputs > ``max_outputs`` or n_outputs·d > ``max_entries`` (J would be too
        large to form and decompose).
    """
    if not callable(getattr(target, "outputs", None)):
        raise TypeError(
            "jacobian_rank_llc needs target.outputs(w) -> the model's outputs on the data at w (d,)"
        )
    t64 = target.to(dtype=torch.float64) if callable(getattr(target, "to", None)) else target
    w = t64.w_star.detach().to(torch.float64)
    d = int(w.numel())
    with torch.no_grad():
        n_out = int(t64.outputs(w).numel())
    if n_out > max_outputs or n_out * d > max_entries:
        raise ValueError(
            f"the Jacobian would be {n_out} outputs × {d} parameters = {n_out * d:,} entries "
            f"(limits: {max_outputs:,} outputs, {max_entries:,} entries); use fewer data points"
        )
    jac = _jacobian(lambda v: t64.outputs(v).reshape(-1), w, n_out)
    sv = torch.linalg.svdvals(jac).cpu().numpy() if jac.numel() else np.zeros(0)
    # The weights' own precision bounds what counts as a non-zero singular value: float32
    # rounding of stored weights must not be counted as rank.
    source_dtype = getattr(getattr(target, "w_star", None), "dtype", jac.dtype)
    eps = float(torch.finfo(source_dtype if source_dtype.is_floating_point else jac.dtype).eps)
    rel = rtol if rtol is not None else max(n_out, d) * eps
    tol = float(rel * sv[0]) if sv.size else 0.0
    rank = int((sv > tol).sum()) if sv.size and sv[0] > 0 else 0
    return JacobianRankResult(
        llc=rank / 2, rank=rank, dim=d, n_outputs=n_out, singular_values=sv, tol=tol, dtype=str(jac.dtype)
    )


def _jacobian(fn: Callable[[Tensor], Tensor], w: Tensor, n_out: int) -> Tensor:
    """J (n_out, d) by reverse mode, vectorised over output chunks (bounded memory)."""
    chunk = max(1, min(n_out, 4_000_000 // max(w.numel(), 1)))
    try:
        jac = torch.func.jacrev(fn, chunk_size=chunk)(w)
    except (RuntimeError, NotImplementedError):  # e.g. ops without vmap support
        jac = torch.autograd.functional.jacobian(fn, w)
    return jac.reshape(n_out, w.numel()).detach()


# ============================================================================ volume scaling
@dataclass(frozen=True)
class VolumeScaling:
    """Model-free λ from V(ε) = Vol{w in box : L(w) − L(w*) < ε} ≈ c·ε^λ (primer §4).

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``epsilon``, ``fraction`` (V(ε) as a fraction of the box), ``count`` and
        ``in_fit`` (whether the row was used for the slope).
    llc : float
        Slope of log V against log ε over the fitted rows (NaN if fewer than 3).
    stderr : float
        Its standard error from 10 independent batches of the samples (batch means).
    num_samples : int
    radius : float
    """

    table: pd.DataFrame
    llc: float
    stderr: float
    num_samples: int
    radius: float


def volume_scaling(
    fn: Callable[[Tensor], Tensor],
    w_star: Tensor | Sequence[float],
    *,
    radius: float = 1.0,
    num_samples: int = 200_000,
    eps_grid: Sequence[float] | np.ndarray | None = None,
    seed: int = 0,
    min_count: int = 200,
    max_fraction: float = 0.05,
) -> VolumeScaling:
    """Estimate λ as the small-ε slope of log V(ε) against log ε (primer §4).

    Draw w uniformly in the box w* + [−radius, radius]^d, compute ΔL = L(w) − L(w*) and
    V(ε) = fraction with ΔL < ε.  The slope is an ordinary least-squares fit over the rows
    with at least ``min_count`` samples below ε (enough to estimate V) and V(ε) ≤
    ``max_fraction`` (small ε, where the power law holds).  A multiplicity m > 1 adds a
    (−log ε)^(m−1) factor that biases the slope in any finite window.

    Parameters
    ----------
    fn : callable
        Batched potential, ``(C, d)`` -> ``(C,)``.
    w_star : Tensor or sequence, shape (d,)
    radius : float
        Half-width of the box.
    num_samples : int
    eps_grid : array, optional
        The ε values; default 40 log-spaced values between the 20th smallest ΔL and the
        median ΔL.
    seed : int
    min_count, max_fraction : int, float
        Fit-window rules (see above).
    """
    centre = torch.as_tensor(w_star, dtype=torch.float64).reshape(-1)
    d = int(centre.numel())
    if num_samples < 1000:
        raise ValueError("num_samples must be at least 1000")
    gen = torch.Generator().manual_seed(int(seed))
    delta = torch.empty(num_samples, dtype=torch.float64)
    with torch.no_grad():
        base = float(fn(centre[None, :]).reshape(-1)[0])
        for start in range(0, num_samples, 50_000):
            stop = min(start + 50_000, num_samples)
            u = torch.rand(stop - start, d, generator=gen, dtype=torch.float64)
            delta[start:stop] = fn(centre + radius * (2.0 * u - 1.0)).reshape(-1) - base
    dl = delta.numpy()
    dl = np.where(np.isnan(dl), np.inf, dl)
    if eps_grid is None:
        ordered = np.sort(dl[dl > 0])
        if len(ordered) < 40:
            raise ValueError("too few samples with L > L(w*) to build an ε grid")
        eps = np.geomspace(ordered[min(20, len(ordered) - 1)], ordered[len(ordered) // 2], 40)
    else:
        eps = np.sort(np.asarray(eps_grid, dtype=float))
    counts = np.searchsorted(np.sort(dl), eps, side="left")
    fraction = counts / num_samples
    in_fit = (counts >= min_count) & (fraction <= max_fraction) & (eps > 0)
    table = pd.DataFrame({"epsilon": eps, "fraction": fraction, "count": counts, "in_fit": in_fit})
    if in_fit.sum() < 3:
        return VolumeScaling(table, float("nan"), float("nan"), num_samples, float(radius))
    slope = _loglog_slope(eps[in_fit], fraction[in_fit])
    batches = np.array_split(dl, 10)
    slopes = []
    for b in batches:
        fb = np.searchsorted(np.sort(b), eps[in_fit], side="left") / len(b)
        ok = fb > 0
        if ok.sum() >= 3:
            slopes.append(_loglog_slope(eps[in_fit][ok], fb[ok]))
    stderr = float(np.std(slopes, ddof=1) / math.sqrt(len(slopes))) if len(slopes) >= 3 else float("nan")
    return VolumeScaling(table, slope, stderr, num_samples, float(radius))


def _loglog_slope(eps: np.ndarray, frac: np.ndarray) -> float:
    x, y = np.log(eps), np.log(frac)
    return float(np.polyfit(x, y, 1)[0])
