"""Hyperparameter grids as ONE batched run: every setting is just more chains.

A grid of S settings × C chains becomes S·C chains whose ε, γ, nβ (and sampler) tensors
repeat each setting C times; a grid over ``sampler=["sgld", "rmsprop"]`` compares plain and
RMSProp-preconditioned SGLD in the same batched run.  Chain k of every setting uses the
random stream of chain k of a single run with the same seed, so a sweep row equals the same
setting run on its own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from lltools.estimation.summary import Summary, summarize
from lltools.sampling.driver import last_item, run_chunks
from lltools.sampling.kernel import RMSPROP_DECAY, RMSPROP_DELTA, SAMPLER_NAMES, sampler_code
from lltools.sampling.sgld import SGLDParams, make_params
from lltools.sampling.trace import Trace
from lltools.targets.base import Target
from lltools.workflows.estimate import _validate_counts, as_target, check_memory, expected_llc, prepare_target
from lltools.workflows.events import RunEvent

MAX_SETTINGS = 100_000


def sampler_axis(sampler: str | Sequence[str] | None) -> list[str]:
    """The sampler values of a grid: a name, a comma list ("sgld,rmsprop") or a sequence of
    names; default ``["sgld"]``.  ``ValueError`` (one line) for an unknown or repeated name."""
    if sampler is None:
        return ["sgld"]
    items = sampler.split(",") if isinstance(sampler, str) else list(sampler)
    names = [SAMPLER_NAMES[sampler_code(str(s))] for s in items]
    if not names:
        raise ValueError("sampler needs at least one value")
    if len(set(names)) != len(names):
        raise ValueError(f"sampler lists a value twice: {', '.join(names)}")
    return names


def grid(
    epsilon: Sequence[float], gamma: Sequence[float], nbeta: Sequence[float],
    sampler: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """All combinations as a DataFrame with columns ``setting, epsilon, gamma, nbeta,
    sampler`` (the sampler the innermost axis; default "sgld" only, so the numbering of a
    single-sampler grid is unchanged)."""
    axes: list[list[Any]] = [list(map(float, values)) for values in (epsilon, gamma, nbeta)]
    axes.append(sampler_axis(sampler))
    size = math.prod(len(a) for a in axes)  # checked before the product is built
    if size == 0:
        raise ValueError("each of epsilon, gamma and nbeta needs at least one value")
    if size > MAX_SETTINGS:
        raise ValueError(f"grid has {size:,} settings; the limit is {MAX_SETTINGS:,}")
    rows = list(itertools.product(*axes))
    frame = pd.DataFrame(rows, columns=["epsilon", "gamma", "nbeta", "sampler"])
    frame.insert(0, "setting", range(len(frame)))
    return frame


def expand_grid(
    settings: pd.DataFrame,
    chains: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    rmsprop_decay: float = RMSPROP_DECAY,
    rmsprop_delta: float = RMSPROP_DELTA,
) -> tuple[SGLDParams, torch.Tensor, torch.Tensor]:
    """Per-chain params, ``chain_index`` and ``setting_index`` for S settings × ``chains``
    (a ``sampler`` column, when present, sets each setting's sampler; RMSProp chains use
    ``rmsprop_decay`` α and ``rmsprop_delta`` δ)."""
    num_settings = len(settings)
    reps = {k: torch.tensor(settings[k].to_numpy(), dtype=dtype).repeat_interleave(chains)
            for k in ("epsilon", "gamma", "nbeta")}
    samplers = None
    if "sampler" in settings.columns:
        samplers = [str(s) for s in settings["sampler"] for _ in range(chains)]
    params = make_params(
        reps["epsilon"], reps["gamma"], reps["nbeta"], num_settings * chains,
        device=device, dtype=dtype, sampler=samplers, rmsprop_decay=rmsprop_decay,
        rmsprop_delta=rmsprop_delta,
    )
    chain_index = torch.arange(chains).repeat(num_settings)
    setting_index = torch.arange(num_settings).repeat_interleave(chains)
    return params, chain_index, setting_index


@dataclass
class SweepResult:
    """A finished sweep: one row per setting (``table`` = ``summary.table``), plus the trace.

    Attributes
    ----------
    settings : DataFrame
        The grid: ``setting, epsilon, gamma, nbeta, sampler``.
    table : DataFrame
        One row per setting (:data:`lltools.estimation.summary.SUMMARY_COLUMNS`).
    trace : Trace
        The whole run's host trace.
    summary : Summary
        The one-pass summary (the table and each setting's warnings).
    """

    settings: pd.DataFrame
    table: pd.DataFrame
    trace: Trace
    summary: Summary | None = field(default=None, repr=False)

    @classmethod
    def from_trace(cls, trace: Trace, settings: pd.DataFrame) -> SweepResult:
        """Summarise a sweep's trace (copied to the host once)."""
        host = trace.cpu()
        summary = summarize(host)
        return cls(settings=settings, table=summary.table, trace=host, summary=summary)

    @property
    def warnings(self) -> list[str]:
        """Each setting's warnings, prefixed with the setting."""
        return [] if self.summary is None else self.summary.warnings

    def to_dict(self) -> dict[str, Any]:
        """The stored summary: ``{"table": [row, …], "warnings": [...]}`` in plain JSON types."""
        if self.summary is not None:
            out = self.summary.to_dict()
            return {"table": out["table"], "warnings": out["warnings"]}
        return {"table": summarize(self.trace).to_dict()["table"], "warnings": []}


def sweep_stream(
    target: Target | nn.Module,
    data: Any = None,
    *,
    loss: Any = None,
    evaluate: Any = None,
    epsilon: Sequence[float],
    gamma: Sequence[float],
    nbeta: Sequence[float],
    sampler: str | Sequence[str] | None = None,
    chains: int = 4,
    draws: int = 1000,
    burnin: int = 200,
    thinning: int = 1,
    batch_size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    report_every: int | None = None,
    rmsprop_decay: float = RMSPROP_DECAY,
    rmsprop_delta: float = RMSPROP_DELTA,
    **run_kwargs: Any,
) -> Iterator[RunEvent]:
    """Yield a :class:`~lltools.workflows.events.RunEvent` while the batched grid runs.

    ``event.settings`` is the grid (``setting, epsilon, gamma, nbeta, sampler``); the last
    event carries the :class:`SweepResult`.  ``sampler``: "sgld" (default), "rmsprop", a
    list or a comma list of both (one more grid axis); ``rmsprop_decay``/``rmsprop_delta``
    are RMSProp's α and δ (:func:`lltools.sampling.sgld.make_params`).  ``target`` may be
    an ``nn.Module`` with ``data`` and ``loss``/``evaluate``, as for
    :func:`lltools.workflows.estimate.estimate`.
    """
    settings = grid(epsilon, gamma, nbeta, sampler)
    _validate_counts(chains * len(settings), draws, burnin, thinning)
    target = as_target(target, data, loss=loss, evaluate=evaluate, batch_size=batch_size)
    placed = prepare_target(target, batch_size=batch_size, device=device, dtype=dtype)
    check_memory(placed, chains * len(settings), draws, burnin, thinning)
    params, chain_index, setting_index = expand_grid(
        settings, chains, device=placed.device, dtype=placed.dtype, rmsprop_decay=rmsprop_decay,
        rmsprop_delta=rmsprop_delta,
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
        result = SweepResult.from_trace(trace, settings) if trace.complete else None
        yield RunEvent.of_trace("sweep", trace, settings, placed, result)


def with_expected(table: pd.DataFrame, target: Target) -> pd.DataFrame:
    """A copy of a sweep table with the finite-nβ target T(nβ, γ) of each row.

    Adds ``expected_llc`` and ``expected_llc_error`` (the 2-D quadrature of
    :func:`lltools.workflows.estimate.expected_llc`; NaN where none applies: a network, a
    dataset, more than two variables), which :func:`lltools.estimation.calibrate.recommend`
    calibrates against.
    """
    out = table.copy()
    pairs = zip(out["nbeta"], out["gamma"], strict=True)
    values = [expected_llc(target, float(nb), float(g)) for nb, g in pairs]
    out["expected_llc"] = [math.nan if v is None else float(v.value) for v in values]
    out["expected_llc_error"] = [math.nan if v is None else float(v.error) for v in values]
    return out


def sweep(target: Target | nn.Module, data: Any = None, **kwargs: Any) -> SweepResult:
    """Run a γ × ε × nβ grid as one batched computation; one table row per setting.

    Keyword arguments are those of :func:`sweep_stream`.  The table is
    :func:`lltools.estimation.summary.summarize`'s (λ̂ mean/std/SEM, R-hat, ESS, acceptance,
    divergences per setting).
    """
    return last_item(sweep_stream(target, data, **kwargs)).result
