"""The README's Python examples run as written (the public API a user copies)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lltools.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def save_and_export_a_run(out: Path) -> None:
    """What the README's shell lines before the ArviZ example do: a saved run, exported."""
    runner = CliRunner()
    saved = runner.invoke(app, ["estimate", "--potential", "x**2 + y**2", "--draws", "200",
                                "--burnin", "50", "--chains", "3", "--save"])
    assert saved.exit_code == 0, saved.output
    exported = runner.invoke(app, ["runs", "export", "latest", str(out)])
    assert exported.exit_code == 0, exported.output


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setenv("LLTOOLS_HOME", str(tmp_path / "home"))
    if '"run.nc"' in BLOCKS[index]:  # the ArviZ example opens an exported run
        save_and_export_a_run(tmp_path / "run.nc")
    program = compile(BLOCKS[index], f"README.md python block {index}", "exec")
    exec(program, {"__name__": "__readme__"})  # safe: our own README, not user input


def _own_model_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Your own model", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


def test_the_own_model_example_is_complete_and_short() -> None:
    block = _own_model_block()
    assert "import lltools" in block and "lltools.estimate(model, loader" in block
    assert len([ln for ln in block.splitlines() if ln.strip()]) <= 22


@pytest.mark.slow
def test_the_own_model_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README "Your own model": an nn.Module + DataLoader + per-sample loss, as a user copies it."""
    monkeypatch.chdir(tmp_path)
    scope: dict = {"__name__": "__readme__"}
    exec(compile(_own_model_block(), "README.md own-model example", "exec"), scope)  # our own README
    result = scope["result"]
    assert result.num_chains == 4 and result.settings.batch_size == 64 and 0 < result.llc_mean < 81 / 2
