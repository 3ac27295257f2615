"""Hyperparameter grids as ONE batched run: every setting is just more chains.

A grid of S settings × C chains becomes S·C chains whose ε, γ, nβ tensors repeat each
setting C times.  Chain k of every setting uses the random stream of chain k of a single
run with the same seed, so a sweep row equals the same setting run on its own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from lltools.estimation import llc as estimators
from lltools.sampling.driver import Trace, last_item, run_chunks
from lltools.sampling.sgld import SGLDParams, make_params
from lltools.targets.base import Target
from lltools.workflows.estimate import _validate_counts, check_memory, prepare_target

MAX_SETTINGS = 100_000


def grid(
    epsilon: Sequence[float], gamma: Sequence[float], nbeta: Sequence[float]
) -> pd.DataFrame:
    """All combinations as a DataFrame with columns ``setting, epsilon, gamma, nbeta``."""
    axes = [list(map(float, values)) for values in (epsilon, gamma, nbeta)]
    size = math.prod(len(a) for a in axes)  # checked before the product is built
    if size == 0:
        raise ValueError("each of epsilon, gamma and nbeta needs at least one value")
    if size > MAX_SETTINGS:
        raise ValueError(f"grid has {size:,} settings; the limit is {MAX_SETTINGS:,}")
    rows = list(itertools.product(*axes))
    frame = pd.DataFrame(rows, columns=["epsilon", "gamma", "nbeta"])
    frame.insert(0, "setting", range(len(frame)))
    return frame


def expand_grid(
    settings: pd.DataFrame,
    chains: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[SGLDParams, torch.Tensor, torch.Tensor]:
    """Per-chain params, ``chain_index`` and ``setting_index`` for S settings × ``chains``."""
    num_settings = len(settings)
    reps = {k: torch.tensor(settings[k].to_numpy(), dtype=dtype).repeat_interleave(chains)
            for k in ("epsilon", "gamma", "nbeta")}
    params = make_params(
        reps["epsilon"], reps["gamma"], reps["nbeta"], num_settings * chains,
        device=device, dtype=dtype,
    )
    chain_index = torch.arange(chains).repeat(num_settings)
    setting_index = torch.arange(num_settings).repeat_interleave(chains)
    return params, chain_index, setting_index


@dataclass
class SweepResult:
    """A finished sweep: one row per setting, plus the full trace."""

    settings: pd.DataFrame
    table: pd.DataFrame
    trace: Trace


def sweep_stream(
    target: Target,
    *,
    epsilon: Sequence[float],
    gamma: Sequence[float],
    nbeta: Sequence[float],
    chains: int = 4,
    draws: int = 1000,
    burnin: int = 200,
    thinning: int = 1,
    batch_size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    report_every: int | None = None,
    **run_kwargs: Any,
) -> Iterator[tuple[Trace, pd.DataFrame]]:
    """Yield ``(partial trace, settings frame)`` while the batched grid runs."""
    settings = grid(epsilon, gamma, nbeta)
    _validate_counts(chains * len(settings), draws, burnin, thinning)
    placed = prepare_target(target, batch_size=batch_size, device=device, dtype=dtype)
    check_memory(placed, chains * len(settings), draws, burnin, thinning)
    params, chain_index, setting_index = expand_grid(
        settings, chains, device=placed.device, dtype=placed.dtype
    )
    for trace in run_chunks(
        placed,
        params,
        num_draws=draws,
        num_burnin=burnin,
        thinning=thinning,
        seed=seed,
        chain_index=chain_index,
        setting_index=setting_index,
        report_every=report_every,
        **run_kwargs,
    ):
        yield trace, settings


def sweep(target: Target, **kwargs: Any) -> SweepResult:
    """Run a γ × ε × nβ grid as one batched computation; one table row per setting.

    Keyword arguments are those of :func:`sweep_stream`.  The table has the columns of
    :func:`lltools.estimation.llc.llc_by_setting` (λ̂ mean/std/SEM, R-hat, ESS, acceptance,
    divergences per setting).
    """
    trace, settings = last_item(sweep_stream(target, **kwargs))
    host = trace.cpu()
    table = estimators.llc_by_setting(host)
    host.drop_derived_arrays()
    return SweepResult(settings=settings, table=table, trace=host)
