"""Free energy and basin competition (primer §1): F_n ≈ n·L + λ·log n per basin.

Pure functions of (L, λ) per basin: the curves, each basin's posterior share, the n where
the leader changes, and the log posterior odds ΔF_n between two basins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["free_energy_curves", "free_energy_difference"]


def free_energy_curves(
    basins: Mapping[str, tuple[float, float]], n_min: float = 10.0, n_max: float = 1e7, points: int = 400
) -> tuple[pd.DataFrame, list[float]]:
    """F_n ≈ n·L + λ·log n for each basin (primer §1), and the n where the leader changes.

    Parameters
    ----------
    basins : mapping label -> (L, λ)
    Returns
    -------
    curves : DataFrame
        ``n, basin, free_energy`` (minus n·min L, so the curves share a scale) and
        ``posterior`` (each basin's share ∝ exp(−F_n), equal prior mass).
    crossovers : list of float
        Values of n in range where the two basins' free energies are equal (first two basins).

    See :func:`free_energy_difference` for ΔF_n = F_n(B) − F_n(A).
    """
    n = np.geomspace(n_min, n_max, points)
    labels = list(basins)
    l_min = min(L for L, _ in basins.values())
    f = {k: n * (L - l_min) + lam * np.log(n) for k, (L, lam) in basins.items()}
    stacked = np.vstack([f[k] for k in labels])
    logp = -(stacked - stacked.min(axis=0))
    post = np.exp(logp) / np.exp(logp).sum(axis=0)
    rows = [
        pd.DataFrame({"n": n, "basin": k, "free_energy": f[k], "posterior": post[i]})
        for i, k in enumerate(labels)
    ]
    crossings: list[float] = []
    out = pd.concat(rows, ignore_index=True)
    if len(labels) >= 2:
        (la, ma), (lb, mb) = basins[labels[0]], basins[labels[1]]

        def diff(x: float) -> float:
            return x * (la - lb) + (ma - mb) * math.log(x)

        grid = np.geomspace(n_min, n_max, 4000)
        vals = np.array([diff(x) for x in grid])
        for i in np.flatnonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0):
            lo, hi = grid[i], grid[i + 1]
            for _ in range(80):
                mid = math.sqrt(lo * hi)
                if np.sign(diff(mid)) == np.sign(diff(lo)):
                    lo = mid
                else:
                    hi = mid
            crossings.append(math.sqrt(lo * hi))
    return out, crossings


def free_energy_difference(
    basins: Mapping[str, tuple[float, float]], n_min: float = 10.0, n_max: float = 1e7, points: int = 400
) -> pd.DataFrame:
    """ΔF_n = F_n(B) − F_n(A) = n·(L_B − L_A) + (λ_B − λ_A)·log n for the first two basins.

    Columns ``n, delta``: the log posterior odds of A over B (positive: A wins).
    """
    (la, ma), (lb, mb) = list(basins.values())[:2]
    n = np.geomspace(n_min, n_max, points)
    return pd.DataFrame({"n": n, "delta": n * (lb - la) + (mb - ma) * np.log(n)})
