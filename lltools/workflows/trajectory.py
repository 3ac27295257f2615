"""LLC trajectories: λ̂ at every training checkpoint with fixed sampler settings (primer §5).

All checkpoints share the network and data, so they run as ONE batched computation: each
checkpoint k contributes ``chains`` chains whose centre w*_k is that checkpoint's weights
(``centre`` has shape (K·chains, d); ``setting_index`` = checkpoint).  Groups of
checkpoints are formed only when K·chains would not fit in memory.

The table joins λ̂ per checkpoint with the logged train/validation loss and accuracy, the
geometric complexity GC = (1/|D|) Σ_x ‖∇_x f(x)‖²_F (Dherin et al.), and the run's
grokking severity GSM (seed 003 §6.4).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lltools.estimation.summary import summarize
from lltools.sampling.driver import last_item, run_chunks
from lltools.sampling.sgld import make_params
from lltools.targets.checkpoints import load_checkpoint
from lltools.targets.models import build_module, list_checkpoints, load_sample_model, read_card
from lltools.theory.training import geometric_complexity, grokking_severity
from lltools.workflows.estimate import _validate_counts, prepare_target, resolve_nbeta
from lltools.workflows.events import RunEvent

TRAJECTORY_FILE = "trajectory.parquet"


def _sampler_settings(card: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    settings = dict(card.get("default_sampler", {}))
    settings.update({k: v for k, v in overrides.items() if v is not None})
    missing = [k for k in ("gamma", "epsilon", "chains", "draws", "burnin") if settings.get(k) is None]
    if missing:
        raise ValueError(f"sampler settings missing: {', '.join(missing)}")
    return settings


def _groups(num_checkpoints: int, chains: int, max_chains: int) -> list[range]:
    per_group = max(1, max_chains // chains)
    return [range(s, min(s + per_group, num_checkpoints)) for s in range(0, num_checkpoints, per_group)]


def geometric_complexity_at(
    card: dict[str, Any], state: dict[str, torch.Tensor], inputs: torch.Tensor
) -> float:
    """GC of the checkpoint's model function on ``inputs`` (cheap comparison to λ̂)."""
    module = build_module(card["architecture"])
    module.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return float(geometric_complexity(module, inputs.to(torch.float32)))


