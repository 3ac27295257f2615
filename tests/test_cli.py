"""The CLI contract: ``--json`` prints one object with the documented keys; bad input exits
non-zero with one line and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from helpers import run_cli

REQUIRED_KEYS = {
    "llc_mean", "llc_std", "llc_sem", "rhat", "ess", "acceptance", "diverged_chains",
    "num_chains", "theory_llc", "warnings", "settings",
}
SETTING_KEYS = {"nbeta", "gamma", "epsilon", "chains", "draws", "burnin", "seed", "device", "dtype"}


def test_console_script_runs_as_a_real_process() -> None:
    """One real subprocess: the installed entry point, stdout = one JSON object."""
    proc = subprocess.run(
        [sys.executable, "-m", "lltools.cli.main", "estimate", "--potential", "x**2 + y**2",
         "--chains", "2", "--draws", "50", "--burnin", "10", "--json", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["num_chains"] == 2
    bad = subprocess.run([sys.executable, "-m", "lltools.cli.main", "estimate", "--potential", "import os"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("expr", "theory"),
    [("x**2 + y**2", 1.0), ("x**4 + y**4", 0.5), ("x**2 * y**4", 0.25), ("x**2 + 3*y**4", 0.75)],
)
def test_estimate_json_contract(expr: str, theory: float) -> None:
    proc = run_cli("estimate", "--potential", expr, "--nbeta", "100", "--gamma", "1",
                   "--epsilon", "1e-3", "--chains", "4", "--draws", "400", "--burnin", "100",
                   "--seed", "0", "--device", "cpu", "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, "stdout must hold exactly one JSON object"
    out = json.loads(lines[0])
    assert out.keys() >= REQUIRED_KEYS
    assert out["settings"].keys() >= SETTING_KEYS
    assert out["settings"]["nbeta"] == 100.0 and out["settings"]["chains"] == 4
    assert out["num_chains"] == 4
    assert out["theory_llc"] == pytest.approx(theory)
    assert out["diverged_chains"] == []
    assert isinstance(out["warnings"], list)
    # λ̂ is a real estimate in the right neighbourhood (loose: 400 draws, 4 chains).
    assert 0.0 < out["llc_mean"] < 2.0 * theory + 0.3


def test_estimate_json_is_reproducible() -> None:
    args = ("estimate", "--potential", "x**2 + y**2", "--chains", "2", "--draws", "50",
            "--burnin", "10", "--seed", "3", "--json", "--no-progress", "--device", "cpu")
    a, b = run_cli(*args), run_cli(*args)
    assert json.loads(a.stdout)["llc_mean"] == json.loads(b.stdout)["llc_mean"]


def test_custom_expression_without_closed_form_has_null_theory() -> None:
    """abs(x) is not analytic at 0: λ is "unknown" (null), with the reason in ``theory.note``;
    x² + sin²(y) is analytic, so its Taylor polynomial x² + y² − … gives λ = 1 exactly."""
    proc = run_cli("estimate", "--potential", "abs(x) + y**2", "--chains", "2", "--draws", "50",
                   "--burnin", "10", "--json", "--no-progress", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["theory_llc"] is None and out["theory"]["exact"] is False
    assert "unknown" in out["theory"]["note"]
    proc = run_cli("estimate", "--potential", "x**2 + sin(y)**2", "--chains", "2", "--draws", "50",
                   "--burnin", "10", "--json", "--no-progress", "--device", "cpu")
    out = json.loads(proc.stdout)
    assert out["theory_llc"] == 1.0 and out["theory"]["exact"] is True


def test_diverging_settings_are_reported_not_averaged() -> None:
    proc = run_cli("estimate", "--potential", "x**4 + y**4", "--epsilon", "0.5", "--nbeta", "1000",
                   "--chains", "4", "--draws", "50", "--burnin", "10", "--json", "--no-progress",
                   "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["diverged_chains"] == [0, 1, 2, 3]
    assert out["llc_mean"] is None
    assert any("diverged" in w for w in out["warnings"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("estimate", "--potential", "import os"), "column"),
        (("estimate", "--potential", "x.__class__"), "column"),
        (("estimate", "--potential", "x**"), "column"),
        (("estimate", "--potential", "x**999999"), "exponent"),
        (("estimate", "--potential", "x**2", "--chains", "0"), "chains"),
        (("estimate", "--potential", "x**2", "--epsilon", "-1"), "epsilon"),
        (("estimate", "--potential", "x**2", "--chains", "notanumber"), "chains"),
        (("estimate", "--potential", "x**2", "--device", "tpu"), "device"),
        (("estimate", "--potential", "x**2", "--dtype", "int8"), "dtype"),
        (("estimate",), "exactly one"),
        (("estimate", "--model", "/nonexistent/model"), "not found"),
        (("estimate", "--potential", "x**2", "--bogus", "1"), "bogus"),
        (("sweep", "--potential", "x**2", "--epsilon", "1e-3,abc"), "epsilon"),
        (("sweep", "--potential", "x**2", "--out", "table.xlsx"), "extension"),
    ],
)
def test_bad_arguments_exit_nonzero_with_one_line(args: tuple[str, ...], needle: str) -> None:
    proc = run_cli(*args, "--no-progress")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    err_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(err_lines) == 1, proc.stderr
    assert needle.lower() in err_lines[0].lower()


def test_sweep_writes_one_row_per_setting(tmp_path) -> None:
    out = tmp_path / "grid.parquet"
    proc = run_cli("sweep", "--potential", "x**2 + y**2", "--epsilon", "1e-3,3e-3",
                   "--gamma", "1,10", "--nbeta", "50,100,200", "--chains", "2", "--draws", "100",
                   "--burnin", "20", "--out", str(out), "--no-progress", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(out)
    assert len(table) == 2 * 2 * 3
    assert {"epsilon", "gamma", "nbeta", "llc_mean", "llc_sem", "rhat", "acceptance"} <= set(table.columns)
    assert sorted(table["nbeta"].unique()) == [50.0, 100.0, 200.0]
    # For x²+y², nβE[L] = 2nβ/(2nβ+γ): the γ=10 rows sit below the γ=1 rows.
    low = table[table.gamma == 10.0].llc_mean.mean()
    high = table[table.gamma == 1.0].llc_mean.mean()
    assert low < high


def test_sweep_json_has_t_and_health_and_help_shows_defaults(tmp_path, monkeypatch) -> None:
    """Issue 13.15: `sweep --json` prints one object whose rows carry T(nβ, γ) and the health
    verdict; `--help` names the defaults of ε, γ, chains and draws."""
    out = run_cli("sweep", "--potential", "x**4 + y**4", "--epsilon", "1e-3,1e-2", "--draws", "200",
                  "--chains", "2", "--no-progress", "--device", "cpu", "--out", str(tmp_path / "s.csv"),
                  "--json")
    assert out.returncode == 0, out.stderr
    table = json.loads(out.stdout)["table"]
    assert [r["epsilon"] for r in table] == pytest.approx([1e-3, 1e-2])
    assert all(r["T"] == pytest.approx(0.48343504, rel=1e-6) for r in table)  # T(100, 1) of x⁴ + y⁴
    assert all(isinstance(r["healthy"], bool) for r in table)
    assert all(r["healthy"] == (r["problem"] == "") for r in table)
    monkeypatch.setenv("COLUMNS", "80")  # a narrow terminal: rich wraps the help in a box
    help_text = run_cli("estimate", "--help").stdout.replace("│", " ")
    wanted = ("Step size ε (default 0.001", "γ (default 1 ", "chains (default 8 ", "burn-in (default 2000")
    for text in wanted:
        assert text in " ".join(help_text.split()), text
