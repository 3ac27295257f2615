"""`lltools estimate/sweep --model DIR` on a folder the project has never seen (tests/data/user_dln)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.helpers import run_cli

USER_DLN = Path(__file__).resolve().parents[1] / "data" / "user_dln"
TINY = ["--chains", "2", "--draws", "10", "--burnin", "2", "--no-progress", "--device", "cpu"]


def test_estimate_json_on_a_user_folder_without_card() -> None:
    out = run_cli("estimate", "--model", str(USER_DLN), "--json", "--epsilon", "2e-4", "--gamma", "1", *TINY)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["target"]["name"] == "user_dln" and result["target"]["dim"] == 18
    assert result["settings"]["batch_size"] == 64  # the network default without a card


def test_sweep_on_a_user_folder_writes_one_row_per_setting(tmp_path: Path) -> None:
    out = run_cli("sweep", "--model", str(USER_DLN), "--epsilon", "1e-4,2e-4", "--gamma", "1",
                  "--out", str(tmp_path / "s.csv"), *TINY)
    assert out.returncode == 0, out.stderr
    table = pd.read_csv(tmp_path / "s.csv")
    assert len(table) == 2 and set(table["target"]) == {"user_dln"}


def test_trajectory_of_a_folder_without_checkpoints_is_one_line(tmp_path: Path) -> None:
    out = run_cli("trajectory", str(USER_DLN), "--out", str(tmp_path / "t.csv"), *TINY)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "no checkpoints" in lines[0], out.stderr
