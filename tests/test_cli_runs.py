"""``lltools runs``: list / show / export / rm / resume / discard against a temp store."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_cli import run_cli
from typer.testing import CliRunner

import lltools.cli.main as cli_main
from lltools.cli.runs import runs_app
from lltools.storage import specs as specs_mod
from lltools.storage.files import MANIFEST, write_json
from lltools.storage.index import RunStore
from lltools.storage.recording import record_stream
from lltools.targets.base import FunctionTarget
from lltools.workflows.estimate import estimate_stream

SETTINGS = {"nbeta": 10.0, "gamma": 1.0, "epsilon": 1e-3, "chains": 2, "draws": 60, "burnin": 20,
            "seed": 1, "device": "cpu"}  # fmt: skip
TARGET = {"kind": "potential", "spec": "x**2 + y**2"}
runner = CliRunner()


@pytest.fixture(autouse=True)
def potential_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use lltools.targets.potentials when present, else an equivalent quadratic FunctionTarget."""
    try:
        import lltools.targets.potentials  # noqa: F401
    except ImportError:
        monkeypatch.setitem(
            specs_mod.TARGET_BUILDERS, "potential",
            lambda spec: FunctionTarget(lambda w: (w**2).sum(1), torch.zeros(2), name=spec["spec"]),
        )  # fmt: skip


def quadratic() -> FunctionTarget:
    return specs_mod.build_target(TARGET)


def complete_run(root: Path) -> str:
    stream = estimate_stream(quadratic(), report_every=40, **SETTINGS)
    recorder = record_stream(RunStore(root), stream, settings=SETTINGS, target=TARGET)
    list(recorder)
    return recorder.run_id


def incomplete_run(root: Path) -> str:
    """A run whose writer died after flushing 40 of 80 steps."""
    runs = RunStore(root)
    writer = runs.create_run("estimate", SETTINGS, TARGET, flush_interval=0)
    for event in estimate_stream(quadratic(), report_every=40, **SETTINGS):
        writer.append(event.trace)
        break
    proc = subprocess.Popen(["true"])
    proc.wait()
    manifest = json.loads((writer.path / MANIFEST).read_text())
    manifest["writer"]["pid"] = proc.pid
    write_json(writer.path / MANIFEST, manifest)
    return writer.run_id


def invoke(*args: str):
    return runner.invoke(runs_app, list(args))


def test_list_empty_and_json(tmp_path: Path) -> None:
    result = invoke("list", "--store", str(tmp_path))
    assert result.exit_code == 0 and "no runs" in result.stdout
    result = invoke("list", "--store", str(tmp_path), "--json")
    assert json.loads(result.stdout) == []


