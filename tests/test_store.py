"""The run store: round trips, partial flushes, failures, exports, listing and removal."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import helpers
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lltools
from lltools.sampling.trace import Trace
from lltools.storage import files as files_mod
from lltools.storage import index as index_mod
from lltools.storage.files import MANIFEST, RunStoreError, write_json
from lltools.storage.index import RunStore
from lltools.storage.recording import record_stream
from lltools.targets.base import FunctionTarget
from lltools.workflows.estimate import estimate_stream

SETTINGS = {"nbeta": 10.0, "gamma": 1.0, "epsilon": 1e-3, "chains": 3, "draws": 150, "burnin": 50,
            "seed": 3, "device": "cpu"}  # fmt: skip
TARGET = {"kind": "potential", "spec": "x**2 + y**2"}


def quadratic() -> FunctionTarget:
    return FunctionTarget(lambda w: (w**2).sum(1), torch.zeros(2), name="x**2 + y**2")


def recorded_run(runs: RunStore, **overrides):
    """Record one small estimate; returns (recorder, list of stream items)."""
    kwargs = {**SETTINGS, **overrides}
    stream = estimate_stream(quadratic(), report_every=50, **kwargs)
    recorder = record_stream(runs, stream, kind="estimate", settings=kwargs, target=TARGET,
                             flush_interval=0)
    items = list(recorder)
    return recorder, items


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def mark_writer(path: Path, **writer) -> None:
    """Rewrite a run's manifest as if another writer process had written it."""
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["writer"].update(writer)
    write_json(path / MANIFEST, manifest)


def synthetic_trace(loss: np.ndarray, filled: int, *, complete: bool, burnin: int = 2) -> Trace:
    """A partial trace over the first ``filled`` columns of ``loss`` (C, T)."""
    return helpers.synthetic_trace(loss, filled=filled, complete=complete, num_burnin=burnin,
                                   acceptance=0.5, nbeta=10.0)


# ----------------------------------------------------------------------------- round trip
def test_round_trip_matches_in_memory_trace_and_summary(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    recorder, items = recorded_run(runs)
    final = items[-1].trace.cpu()
    assert len(items) == 4  # 200 steps, reported every 50

    loaded = runs.load_run(recorder.run_id)
    assert loaded.status == "complete"
    assert len(loaded.manifest["chunks"]) == 4
    assert list(loaded.traces.columns) == ["chain", "setting", "step", "loss", "acceptance"]
    assert len(loaded.traces) == 3 * 200
    wide = loaded.traces.pivot(index="chain", columns="step", values="loss").to_numpy()
    np.testing.assert_array_equal(wide, final.loss.numpy())
    rebuilt = loaded.to_trace()
    assert torch.equal(rebuilt.loss, final.loss)
    assert torch.equal(rebuilt.acceptance.nan_to_num(-1), final.acceptance.nan_to_num(-1))
    assert torch.equal(rebuilt.steps, final.steps)
    assert torch.equal(rebuilt.params.nbeta, final.params.nbeta)
    assert rebuilt.num_burnin == 50

    expected = json.loads(json.dumps(recorder.result.to_dict()))
    assert loaded.summary == expected
    assert loaded.summary["llc_mean"] == pytest.approx(recorder.result.llc_mean)
    assert loaded.manifest["warnings"] == expected["warnings"]
    assert loaded.manifest["settings"] == SETTINGS
    assert loaded.manifest["resolved_settings"]["nbeta"] == 10.0
    assert loaded.manifest["target"] == TARGET
    assert loaded.manifest["seed"] == 3 and loaded.manifest["device"] == "cpu"
    assert {"lltools", "torch", "python"} <= set(loaded.manifest["versions"])
    assert loaded.chains["loss_init"].tolist() == [0.0, 0.0, 0.0]


def test_listing_row(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    recorder, _ = recorded_run(runs)
    frame = runs.list_runs()
    assert list(frame.columns) == list(index_mod.LIST_COLUMNS)
    row = frame.iloc[0]
    assert row["id"] == recorder.run_id
    assert row["kind"] == "estimate" and row["status"] == "complete"
    assert row["target"] == "x**2 + y**2"
    assert row["llc_mean"] == pytest.approx(recorder.result.llc_mean)
    assert row["num_chains"] == 3 and row["draws_done"] == 150 and row["num_draws"] == 150
    assert isinstance(row["created"], pd.Timestamp)


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(0, 12), max_size=6), chains=st.integers(1, 3))
def test_any_flush_schedule_reassembles_the_trace(tmp_path_factory, cuts, chains) -> None:
    """Whatever the partial traces look like, stored columns are each written once, in order."""
    loss = np.random.default_rng(len(cuts)).normal(size=(chains, 12))
    runs = RunStore(tmp_path_factory.mktemp("s"))
    writer = runs.create_run("estimate", {}, TARGET, flush_interval=0)
    for filled in sorted(cuts):
        writer.append(synthetic_trace(loss, filled, complete=False))
    writer.append(synthetic_trace(loss, 12, complete=True))
    writer.finish({"llc_mean": 1.0})
    traces = runs.load_run(writer.run_id).traces
    assert traces.groupby("chain")["step"].apply(list).tolist() == [list(range(12))] * chains
    np.testing.assert_array_equal(traces["loss"].to_numpy(), loss.reshape(-1))


