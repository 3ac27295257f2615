"""Small teaching workflows: an exact 1-D density beside an actual SGLD run (Learn page)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lltools.targets.base import FunctionTarget
from lltools.theory.density import DENSITY_POTENTIALS, density_fn, tempered_density_1d
from lltools.workflows.estimate import estimate

__all__ = ["density_demo"]


def density_demo(
    label: str, nbeta: float, gamma: float, epsilon: float, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Exact localised tempered density vs an actual SGLD run for a 1-D potential.

    Returns ``(density, samples, stats)``: ``density`` as in
    :func:`lltools.theory.density.tempered_density_1d`; ``samples`` has column ``w`` (draws
    after burn-in, all non-diverged chains); ``stats`` has ``target`` (exact nβ·E_p[L − L*]),
    ``llc``, ``sem``, ``acceptance``, ``diverged``, ``chains``, ``mass_other_basin`` (exact
    P(w < 0) for the double well) and ``sampled_other_basin``.
    """
    expr, w_star = DENSITY_POTENTIALS[label]
    fn = density_fn(expr)
    exact = tempered_density_1d(fn, w_star, nbeta, gamma)
    target = FunctionTarget(fn, torch.tensor([w_star], dtype=torch.float32), name=expr)
    res = estimate(target, nbeta=nbeta, gamma=gamma, epsilon=epsilon, chains=32, draws=1500, burnin=300,
                   seed=seed, device="cpu")
    tr = res.trace
    samples = pd.DataFrame({"w": []})
    if tr.positions is not None and tr.position_steps is not None:
        keep = (tr.position_steps >= tr.num_burnin).numpy()
        pos = tr.positions.numpy()[:, keep, 0]
        pos = pos[(tr.diverged_at.numpy() < 0)]
        vals = pos.ravel()
        samples = pd.DataFrame({"w": vals[np.isfinite(vals)]})
    stats = {
        "target": exact.target,
        "llc": float(res.llc_mean),
        "sem": float(res.llc_sem),
        "acceptance": float(res.acceptance),
        "diverged": float(len(res.diverged_chains)),
        "chains": float(res.num_chains),
        "mass_other_basin": exact.mass_other_basin,
        "sampled_other_basin": (
            float((samples["w"] < 0).mean()) if w_star > 0 and len(samples) else float("nan")
        ),
    }
    return exact.density, samples, stats
