"""The localised tempered posterior of a 1-D potential, exactly (primer §2).

p(w) ∝ exp(−nβ(L(w) − L(w*)) − (γ/2)(w − w*)²) on a fine grid, its two factors, the
target T = nβ·E_p[L − L(w*)] and the mass in another basin. Used by the Learn page's
"what γ, ε, nβ do" demo beside an actual SGLD run (:mod:`lltools.workflows.demos`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

__all__ = ["DENSITY_POTENTIALS", "TemperedDensity", "density_fn", "tempered_density_1d"]

#: 1-D potentials for the "what γ, ε, nβ do" demo: label -> (expression in w, w*).
DENSITY_POTENTIALS: dict[str, tuple[str, float]] = {
    "w² (regular, λ = 1/2)": ("w**2", 0.0),
    "w⁴ (singular, λ = 1/4)": ("w**4", 0.0),
    "double well (w² − 1)², w* = 1": ("(w**2 - 1)**2", 1.0),
}


def density_fn(expr: str) -> Callable[[Tensor], Tensor]:
    """A batched torch function of w (C, 1) → (C,) for the demo expressions (no parsing needed)."""
    if expr == "w**2":
        return lambda w: w[:, 0] ** 2
    if expr == "w**4":
        return lambda w: w[:, 0] ** 4
    if expr == "(w**2 - 1)**2":
        return lambda w: (w[:, 0] ** 2 - 1.0) ** 2
    raise ValueError(f"unknown demo potential {expr!r}")


@dataclass(frozen=True)
class TemperedDensity:
    """``density``: columns ``w, density, label`` (the posterior and, scaled to its peak, its
    two factors, thinned to ≤ ~1 500 points in the visible window); ``target``: the exact
    nβ·E_p[L − L*]; ``mass_other_basin``: P(w < 0) when w* > 0, else NaN."""

    density: pd.DataFrame
    target: float
    mass_other_basin: float


def tempered_density_1d(
    fn: Callable[[Tensor], Tensor], w_star: float, nbeta: float, gamma: float, *, half_width: float = 3.0,
    points: int = 24001,
) -> TemperedDensity:
    """The localised tempered density of ``fn`` around ``w_star`` by quadrature on a grid.

    The grid w* ± ``half_width`` with ``points`` nodes (Riemann sum; the integrands are smooth
    and decay like exp(−γ/2·w²), so the sum is exact to the plotted precision).
    """
    w = np.linspace(w_star - half_width, w_star + half_width, points)
    with torch.no_grad():
        loss = fn(torch.tensor(w[:, None], dtype=torch.float64)).numpy()
        l_star = float(fn(torch.tensor([[w_star]], dtype=torch.float64))[0])
    energy = nbeta * (loss - l_star) + 0.5 * gamma * (w - w_star) ** 2
    dens = np.exp(-(energy - energy.min()))
    dw = w[1] - w[0]
    dens /= dens.sum() * dw
    target_value = float(nbeta * ((loss - l_star) * dens).sum() * dw)
    other = float(dens[w < 0].sum() * dw) if w_star > 0 else float("nan")
    like = np.exp(-(nbeta * (loss - l_star) - (nbeta * (loss - l_star)).min()))
    prior = np.exp(-0.5 * gamma * (w - w_star) ** 2) if gamma > 0 else np.ones_like(w)
    peak = dens.max()
    # Keep the window where anything is visible, thinned for the browser.
    visible = (dens > peak * 1e-4) | (like * peak > peak * 1e-3)
    idx = np.flatnonzero(visible)
    lo, hi = (idx.min(), idx.max()) if idx.size else (0, len(w) - 1)
    sl = slice(max(lo - 50, 0), min(hi + 50, len(w) - 1) + 1)
    step = max(1, (sl.stop - sl.start) // 1500)
    ws = w[sl][::step]
    frame = pd.concat(
        [
            pd.DataFrame({"w": ws, "density": dens[sl][::step], "label": "posterior p(w)"}),
            pd.DataFrame({"w": ws, "density": like[sl][::step] * peak, "label": "exp(−nβ·L) (scaled)"}),
            pd.DataFrame({"w": ws, "density": prior[sl][::step] * peak,
                          "label": "localisation exp(−γ/2·(w−w*)²) (scaled)"}),
        ],
        ignore_index=True,
    )
    return TemperedDensity(density=frame, target=target_value, mass_other_basin=other)
