"""Training-dynamics measures reported beside λ̂ (primer §5): grokking severity, geometric complexity."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import jacrev, vmap

__all__ = ["geometric_complexity", "grokking_severity"]


def _as_float_array(values: Sequence[float] | np.ndarray | Tensor) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def grokking_severity(
    steps: Sequence[float] | np.ndarray | Tensor,
    train_acc: Sequence[float] | np.ndarray | Tensor,
    val_acc: Sequence[float] | np.ndarray | Tensor,
    threshold: float = 0.95,
) -> float:
    """Grokking severity measure (seed 003 §6.4; primer §5).

        GSM = 1{a_V(T) ≥ threshold} / T · Σ_{x=1}^{T} |a_T(x) − a_V(x)|

    Parameters
    ----------
    steps : array-like, shape (L,)
        Strictly increasing, non-negative training times (epochs or optimiser steps) at
        which the accuracies were logged.
    train_acc, val_acc : array-like, shape (L,)
        Training and validation accuracy at those times.
    threshold : float, optional
        Validation accuracy that counts as "generalised" at the end (default 0.95).

    Returns
    -------
    float
        0 when the final validation accuracy is below ``threshold``; otherwise the
        time-average of the train/validation accuracy gap over [0, T], between 0 and 1.

    Notes
    -----
    In the paper x runs over every training epoch 1..T (T = final epoch) and the sum is
    divided by T.  Logs are usually sparser (here: checkpoints), so each logged value
    stands for the interval since the previous log — a right-endpoint Riemann sum over
    [0, T] with T = ``steps[-1]``:

        GSM = 1{a_V(T) ≥ thr} / T · Σ_i (t_i − t_{i−1}) |a_T(t_i) − a_V(t_i)|,   t_{−1} = 0.

    With one log per epoch (t_i = 1, …, T) this is exactly the paper's formula; with
    evenly spaced logs it is the mean gap over the logged rows; a value logged at t = 0
    gets zero weight, as x = 0 is not in the paper's sum.  Because it is a time-average,
    GSM is in units of "fraction of training spent memorised but not generalised" and
    depends on how long training continues after grokking.
    """
    t, a_tr, a_va = (_as_float_array(v) for v in (steps, train_acc, val_acc))
    if not (t.size == a_tr.size == a_va.size) or t.size == 0:
        raise ValueError(
            f"steps, train_acc and val_acc must be non-empty and of equal length, got "
            f"{t.size}, {a_tr.size}, {a_va.size}"
        )
    if not (np.isfinite(t).all() and np.isfinite(a_tr).all() and np.isfinite(a_va).all()):
        raise ValueError("steps and accuracies must be finite")
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ValueError("steps must be non-negative and strictly increasing")
    total = t[-1]
    if total <= 0:
        raise ValueError("the final step T must be positive")
    if a_va[-1] < threshold:
        return 0.0
    widths = np.diff(t, prepend=0.0)
    return float(np.sum(widths * np.abs(a_tr - a_va)) / total)


# ---------------------------------------------------------------------------- geometric complexity
def geometric_complexity(
    module_or_fn: nn.Module | Callable[[Tensor], Tensor],
    inputs: Tensor,
    *,
    batch_size: int = 1024,
) -> float:
    """Geometric complexity (Dherin et al. 2022): GC = (1/|D|) Σ_x ‖∇_x f(x)‖²_F.

    Parameters
    ----------
    module_or_fn : nn.Module or callable
        Maps a batch of inputs (B, ...) to outputs (B, ...); any module works.  It is
        called on batches of one sample, so it must not mix samples (no batch norm in
        training mode).
    inputs : Tensor, shape (N, ...)
        The dataset D (inputs only).
    batch_size : int, optional
        Samples per vectorised Jacobian evaluation (memory: batch × out × in values).

    Returns
    -------
    float
        Mean over samples of the squared Frobenius norm of the input-output Jacobian.

    Notes
    -----
    Computed with ``torch.func.vmap(torch.func.jacrev(...))``; the module's parameters are
    constants (no graph is kept).  For a linear map f(x) = Ax, GC = ‖A‖²_F.
    """
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError("inputs must have a non-empty leading sample dimension")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")

    def single(x: Tensor) -> Tensor:
        return module_or_fn(x.unsqueeze(0)).squeeze(0)

    jac_fn = vmap(jacrev(single))
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, inputs.shape[0], batch_size):
            chunk = inputs[start : start + batch_size]
            jac = jac_fn(chunk)
            total += jac.reshape(chunk.shape[0], -1).double().square().sum()
    return float(total.item() / inputs.shape[0])
