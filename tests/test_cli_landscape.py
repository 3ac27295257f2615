"""``lltools landscape`` and ``lltools hessian``: outputs, JSON keys, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.test_cli import run_cli

MODELS = Path(__file__).resolve().parents[1] / "sample_models" / "deep_linear"
RRR = str(MODELS / "rrr_6_4_5_r2")
HESSIAN_KEYS = {"top_eigenvalues", "bottom_eigenvalues", "near_zero_count", "tolerance",
                "hessian_rank_half", "d_half", "rank_j_half", "method", "count_method"}


def test_hessian_json_has_the_documented_keys_and_counts() -> None:
    proc = run_cli("hessian", "--model", RRR, "--top", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) >= HESSIAN_KEYS
    top = doc["top_eigenvalues"]
    assert len(top) == 5 and top == sorted(top, reverse=True)
    # reduced-rank regression 6-4-5 at a rank-2 teacher: rank(J) = r(in + out − r) = 18
    assert doc["d_half"] == 22 and doc["hessian_rank_half"] == 9 and doc["rank_j_half"] == 9
    assert doc["near_zero_count"] == 26


@pytest.mark.parametrize("plane", ["random", "checkpoints", "flat"])
def test_landscape_writes_grid_squared_rows(tmp_path: Path, plane: str) -> None:
    out = tmp_path / "plane.parquet"
    proc = run_cli("landscape", "--model", RRR, "--plane", plane, "--grid", "9", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(out)
    assert len(table) == 81 and {"a", "b", "loss"} <= set(table.columns)
    assert (table["plane"] == plane).all()
    if plane != "checkpoints":  # w* (the teacher) is at a = b = 0
        centre = (table["a"].abs() < 1e-12) & (table["b"].abs() < 1e-12)
        assert float(table.loc[centre, "loss"].iloc[0]) < 1e-6


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("landscape", "--model", "/nonexistent/model"), "not found"),
        (("landscape", "--model", RRR, "--plane", "diagonal"), "--plane"),
        (("landscape", "--model", RRR, "--grid", "1"), "--grid"),
        (("landscape", "--model", RRR, "--range", "0,1,x"), "--range"),
        (("landscape", "--model", RRR, "--out", "plane.xlsx"), "extension"),
        (("landscape", "--model", RRR, "--plane", "checkpoints", "--from", "nope.safetensors"), "not found"),
        (("hessian", "--model", RRR, "--top", "0"), "--top"),
        (("hessian", "--model", RRR, "--method", "magic"), "--method"),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], needle: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and needle.lower() in lines[0].lower(), proc.stderr
