"""A user's own model (tests/data/user_dln, not a sample model) through the workflows.

λ̂ of the deep linear network 4 → 3 → 2 at its rank-1 teacher against Aoyagi's λ = 7/2
(lltools.theory.closed_forms.deep_linear_llc), through ``lltools.estimate(model,
DataLoader)`` and the CLI; trajectories of a module and of a folder; Ray shards of a folder
that travels to the workers.

Settings of the statistical checks: n = 1000 (nβ = n/log n ≈ 144.8), minibatch m = 100,
ε = 2e-4 (MALA acceptance ≈ 0.997), γ = 1, 8 chains × (300 burn-in + 1000 draws), float32.
Bias allowance 0.3 (9 % of λ): over seeds 0–5 the estimates were 3.35, 3.27, 3.32, 3.22,
3.46, 3.23 (SEM 0.13–0.31), a mean bias of −0.19 ± 0.04; at finite nβ and minibatch
noise λ̂ sits a little below λ.  Checked to fail when the code is wrong: with the x and y
rows of a minibatch misaligned (each field gathered with its own indices), seed 0 gives
λ̂ = 77.0 ± 0.15.  (Scaling the loss, e.g. summing instead of averaging over the minibatch,
leaves λ̂ nearly unchanged, 3.92 ± 0.15, as it should: λ does not depend on the loss scale.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import lltools
from lltools.targets.checkpoints import save_checkpoint
from lltools.targets.folders import pack_folder
from lltools.targets.models import load_model_folder
from lltools.targets.specs import TargetSpec
from lltools.theory.closed_forms import deep_linear_llc
from lltools.workflows import distributed
from lltools.workflows.sweep import sweep
from lltools.workflows.trajectory import compute_trajectory
from tests.helpers import run_cli

USER_DLN = Path(__file__).resolve().parents[1] / "data" / "user_dln"
LAMBDA = deep_linear_llc([4, 3, 2], 1)[0]
BIAS = 0.3
STAT = {"epsilon": 2e-4, "gamma": 1.0, "chains": 8, "draws": 1000, "burnin": 300}
TINY = {"epsilon": 2e-4, "gamma": 1.0, "chains": 2, "draws": 8, "burnin": 2, "seed": 1, "device": "cpu"}


def test_aoyagi_lambda_of_the_user_network() -> None:
    assert LAMBDA == 3.5


@pytest.mark.slow
def test_llc_through_the_api_with_a_dataloader_matches_aoyagi() -> None:
    target = load_model_folder(USER_DLN)
    loader = DataLoader(TensorDataset(*target.data), batch_size=100, shuffle=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = lltools.estimate(target.module, loader, **STAT, seed=0, device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert result.settings.batch_size == 100 and result.num_chains == 8 and not result.diverged_chains
    assert result.acceptance > 0.95
    assert abs(result.llc_mean - LAMBDA) < 4 * result.llc_sem + BIAS, (result.llc_mean, result.llc_sem)


@pytest.mark.slow
def test_llc_through_the_cli_matches_aoyagi() -> None:
    out = run_cli("estimate", "--model", str(USER_DLN), "--json", "--no-progress", "--batch-size", "100",
                  "--device", "cpu", "--seed", "1", *[f"--{k}={v}" for k, v in STAT.items()])
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["settings"]["batch_size"] == 100 and result["target"]["n"] == 1000
    assert result["settings"]["nbeta"] == pytest.approx(1000 / torch.log(torch.tensor(1000.0)).item())
    assert abs(result["llc_mean"] - LAMBDA) < 4 * result["llc_sem"] + BIAS, result


def _with_checkpoints(tmp_path: Path) -> Path:
    """A copy of the user folder with two training checkpoints (steps 10 and 20)."""
    folder = shutil.copytree(USER_DLN, tmp_path / "user_dln", ignore=shutil.ignore_patterns("__pycache__"))
    state = load_model_folder(folder).module.state_dict()
    for step, shift in ((10, 0.1), (20, 0.0)):
        save_checkpoint(folder / "checkpoints" / f"step_{step}.safetensors",
                        {k: v + shift for k, v in state.items()}, metadata={"step": str(step)})
    return folder


def test_trajectory_of_a_folder_and_of_a_module_agree(tmp_path: Path) -> None:
    """`lltools trajectory DIR` on a user folder (no card, no metrics) and
    ``lltools.trajectory(module, data, weights=[...])`` give the same λ̂ per checkpoint."""
    folder = _with_checkpoints(tmp_path)
    out = run_cli("trajectory", str(folder), "--out", str(tmp_path / "t.csv"), "--no-progress",
                  "--batch-size", "50", *[f"--{k}={v}" for k, v in TINY.items()])
    assert out.returncode == 0, out.stderr
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table["checkpoint"]) == ["step_10.safetensors", "step_20.safetensors"]
    target = load_model_folder(folder)
    files = sorted((folder / "checkpoints").glob("*.safetensors"))
    by_module = lltools.trajectory(target.module, target.data, weights=files, batch_size=50, **TINY)
    assert by_module["llc_mean"].tolist() == pytest.approx(table["llc_mean"].tolist(), rel=1e-6)
    assert "geometric_complexity" in by_module.columns


def test_a_sweep_shard_unpacks_a_folder_it_cannot_read(tmp_path: Path) -> None:
    """A worker without the folder at its path uses the shipped archive: same rows as local."""
    folder = _with_checkpoints(tmp_path)
    archive = pack_folder(folder)
    spec = TargetSpec.model(folder).to_dict()
    local = sweep(load_model_folder(folder), epsilon=[1e-4, 2e-4], gamma=[1.0], nbeta=[50.0], batch_size=50,
                  **{k: v for k, v in TINY.items() if k not in ("epsilon", "gamma")})
    moved = tmp_path / "elsewhere"
    folder.rename(moved)  # the worker cannot read the original path
    part = local.settings.iloc[[1]].reset_index(drop=True)
    trace = distributed.sweep_shard(spec, part, chains=2, draws=8, burnin=2, seed=1, device="cpu",
                                    batch_size=50, folder_archive=archive)
    assert torch.equal(trace.loss, local.trace.loss[2:4])


@pytest.mark.slow
def test_ray_sweep_and_trajectory_of_a_user_folder_equal_local(ray_local, tmp_path: Path) -> None:
    folder = _with_checkpoints(tmp_path)
    grid = {"epsilon": [1e-4, 2e-4], "gamma": [1.0, 10.0], "nbeta": [50.0]}
    kwargs = {**{k: v for k, v in TINY.items() if k not in ("epsilon", "gamma")}, "batch_size": 50}
    local = sweep(load_model_folder(folder), **grid, **kwargs)
    remote = distributed.sweep_distributed(TargetSpec.model(folder), num_shards=2, **grid, **kwargs)
    pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)
    # the CLI's `trajectory --ray` (trajectory_distributed, one task per checkpoint) joins the running Ray;
    # λ̂ per checkpoint is exact, the ESS-based SEM of a row may differ in its last bits when the rows
    # are summarised in separate groups
    local_traj = compute_trajectory(folder, **TINY, batch_size=50)
    out = run_cli("trajectory", str(folder), "--ray", "local", "--out", str(tmp_path / "t.csv"),
                  "--batch-size", "50", "--no-progress", *[f"--{k}={v}" for k, v in TINY.items()])
    assert out.returncode == 0, out.stderr
    remote = pd.read_csv(tmp_path / "t.csv")
    assert remote["checkpoint"].tolist() == local_traj["checkpoint"].tolist()
    assert remote["llc_mean"].tolist() == pytest.approx(local_traj["llc_mean"].tolist(), rel=1e-6)
