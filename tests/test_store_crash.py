"""The store survives ``kill -9`` mid-run and concurrent writers (separate processes)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lltools.storage.index import RunStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and /proc")

#: A long run (4 chains × 10^6 steps) that records into the store given as argv[1].
LONG_RUN = """
import sys
import torch
from lltools.sampling.driver import run_chunks
from lltools.sampling.sgld import make_params
from lltools.storage.index import RunStore
from lltools.storage.recording import record_stream
from lltools.targets.base import FunctionTarget
from lltools.workflows.events import trace_events

torch.set_num_threads(1)
target = FunctionTarget(lambda w: (w**2).sum(1), torch.zeros(2), name="x**2 + y**2")
settings = {"nbeta": 10.0, "gamma": 1.0, "epsilon": 1e-3, "chains": 4, "draws": 1_000_000,
            "burnin": 100, "seed": 7, "device": "cpu"}
stream = trace_events(run_chunks(target, make_params(1e-3, 1.0, 10.0, 4), num_draws=1_000_000,
                                 num_burnin=100, seed=7, report_every=100))
recorder = record_stream(RunStore(sys.argv[1]), stream, kind="estimate", settings=settings,
                         target={"kind": "potential", "spec": "x**2 + y**2"},
                         summarize=lambda trace: {"llc_mean": 0.0}, flush_interval=0)
for _ in recorder:
    pass
"""


def flushed_chunks(root: Path) -> int:
    """How many chunks the run's manifest says are on disk (0 before it exists)."""
    for manifest in root.glob("runs/*/manifest.json"):
        return len(json.loads(manifest.read_text())["chunks"])  # replaced atomically
    return 0


def wait_for_chunks(root: Path, proc: subprocess.Popen, count: int, timeout: float = 60.0) -> None:
    """Poll until ``count`` chunks of the run are flushed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"recording process exited early: {proc.stderr.read().decode()[-2000:]}")
        if flushed_chunks(root) >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"fewer than {count} chunks after {timeout} s")


def test_kill_9_leaves_flushed_chunks_readable_and_run_incomplete(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", LONG_RUN, str(tmp_path)], stderr=subprocess.PIPE)
    try:
        wait_for_chunks(tmp_path, proc, count=2)
        time.sleep(0.1)  # let it be somewhere in the middle of a flush, or of a step
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()  # reap it: a zombie is not a live writer either, but be plain
    assert proc.returncode == -signal.SIGKILL

    runs = RunStore(tmp_path)
    listing = runs.list_runs()
    assert len(listing) == 1
    row = listing.iloc[0]
    assert row["status"] == "incomplete"
    assert row["draws_done"] >= 100

    run = runs.load_run(row["id"])
    assert run.manifest["stored_status"] == "running"
    chunks = run.manifest["chunks"]
    assert len(chunks) >= 2
    # Every chunk the manifest lists is on disk; at most one newer chunk got renamed into
    # place before the kill landed, between the chunk rename and the manifest update.
    on_disk = sorted(p.name for p in run.path.glob("chunk-*.parquet"))
    assert on_disk[: len(chunks)] == [c["file"] for c in chunks]
    assert len(on_disk) - len(chunks) in (0, 1)

    traces = run.traces
    assert np.isfinite(traces["loss"]).all()
    num_steps = traces["step"].nunique()
    assert num_steps >= run.manifest["progress"]["columns_done"] >= 200
    for _, steps in traces.groupby("chain")["step"]:
        assert steps.tolist() == list(range(num_steps))  # contiguous from 0, no gaps, no repeats
    assert sorted(traces["chain"].unique()) == [0, 1, 2, 3]
    assert run.to_trace().loss.shape == (4, num_steps)

    info = runs.resume_info(row["id"])
    assert info["status"] == "incomplete" and info["resumable"]
    assert info["steps_done"] == run.manifest["progress"]["steps_done"] >= 200
    assert info["settings"]["draws"] == 1_000_000 and info["settings"]["seed"] == 7

    runs.discard(row["id"])
    assert runs.list_runs().empty
    assert not any(tmp_path.glob("runs/*"))


def write_runs(root: str, worker: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    """One concurrent writer: three small recorded runs with a flush every 30 steps."""
    import torch

    from lltools.sampling.driver import run_chunks
    from lltools.sampling.sgld import make_params
    from lltools.storage.index import RunStore
    from lltools.storage.recording import record_stream
    from lltools.targets.base import FunctionTarget
    from lltools.workflows.events import trace_events

    torch.set_num_threads(1)
    target = FunctionTarget(lambda w: (w**2).sum(1), torch.zeros(2), name="quadratic")
    runs = RunStore(root)
    barrier.wait(timeout=60)
    for k in range(3):
        stream = trace_events(run_chunks(target, make_params(1e-3, 1.0, 10.0, 2), num_draws=100,
                                         num_burnin=20, seed=worker, report_every=30))
        recorder = record_stream(runs, stream, settings={"worker": worker, "k": k},
                                 target={"kind": "potential", "spec": "x**2 + y**2"},
                                 summarize=lambda e: {"llc_mean": float(e.trace.loss.mean())},
                                 flush_interval=0)
        for _ in recorder:
            pass


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    # forkserver: a clean server process (no threads inherited from pytest) that imports
    # the heavy modules once, then forks each writer from it.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        ["lltools.storage.recording", "lltools.sampling.driver", "lltools.sampling.sgld", __name__]
    )
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=write_runs, args=(str(tmp_path), w, barrier)) for w in range(4)]
    for p in procs:
        p.start()
    runs = RunStore(tmp_path)
    reads = 0
    while any(p.is_alive() for p in procs):  # read while they write: never an error
        listing = runs.list_runs()
        assert not listing["id"].str.startswith(".").any()
        assert set(listing["status"]) <= {"running", "complete"}
        reads += 1
        time.sleep(0.05)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    assert reads > 0
    listing = runs.list_runs()
    assert len(listing) == 12 and listing["id"].is_unique
    assert (listing["status"] == "complete").all()
    assert sorted({int(i.split("-")[1]) for i in listing["id"]}) == sorted(p.pid for p in procs)
    for run_id in listing["id"]:
        run = runs.load_run(run_id)
        assert len(run.traces) == 2 * 120 and run.stray_files == []
        assert run.summary["llc_mean"] == pytest.approx(run.traces["loss"].mean())
    assert not list(tmp_path.glob("runs/.*")) and not list(tmp_path.glob("runs/*/.tmp-*"))
