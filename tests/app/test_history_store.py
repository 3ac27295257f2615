"""The dashboard's run history reads and writes the persistent run store.

Every test points ``LLTOOLS_HOME`` at a temporary directory, so ``~/.lltools`` is never
touched.  Sampler budgets are tiny (a shared, busy CPU).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lltools.storage.files import MANIFEST, write_json
from lltools.storage.index import RunStore
from lltools.storage.recording import record_stream
from tests.app.conftest import TIMEOUT, assert_healthy, metrics, page

TINY = {"nbeta": 100.0, "gamma": 1.0, "epsilon": 1e-3, "chains": 2, "draws": 20, "burnin": 5,
        "seed": 11, "device": "cpu"}  # fmt: skip


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary ``LLTOOLS_HOME`` for the app (and ``RunStore()``)."""
    root = tmp_path / "lltools_home"
    monkeypatch.setenv("LLTOOLS_HOME", str(root))
    return root


def _stream(**overrides: float):
    from lltools.targets.potentials import potential_target
    from lltools.workflows.estimate import estimate_stream

    settings = {**TINY, **overrides}
    return settings, estimate_stream(potential_target("x**2 + y**2"), report_every=10, **settings)


def _record(store: RunStore, **overrides: float) -> str:
    """A complete stored toy run; returns its id."""
    settings, stream = _stream(**overrides)
    recorder = record_stream(
        store,
        stream,
        settings=settings,
        meta={"page": "Toy potentials"},
        target={"kind": "potential", "spec": "x**2 + y**2"},
        flush_interval=0,
    )
    for _ in recorder:
        pass
    assert recorder.run_id is not None
    return recorder.run_id


def _incomplete(store: RunStore) -> str:
    """A run whose writer 'died' after flushing one chunk (its pid now belongs to no one)."""
    settings, stream = _stream()
    writer = store.create_run(
        "estimate",
        settings,
        {"kind": "potential", "spec": "x**2 + y**2"},
        {"page": "Toy potentials", "label": "x**2 + y**2"},
        flush_interval=0,
    )
    writer.append(next(stream).trace)
    proc = subprocess.Popen(["true"])
    proc.wait()
    manifest = json.loads((writer.path / MANIFEST).read_text())
    manifest["writer"].update(pid=proc.pid, start_ticks=None)
    write_json(writer.path / MANIFEST, manifest)
    assert store.manifest(writer.run_id)["status"] == "incomplete"
    return writer.run_id


def test_a_toy_run_is_saved_in_the_store(home: Path) -> None:
    at = page("toy")
    at.session_state["toy.chains"] = 2
    at.session_state["toy.draws"] = 30
    at.session_state["toy.burnin"] = 10
    at.session_state["toy.seed"] = 4242  # not in the other tests' result cache
    at.run()
    at.button(key="toy.run").click().run()
    assert_healthy(at)
    assert "λ̂ (estimate)" in metrics(at)
    runs = RunStore(home).list_runs()
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["status"] == "complete" and row["kind"] == "estimate"
    done = at.session_state["toy.__result"]
    assert row["llc_mean"] == pytest.approx(done.result.llc_mean, rel=1e-12)
    manifest = RunStore(home).manifest(row["id"])
    assert manifest["meta"]["page"] == "Toy potentials"
    assert manifest["target"] == {"kind": "potential", "spec": "x**2 + y**2"}
    assert manifest["settings"]["seed"] == 4242 and manifest["settings"]["device"] == "cpu"
    # The history lists the store's run.
    from dashboard.history import history_frame

    frame = history_frame(RunStore(home))
    assert list(frame["id"]) == [row["id"]] and frame["status"].iloc[0] == "complete"
    assert any(str(home) in c.value for c in at.caption)  # the history says where runs live


def _notice_app() -> AppTest:
    def script() -> None:
        from dashboard import sidebar

        sidebar.sidebar_display_options()

    return AppTest.from_function(script, default_timeout=TIMEOUT)


def test_incomplete_run_notice_discard_and_resume(home: Path) -> None:
    store = RunStore(home)
    old, other = _incomplete(store), _incomplete(store)
    at = _notice_app().run()
    assert_healthy(at)
    assert any("2 unfinished runs" in w.value for w in at.warning)
    assert any(str(home) in c.value for c in at.sidebar.caption)  # store location in the sidebar
    # Discard removes the run and its line in the notice.
    at.button(key=f"store.discard.{old}").click().run()
    assert_healthy(at)
    assert [r for r in store.list_runs()["id"]] == [other]
    assert any("Discarded" in s.value for s in at.success)
    assert any("1 unfinished run" in w.value for w in at.warning)
    # Resume re-runs the same settings from scratch (same seed) and replaces the old run.
    at.button(key=f"store.resume.{other}").click().run()
    assert_healthy(at)
    assert any("Re-ran" in s.value for s in at.success), [s.value for s in at.success]
    runs = store.list_runs()
    assert list(runs["status"]) == ["complete"]
    manifest = store.manifest(runs["id"].iloc[0])
    assert manifest["meta"]["resumed_from"] == other
    assert manifest["settings"]["seed"] == TINY["seed"]
    assert not any("unfinished" in w.value for w in at.warning)
    # Same seed, same chains: equal to a fresh recording of the same settings.
    fresh = store.load_run(_record(store))
    resumed = store.load_run(manifest["id"])
    assert fresh.summary["llc_mean"] == pytest.approx(resumed.summary["llc_mean"], rel=1e-12)


