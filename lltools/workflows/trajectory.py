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

import copy
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from lltools.estimation.summary import summarize
from lltools.sampling.driver import last_item, run_chunks
from lltools.sampling.sgld import make_params
from lltools.targets.base import Target, TargetError
from lltools.targets.checkpoints import load_checkpoint
from lltools.targets.models import list_checkpoints, load_sample_model, read_card
from lltools.targets.networks import NetworkTarget, StreamingNetworkTarget
from lltools.theory.training import geometric_complexity, grokking_severity
from lltools.workflows.estimate import _validate_counts, as_target, prepare_target, resolve_nbeta
from lltools.workflows.events import RunEvent

TRAJECTORY_FILE = "trajectory.parquet"


#: Sampler settings of a network run when neither the call nor the model card gives them.
NETWORK_DEFAULTS: dict[str, Any] = {"gamma": 100.0, "epsilon": 1e-4, "chains": 4, "draws": 500,
                                    "burnin": 100, "batch_size": 64}


def _sampler_settings(card: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The call's settings over the card's ``default_sampler`` over :data:`NETWORK_DEFAULTS`
    (``batch_size`` only from the call or the card)."""
    settings = {k: v for k, v in NETWORK_DEFAULTS.items() if k != "batch_size"}
    settings.update({k: v for k, v in (card.get("default_sampler") or {}).items() if v is not None})
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


def _groups(num_checkpoints: int, chains: int, max_chains: int) -> list[range]:
    per_group = max(1, max_chains // chains)
    return [range(s, min(s + per_group, num_checkpoints)) for s in range(0, num_checkpoints, per_group)]


def geometric_complexity_at(
    target: NetworkTarget, state: Mapping[str, torch.Tensor], inputs: torch.Tensor
) -> float:
    """GC of the checkpoint's model function on ``inputs`` (cheap comparison to λ̂): the
    target's module (float32) with the checkpoint's weights and buffers."""
    module = copy.deepcopy(target.module).to(device="cpu", dtype=torch.float32)
    module.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()})
    return float(geometric_complexity(module, inputs.to(torch.float32)))


def _has_plain_inputs(target: Target) -> bool:
    """Whether GC applies: (x, y) data with floating inputs evaluated by the module itself."""
    fields = getattr(target, "fields", None)
    return (fields is not None and fields.keys is None and getattr(target, "evaluate", None) is None
            and not isinstance(target, StreamingNetworkTarget) and fields.tensors[0].is_floating_point())


def _load_states(weights: Sequence[Any]) -> tuple[list[dict[str, torch.Tensor]], list[str]]:
    """State dicts and names of ``weights``: state dicts (named ``checkpoint i``) or files."""
    states, names = [], []
    for i, item in enumerate(weights):
        if isinstance(item, Mapping):
            states.append(dict(item))
            names.append(f"checkpoint {i}")
        else:
            states.append(load_checkpoint(item))
            names.append(Path(item).name)
    return states, names


def trajectory_stream(
    model_dir: str | Path | nn.Module,
    data: Any = None,
    *,
    loss: Any = None,
    evaluate: Any = None,
    weights: Sequence[Any] | None = None,
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

    ``model_dir`` is a model folder (its checkpoints, card defaults and ``metrics.csv``), or
    an ``nn.Module`` with ``data`` (and ``loss``/``evaluate``) and ``weights``: one state
    dict or checkpoint file per point of the trajectory.  Parameters default to the model
    card's ``default_sampler``, then :data:`NETWORK_DEFAULTS`; ``checkpoints`` selects
    positions in the (step-sorted) checkpoint list (default: all).  See
    :func:`compute_trajectory` for the table's columns.
    """
    folder: Path | None = None
    if isinstance(model_dir, nn.Module):
        if not weights:
            raise TargetError("a trajectory of a module needs weights=[state_dict or file, ...]")
        card: dict[str, Any] = {}
        base = as_target(model_dir, data, loss=loss, evaluate=evaluate, batch_size=batch_size)
        states, names = _load_states(weights)
    else:
        if data is not None or loss is not None or evaluate is not None or weights is not None:
            raise TargetError("data, loss, evaluate and weights apply to a module, not to a model folder")
        folder = Path(model_dir)
        card = read_card(folder)
        base = load_sample_model(folder)
        paths = list_checkpoints(folder)
        if not paths:
            raise ValueError(f"no checkpoints found in {folder} (a trajectory needs *.safetensors files "
                             "with a step in their metadata or name)")
        states, names = [], [p.name for p in paths]
    s = _sampler_settings(card, {"nbeta": nbeta, "gamma": gamma, "epsilon": epsilon, "chains": chains,
                                 "draws": draws, "burnin": burnin, "batch_size": batch_size})
    chains_, draws_, burnin_ = int(s["chains"]), int(s["draws"]), int(s["burnin"])
    _validate_counts(chains_, draws_, burnin_, 1)
    target = prepare_target(base, batch_size=s.get("batch_size"), device=device, dtype=dtype)
    nb = resolve_nbeta(target, s.get("nbeta"))

    positions = list(range(len(names)))
    if checkpoints is not None:
        bad = [i for i in checkpoints if not -len(names) <= i < len(names)]
        if bad:
            raise ValueError(f"checkpoint indices {bad} out of range (model has {len(names)})")
        positions = [positions[i] for i in checkpoints]
    names = [names[i] for i in positions]
    if folder is not None:
        states = [load_checkpoint(paths[i]) for i in positions]
    else:
        states = [states[i] for i in positions]
    centres = torch.stack([target.flatten(sd) for sd in states]).to(target.device, target.dtype)  # (K, d)

    # One batched run over every checkpoint by default: run_chunks steps the chains in
    # memory-sized batches by itself (and says so); ``max_chains`` splits into several runs.
    limit = max_chains or len(names) * chains_
    groups = _groups(len(names), chains_, limit)
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
        warned.update({names[group.start + int(sid)]: list(msgs)
                       for sid, msgs in zip(table["setting"], summary.setting_warnings, strict=True)})
        tables.append(table)

    result = pd.concat(tables, ignore_index=True).drop(columns=["setting"])
    result["checkpoint"] = [names[i] for i in result["checkpoint_index"]]
    result["train_loss_at_wstar"] = target.full_loss(centres).detach().cpu().double().numpy()[
        result["checkpoint_index"].to_numpy()]
    if folder is not None:
        result = _join_metrics(result, folder)
    if with_geometric_complexity and _has_plain_inputs(target):
        inputs = target.inputs.cpu()  # type: ignore[attr-defined]
        result["geometric_complexity"] = [
            geometric_complexity_at(target, states[i], inputs) for i in result["checkpoint_index"]  # type: ignore[arg-type]
        ]
    result["gsm"] = grokking_severity_of(_full_metrics(folder, result) if folder is not None else result)
    result.attrs["settings"] = {**s, "nbeta": nb, "seed": seed, "device": str(target.device)}
    result.attrs["model"] = card.get("name") or (folder.name if folder is not None else target.name)
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


def compute_trajectory(model_dir: str | Path | nn.Module, data: Any = None, **kwargs: Any) -> pd.DataFrame:
    """λ̂ at every checkpoint of a model folder (or of a module given ``data`` and
    ``weights=[...]``), one row per checkpoint.

    Columns: ``checkpoint, checkpoint_index, step, epsilon, gamma, nbeta, llc_mean, llc_std,
    llc_sem, rhat, ess, acceptance, num_chains, n_diverged, train_loss_at_wstar``, the logged
    ``train_loss, val_loss, train_acc, val_acc``, ``geometric_complexity`` and ``gsm``.
    Keyword arguments are those of :func:`trajectory_stream`.
    """
    table = last_item(trajectory_stream(model_dir, data, **kwargs)).result
    return table.sort_values("checkpoint_index").reset_index(drop=True)
