"""Hostile stored runs (issue 14): identity, malformed manifests, damaged chunks, odd paths.

A run's identity is its folder; a manifest that fails the schema marks only its own run
``corrupt``; chunks are verified against the manifest before anything is exported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lltools.cli.runs import runs_app
from lltools.storage.files import MANIFEST, RunStoreError
from lltools.storage.index import RunStore
from lltools.storage.recording import record_stream
from lltools.targets.potentials import potential_target
from lltools.workflows.estimate import estimate_stream

SETTINGS = {"nbeta": 10.0, "gamma": 1.0, "epsilon": 1e-3, "chains": 2, "draws": 40, "burnin": 10,
            "seed": 5, "device": "cpu"}  # fmt: skip
TARGET = {"kind": "potential", "spec": "x**2 + y**2"}
runner = CliRunner()


def _record(store: RunStore) -> str:
    stream = estimate_stream(potential_target("x**2 + y**2"), report_every=10, **SETTINGS)
    recorder = record_stream(store, stream, settings=SETTINGS, target=TARGET, flush_interval=0)
    for _ in recorder:
        pass
    assert recorder.run_id is not None
    return recorder.run_id


def _make_incomplete(store: RunStore, run_id: str) -> None:
    """Mark a stored run as written by a dead process (status running, pid gone)."""
    path = store.runs_dir / run_id
    manifest = json.loads((path / MANIFEST).read_text())
    manifest.update(status="running", summary=None)
    manifest["writer"].update(pid=2**22 + 12345, start_ticks=None)
    (path / MANIFEST).write_text(json.dumps(manifest))
    assert store.manifest(run_id)["status"] == "incomplete"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete stored run (copied into each test's store: sampling once is enough)."""
    root = tmp_path_factory.mktemp("template")
    _record(RunStore(root))
    return root


@pytest.fixture
def store(tmp_path: Path, template: Path) -> RunStore:
    shutil.copytree(template, tmp_path / "store")
    return RunStore(tmp_path / "store")


