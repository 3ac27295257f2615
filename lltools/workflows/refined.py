"""Refined LLCs: weight-restricted λ̂ for many restrictions (× checkpoints × settings) as ONE
batched run (primer §7).

Every restriction is one more axis of the settings grid: restriction r, centre k and
setting (ε, γ, nβ) get ``chains`` chains each, whose per-chain mask (a row of the
restriction's coordinate mask) keeps every coordinate outside the restriction at its
centre.  Chain j of every grid cell uses the random stream of chain j of a single run with
the same seed, so a row of the refined table equals that restriction run on its own.

The table has one row per (restriction, centre, setting) with the restricted dimension
``restricted_dim`` (d of the slice) beside λ̂.  With ``probe`` given, the per-sample losses
of those samples at every recorded draw feed a :class:`~lltools.estimation.influence.LossMoments`
per grid cell (running mean and covariance only — the Bayesian influence function).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from lltools.estimation.influence import LossMoments
from lltools.estimation.summary import Summary, summarize
from lltools.sampling.driver import last_item, run_chunks
from lltools.sampling.trace import Trace
from lltools.targets.base import Target, TargetError
from lltools.targets.checkpoints import load_checkpoint
from lltools.targets.models import list_checkpoints, load_model_folder, read_card
from lltools.targets.restrictions import Restriction, resolve
from lltools.workflows.estimate import (
    _validate_counts,
    as_target,
    check_memory,
    prepare_target,
    resolve_nbeta,
)
from lltools.workflows.events import RunEvent
from lltools.workflows.sweep import MAX_SETTINGS, expand_grid, sampler_axis

#: Columns a refined table adds to the summary's.
REFINED_COLUMNS = ("restriction", "restricted_dim", "centre")


def _values(x: float | Sequence[float]) -> list[float]:
    return [float(v) for v in (x if isinstance(x, Sequence) and not isinstance(x, str) else [x])]


def refined_grid(
    restrictions: Sequence[Restriction],
    centres: Sequence[str],
    epsilon: Sequence[float],
    gamma: Sequence[float],
    nbeta: Sequence[float],
    sampler: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """All (restriction, centre, ε, γ, nβ, sampler) combinations: ``setting, restriction,
    restricted_dim, centre, epsilon, gamma, nbeta, sampler`` (and the private
    ``_restriction``, ``_centre`` indices)."""
    samplers = sampler_axis(sampler)
    size = len(restrictions) * len(centres) * len(epsilon) * len(gamma) * len(nbeta) * len(samplers)
    if size == 0:
        raise ValueError("a refined run needs at least one restriction, centre and setting")
    if size > MAX_SETTINGS:
        raise ValueError(f"refined grid has {size:,} cells; the limit is {MAX_SETTINGS:,}")
    rows = [
        {"restriction": restrictions[r].name, "restricted_dim": restrictions[r].dim, "centre": centres[k],
         "epsilon": e, "gamma": g, "nbeta": b, "sampler": name, "_restriction": r, "_centre": k}
        for r, k, e, g, b, name in itertools.product(range(len(restrictions)), range(len(centres)),
                                                     epsilon, gamma, nbeta, samplers)
    ]
    frame = pd.DataFrame(rows)
    frame.insert(0, "setting", range(len(frame)))
    return frame


@dataclass
class RefinedResult:
    """A finished refined run.

    Attributes
    ----------
    settings : DataFrame
        The grid (:func:`refined_grid`).
    table : DataFrame
        One row per grid cell: ``restriction, restricted_dim, centre`` then the summary's
        columns (λ̂ mean/std/SEM, R-hat, ESS, acceptance, divergences).
    trace : Trace
    summary : Summary
    influence : dict of int to LossMoments, optional
        Per setting, the probe samples' loss moments (when a probe was given).
    """

    settings: pd.DataFrame
    table: pd.DataFrame
    trace: Trace
    summary: Summary | None = field(default=None, repr=False)
    influence: dict[int, LossMoments] | None = field(default=None, repr=False)

    @classmethod
    def from_trace(cls, trace: Trace, settings: pd.DataFrame,
                   influence: dict[int, LossMoments] | None = None) -> RefinedResult:
        host = trace.cpu()
        summary = summarize(host)
        extra = settings[["setting", *REFINED_COLUMNS]]
        table = extra.merge(summary.table, on="setting", how="right")
        return cls(settings=settings, table=table, trace=host, summary=summary, influence=influence)

    @property
    def warnings(self) -> list[str]:
        return [] if self.summary is None else self.summary.warnings

    def to_dict(self) -> dict[str, Any]:
        """The stored summary: ``{"table": [row, …], "warnings": [...]}``."""
        records = self.table.astype(object).where(self.table.notna(), None).to_dict(orient="records")
        return {"table": records, "warnings": self.warnings}


class _Observer:
    """Per-sample losses of the probe at each recorded draw, per grid cell."""

    def __init__(self, target: Target, probe: Any, settings: pd.DataFrame, setting_index: Tensor,
                 num_burnin: int) -> None:
        self.target, self.probe, self.num_burnin = target, probe, num_burnin
        self.setting_index = setting_index
        num = int(torch.as_tensor(probe).numel())
        self.moments = {int(s): LossMoments(num) for s in settings["setting"]}

    def __call__(self, step: int, w: Tensor, chains: Tensor, alive: Tensor) -> None:
        if step < self.num_burnin:
            return
        losses = self.target.per_sample_losses(w, self.probe)  # (C, S)
        losses = torch.where(alive[:, None], losses, torch.nan)
        cells = self.setting_index[chains]
        for s in torch.unique(cells).tolist():
            self.moments[int(s)].update(losses[cells == s])


def refined_stream(
    target: Target,
    restrictions: Sequence[Restriction],
    *,
    centres: Sequence[tuple[str, Tensor]] | None = None,
    epsilon: float | Sequence[float],
    gamma: float | Sequence[float],
    nbeta: float | Sequence[float] | None = None,
    chains: int = 4,
    draws: int = 1000,
    burnin: int = 200,
    thinning: int = 1,
    batch_size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    report_every: int | None = None,
    probe: Any = None,
    sampler: str | Sequence[str] | None = None,
    **run_kwargs: Any,
) -> Iterator[RunEvent]:
    """Yield a :class:`RunEvent` (kind ``"sweep"``, settings = the refined grid) while every
    restriction × centre × setting runs as one batched computation; the last event carries
    a :class:`RefinedResult`.

    Parameters
    ----------
    target : Target
        A network target (``w_star`` is the default centre).
    restrictions : sequence of Restriction
        Masks over the target's flat parameters (:mod:`lltools.targets.restrictions`).
    centres : sequence of (label, Tensor (d,)), optional
        Centres w* to run every restriction at (e.g. checkpoints); default the target's w*.
    epsilon, gamma, nbeta : float or sequence of float
        The sampler settings (grid axes); nβ defaults to the target's n/log n.
    sampler : "sgld", "rmsprop" or both (one more grid axis), optional
    probe : Tensor (S,) int64, optional
        Indices of samples whose per-sample losses are tracked across the posterior
        (:meth:`lltools.targets.networks.NetworkTarget.per_sample_losses`).
    """
    for r in restrictions:
        if r.mask.shape != (target.dim,):
            raise TargetError(f"restriction {r.name!r} has {r.mask.numel()} coordinates; the model has "
                              f"{target.dim}")
    centre_list = list(centres) if centres else [("w*", target.w_star)]
    nbeta_values = _values(resolve_nbeta(target, nbeta) if nbeta is None else nbeta)
    settings = refined_grid(restrictions, [c[0] for c in centre_list], _values(epsilon), _values(gamma),
                            nbeta_values, sampler)
    num_chains = chains * len(settings)
    _validate_counts(num_chains, draws, burnin, thinning)
    placed = prepare_target(target, batch_size=batch_size, device=device, dtype=dtype)
    check_memory(placed, num_chains, draws, burnin, thinning)
    params, chain_index, setting_index = expand_grid(settings, chains, device=placed.device,
                                                     dtype=placed.dtype)
    masks = torch.stack([r.mask for r in restrictions]).to(placed.device)
    centre_table = torch.stack([c[1].reshape(-1) for c in centre_list]).to(placed.device, placed.dtype)
    cell = torch.tensor(settings["_restriction"].to_numpy()).repeat_interleave(chains)
    where = torch.tensor(settings["_centre"].to_numpy()).repeat_interleave(chains)
    observer = None
    if probe is not None:
        observer = _Observer(placed, probe, settings, setting_index, burnin)
    for trace in run_chunks(
        placed, params, num_draws=draws, num_burnin=burnin, thinning=thinning, seed=seed,
        chain_index=chain_index, setting_index=setting_index, centre=centre_table[where],
        mask=masks[cell], report_every=report_every, observe=observer, **run_kwargs,
    ):
        result = None
        if trace.complete:
            result = RefinedResult.from_trace(trace, settings, observer.moments if observer else None)
        yield RunEvent.of_trace("sweep", trace, settings, placed, result)


def refined(target: Target, restrictions: Sequence[Restriction], **kwargs: Any) -> RefinedResult:
    """Run :func:`refined_stream` to the end and return its :class:`RefinedResult`."""
    return last_item(refined_stream(target, restrictions, **kwargs)).result


def refined_llc(
    target: Target | nn.Module,
    data: Any = None,
    *,
    loss: Any = None,
    evaluate: Any = None,
    restrict: Sequence[str] = (),
    restrict_each: str | None = None,
    data_subset: Tensor | None = None,
    batch_size: int | None = None,
    **kwargs: Any,
) -> RefinedResult:
    """Refined LLCs of a model at w*: one λ̂ per weight restriction, all in one batched run.

    Parameters
    ----------
    target : Target or nn.Module
        A network target, or a module with ``data`` (and ``loss``/``evaluate``) exactly as
        for :func:`lltools.estimate`.
    restrict : sequence of str
        Parameter-name globs, one restriction each (``"layers.0.*"``).
    restrict_each : {"layer", "head"}, optional
        One restriction per layer or attention head (:mod:`lltools.targets.restrictions`).
        Neither given: the whole model (the unrestricted λ̂).
    data_subset : Tensor, optional
        A bool mask (n,) or indices: measure the loss on those samples only.
    **kwargs
        Sampler settings and options of :func:`refined_stream` (``epsilon``, ``gamma``,
        ``nbeta``, ``chains``, ``draws``, ``burnin``, ``seed``, ``probe``, ``sampler`` …).
    """
    base = as_target(target, data, loss=loss, evaluate=evaluate, batch_size=batch_size)
    module = getattr(base, "module", None)
    if not isinstance(module, nn.Module):
        raise TargetError("refined LLCs need a network target (an nn.Module's parameters to restrict)")
    if data_subset is not None:
        base = base.restrict_data(data_subset)
    return refined(base, resolve(module, restrict, restrict_each), batch_size=batch_size, **kwargs)


#: The refined-trajectory table a model folder may ship (computed by its training script).
REFINED_TRAJECTORY_FILE = "refined_trajectory.parquet"


def refined_trajectory(
    model_dir: str | Path,
    *,
    restrict: Sequence[str] = (),
    restrict_each: str | None = None,
    checkpoints: Sequence[int] | None = None,
    epsilon: float | None = None,
    gamma: float | None = None,
    nbeta: float | None = None,
    chains: int | None = None,
    draws: int | None = None,
    burnin: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    **run_kwargs: Any,
) -> pd.DataFrame:
    """Restricted λ̂ of every restriction at every checkpoint of a model folder, as ONE
    batched run (restrictions × checkpoints × chains).

    ``restrict`` (globs) and ``restrict_each`` ("layer" or "head") name the restrictions
    (:func:`lltools.targets.restrictions.resolve`); ``checkpoints`` selects positions in the
    step-sorted checkpoint list.  Sampler settings default to the card's ``default_sampler``.

    Returns
    -------
    DataFrame
        One row per (restriction, checkpoint): ``restriction, restricted_dim, checkpoint``,
        the summary columns, and the folder's ``metrics.csv`` columns for that checkpoint
        (``step``, train/validation loss, …).
    """
    folder = Path(model_dir)
    card = read_card(folder)
    defaults = {**{"chains": 4, "draws": 400, "burnin": 100}, **(card.get("default_sampler") or {})}
    chosen = {"epsilon": epsilon, "gamma": gamma, "nbeta": nbeta, "chains": chains, "draws": draws,
              "burnin": burnin, "batch_size": batch_size}
    s = {**defaults, **{k: v for k, v in chosen.items() if v is not None}}
    for key in ("epsilon", "gamma"):
        if s.get(key) is None:
            raise ValueError(f"{key} is not set and the model card gives no default")
    base = load_model_folder(folder, batch_size=s.get("batch_size"))
    paths = list_checkpoints(folder)
    if not paths:
        raise ValueError(f"no checkpoints found in {folder}")
    if checkpoints is not None:
        bad = [i for i in checkpoints if not -len(paths) <= i < len(paths)]
        if bad:
            raise ValueError(f"checkpoint indices {bad} out of range (model has {len(paths)})")
        paths = [paths[i] for i in checkpoints]
    centres = [(p.name, base.flatten(load_checkpoint(p))) for p in paths]
    restrictions = resolve(base.module, restrict, restrict_each)
    result = refined(base, restrictions, centres=centres, epsilon=s["epsilon"], gamma=s["gamma"],
                     nbeta=s.get("nbeta"), chains=int(s["chains"]), draws=int(s["draws"]),
                     burnin=int(s["burnin"]), seed=seed, **run_kwargs)
    table = result.table.rename(columns={"centre": "checkpoint"})
    metrics_path = folder / "metrics.csv"
    if metrics_path.exists():
        metrics = pd.read_csv(metrics_path)
        metrics["checkpoint"] = metrics["checkpoint"].map(lambda p: Path(str(p)).name)
        table = table.merge(metrics, on="checkpoint", how="left")
    return table
