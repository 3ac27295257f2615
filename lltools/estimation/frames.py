"""Trace -> tidy pandas DataFrames (one observation per row), for plots and exports.

- :func:`trace_frame`: one row per chain × recorded step (loss, running λ̂, acceptance).
- :func:`chain_frame`: one row per chain (λ̂_c, mean loss, acceptance, divergence).
- :func:`positions_frame`: one row per chain × recorded position (low-dimensional targets).

Column names follow the primer: ``epsilon, gamma, nbeta``; ``chain`` is the global chain
index (row of the trace), ``chain_in_setting`` its index within its hyperparameter setting
(``trace.chain_index``) and ``setting`` the sweep row (``trace.setting_index``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lltools.estimation.llc import llc_per_chain, llc_running
from lltools.estimation.select import host
from lltools.sampling.kernel import SAMPLER_NAMES
from lltools.sampling.trace import Trace

TRACE_COLUMNS = (
    "chain", "chain_in_setting", "setting", "step", "is_draw", "loss", "llc_running",
    "acceptance", "epsilon", "gamma", "nbeta", "diverged",
)  # fmt: skip
CHAIN_COLUMNS = (
    "chain", "setting", "chain_in_setting", "epsilon", "gamma", "nbeta", "sampler", "llc", "loss_init",
    "mean_loss", "acceptance", "diverged_at",
)  # fmt: skip


def _per_chain(h: Trace) -> dict[str, np.ndarray]:
    """Per-chain identifiers and hyperparameters, each shape (C,)."""
    return {
        "chain": np.arange(h.num_chains),
        "chain_in_setting": h.chain_index.numpy(),
        "setting": h.setting_index.numpy(),
        "epsilon": h.params.epsilon.numpy(),
        "gamma": h.params.gamma.numpy(),
        "nbeta": h.params.nbeta.numpy(),
        "sampler": np.asarray(SAMPLER_NAMES, dtype=object)[h.params.sampler_codes.numpy()],
    }


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean of each row over its finite entries; NaN for rows with none."""
    finite = np.isfinite(x)
    count = finite.sum(axis=1)
    total = np.where(finite, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def trace_frame(trace: Trace, *, include_burnin: bool = True) -> pd.DataFrame:
    """One row per chain × recorded step.

    Columns
    -------
    chain, chain_in_setting, setting : int
    step : int — the SGLD step of the column
    is_draw : bool — after burn-in
    loss : float — L_B(w_t) (NaN once the chain diverged)
    llc_running : float — λ̂_c(t) = nβ (mean_{s≤t} L_s − L(w*)) over the draws so far
        (primer §2); NaN in burn-in and for diverged chains
    acceptance : float — MALA acceptance of the step's proposal (NaN where not computed)
    epsilon, gamma, nbeta : float
    diverged : bool — the chain has diverged at or before this step

    Rows are ordered by chain, then step.
    """
    h = host(trace)
    num_chains, num_cols = h.loss.shape
    is_draw = h.draw_mask.numpy()
    running = np.full((num_chains, num_cols), np.nan)
    running[:, is_draw] = llc_running(h).numpy()
    keep = np.ones(num_cols, dtype=bool) if include_burnin else is_draw
    steps = h.steps.numpy()[keep]
    k = int(keep.sum())
    diverged_at = h.diverged_at.numpy()
    diverged = (diverged_at[:, None] >= 0) & (steps[None, :] >= diverged_at[:, None])
    columns = {name: np.repeat(values, k) for name, values in _per_chain(h).items()}
    columns.update(
        step=np.tile(steps, num_chains),
        is_draw=np.tile(is_draw[keep], num_chains),
        loss=h.loss.numpy()[:, keep].reshape(-1),
        llc_running=running[:, keep].reshape(-1),
        acceptance=h.acceptance.numpy()[:, keep].reshape(-1),
        diverged=diverged.reshape(-1),
    )
    return pd.DataFrame({name: columns[name] for name in TRACE_COLUMNS})


def chain_frame(trace: Trace) -> pd.DataFrame:
    """One row per chain.

    Columns
    -------
    chain, setting, chain_in_setting : int
    epsilon, gamma, nbeta : float
    llc : float — λ̂_c (NaN if diverged)
    loss_init : float — L(w*)
    mean_loss : float — mean draw loss (NaN if diverged)
    acceptance : float — mean MALA acceptance over the draws (for a diverged chain, over its
        draws before divergence: a clue to why it diverged)
    diverged_at : int — step of divergence, -1 if never
    """
    h = host(trace)
    lam = llc_per_chain(h).numpy()
    draws = h.draw_loss.numpy()
    mean_loss = np.full(h.num_chains, np.nan) if draws.shape[1] == 0 else draws.mean(axis=1)
    mean_loss[h.diverged_at.numpy() >= 0] = np.nan
    columns = _per_chain(h)
    columns.update(
        llc=lam,
        loss_init=h.loss_init.numpy(),
        mean_loss=mean_loss,
        acceptance=_nanmean_rows(h.draw_acceptance.numpy()),
        diverged_at=h.diverged_at.numpy(),
    )
    return pd.DataFrame({name: columns[name] for name in CHAIN_COLUMNS})


def position_columns(dim: int) -> list[str]:
    """``["x", "y"]`` for d = 2, else ``["w1", …, "wd"]``."""
    return ["x", "y"] if dim == 2 else [f"w{i + 1}" for i in range(dim)]


def positions_frame(trace: Trace) -> pd.DataFrame:
    """One row per chain × recorded position: ``chain, setting, chain_in_setting, step`` and
    the coordinates (``x, y`` for d = 2, else ``w1..wd``).

    Positions are w_t at the start of step t (the point whose loss is recorded at t).
    Positions at or after a chain's divergence are NaN.

    Raises
    ------
    ValueError
        If the trace has no positions (they are recorded only for small d; see
        :func:`lltools.sampling.driver.run_chunks`).
    """
    h = host(trace)
    if h.positions is None or h.position_steps is None:
        raise ValueError("this trace has no recorded positions (record_positions=False or d > 16)")
    pos = h.positions.numpy().copy()  # (C, T_pos, d)
    num_chains, num_pos, dim = pos.shape
    steps = h.position_steps.numpy()
    diverged_at = h.diverged_at.numpy()
    dead = (diverged_at[:, None] >= 0) & (steps[None, :] >= diverged_at[:, None])
    pos[dead] = np.nan
    ids = _per_chain(h)
    frame = pd.DataFrame(
        {
            "chain": np.repeat(ids["chain"], num_pos),
            "setting": np.repeat(ids["setting"], num_pos),
            "chain_in_setting": np.repeat(ids["chain_in_setting"], num_pos),
            "step": np.tile(steps, num_chains),
        }
    )
    coords = pd.DataFrame(pos.reshape(num_chains * num_pos, dim), columns=position_columns(dim))
    return pd.concat([frame, coords], axis=1)


__all__ = [
    "CHAIN_COLUMNS",
    "TRACE_COLUMNS",
    "chain_frame",
    "position_columns",
    "positions_frame",
    "trace_frame",
]
