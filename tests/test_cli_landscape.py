"""``lltools landscape`` and ``lltools hessian``: outputs, JSON keys, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


LINREG = '''
import torch
from torch import nn


def design():
    g = torch.Generator().manual_seed(7)
    scale = torch.linspace(0.5, 2.0, 5, dtype=torch.float64)
    x = torch.randn(400, 5, generator=g, dtype=torch.float64) * scale
    w = torch.randn(1, 5, generator=g, dtype=torch.float64)
    return x, x @ w.T + 0.1 * torch.randn(400, 1, generator=g, dtype=torch.float64), w


def build():
    m = nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        m.weight.copy_(design()[2])
    return m


def data():
    x, y, _ = design()
    return x, y


def loss(outputs, batch):
    return (batch[1] - outputs).pow(2).sum(dim=1)  # ‖y − f‖², no ½
'''


def _linreg_folder(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    folder = tmp_path / "linreg"
    folder.mkdir()
    (folder / "model.py").write_text(LINREG)
    space: dict = {}
    exec(compile(LINREG, "model.py", "exec"), space)  # our own test code, not user input
    x, y, w = (t.numpy() for t in space["design"]())
    return folder, x, y, w


def test_linear_regression_model_folder_hessian_is_2xtx_over_n(tmp_path: Path) -> None:
    """A model folder (model.py: build, data, loss = ‖y − f‖² without the ½): H = 2XᵀX/n."""
    folder, x, _, _ = _linreg_folder(tmp_path)
    proc = run_cli("hessian", "--model", str(folder), "--top", "5", "--json", "--no-rank")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    exact = np.sort(np.linalg.eigvalsh(2 * x.T @ x / x.shape[0]))[::-1]
    np.testing.assert_allclose(doc["top_eigenvalues"], exact, rtol=1e-6)
    assert doc["near_zero_count"] == 0 and doc["hessian_rank_half"] == 2.5


def test_linear_regression_model_folder_plane_is_the_closed_form(tmp_path: Path) -> None:
    folder, x, y, w = _linreg_folder(tmp_path)
    out = tmp_path / "plane.csv"
    proc = run_cli("landscape", "--model", str(folder), "--plane", "hessian", "--grid", "7",
                   "--range", "0.5", "--dtype", "float64", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    # the Hessian plane's directions are the top two eigenvectors of 2XᵀX/n (up to sign)
    _, evecs = np.linalg.eigh(2 * x.T @ x / x.shape[0])
    u, v = evecs[:, -1], evecs[:, -2]
    for sign_u in (1, -1):
        for sign_v in (1, -1):
            ws = w[0][None, :] + np.outer(table["a"], sign_u * u) + np.outer(table["b"], sign_v * v)
            closed = ((y[:, 0][None, :] - ws @ x.T) ** 2).mean(axis=1)
            if np.allclose(table["loss"], closed, rtol=1e-9):
                return
    raise AssertionError("the plane's loss is not the closed-form quadratic")
