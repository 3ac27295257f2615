"""Trace diagnostics for SGLD runs (primer §3): acceptance, divergences, frozen chains.

Built on :mod:`lltools.estimation.stats` (array statistics) and :mod:`lltools.estimation.llc`
(the excess-loss draws); the health rule that turns these numbers into advice is
:mod:`lltools.estimation.health`, and :func:`lltools.estimation.summary.summarize` computes
all of them in one pass.

Chains that diverged (``trace.diverged_at >= 0``) are excluded everywhere, as in the
estimators.  ``setting`` selects one hyperparameter setting of a sweep
(``trace.setting_index``); ``None`` means the whole trace unless stated otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lltools.estimation.health import DEFAULT_CRITERIA, steps_text
from lltools.estimation.llc import excess_loss_draws, per_chain_means
from lltools.estimation.select import host, setting_chains, setting_label, valid_chains
from lltools.sampling.trace import Trace


# ---------------------------------------------------------------------------- arrays
def nanmean(values: torch.Tensor) -> float:
    """Mean over the non-NaN entries (NaN when none): no NaN-free copy, unlike np.nanmean."""
    if values.numel() == 0:
        return float("nan")
    value = float(torch.nanmean(values))
    return value if math.isfinite(value) else float("nan")


def frozen_mask(excess: np.ndarray, valid: np.ndarray, atol: float) -> np.ndarray:
    """Boolean (C,): valid chains whose nβ·sd_t(L_t) and |λ̂_c| are both below ``atol``.

    ``excess`` is X = nβ(L − L(w*)) of shape (C, T): its per-chain sd is nβ·sd(L), its
    per-chain mean λ̂_c.  All False with fewer than 2 draws.
    """
    if excess.shape[1] < 2:
        return np.zeros(excess.shape[0], dtype=bool)
    x = torch.from_numpy(excess)
    spread = x.std(dim=1).numpy()
    level = np.abs(per_chain_means(excess, valid))
    with np.errstate(invalid="ignore"):
        return valid & (spread < atol) & (level < atol)


# ---------------------------------------------------------------------------- traces
def acceptance_mean(trace: Trace, setting: int | None = None) -> float:
    """Mean MALA acceptance probability over the draws of the valid chains (primer §3).

    A nanmean: steps where the acceptance was not computed (``acceptance_every > 1``) are
    NaN and skipped.  ``setting=None`` pools every chain of the trace.  NaN when nothing is
    left (all chains diverged, or no acceptance computed).
    """
    h = host(trace)
    chains = setting_chains(h, setting, pooled=True)
    chains = chains[valid_chains(h)[chains]]
    every = chains.size == h.num_chains  # every chain, in order: use the (C, T) view, no copy
    return nanmean(h.draw_acceptance if every else h.draw_acceptance[chains])


@dataclass(frozen=True)
class DivergenceReport:
    """Which chains diverged, when, and with which hyperparameters.

    Attributes
    ----------
    count, num_chains : int
        Diverged chains and all chains.
    chains : np.ndarray, shape (count,)
        Global indices of the diverged chains.
    steps : np.ndarray, shape (count,)
        SGLD step at which each diverged.
    settings : np.ndarray, shape (count,)
        Their setting indices.
    epsilon, gamma, nbeta : np.ndarray, shape (count,)
        Their hyperparameters.
    all_diverged : bool
        True when every chain diverged (then λ̂ is undefined).
    message : str
        A plain sentence for the user.
    """

    count: int
    num_chains: int
    chains: np.ndarray
    steps: np.ndarray
    settings: np.ndarray
    epsilon: np.ndarray
    gamma: np.ndarray
    nbeta: np.ndarray
    all_diverged: bool
    message: str


def divergence_report(trace: Trace) -> DivergenceReport:
    """Summarise the diverged chains of a trace.

    Example message: "3 of 16 chains diverged (ε=0.1, γ=1, nβ=100 at steps 12, 40, 41);
    they are excluded from λ̂."  Chains are grouped by (ε, γ, nβ, sampler).
    """
    h = host(trace)
    diverged_at = h.diverged_at.numpy()
    chains = np.flatnonzero(diverged_at >= 0)
    steps = diverged_at[chains]
    p = h.params
    eps, gam, nb = (x.numpy()[chains] for x in (p.epsilon, p.gamma, p.nbeta))
    codes = p.sampler_codes.numpy()[chains]
    total = h.num_chains
    count = int(chains.size)
    all_diverged = total > 0 and count == total
    if count == 0:
        message = f"No chains diverged (0 of {total})."
    else:
        groups = []
        for key in dict.fromkeys(zip(eps.tolist(), gam.tolist(), nb.tolist(), codes.tolist(), strict=True)):
            members = chains[(eps == key[0]) & (gam == key[1]) & (nb == key[2]) & (codes == key[3])]
            label = setting_label(h, members)
            groups.append(f"{label} at {steps_text(np.sort(diverged_at[members]))}")
        message = (
            f"{count} of {total} chains diverged ({'; '.join(groups)}); they are excluded from λ̂."
        )
        if all_diverged:
            message += " All chains diverged: λ̂ is undefined; lower ε (e.g. by 10×)."
    return DivergenceReport(
        count=count,
        num_chains=total,
        chains=chains,
        steps=steps,
        settings=h.setting_index.numpy()[chains],
        epsilon=eps,
        gamma=gam,
        nbeta=nb,
        all_diverged=all_diverged,
        message=message,
    )


def frozen_chains(trace: Trace, *, atol: float = DEFAULT_CRITERIA.frozen_atol) -> np.ndarray:
    """Indices of valid chains that barely moved: ε too small (or γ too large).

    A chain is frozen when both nβ·sd_t(L_t) < ``atol`` and |λ̂_c| < ``atol``: its loss
    fluctuates by much less than 1/nβ (a healthy chain at equilibrium has nβ·sd(L) of order
    √λ) and it has not left L(w*).  For data targets the minibatch noise of L_B keeps
    nβ·sd(L) large even for a frozen chain, so this check is mainly for potentials; slow
    drift is caught by the split R-hat instead.

    Returns
    -------
    np.ndarray of int, shape (k,)
        Global chain indices.
    """
    h = host(trace)
    return np.flatnonzero(frozen_mask(excess_loss_draws(h), valid_chains(h), atol))


__all__ = [
    "DivergenceReport",
    "acceptance_mean",
    "divergence_report",
    "frozen_chains",
    "frozen_mask",
    "nanmean",
]