def test_list_and_show(tmp_path: Path) -> None:
    done = complete_run(tmp_path)
    broken = incomplete_run(tmp_path)

    result = invoke("list", "--store", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert done in result.stdout and broken in result.stdout
    assert "complete" in result.stdout and "incomplete" in result.stdout

    rows = json.loads(invoke("list", "--store", str(tmp_path), "--json").stdout)
    by_id = {r["id"]: r for r in rows}
    assert by_id[done]["status"] == "complete" and by_id[done]["llc_mean"] is not None
    assert by_id[broken]["status"] == "incomplete" and by_id[broken]["draws_done"] == 20
    only = json.loads(invoke("list", "--store", str(tmp_path), "--json", "--status", "incomplete").stdout)
    assert [r["id"] for r in only] == [broken]

    shown = invoke("show", done, "--store", str(tmp_path))
    assert shown.exit_code == 0, shown.output
    assert "λ̂ (LLC)" in shown.stdout and "R-hat" in shown.stdout and "x**2 + y**2" in shown.stdout
    shown = invoke("show", broken[:-2], "--store", str(tmp_path))
    assert "incomplete" in shown.stdout and "runs resume" in shown.stdout
    manifest = json.loads(invoke("show", "latest", "--store", str(tmp_path), "--json").stdout)
    assert manifest["id"] == broken


def test_export(tmp_path: Path) -> None:
    run_id = complete_run(tmp_path / "store")
    out = tmp_path / "out.csv"
    result = invoke("export", run_id, str(out), "--store", str(tmp_path / "store"))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["chain", "setting", "step", "loss", "acceptance"]
    assert len(frame) == 2 * 80
    bad = invoke("export", run_id, str(tmp_path / "out.txt"), "--store", str(tmp_path / "store"))
    assert bad.exit_code == 2 and bad.stderr.startswith("error: unsupported export extension")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_rm_confirms(tmp_path: Path) -> None:
    run_id = complete_run(tmp_path)
    result = runner.invoke(runs_app, ["rm", run_id, "--store", str(tmp_path)], input="n\n")
    assert result.exit_code == 2 and "not deleted" in result.stderr
    assert RunStore(tmp_path).list_runs()["id"].tolist() == [run_id]
    result = runner.invoke(runs_app, ["rm", run_id, "--store", str(tmp_path)], input="y\n")
    assert result.exit_code == 0 and RunStore(tmp_path).list_runs().empty
    run_id = complete_run(tmp_path)
    assert invoke("rm", run_id, "--yes", "--store", str(tmp_path)).exit_code == 0
    assert RunStore(tmp_path).list_runs().empty


def test_discard(tmp_path: Path) -> None:
    done = complete_run(tmp_path)
    broken = incomplete_run(tmp_path)
    refused = invoke("discard", done, "--store", str(tmp_path))
    assert refused.exit_code == 2 and "is complete" in refused.stderr
    assert invoke("discard", broken, "--store", str(tmp_path)).exit_code == 0
    assert RunStore(tmp_path).list_runs()["id"].tolist() == [done]


def test_resume_reruns_the_same_settings_from_scratch(tmp_path: Path) -> None:
    broken = incomplete_run(tmp_path)
    result = invoke("resume", broken, "--store", str(tmp_path), "--json", "--no-progress", "--discard-old")
    assert result.exit_code == 0, result.output
    assert "from scratch" in result.stderr
    doc = json.loads(result.stdout)
    runs = RunStore(tmp_path)
    new = runs.load_run(doc["run_id"])
    assert new.status == "complete" and new.manifest["meta"]["resumed_from"] == broken
    assert new.manifest["settings"] == SETTINGS and doc["settings"]["seed"] == 1
    assert runs.list_runs()["id"].tolist() == [doc["run_id"]]  # the old one was discarded
    # Same settings and seed: the re-run reproduces the estimate of an uninterrupted run.
    reference = runs.load_run(complete_run(tmp_path))
    assert doc["llc_mean"] == pytest.approx(reference.summary["llc_mean"])


def test_resume_and_unknown_ids_fail_in_one_line(tmp_path: Path) -> None:
    done = complete_run(tmp_path)
    result = invoke("resume", done, "--store", str(tmp_path))
    assert result.exit_code == 2 and result.stderr == f"error: run {done} is complete; nothing to resume\n"
    result = invoke("show", "nope", "--store", str(tmp_path))
    assert result.exit_code == 2 and result.stderr.startswith("error: no run 'nope'")
    writer = RunStore(tmp_path).create_run("trajectory", {}, {"kind": "model", "path": "m"})
    writer.fail("boom")
    result = invoke("resume", writer.run_id, "--store", str(tmp_path))
    assert result.exit_code == 2 and "cannot be re-run" in result.stderr


def test_runs_show_uses_the_estimate_json_and_lines(tmp_path: Path) -> None:
    """`estimate --save --json` prints the dict that `runs show --json` keeps as the run's
    summary, and `runs show` prints the same λ̂ and diagnostics lines as `estimate`."""
    from lltools.cli.main import app

    args = ["estimate", "--potential", "x**2 + y**2", "--nbeta", "50", "--epsilon", "1e-2", "--chains", "3",
            "--draws", "60", "--burnin", "10", "--device", "cpu", "--no-progress", "--save", "--store",
            str(tmp_path)]
    printed = runner.invoke(app, [*args, "--json"])
    assert printed.exit_code == 0, printed.output
    doc = json.loads(printed.stdout.strip().splitlines()[-1])
    shown = json.loads(invoke("show", "latest", "--store", str(tmp_path), "--json").stdout)
    assert shown["summary"] == doc
    text = runner.invoke(app, args).stdout.splitlines()
    lines = invoke("show", "latest", "--store", str(tmp_path)).stdout.splitlines()
    for prefix in ("λ̂ (LLC)", "diagnostics"):
        assert [ln for ln in lines if ln.startswith(prefix)] == [ln for ln in text if ln.startswith(prefix)]


def test_ctrl_c_with_save_stores_a_stopped_run_and_says_where(tmp_path: Path, monkeypatch) -> None:
    """Issue 13.1: Ctrl-C during `estimate --save` keeps the draws so far as a `stopped` run with
    its λ̂, prints where it is, and `runs show` prints that λ̂."""



    real = cli_main.estimate_stream

    def interrupted(*args, **kwargs):
        for event in real(*args, **kwargs):
            yield event
            if event.steps_done >= 150:
                raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "estimate_stream", interrupted)
    store = str(tmp_path / "store")
    out = run_cli("estimate", "--potential", "x**2 + y**2", "--chains", "2", "--draws", "200",
                  "--burnin", "50", "--device", "cpu", "--no-progress", "--save", "--store", store)
    assert out.returncode == 130
    line = next(x for x in out.stderr.splitlines() if x.startswith("interrupted"))
    run_id = re.search(r"saved as stopped run (\S+),", line).group(1)
    assert "λ̂ = " in line and f"lltools runs show {run_id}" in line
    manifest = RunStore(store).manifest(run_id)
    assert manifest["status"] == "stopped" and manifest["progress"]["draws_done"] >= 100
    shown = run_cli("runs", "show", run_id, "--store", store).stdout
    assert "status stopped" in shown and "draws so far" in shown
    assert f"{manifest['summary']['llc_mean']:.4g}"[:4] in shown


def test_target_sem_stops_when_the_answer_is_good_enough(tmp_path: Path) -> None:
    """Issue 13.19: --target-sem ends the run once SEM(λ̂) ≤ X with a healthy R-hat, says why,
    and a saved run is stored as stopped with that λ̂."""
    store = str(tmp_path / "store")
    out = run_cli("estimate", "--potential", "x**2 + y**2", "--chains", "4", "--draws", "100000",
                  "--burnin", "100", "--target-sem", "0.05", "--device", "cpu", "--no-progress", "--json",
                  "--save", "--store", store)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stderr.splitlines() if x.startswith("stopped at step"))
    assert "of 100,100" in line and "--target-sem 0.05" in line
    result = json.loads(out.stdout)
    assert result["llc_sem"] <= 0.05 and result["rhat"] <= 1.01
    assert abs(result["llc_mean"] - 0.995) < 5 * 0.05  # T(100, 1) = 200/201
    [run] = RunStore(store).list_runs().to_dict(orient="records")
    assert run["status"] == "stopped" and run["llc_mean"] == pytest.approx(result["llc_mean"])
    bad = run_cli("estimate", "--potential", "x**2", "--target-sem", "0", "--no-progress")
    assert bad.returncode == 2 and "--target-sem must be positive" in bad.stderr
