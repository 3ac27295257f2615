"""`lltools runs export ID run.nc`: a run as an ArviZ-convention netCDF DataTree."""

from __future__ import annotations

import json
from pathlib import Path

import arviz_base
import numpy as np
import pytest
import torch
import xarray as xr
from arviz_stats.base import array_stats
from typer.testing import CliRunner

from lltools.cli.main import app
from lltools.storage.index import RunStore
from lltools.storage.recording import record_stream
from lltools.targets.base import FunctionTarget
from lltools.workflows.sweep import sweep_stream

TARGET = {"kind": "potential", "spec": "x**2 + y**2"}
GRID = {"epsilon": [1e-3, 3e-3], "gamma": [1.0], "nbeta": [10.0], "chains": 3, "draws": 120,
        "burnin": 40, "seed": 5, "device": "cpu"}  # fmt: skip


def quadratic() -> FunctionTarget:
    return FunctionTarget(lambda w: (w**2).sum(1), torch.zeros(2), name="x**2 + y**2")


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunStore, str]:
    runs = RunStore(tmp_path_factory.mktemp("store"))
    recorder = record_stream(runs, sweep_stream(quadratic(), report_every=60, **GRID), kind="sweep",
                             settings=GRID, target=TARGET, flush_interval=0)
    for _ in recorder:
        pass
    return runs, recorder.run_id


def test_arviz_opens_the_export_and_it_holds_the_run(sweep_run, tmp_path: Path) -> None:
    runs, run_id = sweep_run
    out = runs.export(run_id, tmp_path / "run.nc")
    tree = arviz_base.convert_to_datatree(str(out))  # how an ArviZ user opens it
    run = runs.load_run(run_id)

    post = tree["posterior"]
    assert dict(post.sizes) == {"chain": 3, "draw": 120, "setting": 2}
    np.testing.assert_allclose(post["epsilon"].values, GRID["epsilon"])
    np.testing.assert_array_equal(post["step"].values, np.arange(40, 160))
    assert dict(tree["warmup_posterior"].sizes)["warmup_draw"] == 40
    # Every stored loss lands in its (chain-in-setting, step, setting) cell.
    rows = run.traces.merge(run.chains[["chain", "setting", "chain_in_setting"]], on=["chain", "setting"])
    draws = rows[rows["step"] >= 40]
    cell = post["loss"].values[draws["chain_in_setting"], draws["step"] - 40, draws["setting"]]
    np.testing.assert_array_equal(cell, draws["loss"].to_numpy())
    # The running λ̂'s last draw, averaged over a setting's chains, is that setting's λ̂.
    final = post["llc"].isel(draw=-1).mean("chain").values
    nbeta, loss_init = 10.0, run.chains.groupby("setting")["loss_init"].first().to_numpy()
    by_setting = draws.groupby("setting")["loss"].mean().to_numpy()
    np.testing.assert_allclose(final, nbeta * (by_setting - loss_init), rtol=1e-9)
    np.testing.assert_allclose(final, [row["llc_mean"] for row in run.summary["table"]], rtol=1e-6)

    assert tree.attrs["inference_library"] == "lltools" and tree.attrs["run_id"] == run_id
    assert json.loads(tree.attrs["settings"])["epsilon"] == GRID["epsilon"]
    assert json.loads(tree.attrs["target"]) == TARGET
    assert not tree["sample_stats"]["diverging"].values.any()
    # ArviZ diagnostics run on it, per setting (chains of different settings never mix).
    ess = array_stats.ess(post["loss"].values, chain_axis=0, draw_axis=1)
    assert ess.shape == (2,) and np.isfinite(ess).all()


def test_a_diverged_chain_is_marked_from_its_step(tmp_path: Path) -> None:
    runs = RunStore(tmp_path / "store")
    steep = FunctionTarget(lambda w: (w**2).sum(1) * torch.tensor([1.0, 1.0, 1e6])[: w.shape[0]],
                           torch.zeros(2), name="steep")
    settings = {**GRID, "epsilon": [1e-3], "chains": 3, "nbeta": [10.0]}
    # Chain 2 alone is on a loss 1e6 times steeper: it diverges, the others do not.
    recorder = record_stream(runs, sweep_stream(steep, report_every=60, **settings), kind="sweep",
                             settings=settings, target=TARGET, flush_interval=0)
    for _ in recorder:
        pass
    tree = xr.open_datatree(runs.export(recorder.run_id, tmp_path / "run.nc"), engine="h5netcdf")
    at = tree["chains"]["diverged_at"].values[:, 0]
    assert at[0] == -1 and at[1] == -1 and at[2] >= 0
    diverging = tree["sample_stats"]["diverging"].values[:, :, 0]
    steps = tree["posterior"]["step"].values
    np.testing.assert_array_equal(diverging[2], steps >= at[2])
    assert not diverging[:2].any()
    assert np.isnan(tree["posterior"]["llc"].values[2, :, 0]).all()
    assert np.isfinite(tree["posterior"]["llc"].values[:2, :, 0]).all()


def test_cli_export_nc(sweep_run, tmp_path: Path) -> None:
    runs, run_id = sweep_run
    out = tmp_path / "cli.nc"
    result = CliRunner().invoke(app, ["runs", "export", run_id, str(out), "--store", str(runs.root)])
    assert result.exit_code == 0, result.output
    assert xr.open_datatree(out, engine="h5netcdf")["posterior"]["loss"].shape == (3, 120, 2)