def test_flush_interval_skips_intermediate_flushes_without_losing_columns(tmp_path: Path) -> None:
    loss = np.arange(20.0).reshape(2, 10)
    runs = RunStore(tmp_path)
    writer = runs.create_run("estimate", {}, TARGET, flush_interval=3600)
    assert writer.append(synthetic_trace(loss, 2, complete=False))  # the first flush is immediate
    assert not writer.append(synthetic_trace(loss, 6, complete=False))  # too soon
    assert writer.append(synthetic_trace(loss, 10, complete=True))  # the last always flushes
    writer.finish(None)
    run = runs.load_run(writer.run_id)
    assert [c["columns"] for c in run.manifest["chunks"]] == [2, 8]
    np.testing.assert_array_equal(run.traces["loss"].to_numpy(), loss.reshape(-1))
    assert run.manifest["progress"]["draws_done"] == 8


def test_append_rejects_a_shorter_trace_and_closed_runs(tmp_path: Path) -> None:
    loss = np.zeros((1, 5))
    writer = RunStore(tmp_path).create_run("estimate", {}, TARGET, flush_interval=0)
    writer.append(synthetic_trace(loss, 4, complete=False))
    assert not writer.append(synthetic_trace(loss, 4, complete=False))  # nothing new
    with pytest.raises(RunStoreError, match="already stored"):
        writer.append(synthetic_trace(loss, 3, complete=False))
    writer.fail("stopped")
    with pytest.raises(RunStoreError, match="already failed"):
        writer.append(synthetic_trace(loss, 5, complete=True))


# ----------------------------------------------------------------------------- record_stream
def test_exception_marks_failed_keeps_chunks_and_reraises(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)

    def exploding():
        for i, item in enumerate(estimate_stream(quadratic(), report_every=50, **SETTINGS)):
            if i == 2:
                raise RuntimeError("out of memory\nsecond line")
            yield item

    recorder = record_stream(runs, exploding(), settings=SETTINGS, target=TARGET, flush_interval=0)
    with pytest.raises(RuntimeError, match="out of memory"):
        list(recorder)
    run = runs.load_run(recorder.run_id)
    assert run.status == "failed"
    assert run.manifest["error"] == "RuntimeError: out of memory"
    assert sorted(run.traces["step"].unique()) == list(range(100))