def trajectory_stream(
    model_dir: str | Path,
    *,
    nbeta: float | None = None,
    gamma: float | None = None,
    epsilon: float | None = None,
    chains: int | None = None,
    draws: int | None = None,
    burnin: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    report_every: int | None = None,
    max_chains: int | None = None,
    with_geometric_complexity: bool = True,
    checkpoints: Sequence[int] | None = None,
) -> Iterator[RunEvent]:
    """Yield a :class:`~lltools.workflows.events.RunEvent` per report while sampling; the
    last one carries the table (``event.result``, one row per checkpoint: the rows of each
    group's :func:`~lltools.estimation.summary.summarize` table, joined with the logs).

    Parameters default to the model card's ``default_sampler``; ``checkpoints`` selects
    positions in the step-sorted checkpoint list (default: all).  See
    :func:`compute_trajectory` for the table's columns.
    """
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    s = _sampler_settings(card, {"nbeta": nbeta, "gamma": gamma, "epsilon": epsilon, "chains": chains,
                                 "draws": draws, "burnin": burnin, "batch_size": batch_size})
    chains_, draws_, burnin_ = int(s["chains"]), int(s["draws"]), int(s["burnin"])
    _validate_counts(chains_, draws_, burnin_, 1)
    base = load_sample_model(model_dir)
    target = prepare_target(base, batch_size=s.get("batch_size"), device=device, dtype=dtype)
    nb = resolve_nbeta(target, s.get("nbeta"))

    paths = list_checkpoints(model_dir)
    if not paths:
        raise ValueError(f"no checkpoints found in {model_dir}")
    if checkpoints is not None:
        bad = [i for i in checkpoints if not -len(paths) <= i < len(paths)]
        if bad:
            raise ValueError(f"checkpoint indices {bad} out of range (model has {len(paths)})")
        paths = [paths[i] for i in checkpoints]
    states = [load_checkpoint(p) for p in paths]
    centres = torch.stack([target.flatten(sd) for sd in states]).to(target.device, target.dtype)  # (K, d)

    # One batched run over every checkpoint by default: run_chunks steps the chains in
    # memory-sized batches by itself (and says so); ``max_chains`` splits into several runs.
    limit = max_chains or len(paths) * chains_
    groups = _groups(len(paths), chains_, limit)
    total_steps = (burnin_ + draws_) * len(groups)
    tables = []
    warned: dict[str, list[str]] = {}
    for g_idx, group in enumerate(groups):
        k = len(group)
        params = make_params(
            s["epsilon"], s["gamma"], nb, k * chains_, device=target.device, dtype=target.dtype
        )
        centre = centres[group.start:group.stop].repeat_interleave(chains_, dim=0)
        stream = run_chunks(
            target, params, num_draws=draws_, num_burnin=burnin_, seed=seed,
            chain_index=torch.arange(chains_).repeat(k),
            setting_index=torch.arange(k).repeat_interleave(chains_),
            centre=centre, report_every=report_every,
        )
        trace = None
        for trace in stream:
            if not trace.complete:
                yield RunEvent(
                    kind="trajectory",
                    steps_done=g_idx * (burnin_ + draws_) + int(trace.meta["steps_done"]),
                    steps_total=total_steps, trace=trace, settings=s, target=target,
                )
        assert trace is not None
        summary = summarize(trace)  # one Summary per group: a row per checkpoint
        table = summary.table.copy()
        table["checkpoint_index"] = [group.start + i for i in table["setting"]]
        warned.update({paths[group.start + int(sid)].name: list(msgs)
                       for sid, msgs in zip(table["setting"], summary.setting_warnings, strict=True)})
        tables.append(table)

    result = pd.concat(tables, ignore_index=True).drop(columns=["setting"])
    result["checkpoint"] = [paths[i].name for i in result["checkpoint_index"]]
    result["train_loss_at_wstar"] = target.full_loss(centres).detach().cpu().double().numpy()[
        result["checkpoint_index"].to_numpy()]
    result = _join_metrics(result, model_dir)
    if with_geometric_complexity:
        inputs = target.inputs if hasattr(target, "inputs") else None
        if inputs is not None:
            result["geometric_complexity"] = [
                geometric_complexity_at(card, states[i], inputs.cpu()) for i in result["checkpoint_index"]
            ]
    result["gsm"] = grokking_severity_of(_full_metrics(model_dir, result))
    result.attrs["settings"] = {**s, "nbeta": nb, "seed": seed, "device": str(target.device)}
    result.attrs["model"] = card.get("name", model_dir.name)
    result.attrs["warnings"] = warned  # checkpoint file -> its health warnings (health.advice)
    yield RunEvent(kind="trajectory", steps_done=total_steps, steps_total=total_steps, trace=trace,
                   settings=result.attrs["settings"], target=target, result=result)


def _join_metrics(table: pd.DataFrame, model_dir: Path) -> pd.DataFrame:
    metrics_path = model_dir / "metrics.csv"
    if not metrics_path.exists():
        return table
    metrics = pd.read_csv(metrics_path)
    metrics["checkpoint"] = metrics["checkpoint"].map(lambda p: Path(str(p)).name)
    return table.merge(metrics, on="checkpoint", how="left")


def _full_metrics(model_dir: Path, fallback: pd.DataFrame) -> pd.DataFrame:
    """The whole training log (GSM sums over every logged step, not only sampled ones)."""
    path = model_dir / "metrics.csv"
    return pd.read_csv(path) if path.exists() else fallback


def grokking_severity_of(table: pd.DataFrame) -> float:
    """GSM of the logged accuracies in ``table`` (NaN for models without accuracies)."""
    if not {"train_acc", "val_acc", "step"} <= set(table.columns):
        return float("nan")
    rows = table.dropna(subset=["train_acc", "val_acc"]).sort_values("step")
    if rows.empty:
        return float("nan")
    return float(grokking_severity(rows["step"].to_numpy(), rows["train_acc"].to_numpy(),
                                   rows["val_acc"].to_numpy()))


def compute_trajectory(model_dir: str | Path, **kwargs: Any) -> pd.DataFrame:
    """λ̂ at every checkpoint of a sample model, one row per checkpoint.

    Columns: ``checkpoint, checkpoint_index, step, epsilon, gamma, nbeta, llc_mean, llc_std,
    llc_sem, rhat, ess, acceptance, n_chains, n_diverged, train_loss_at_wstar``, the logged
    ``train_loss, val_loss, train_acc, val_acc``, ``geometric_complexity`` and ``gsm``.
    Keyword arguments are those of :func:`trajectory_stream`.
    """
    table = last_item(trajectory_stream(model_dir, **kwargs)).result
    return table.sort_values("checkpoint_index").reset_index(drop=True)