def test_no_notice_without_incomplete_runs(home: Path) -> None:
    _record(RunStore(home))
    at = _notice_app().run()
    assert_healthy(at)
    assert not any("unfinished" in w.value for w in at.warning)


def test_comparing_two_stored_runs(home: Path) -> None:
    store = RunStore(home)
    a, b = _record(store, gamma=1.0), _record(store, gamma=5.0)
    _incomplete(store)  # an incomplete run is listed too

    def script() -> None:
        import streamlit as st

        from dashboard import history

        store = history.run_store()
        history.render_history(key="t")
        a, b = st.session_state["pair"]
        history.render_comparison(history.stored_record(store, a), history.stored_record(store, b), key="c")

    at = AppTest.from_function(script, default_timeout=TIMEOUT)
    at.session_state["pair"] = (a, b)
    at.run()
    assert_healthy(at)
    table, diff = at.dataframe[0].value, at.dataframe[1].value
    assert set(table["status"]) == {"complete", "incomplete"} and len(table) == 3
    assert table["id"].iloc[-1] == a  # newest first
    assert list(diff["setting"]) == ["gamma"]
    assert len(at.get("plotly_chart")) == 1
    # Issue 13.3: runs are named by target and settings, not by a number that reads like a count.
    [names] = [m.value.replace("\\", "") for m in at.markdown if m.value.startswith("**A** = ")]
    assert "x**2 + y**2 · nβ=100 γ=5" in names and "x**2 + y**2 · nβ=100 γ=1 " in names
    assert "#" not in names


def test_stopping_a_live_run_marks_it_stopped(home: Path) -> None:
    def script() -> None:
        import contextlib

        from dashboard import running as live_ui
        from lltools.targets.potentials import potential_target
        from lltools.workflows.estimate import estimate_stream

        settings = {"nbeta": 100.0, "gamma": 1.0, "epsilon": 1e-3, "chains": 2, "draws": 40,
                    "burnin": 5, "seed": 1, "device": "cpu"}  # fmt: skip
        stream = live_ui.record_live(
            estimate_stream(potential_target("x**2 + y**2"), report_every=5, **settings),
            page="Toy potentials", label="x**2 + y**2", settings=settings,
            target={"kind": "potential", "spec": "x**2 + y**2"},
        )  # fmt: skip

        def interrupt(_item: object) -> None:  # what Stop does: raise inside the loop
            raise KeyboardInterrupt

        with contextlib.suppress(KeyboardInterrupt):
            live_ui.stream_live(stream, live=live_ui.LiveRun("t"), total_steps=45, on_chunk=interrupt,
                                first_draw=0.0)

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert_healthy(at)
    runs = RunStore(home).list_runs()
    assert list(runs["status"]) == ["stopped"]  # issue 13.1: not "failed"
    manifest = RunStore(home).manifest(runs["id"].iloc[0])
    assert "stopped" in manifest["stop_reason"] and not manifest.get("error")
    assert manifest["progress"]["steps_done"] == 5  # the chunk the page had when it stopped
    assert manifest["summary"] is None  # still in burn-in: no λ̂ to keep


def test_a_cached_repeat_is_not_a_new_run(home: Path) -> None:
    """Issue 13.3: Run on settings already run is served from the cache and shows the earlier
    run: no second row in the store, none in the session history."""
    at = page("toy")
    for k, v in {"toy.chains": 2, "toy.draws": 30, "toy.burnin": 10, "toy.seed": 5151}.items():
        at.session_state[k] = v
    at.run()
    at.button(key="toy.run").click().run()
    first = RunStore(home).list_runs()
    assert len(first) == 1 and first.iloc[0]["status"] == "complete"
    for _ in range(2):
        at.button(key="toy.run").click().run()
        assert_healthy(at)
        assert at.session_state["toy.__result"].status == "complete (cached)"
    again = RunStore(home).list_runs()
    assert list(again["id"]) == list(first["id"])
    assert len(at.session_state["history.records"]) == 1
    # If the stored run was deleted meanwhile, the cached result is saved once more (and once).
    RunStore(home).delete(str(first.iloc[0]["id"]))
    at.button(key="toy.run").click().run()
    at.button(key="toy.run").click().run()
    assert len(RunStore(home).list_runs()) == 1
