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


def test_estimate_starts_from_the_cards_first_run_and_sweep_from_default_sampler(tmp_path: Path) -> None:
    """Issue 13.9: a plain ``estimate --model`` runs what the Networks page's first click runs
    (the card's ``first_run`` over ``default_sampler``); ``sweep`` keeps the reference setting."""
    folder = tmp_path / "user_dln"
    folder.mkdir()
    (folder / "model.py").write_text((USER_DLN / "model.py").read_text())
    (folder / "model.json").write_text(json.dumps({
        "name": "user_dln",
        "default_sampler": {"epsilon": 1e-4, "gamma": 7.0, "chains": 2, "draws": 9, "burnin": 3,
                            "batch_size": 32},
        "first_run": {"gamma": 70.0, "chains": 3, "draws": 6},
    }))
    out = run_cli("estimate", "--model", str(folder), "--json", "--no-progress", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)["settings"]
    assert (s["gamma"], s["chains"], s["draws"]) == (70.0, 3, 6)  # first_run
    assert (s["epsilon"], s["burnin"], s["batch_size"]) == (1e-4, 3, 32)  # default_sampler's, not overridden
    out = run_cli("sweep", "--model", str(folder), "--out", str(tmp_path / "s.csv"), "--no-progress",
                  "--device", "cpu")
    assert out.returncode == 0, out.stderr
    row = pd.read_csv(tmp_path / "s.csv").iloc[0]
    assert row["gamma"] == 7.0