def _only_id(store: RunStore) -> str:
    (path,) = store.run_dirs()
    return path.name


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# ------------------------------------------------------------------ 1. identity / data loss
def test_resume_discard_old_removes_the_resumed_copy_not_the_original(store: RunStore) -> None:
    original = _only_id(store)
    _make_incomplete(store, original)
    copy = original[:-8] + "deadbeef"
    shutil.copytree(store.runs_dir / original, store.runs_dir / copy)
    # The copy's manifest names the original: it is corrupt, and resuming it is refused.
    listing = store.list_runs()
    assert sorted(listing["id"]) == sorted([original, copy])  # one row per folder, ids distinct
    assert dict(zip(listing["id"], listing["status"], strict=True))[copy] == "corrupt"
    error = _one_line_error(runner.invoke(runs_app, ["resume", copy, "--store", str(store.root),
                                                     "--discard-old", "--no-progress"]))
    assert "corrupt" in error and "disagrees with its folder" in error
    assert (store.runs_dir / original).is_dir() and (store.runs_dir / copy).is_dir()
    # Resuming the original with --discard-old removes exactly the original folder.
    result = runner.invoke(runs_app, ["resume", original, "--store", str(store.root), "--discard-old",
                                      "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    assert not (store.runs_dir / original).exists() and (store.runs_dir / copy).is_dir()
    statuses = dict(zip(store.list_runs()["id"], store.list_runs()["status"], strict=True))
    assert statuses.pop(copy) == "corrupt" and list(statuses.values()) == ["complete"]


# ------------------------------------------------------------------ 8. malformed manifests
BAD_MANIFESTS: list[Any] = [
    "[" * 100_000 + "]" * 100_000,  # deeply nested JSON
    "null", "5", '"text"', "[]", "{", "NaN",
    {"progress": None}, {"created": "garbage"}, {"created": 5}, {"status": "done"},
    {"status": None}, {"kind": ["estimate"]}, {"writer": "me"}, {"writer": {"pid": "x"}},
    {"chunks": None}, {"chunks": [{"file": "../../etc/passwd", "first_column": 0, "columns": 1,
                                   "first_step": 0, "last_step": 0}]},
    {"summary": []}, {"summary": {"diverged_chains": 3}}, {"settings": []}, {"target": "x"},
    {"target": {"kind": "model", "path": 5}}, {"warnings": [1, 2]}, {"heartbeat_unix": "now"},
    {"progress": {"steps_done": -1}}, {"progress": {"num_steps_total": "many"}},
    {"id": "someone-else"}, {"meta": 3},
]  # fmt: skip


def _write_bad(path: Path, bad: Any) -> None:
    if isinstance(bad, str):
        (path / MANIFEST).write_text(bad)
    else:
        manifest = json.loads((path / MANIFEST).read_text())
        manifest.update(bad)
        (path / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("bad", BAD_MANIFESTS, ids=lambda b: str(b)[:40])
def test_a_bad_manifest_marks_only_its_run_corrupt(store: RunStore, bad: Any) -> None:
    good = _only_id(store)
    broken = good[:-8] + "00000bad"
    shutil.copytree(store.runs_dir / good, store.runs_dir / broken)
    _write_bad(store.runs_dir / broken, bad)
    listing = store.list_runs()
    statuses = dict(zip(listing["id"], listing["status"], strict=True))
    assert statuses == {good: "complete", broken: "corrupt"}
    # The CLI lists, shows, refuses to resume or export it in one line, and discards it.
    root = str(store.root)
    assert runner.invoke(runs_app, ["list", "--store", root]).exit_code == 0
    assert runner.invoke(runs_app, ["list", "--store", root, "--json"]).exit_code == 0
    shown = runner.invoke(runs_app, ["show", broken, "--store", root])
    assert shown.exit_code == 0 and "corrupt" in shown.output, shown.output
    _one_line_error(runner.invoke(runs_app, ["resume", broken, "--store", root, "--no-progress"]))
    assert runner.invoke(runs_app, ["discard", broken, "--store", root]).exit_code == 0
    assert list(store.list_runs()["id"]) == [good]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children,
                                                                       max_size=4),
    max_leaves=12,
)
MANIFEST_KEYS = ["id", "kind", "status", "created", "finished", "writer", "settings", "target", "meta",
                 "progress", "chunks", "warnings", "summary", "error", "heartbeat_unix", "trace_meta"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(MANIFEST_KEYS), value=json_values)
def test_fuzzed_manifest_fields_never_break_the_store(store: RunStore, field: str, value: Any) -> None:
    run_id = _only_id(store)
    path = store.runs_dir / run_id
    manifest = json.loads((path / MANIFEST).read_text())
    manifest[field] = value
    (path / MANIFEST).write_text(json.dumps(manifest))
    listing = store.list_runs()  # never raises
    assert list(listing["id"]) == [run_id]
    status = listing["status"].iloc[0]
    for args in (["list"], ["show", run_id], ["export", run_id, str(path.parent.parent / "x.csv")]):
        result = runner.invoke(runs_app, [*args, "--store", str(store.root)])
        assert "Traceback" not in result.output and not isinstance(result.exception, RecursionError)
        assert result.exit_code in (0, 2), (args, result.output)
        if result.exit_code == 2:
            _one_line_error(result)
    if status != "corrupt":
        run = store.load_run(run_id)  # a manifest that passes the schema loads
        assert run.id == run_id


# ------------------------------------------------------------------ 10. damaged chunks
def test_a_missing_chunk_is_reported_and_export_refused(store: RunStore, tmp_path: Path) -> None:
    run_id = _only_id(store)
    chunks = sorted((store.runs_dir / run_id).glob("chunk-*.parquet"))
    assert len(chunks) >= 3
    chunks[1].unlink()
    run = store.load_run(run_id)
    assert run.status == "corrupt" and "listed in the manifest but missing" in run.damage[0]
    with pytest.raises(RunStoreError, match="damaged"):
        run.to_trace()
    error = _one_line_error(runner.invoke(runs_app, ["export", run_id, str(tmp_path / "t.csv"),
                                                     "--store", str(store.root)]))
    assert "damaged" in error and chunks[1].name in error
    assert not (tmp_path / "t.csv").exists()


def test_an_altered_chunk_fails_its_checksum(store: RunStore) -> None:
    run_id = _only_id(store)
    first = sorted((store.runs_dir / run_id).glob("chunk-*.parquet"))[0]
    other = sorted((store.runs_dir / run_id).glob("chunk-*.parquet"))[1]
    shutil.copy(other, first)  # a valid Parquet file, the wrong content
    run = store.load_run(run_id)
    assert run.status == "corrupt" and any("checksum" in d for d in run.damage)
    with pytest.raises(RunStoreError, match="damaged"):
        store.export(run_id, store.root / "out.json")


def test_stray_chunks_are_ignored_not_merged(store: RunStore, tmp_path: Path) -> None:
    run_id = _only_id(store)
    folder = store.runs_dir / run_id
    clean = store.load_run(run_id)
    first = sorted(folder.glob("chunk-*.parquet"))[0]
    shutil.copy(first, folder / "chunk-000099.parquet")  # duplicate rows, unlisted
    run = store.load_run(run_id)
    assert run.status == "complete" and not run.damage
    assert "chunk-000099.parquet" in run.stray_files
    assert len(run.traces) == len(clean.traces)
    assert run.to_trace().loss.shape == clean.to_trace().loss.shape
    out = store.export(run_id, tmp_path / "t.csv")
    assert sum(1 for _ in out.open()) == len(clean.traces) + 1


def test_a_truncated_chain_table_is_damage(store: RunStore) -> None:
    run_id = _only_id(store)
    (store.runs_dir / run_id / "chains.parquet").write_bytes(b"PAR1 not really")
    run = store.load_run(run_id)
    assert run.status == "corrupt" and "chains.parquet" in run.damage[0]


# ------------------------------------------------------------------ 12. odd paths
def test_rm_of_a_symlinked_run_removes_the_link_only(store: RunStore, tmp_path: Path) -> None:
    run_id = _only_id(store)
    outside = tmp_path / "elsewhere"
    shutil.move(store.runs_dir / run_id, outside)
    (store.runs_dir / run_id).symlink_to(outside, target_is_directory=True)
    result = runner.invoke(runs_app, ["rm", run_id, "--yes", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert not list(store.runs_dir.iterdir())  # no .tmp-trash-* link left behind
    assert (outside / MANIFEST).is_file()  # what the link pointed to is untouched


def test_an_empty_store_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    error = _one_line_error(runner.invoke(runs_app, ["list", "--store", ""]))
    assert "empty" in error
    with pytest.raises(RunStoreError):
        RunStore("")
    assert not (tmp_path / "runs").exists()
