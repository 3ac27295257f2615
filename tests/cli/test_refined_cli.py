"""`lltools estimate --restrict/--restrict-each/--data-subset` and `lltools trajectory
--restrict-each`: refined LLCs from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
USER_DLN = str(ROOT / "tests" / "data" / "user_dln")
TRANSFORMER = str(ROOT / "sample_models" / "induction_transformer")
QUICK = ["--draws", "30", "--burnin", "10", "--chains", "2", "--no-progress"]


def invoke(*args: str):
    """The console entry point in-process: stdout, stderr and the exit status."""
    proc = run_cli(*args)
    proc.output = proc.stdout + proc.stderr
    return proc


def test_restrict_each_layer_json_has_one_row_per_layer() -> None:
    result = invoke("estimate", "--model", USER_DLN, "--restrict-each", "layer", "--json", *QUICK)
    assert result.returncode == 0, result.output
    doc = json.loads(result.stdout)
    rows = doc["table"]
    assert [(r["restriction"], r["restricted_dim"]) for r in rows] == [("0", 12), ("1", 6)]
    assert all(r["data_subset"] is None and "llc_mean" in r and "llc_sem" in r for r in rows)


def test_globs_are_repeatable_and_match_restrict_each() -> None:
    by_glob = json.loads(invoke("estimate", "--model", USER_DLN, "--restrict", "0.*", "--restrict", "1.*",
                                "--json", *QUICK).stdout)["table"]
    each = json.loads(invoke("estimate", "--model", USER_DLN, "--restrict-each", "layer", "--json",
                             *QUICK).stdout)["table"]
    assert [r["llc_mean"] for r in by_glob] == [r["llc_mean"] for r in each]  # same masks, same seeds


def test_transformer_heads_and_data_subset() -> None:
    result = invoke("estimate", "--model", TRANSFORMER, "--restrict-each", "head",
                    "--data-subset", "short_span", "--json", "--draws", "5", "--burnin", "2",
                    "--chains", "1", "--batch-size", "8", "--no-progress")
    assert result.returncode == 0, result.output
    rows = json.loads(result.stdout)["table"]
    assert [r["restriction"] for r in rows] == ["layers.0.head0", "layers.0.head1", "layers.1.head0",
                                                "layers.1.head1"]
    assert {r["restricted_dim"] for r in rows} == {2048}
    assert {r["data_subset"] for r in rows} == {"short_span"}


@pytest.mark.parametrize(("args", "message"), [
    (("--model", USER_DLN, "--restrict", "decoder.*"), "matches no parameter"),
    (("--model", USER_DLN, "--restrict-each", "head"), "no attention heads"),
    (("--model", USER_DLN, "--restrict-each", "block"), "restrict-each must be one of"),
    (("--model", USER_DLN, "--data-subset", "odd"), "defines no subsets"),
    (("--model", TRANSFORMER, "--data-subset", "odd"), "its subsets: long_span, short_span"),
    (("--potential", "x**2", "--restrict", "*"), "need --model"),
])
def test_bad_restrictions_get_one_line(args: tuple[str, ...], message: str) -> None:
    result = invoke("estimate", *args, *QUICK)
    assert result.returncode == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_refined_trajectory_on_chosen_checkpoints(tmp_path: Path) -> None:
    out = tmp_path / "refined.parquet"
    result = invoke("trajectory", TRANSFORMER, "--restrict-each", "head", "--checkpoints", "0,-1", "--out",
                    str(out), "--draws", "4", "--burnin", "2", "--chains", "1", "--batch-size", "8",
                    "--no-progress")
    assert result.returncode == 0, result.output
    table = pd.read_parquet(out)
    assert len(table) == 8 and set(table["step"]) == {0, 2000}
    assert {"restriction", "restricted_dim", "llc_mean", "val_loss", "induct_1_0"} <= set(table.columns)


def test_probe_writes_per_sample_statistics(tmp_path: Path) -> None:
    import xarray as xr

    nc = tmp_path / "influence.nc"
    result = invoke("estimate", "--model", USER_DLN, "--probe", "20", "--influence-out", str(nc), *QUICK)
    assert result.returncode == 0, result.output
    data = xr.open_dataset(nc, engine="h5netcdf")
    assert data["covariance"].shape == (20, 20) and data.attrs["draws"] == 60  # 2 chains × 30 draws
    np.testing.assert_allclose(data["covariance"].values, data["covariance"].values.T)
    pq = tmp_path / "influence.parquet"
    assert invoke("estimate", "--model", USER_DLN, "--probe", "20", "--influence-out", str(pq),
                  *QUICK).returncode == 0
    assert list(pd.read_parquet(pq).columns)[:3] == ["sample", "mean_loss", "loss_change"]
    lone = invoke("estimate", "--model", USER_DLN, "--probe", "20", *QUICK)
    assert lone.returncode == 2 and "go together" in lone.output
    bad = invoke("estimate", "--model", USER_DLN, "--probe", "5", "--influence-out", str(tmp_path / "x.txt"))
    assert bad.returncode == 2 and ".nc or .parquet" in bad.output
