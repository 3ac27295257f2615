"""Split big runs: into memory-sized chain batches locally, or into shards over a Ray cluster.

Why splitting is exact
----------------------
Every chain's random stream depends only on the run seed and its index *within its
setting* (:mod:`lltools.base.rng`), never on which other chains share the batch, and chains never
interact.  So a run split into chain batches — run one after another on this device, or as
Ray tasks on other machines — and gathered back gives the *same* numbers as the one batched
run (for the eager step: bit for bit; ``tests/test_distributed.py`` checks it).

Local chunking
--------------
:func:`max_chains_that_fit` inverts the memory estimate of :func:`lltools.sampling.driver.run_chunks`
(:mod:`lltools.base.memory`) to the largest chain batch that fits the device's free memory
(free CUDA memory, or a share of available host RAM), and :func:`run_batched` runs a
:class:`~lltools.sampling.sgld.SGLDParams` batch in such pieces and concatenates the traces,
announcing the batch size when it has to split (logger ``lltools``, and stderr).

Ray (optional extra ``distributed = ["ray>=2.9"]``)
---------------------------------------------------
:func:`sweep_distributed` shards a γ × ε × nβ grid by settings, :func:`trajectory_distributed`
shards a model folder's checkpoints (the folder's files travel with the tasks, so workers
need not share a file system); each shard is one Ray task that runs its part as a
batched computation on its worker's device (CUDA when the task was given a GPU and the
worker has one, else CPU) and returns host tensors; the driver gathers them into the same
tidy DataFrame as :func:`lltools.workflows.sweep.sweep` /
:func:`lltools.workflows.trajectory.compute_trajectory`.
See ``docs/distributed.md`` for pointing it at a real cluster.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from lltools.base import memory
from lltools.base.devices import resolve_device
from lltools.sampling.driver import MAX_POSITION_DIM, MAX_POSITION_VALUES, recorded_steps, run
from lltools.sampling.kernel import RMSPROP_DECAY, RMSPROP_DELTA
from lltools.sampling.sgld import SGLDParams
from lltools.sampling.trace import Trace
from lltools.targets.base import Target
from lltools.targets.folders import pack_folder, unpack_folder
from lltools.targets.models import list_checkpoints
from lltools.targets.specs import TargetSpec
from lltools.workflows.estimate import _validate_counts, prepare_target
from lltools.workflows.sweep import SweepResult, expand_grid, grid
from lltools.workflows.trajectory import compute_trajectory, grokking_severity_of

#: What a Ray task is told to sample: a :class:`TargetSpec` (or its stored dict, or a
#: potential expression), or a Target object itself (pickled to the workers).
TargetLike = str | dict[str, Any] | TargetSpec | Target


# ---------------------------------------------------------------------------- local chunking
def max_chains_that_fit(
    target: Target,
    num_recorded: int,
    *,
    device: torch.device | str | None = None,
    record_positions: bool | None = None,
    budget_bytes: int | None = None,
) -> int:
    """The largest number of chains whose sampling run fits the device's memory budget.

    Inverts :func:`lltools.base.memory.sampling_bytes` as used by :func:`lltools.sampling.driver.run_chunks`:
    per chain, two (T,) trace rows, ~10 working (d,) vectors and the target's
    ``bytes_per_chain`` (activations of a network); positions are capped at
    ``MAX_POSITION_VALUES`` values in total.

    Parameters
    ----------
    target : Target
    num_recorded : int
        Trace columns per chain (see :func:`lltools.sampling.driver.recorded_steps`).
    device : optional
        Default: the target's device.
    record_positions : bool, optional
        Default as in ``run_chunks``: when d ≤ 16.
    budget_bytes : int, optional
        Override the budget (default :func:`lltools.base.memory.available_bytes`).

    Returns
    -------
    int
        At least 1 (a single chain that does not fit is left to ``run_chunks`` to refuse).
    """
    device = torch.device(device) if device is not None else target.device
    itemsize = target.w_star.element_size()
    if record_positions is None:
        record_positions = target.dim <= MAX_POSITION_DIM
    budget = memory.available_bytes(device) if budget_bytes is None else int(budget_bytes)
    fixed = MAX_POSITION_VALUES * itemsize if record_positions else 0
    per_chain = 2 * num_recorded * itemsize + memory.WORKING_VECTORS * target.dim * itemsize
    per_chain += target.bytes_per_chain
    return max(1, int((budget - fixed) // max(per_chain, 1)))


def concat_traces(traces: Sequence[Trace]) -> Trace:
    """Traces of disjoint chain batches of the same run, concatenated along the chains.

    Positions are kept only when every part recorded them at the same steps (their
    thinning depends on the batch size); ``meta`` is the first part's.
    """
    if not traces:
        raise ValueError("nothing to concatenate")
    if len(traces) == 1:
        return traces[0]
    first = traces[0]
    for t in traces[1:]:
        if not torch.equal(t.steps.cpu(), first.steps.cpu()) or t.num_burnin != first.num_burnin:
            raise ValueError("traces to concatenate must record the same steps")

    def cat(name: str) -> Tensor:
        return torch.cat([getattr(t, name) for t in traces])

    positions = position_steps = None
    if all(t.positions is not None for t in traces) and all(
        torch.equal(t.position_steps.cpu(), first.position_steps.cpu()) for t in traces  # type: ignore[union-attr]
    ):
        positions, position_steps = cat("positions"), first.position_steps
    return Trace(
        loss=cat("loss"),
        acceptance=cat("acceptance"),
        steps=first.steps,
        loss_init=cat("loss_init"),
        diverged_at=cat("diverged_at"),
        params=SGLDParams.cat([t.params for t in traces]),
        chain_index=cat("chain_index"),
        setting_index=cat("setting_index"),
        num_burnin=first.num_burnin,
        num_steps_total=first.num_steps_total,
        positions=positions,
        position_steps=position_steps,
        complete=all(t.complete for t in traces),
        meta=dict(first.meta),
    )


def run_batched(
    target: Target,
    params: SGLDParams,
    *,
    num_draws: int,
    num_burnin: int = 0,
    thinning: int = 1,
    chain_index: Tensor | None = None,
    setting_index: Tensor | None = None,
    centre: Tensor | None = None,
    max_chains: int | None = None,
    quiet: bool = False,
    **run_kwargs: Any,
) -> Trace:
    """:func:`lltools.sampling.driver.run` in chain batches that fit memory; the same trace as one run.

    ``max_chains`` defaults to :func:`max_chains_that_fit`.  When the run has to be split
    the batch size is announced (see :func:`lltools.base.memory.announce`) unless ``quiet``.  Extra keyword
    arguments go to :func:`lltools.sampling.driver.run` (``seed``, ``fused``, ...).
    """
    num_chains = params.num_chains
    num_recorded = int(recorded_steps(num_burnin, num_draws, thinning).numel())
    if max_chains is None:
        max_chains = max_chains_that_fit(target, num_recorded,
                                         record_positions=run_kwargs.get("record_positions"))
    if chain_index is None:
        chain_index = torch.arange(num_chains)
    if setting_index is None:
        setting_index = torch.zeros(num_chains, dtype=torch.int64)
    common = {"num_draws": num_draws, "num_burnin": num_burnin, "thinning": thinning, **run_kwargs}
    if num_chains <= max_chains:
        return run(target, params, chain_index=chain_index, setting_index=setting_index, centre=centre,
                   **common)
    batches = math.ceil(num_chains / max_chains)
    if not quiet:
        memory.announce(f"{num_chains:,} chains do not fit {target.device} memory at once; running "
                 f"{batches} batches of at most {max_chains:,} chains (same results as one batch)")
    parts = []
    for start in range(0, num_chains, max_chains):
        sl = slice(start, min(start + max_chains, num_chains))
        part_centre = centre[sl] if centre is not None and centre.ndim == 2 else centre
        trace = run(target, params.take(sl), chain_index=chain_index[sl],
                    setting_index=setting_index[sl], centre=part_centre, **common)
        parts.append(trace)
    return concat_traces(parts)


# ---------------------------------------------------------------------------- targets
def resolve_target(spec: TargetLike, folder_archive: bytes | None = None) -> Target:
    """A :class:`Target` from a :class:`~lltools.targets.specs.TargetSpec`, its stored dict
    (``{"kind": "potential", "spec": ...}`` or ``{"kind": "model", "path": ..., "checkpoint":
    ...}``), a potential expression or built-in name (str), or a Target itself.

    ``folder_archive`` (:func:`lltools.targets.folders.pack_folder` of a model folder) is
    unpacked and used when the spec's folder is not readable here (a Ray worker on another
    machine); a checkpoint inside the folder is found at the same place in the copy."""
    if isinstance(spec, Target):
        return spec
    parsed = TargetSpec.parse(spec)
    if parsed.kind == "model" and folder_archive is not None:
        parsed = _local_spec(parsed, folder_archive)
    return parsed.build()


def _local_spec(spec: TargetSpec, folder_archive: bytes) -> TargetSpec:
    """``spec`` pointing at a local copy of its folder when the folder is not here."""
    folder = Path(str(spec.path))
    if folder.exists():
        return spec
    local = local_folder(str(folder), folder_archive)
    checkpoint = spec.checkpoint
    if checkpoint is not None and Path(checkpoint).is_relative_to(folder):
        checkpoint = str(Path(local) / Path(checkpoint).relative_to(folder))
    return TargetSpec.model(local, checkpoint)


def local_folder(path: str, folder_archive: bytes | None) -> str:
    """``path`` when readable here, else the unpacked copy of ``folder_archive``."""
    if folder_archive is None or Path(path).exists():
        return path
    return str(unpack_folder(folder_archive))


def _archive_of(spec: TargetLike, ship_folder: bool) -> bytes | None:
    """The packed model folder of a model spec (what travels to the workers), else None."""
    if not ship_folder or isinstance(spec, Target):
        return None
    parsed = TargetSpec.parse(spec)
    if parsed.kind != "model" or parsed.path is None:
        return None
    return pack_folder(parsed.path)


def _shard_ranges(count: int, shards: int) -> list[range]:
    """``count`` items in ``shards`` contiguous, nearly equal ranges (no empty ones)."""
    shards = max(1, min(shards, count))
    edges = np.linspace(0, count, shards + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


# ---------------------------------------------------------------------------- shard bodies
def _worker_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return resolve_device(device)


def sweep_shard(
    target_spec: TargetLike,
    settings: pd.DataFrame,
    *,
    chains: int,
    draws: int,
    burnin: int,
    thinning: int = 1,
    batch_size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    max_chains: int | None = None,
    rmsprop_decay: float = RMSPROP_DECAY,
    rmsprop_delta: float = RMSPROP_DELTA,
    folder_archive: bytes | None = None,
    **run_kwargs: Any,
) -> Trace:
    """Run some rows of a sweep's settings frame (with their global ``setting`` numbers) as
    one batched computation on this machine; the host trace (what a Ray task returns).
    ``folder_archive``: see :func:`resolve_target`."""
    target = prepare_target(resolve_target(target_spec, folder_archive), batch_size=batch_size,
                            device=_worker_device(device), dtype=dtype)
    params, chain_index, _ = expand_grid(settings, chains, device=target.device, dtype=target.dtype,
                                         rmsprop_decay=rmsprop_decay, rmsprop_delta=rmsprop_delta)
    setting_numbers = torch.tensor(settings["setting"].to_list(), dtype=torch.int64)
    setting_index = setting_numbers.repeat_interleave(chains)
    trace = run_batched(target, params, num_draws=draws, num_burnin=burnin, thinning=thinning, seed=seed,
                        chain_index=chain_index, setting_index=setting_index, max_chains=max_chains,
                        **run_kwargs)
    return trace.cpu()


def trajectory_shard(model_dir: str | Path, checkpoints: Sequence[int], folder_archive: bytes | None = None,
                     **kwargs: Any) -> pd.DataFrame:
    """:func:`lltools.workflows.trajectory.compute_trajectory` for some checkpoints (global
    indices); ``folder_archive`` is used when ``model_dir`` is not readable here."""
    if kwargs.get("device") in (None, "auto"):
        kwargs["device"] = _worker_device(None)
    table = compute_trajectory(local_folder(str(model_dir), folder_archive), checkpoints=list(checkpoints),
                               **kwargs)
    table["checkpoint_index"] = [int(checkpoints[i]) for i in table["checkpoint_index"]]
    return table


# ---------------------------------------------------------------------------- Ray
def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - exercised when ray is absent
        raise ImportError("Ray is not installed: pip install 'lltools[distributed]'") from exc
    return ray


def connect(address: str | None = None, **init_kwargs: Any) -> Any:
    """Connect to (or start) Ray once: ``address`` "auto" (a running cluster, e.g. after
    ``ray start --head``), "ray://host:10001" (Ray Client), a "host:port" GCS address, or
    None / "local" for a local instance.  Returns the ``ray`` module."""
    ray = _ray()
    if not ray.is_initialized():
        if address in (None, "", "local"):
            ray.init(**init_kwargs)
        else:
            ray.init(address=address, **init_kwargs)
    return ray


def _default_shards(ray: Any, gpus_per_task: float) -> int:
    resources = ray.cluster_resources()
    if gpus_per_task > 0:
        return max(1, int(resources.get("GPU", 0) // gpus_per_task))
    return max(1, int(resources.get("CPU", 1)))


def _gpus_per_task(ray: Any, device: str | torch.device | None, num_gpus: float | None) -> float:
    """GPUs each task reserves: ``num_gpus`` if given; 1 for device "cuda"; 0 for "cpu";
    for None/"auto", 1 when the cluster has GPUs (so each shard runs on its worker's GPU)."""
    if num_gpus is not None:
        return float(num_gpus)
    if device is None or str(device) == "auto":
        return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    return 1.0 if torch.device(str(device)).type == "cuda" else 0.0


def sweep_distributed(
    target_spec: TargetLike,
    *,
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
    address: str | None = None,
    num_shards: int | None = None,
    num_cpus: float = 1,
    num_gpus: float | None = None,
    max_chains: int | None = None,
    ship_folder: bool = True,
    **run_kwargs: Any,
) -> Any:
    """A γ × ε × nβ sweep sharded by settings over a Ray cluster; the same
    :class:`~lltools.workflows.sweep.SweepResult` (table and trace) as :func:`lltools.workflows.sweep.sweep`.

    Parameters
    ----------
    target_spec : str, dict or Target
        See :func:`resolve_target`.  Specs (a potential expression, or a ``{"kind": "model",
        "path": ...}`` dict whose path every worker can read) travel better than objects.
    epsilon, gamma, nbeta, chains, draws, burnin, thinning, batch_size, seed, dtype
        As for :func:`lltools.workflows.sweep.sweep`.
    device : optional
        Each worker's device: None/"auto" = its GPU if the task has one, else CPU (tasks
        reserve one GPU each when the cluster has GPUs); "cuda" reserves one GPU per task,
        "cpu" none (``num_gpus`` overrides).
    address : str, optional
        Ray address (see :func:`connect`); None starts/uses a local instance.
    num_shards : int, optional
        Number of tasks (default: the cluster's CPUs, or GPUs when tasks take GPUs; never
        more than the number of settings).
    num_cpus, num_gpus : float
        Ray resources per task.
    max_chains : int, optional
        Chain-batch limit inside each task (default: what fits the worker's memory).
    ship_folder : bool
        For a model folder: send the folder's files with the tasks (put once in Ray's
        object store), used by workers that cannot read it at its path.
    **run_kwargs
        Passed to :func:`lltools.sampling.driver.run` in each task (e.g. ``fused=True``).
    """
    settings = grid(epsilon, gamma, nbeta, sampler)
    _validate_counts(chains * len(settings), draws, burnin, thinning)
    ray = connect(address)
    gpus = _gpus_per_task(ray, device, num_gpus)
    shards = _shard_ranges(len(settings), num_shards or _default_shards(ray, gpus))
    task = ray.remote(num_cpus=num_cpus, num_gpus=gpus)(sweep_shard)
    kwargs = {"chains": chains, "draws": draws, "burnin": burnin, "thinning": thinning,
              "batch_size": batch_size, "seed": seed, "device": device, "dtype": dtype,
              "max_chains": max_chains, **run_kwargs}
    archive = _archive_of(target_spec, ship_folder)
    if archive is not None:
        kwargs["folder_archive"] = ray.put(archive)
    spec_ref = ray.put(target_spec)
    futures = [task.remote(spec_ref, settings.iloc[list(r)].reset_index(drop=True), **kwargs) for r in shards]
    traces = ray.get(futures)
    trace = concat_traces(traces)
    trace.meta["shards"] = len(shards)
    return SweepResult.from_trace(trace, settings)


def trajectory_distributed(
    model_dir: str | Path,
    *,
    address: str | None = None,
    num_shards: int | None = None,
    num_cpus: float = 1,
    num_gpus: float | None = None,
    ship_folder: bool = True,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`lltools.workflows.trajectory.compute_trajectory` sharded by checkpoints over Ray.

    Each task computes the rows of its checkpoints (``compute_trajectory(...,
    checkpoints=...)``); the driver concatenates them in checkpoint order and recomputes the
    run-level grokking severity ``gsm`` over all rows — the same table as a local run.
    The folder's files travel with the tasks (``ship_folder``) and are used by workers
    that cannot read ``model_dir`` at its path.  Other keyword
    arguments are those of ``compute_trajectory`` (``draws``, ``chains``, ``seed``,
    ``device``, ...).
    """
    model_dir = Path(model_dir).resolve()
    count = len(list_checkpoints(model_dir))
    if count == 0:
        raise ValueError(f"no checkpoints found in {model_dir}")
    ray = connect(address)
    gpus = _gpus_per_task(ray, kwargs.get("device"), num_gpus)
    shards = _shard_ranges(count, num_shards or _default_shards(ray, gpus))
    task = ray.remote(num_cpus=num_cpus, num_gpus=gpus)(trajectory_shard)
    archive = ray.put(pack_folder(model_dir)) if ship_folder else None
    tables = ray.get([task.remote(str(model_dir), list(r), archive, **kwargs) for r in shards])
    result = pd.concat(tables, ignore_index=True).sort_values("checkpoint_index").reset_index(drop=True)
    if "gsm" in result.columns:
        result["gsm"] = grokking_severity_of(result)
    result.attrs = dict(tables[0].attrs)
    result.attrs["shards"] = len(shards)
    return result
