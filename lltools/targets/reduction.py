"""An exactly equivalent small dataset for models whose output is linear in the input.

For a bias-free chain of ``nn.Linear`` layers, f(x; w) = A(w)·x, and the MSE loss
(ℓ = ½‖y − f(x)‖², mean over the n samples) depends on the data only through the
sufficient statistics S_xx = XᵀX/n (p×p), S_xy = XᵀY/n (p×q) and tr S_yy = ‖Y‖²_F/n:

    L_n(w) = ½ [ tr(A S_xx Aᵀ) − 2 tr(A S_xy) + tr S_yy ].

:func:`reduced_target` builds m = p + 1 rows with the same three statistics —
X̃ = √m·S_xx^{1/2} (p rows) and one row x̃ = 0, Ỹ = √m·(S_xx^{1/2})⁺ S_xy and a last ỹ
carrying the rest of tr S_yy (a row with x̃ = 0 contributes ‖ỹ‖² whatever A is) — so the
loss, its gradient and its Hessian are those of the full data for *every* w (up to
float64 rounding).  It is what makes a 101 × 101 plane of a 12 500-parameter deep linear
network on 20 000 samples cheap (101 rows instead of 20 000).  Any other model (a
nonlinearity, a bias, another loss) is returned unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from lltools.targets.base import Target
from lltools.targets.networks import NetworkTarget, mse_per_sample

__all__ = ["is_linear_in_input", "reduced_target"]


def is_linear_in_input(target: Target) -> bool:
    """Whether ``target`` is a bias-free chain of ``nn.Linear`` with the MSE loss ½‖y − f(x)‖²
    on 2-D float inputs and targets (then :func:`reduced_target` is exact)."""
    if not isinstance(target, NetworkTarget):
        return False
    module = target.module
    layers = list(module) if isinstance(module, nn.Sequential) else [module]
    if not layers or not all(isinstance(m, nn.Linear) and m.bias is None for m in layers):
        return False
    x, y = target.inputs, target.targets
    if not (x.ndim == 2 and y.ndim == 2 and x.is_floating_point() and y.is_floating_point()):
        return False
    return _is_plain_mse(target)


def _is_plain_mse(target: NetworkTarget) -> bool:
    """Whether the loss is ½‖y − f(x)‖² on (x, y) data: given by name, or — for a model
    folder's own ``loss`` function (opaque) — checked numerically: its per-sample losses on
    *every* row equal ½‖y − f(x)‖² at w* and at a random point."""
    if target.per_sample_loss is mse_per_sample:
        return True
    if (getattr(target, "evaluate", None) is not None or target.fields.keys is not None
            or len(target.fields.tensors) != 2):
        return False
    x, y = target.fields.tensors
    if x.ndim != 2 or y.ndim != 2 or not (x.is_floating_point() and y.is_floating_point()):
        return False
    gen = torch.Generator(device="cpu").manual_seed(0)
    noise = torch.randn(target.dim, generator=gen, dtype=torch.float64).to(target.w_star)
    with torch.no_grad():
        for w in (target.w_star, target.w_star + 0.1 * noise):
            try:
                got = target._per_sample(w, (x, y))
            except Exception:  # the user's loss code may raise anything: then it is not plain MSE
                return False
            out = functional_call(target.module, target.unflatten(w), (x,))
            want = 0.5 * (y - out).pow(2).sum(dim=1)
            if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
                return False
    return True


def reduced_target(target: Target) -> Target:
    """``target`` on an exactly equivalent dataset of p + 1 rows, when it is linear in its
    input (:func:`is_linear_in_input`) and p + 1 < n; otherwise ``target`` itself.

    The result is for *evaluating* L_n (planes, Hessians): its ``n`` is the number of
    reduced rows, so it must not be sampled with a default nβ.
    """
    if not is_linear_in_input(target):
        return target
    assert isinstance(target, NetworkTarget)
    x = target.inputs.to(torch.float64)
    y = target.targets.to(torch.float64)
    n, p = x.shape
    m = p + 1
    if m >= n:
        return target
    sxx = x.T @ x / n
    sxy = x.T @ y / n
    syy = float((y * y).sum() / n)
    evals, evecs = torch.linalg.eigh(sxx)
    evals = evals.clamp_min(0.0)
    keep = evals > evals.max() * p * torch.finfo(torch.float64).eps
    root = (evecs * evals.sqrt()) @ evecs.T  # S_xx^{1/2}
    inv_root = (evecs[:, keep] / evals[keep].sqrt()) @ evecs[:, keep].T  # (S_xx^{1/2})⁺
    x_red = math.sqrt(m) * root  # (p, p): (1/m) X̃ᵀX̃ = S_xx
    y_red = math.sqrt(m) * inv_root @ sxy  # (p, q): (1/m) X̃ᵀỸ = S_xy
    rest = max(m * syy - float((y_red * y_red).sum()), 0.0)
    last_y = torch.zeros(1, y.shape[1], dtype=torch.float64)
    last_y[0, 0] = math.sqrt(rest)
    inputs = torch.cat([x_red, torch.zeros(1, p, dtype=torch.float64)])
    targets = torch.cat([y_red, last_y])
    reduced = NetworkTarget(
        target.module, inputs, targets, "mse", w_star=target.w_star, name=target.name,
        device=target.device, dtype=target.dtype,
    )
    reduced.reduced_from = int(n)
    return reduced