def test_refused_settings_leave_no_run(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    stream = estimate_stream(quadratic(), report_every=50, **{**SETTINGS, "chains": 0})
    with pytest.raises(ValueError, match="chains"):
        list(record_stream(runs, stream, settings=SETTINGS, target=TARGET))
    assert runs.list_runs().empty


def test_breaking_out_in_burn_in_marks_the_run_stopped_without_a_summary(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    recorder = record_stream(runs, estimate_stream(quadratic(), report_every=50, **SETTINGS),
                             settings=SETTINGS, target=TARGET, flush_interval=0)
    for _ in recorder:
        break
    del _
    import gc

    gc.collect()
    manifest = runs.manifest(recorder.run_id)
    assert manifest["status"] == "stopped" and "stopped" in manifest["stop_reason"]
    assert manifest["summary"] is None  # still in burn-in: no draws to estimate from
    assert runs.resume_info(recorder.run_id)["steps_done"] == 50


def _stop_after(stream, events: int, exc: type[BaseException] | None = None):
    for i, event in enumerate(stream):
        yield event
        if i + 1 == events and exc is not None:
            raise exc


@pytest.mark.parametrize("how", ["stop", "ctrl-c"])
def test_a_stopped_run_keeps_its_draws_and_its_llc(tmp_path: Path, how: str) -> None:
    """Issue 13.1: Stop (the stream is closed) and Ctrl-C store the run as ``stopped`` with the
    λ̂ of its draws so far — the λ̂ of a run that had asked for exactly those draws."""
    runs = RunStore(tmp_path)
    kwargs = {**SETTINGS, "device": "cpu"}
    stream = estimate_stream(quadratic(), report_every=50, **kwargs)
    if how == "ctrl-c":
        stream = _stop_after(stream, 3, KeyboardInterrupt)
    recorder = record_stream(runs, stream, settings=kwargs, target=TARGET, flush_interval=60)
    seen = []
    if how == "stop":
        iterator = iter(recorder)
        for event in iterator:
            seen.append(event)
            if len(seen) == 3:
                iterator.close()  # what the app's Stop does (stream_live closes the stream)
                break
    else:
        with pytest.raises(KeyboardInterrupt):
            for event in recorder:
                seen.append(event)
    manifest = runs.manifest(recorder.run_id)
    assert manifest["status"] == "stopped"
    assert manifest["progress"]["steps_done"] == seen[-1].steps_done == 150  # the page's count
    assert manifest["progress"]["draws_done"] == 100  # flushed at stop despite the 60 s interval
    short = lltools.estimate(quadratic(), **{**kwargs, "draws": 100})  # the same chains, 100 draws
    assert manifest["summary"]["llc_mean"] == pytest.approx(short.llc_mean, rel=1e-9)
    assert recorder.result.llc_mean == pytest.approx(short.llc_mean, rel=1e-9)
    listed = runs.list_runs().iloc[0]
    assert listed["status"] == "stopped" and listed["llc_mean"] == pytest.approx(short.llc_mean)
    assert len(runs.load_run(recorder.run_id).traces) == 3 * 150  # chains × recorded steps


def test_sweep_is_recorded_with_its_table(tmp_path: Path) -> None:
    from lltools.workflows.sweep import sweep_stream

    runs = RunStore(tmp_path)
    kwargs = {"epsilon": [1e-3], "gamma": [1.0], "nbeta": [5.0, 20.0], "chains": 2, "draws": 40,
              "burnin": 10, "device": "cpu"}  # fmt: skip
    recorder = record_stream(runs, sweep_stream(quadratic(), report_every=25, **kwargs),
                             kind="sweep", settings=kwargs, target=TARGET)
    list(recorder)
    run = runs.load_run(recorder.run_id)
    assert run.status == "complete" and run.kind == "sweep"
    assert len(run.summary["table"]) == 2
    assert sorted(run.traces["setting"].unique()) == [0, 1]
    assert len(run.manifest["grid"]) == 2
    assert np.isnan(runs.list_runs().iloc[0]["llc_mean"])


# ----------------------------------------------------------------------------- status
def test_running_dead_and_recycled_writers(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    writer = runs.create_run("estimate", {}, TARGET)
    assert runs.manifest(writer.run_id)["status"] == "running"  # this process is alive
    mark_writer(writer.path, start_ticks=-5)  # same pid, different process start: recycled
    assert runs.manifest(writer.run_id)["status"] == "incomplete"
    mark_writer(writer.path, pid=dead_pid(), start_ticks=None)
    assert runs.manifest(writer.run_id)["status"] == "incomplete"
    mark_writer(writer.path, host="elsewhere")  # another host: judged by the heartbeat
    assert runs.manifest(writer.run_id)["status"] == "running"


def test_stray_temp_files_and_corrupt_manifests(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    recorder, _ = recorded_run(runs)
    run_dir = runs.resolve(recorder.run_id)
    (run_dir / ".tmp-chunk-000009.parquet.1.abc").write_bytes(b"PAR1 half written")
    (runs.runs_dir / ".tmp-20990101T000000.000000-1-ffffffff").mkdir()
    broken = runs.runs_dir / "20000101T000000.000000-1-00000000"
    broken.mkdir()
    (broken / MANIFEST).write_text("{not json")

    frame = runs.list_runs()
    assert frame["id"].tolist() == [recorder.run_id, broken.name]
    assert frame["status"].tolist() == ["complete", "corrupt"]
    run = runs.load_run(recorder.run_id)
    assert len(run.traces) == 600 and run.stray_files == [".tmp-chunk-000009.parquet.1.abc"]
    runs.discard(broken.name)
    assert runs.list_runs()["id"].tolist() == [recorder.run_id]

    assert runs.clean_temp() == []  # fresh leftovers may belong to a live writer
    for leftover in (run_dir / ".tmp-chunk-000009.parquet.1.abc",
                     runs.runs_dir / ".tmp-20990101T000000.000000-1-ffffffff"):
        os.utime(leftover, (0, 0))
    assert sorted(runs.clean_temp()) == [".tmp-20990101T000000.000000-1-ffffffff",
                                         ".tmp-chunk-000009.parquet.1.abc"]
    assert runs.load_run(recorder.run_id).stray_files == []


# ----------------------------------------------------------------------------- ids and roots
def test_run_ids_are_unique_and_sort_by_time() -> None:
    first = files_mod.new_run_id()
    time.sleep(0.002)
    ids = [files_mod.new_run_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(first < i for i in ids)
    assert f"-{os.getpid()}-" in first


def test_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LLTOOLS_HOME", raising=False)
    assert RunStore().root == tmp_path / "home" / ".lltools"
    monkeypatch.setenv("LLTOOLS_HOME", str(tmp_path / "env"))
    assert RunStore().root == tmp_path / "env"
    assert RunStore(tmp_path / "explicit").root == tmp_path / "explicit"
    assert RunStore(tmp_path / "nothing").list_runs().empty


def test_resolve_prefix_latest_and_errors(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    a = runs.create_run("estimate", {}, TARGET)
    time.sleep(0.002)
    b = runs.create_run("trajectory", {}, {"kind": "model", "path": "m", "checkpoint": None})
    assert runs.resolve("latest").name == b.run_id
    assert runs.resolve(a.run_id[:-3]).name == a.run_id
    with pytest.raises(RunStoreError, match="ambiguous"):
        runs.resolve(a.run_id[:8])
    with pytest.raises(RunStoreError, match="no run"):
        runs.resolve("../etc")
    with pytest.raises(RunStoreError, match="unknown run kind"):
        runs.create_run("training", {}, TARGET)


# ----------------------------------------------------------------------------- export / remove
def test_export_formats(tmp_path: Path) -> None:
    runs = RunStore(tmp_path / "store")
    recorder, _ = recorded_run(runs)
    run = runs.load_run(recorder.run_id)

    pq_path = runs.export(recorder.run_id, tmp_path / "run.parquet")
    table = pq.read_table(pq_path)
    pd.testing.assert_frame_equal(table.to_pandas(), run.traces)
    assert json.loads(table.schema.metadata[b"lltools.run"])["id"] == recorder.run_id

    csv = pd.read_csv(runs.export(recorder.run_id, tmp_path / "run.csv"))
    np.testing.assert_allclose(csv["loss"].to_numpy(), run.traces["loss"].to_numpy(), rtol=1e-15)

    doc = json.loads(runs.export(recorder.run_id, tmp_path / "run.json").read_text())
    assert doc["run"]["summary"]["llc_mean"] == pytest.approx(recorder.result.llc_mean)
    assert len(doc["traces"]["loss"]) == 600 and len(doc["chains"]["chain"]) == 3

    with pytest.raises(RunStoreError, match="unsupported export"):
        runs.export(recorder.run_id, tmp_path / "run.xlsx")


def test_delete_and_discard_rules(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    recorder, _ = recorded_run(runs)
    live = runs.create_run("estimate", SETTINGS, TARGET)
    with pytest.raises(RunStoreError, match="still running"):
        runs.delete(live.run_id)
    with pytest.raises(RunStoreError, match="discard removes only"):
        runs.discard(live.run_id)
    with pytest.raises(RunStoreError, match="is complete"):
        runs.discard(recorder.run_id)
    with pytest.raises(RunStoreError, match="nothing to resume"):
        runs.resume_info(recorder.run_id)
    live.fail("gave up")
    info = runs.resume_info(live.run_id)
    assert info["status"] == "failed" and info["resumable"] and info["settings"] == SETTINGS
    assert runs.discard(live.run_id) == live.run_id
    assert runs.delete(recorder.run_id) == recorder.run_id
    assert runs.list_runs().empty
    assert list(runs.runs_dir.iterdir()) == []


def test_writer_context_manager(tmp_path: Path) -> None:
    runs = RunStore(tmp_path)
    with runs.create_run("trajectory", {}, TARGET) as writer:
        writer.update(note="checkpoints 0..4")
    assert runs.manifest(writer.run_id)["status"] == "complete"
    with pytest.raises(KeyError), runs.create_run("trajectory", {}, TARGET) as failing:
        raise KeyError("missing")
    manifest = runs.manifest(failing.run_id)
    assert manifest["status"] == "failed" and "KeyError" in manifest["error"]
