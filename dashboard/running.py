"""Live runs in the dashboard: the Run/Stop protocol, streaming with progress, the server-wide
result cache, and recording every run into the run store the CLI uses.

- :class:`LiveRun` — Run/Stop buttons, a request/stop protocol over ``st.session_state``,
  the partial trace kept for Stop; :class:`Progress` (rate and ETA); :func:`stream_live`
  consumes a workflow stream and closes it when the script is interrupted (Stop).
- :class:`ResultCache` / :func:`result_cache` / :func:`settings_key` — finished runs reused
  when the same settings are run again.
- :func:`record_live` wraps a page's stream with :func:`lltools.storage.recording.record_stream`
  (``$LLTOOLS_HOME`` or ``~/.lltools``); :func:`record_cached` saves a run served from the cache.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from lltools.estimation import frames
from lltools.sampling import compiled
from lltools.storage.index import RunStore
from lltools.storage.recording import record_stream
from lltools.workflows.events import RunEvent

#: A live run reports (and so can be stopped) at least this often, in seconds.
LIVE_REPORT_S = 0.25
#: How long the run after Stop waits for the stopped run to hand over its last chunk.
STOP_WAIT_S = 2.0


# ============================================================================ cached results
def partial_sweep_table(trace: Any, settings: pd.DataFrame) -> pd.DataFrame:
    """Cheap per-setting summary of a running sweep: λ̂ so far and acceptance so far.

    Columns ``setting, epsilon, gamma, nbeta, llc_mean, acceptance`` (λ̂ = mean over the
    setting's chains of the running estimate at the latest draw; NaN during burn-in).
    """
    tf = frames.trace_frame(trace)
    draws = tf[tf["is_draw"]]
    if draws.empty:
        llc = pd.Series(np.nan, index=settings["setting"])
    else:
        last = draws.sort_values("step").groupby("chain").tail(1)
        llc = last.groupby("setting")["llc_running"].mean()
    acc = tf.groupby("setting")["acceptance"].mean()
    out = settings.copy()
    out["llc_mean"] = out["setting"].map(llc)
    out["acceptance"] = out["setting"].map(acc)
    return out



class ResultCache:
    """A small thread-safe LRU of finished runs, keyed by their full settings.

    Streamed runs cannot go through ``st.cache_data`` (they draw live while computing),
    so a finished run is stored here and reused when the same settings are run again.
    Shared by all sessions of the server (results are deterministic given the seed).
    """

    def __init__(self, max_entries: int = 48) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._stored: dict[Any, str] = {}  # key -> the run store id of the run that made it
        self._lock = Lock()

    def get(self, key: Any) -> Any | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Any, value: Any, stored_id: str | None = None) -> None:
        """Keep ``value``; ``stored_id`` is the run store id of the run that produced it."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if stored_id is not None:
                self._stored[key] = stored_id
            while len(self._items) > self.max_entries:
                old, _ = self._items.popitem(last=False)
                self._stored.pop(old, None)

    def stored_id(self, key: Any) -> str | None:
        """The run store id of the run behind ``key`` (``None`` when not recorded)."""
        with self._lock:
            return self._stored.get(key)

    def set_stored_id(self, key: Any, stored_id: str | None) -> None:
        with self._lock:
            if stored_id is not None:
                self._stored[key] = stored_id

    def __len__(self) -> int:
        return len(self._items)


@st.cache_resource(show_spinner=False)
def result_cache() -> ResultCache:
    """The server-wide :class:`ResultCache`."""
    return ResultCache()


def settings_key(*parts: Any, **settings: Any) -> tuple:
    """A hashable cache key from positional parts and sorted settings."""

    def norm(v: Any) -> Any:
        if isinstance(v, float):
            return float(f"{v:.12g}")
        if isinstance(v, list | tuple):
            return tuple(norm(x) for x in v)
        return v

    return tuple(norm(p) for p in parts) + tuple(sorted((k, norm(v)) for k, v in settings.items()))


# ============================================================================ live runs


@dataclass
class RunHandle:
    """What a streaming script run and the script run Stop starts share (plain objects:
    both threads hold the same handle).

    ``stop`` is set by Stop; ``active`` while :func:`stream_live` runs; the streaming thread
    puts each chunk in ``partial`` and sets ``handed_over`` when it has stopped streaming;
    ``abandoned`` tells it that Stop gave up waiting (keep nothing, end).
    """

    stop: threading.Event = field(default_factory=threading.Event)
    active: threading.Event = field(default_factory=threading.Event)
    handed_over: threading.Event = field(default_factory=threading.Event)
    partial: Any = None
    abandoned: bool = False

    def take_partial(self) -> Any | None:
        partial, self.partial = self.partial, None
        return partial


@dataclass
class LiveRun:
    """The Run / Stop protocol of one page (namespace ``ns``) over ``st.session_state``.

    1. The Run button's callback stores a *request* (the settings) and clears the stop
       flag.  Callbacks run before the script, so the request is visible at the top.
    2. :meth:`take` pops the request: while a request is being served the page draws its
       controls disabled and streams the run, calling :meth:`keep_partial` per chunk.
    3. The Stop button's callback sets the stop flag; Streamlit interrupts the running
       script and starts a new run, in which :meth:`stopped_partial` hands back the last
       partial result so the page can summarise what was sampled so far.
    4. After a run finishes the page stores the result and calls ``st.rerun()`` so the
       controls are enabled again.
    """

    ns: str

    @property
    def _request(self) -> str:
        return f"{self.ns}.__request"

    @property
    def _partial(self) -> str:
        return f"{self.ns}.__partial"

    @property
    def _stop(self) -> str:
        return f"{self.ns}.__stop"

    @property
    def _handle(self) -> str:
        return f"{self.ns}.__handle"

    def handle(self) -> RunHandle:
        """The current run's :class:`RunHandle` (created by :meth:`request`, or now)."""
        handle = st.session_state.get(self._handle)
        if not isinstance(handle, RunHandle):
            handle = st.session_state[self._handle] = RunHandle()
        return handle

    def request(self, params: Mapping[str, Any]) -> None:
        """Ask for a run with ``params`` (use in a button callback)."""
        st.session_state[self._request] = dict(params)
        st.session_state[self._stop] = False
        st.session_state[self._handle] = RunHandle()
        st.session_state.pop(self._partial, None)

    def stop(self) -> None:
        """Ask the running run to stop (use as the Stop button's callback)."""
        st.session_state[self._stop] = True
        handle = st.session_state.get(self._handle)
        if isinstance(handle, RunHandle):
            handle.stop.set()

    def take(self) -> dict[str, Any] | None:
        """Pop the pending request, if any (call once, before drawing the controls)."""
        return st.session_state.pop(self._request, None)

    def keep_partial(self, partial: Any) -> None:
        """Remember the latest partial result (what Stop will summarise)."""
        st.session_state[self._partial] = partial

    def clear_partial(self) -> None:
        st.session_state.pop(self._partial, None)

    def stopped_partial(self, wait_s: float = STOP_WAIT_S) -> Any | None:
        """The partial result of a run that was interrupted (Stop, or leaving the page).

        Stop starts a new script run at once, while the old one is still inside the sampler
        until its next chunk (at most :data:`LIVE_REPORT_S` later): after Stop this waits (up
        to ``wait_s``) for the old run to hand over its last chunk through the run's
        :class:`RunHandle` (session state is not a channel between two script threads), so
        the draws so far are summarised now.  A run still preparing past that (compiling its
        step) is abandoned: it ends at its first chunk, stored as ``stopped``, and the page
        says so at once.
        """
        handle = st.session_state.get(self._handle)
        if isinstance(handle, RunHandle) and handle.stop.is_set() and handle.active.is_set():
            with st.spinner("Stopping: the sampler finishes its current chunk…"):
                handle.handed_over.wait(timeout=wait_s)
            if not handle.handed_over.is_set():
                handle.abandoned = True
                st.session_state.pop(self._partial, None)
                st.info(
                    "Stopped while the sampler was still preparing its step (compiling it for "
                    "speed): no draws to summarise.",
                    icon=":material/stop_circle:",
                )
                return None
            st.session_state.pop(self._partial, None)
            return handle.take_partial()
        if isinstance(handle, RunHandle) and handle.partial is not None:
            st.session_state.pop(self._partial, None)
            return handle.take_partial()
        return st.session_state.pop(self._partial, None)

    def buttons(
        self,
        *,
        running: bool,
        on_run: Callable[[], None],
        disabled: bool = False,
        run_label: str = "Run",
        help: str | None = None,
    ) -> None:
        """Run (primary) and Stop side by side."""
        c1, c2 = st.columns([3, 2])
        c1.button(
            run_label,
            type="primary",
            key=f"{self.ns}.run",
            on_click=on_run,
            disabled=running or disabled,
            width="stretch",
            help=help,
        )
        c2.button(
            "Stop",
            key=f"{self.ns}.stop",
            on_click=self.stop,
            disabled=not running,
            width="stretch",
            help="Stop sampling and summarise the draws so far.",
        )


def starting_text(target: Any, chains: int, steps: int, fused: bool | None = None) -> str:
    """What the progress bar says before the first step: "starting…", or, when the run will
    compile its step first, that it is compiling and for about how long (what that compile
    took here last time, else a cold compile: :func:`lltools.sampling.compiled.compile_ahead_seconds`)."""
    seconds = compiled.compile_ahead_seconds(target, int(chains), int(steps), fused)
    if seconds is None:
        return "starting…"
    return (f"compiling the step for speed (about {seconds:.0f} s, once for this shape; "
            "later runs reuse it); sampling starts after…")


class Progress:
    """``st.progress`` with step counts, rate and ETA (``starting``: its text before the first step)."""

    def __init__(self, total_steps: int, *, label: str = "Sampling", container: Any = None,
                 starting: str = "starting…") -> None:
        self.total = max(int(total_steps), 1)
        self.label = label
        self.t0 = time.perf_counter()
        self.bar = (container or st).progress(0.0, text=f"{label}: {starting}")

    def update(self, done: int) -> None:
        frac = min(max(done / self.total, 0.0), 1.0)
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        eta_txt = f" · about {eta:.0f} s left" if math.isfinite(eta) and eta >= 1 else ""
        self.bar.progress(
            frac, text=f"{self.label}: step {done:,} / {self.total:,} · {rate:,.0f} steps/s{eta_txt}"
        )

    def done(self) -> float:
        """Remove the bar; returns the elapsed seconds."""
        self.bar.empty()
        return time.perf_counter() - self.t0


def report_every(total_steps: int, updates: int = 40, minimum: int = 10) -> int:
    """How often to yield a partial trace for about ``updates`` live refreshes."""
    return max(minimum, math.ceil(total_steps / max(updates, 1)))


def stream_live(
    stream: Iterator[Any],
    *,
    live: LiveRun,
    total_steps: int,
    on_chunk: Callable[[Any], None],
    label: str = "Sampling",
    progress_container: Any = None,
    min_interval: float = 1.0,
    first_draw: float = 0.5,
    stop_when: Callable[[Any], str | None] | None = None,
    starting: str = "starting…",
) -> tuple[Any, float]:
    """Consume a ``*_stream`` iterator: keep each partial for Stop, redraw, show progress.

    Returns ``(last item, elapsed seconds)``.  On any interruption (Stop raises inside
    the loop) the stream is closed, so a :func:`record_live` run is marked stopped.
    Redraws are adaptive: after a redraw that took D seconds the next one waits at least
    3·D (and ``min_interval``), so drawing never takes more than about a quarter of the
    run; the progress bar moves every chunk and the final state is always drawn.
    ``min_interval`` is 1 s and the wait 3·D: the browser's own cost of drawing the figures
    (~0.5–1 s of CPU per redraw of a page's charts on a 2-core machine, RESULTS.md §11) is
    invisible here, and it shares the machine with the sampler.  The first figures are drawn
    ``first_draw`` seconds into the run (the bar and its step count move from the first
    chunk): a short run is not slowed by drawing its first steps of burn-in.
    ``stop_when(item)`` is asked at every unfinished chunk: a reason (a string) ends the run
    there, like the CLI's ``--target-sem`` — the stream is closed (a recorded run is stored
    as stopped) and the last, incomplete item is returned; the caller says why.
    ``starting`` is the bar's text until the first chunk (:func:`starting_text`).
    """
    progress = Progress(total_steps, label=label, container=progress_container, starting=starting)
    last = None
    next_draw = time.perf_counter() + first_draw
    iterator = iter(stream)
    handle = live.handle()
    handle.active.set()
    try:
        for item in iterator:
            last = item
            if handle.abandoned:  # Stop gave up on this run: end it, keep nothing
                break
            handle.partial = item
            live.keep_partial(item)
            if handle.stop.is_set():  # hand this chunk over to the run Stop started, draw nothing
                break
            trace = item.trace
            done = item.steps_done
            now = time.perf_counter()
            if now >= next_draw and not trace.complete:
                on_chunk(item)
                took = time.perf_counter() - now
                next_draw = time.perf_counter() + max(min_interval, 3.0 * took)
            progress.update(done)
            if stop_when is not None and not trace.complete and stop_when(item):
                break
    finally:
        # The last chunk is handed over already: let a waiting Stop go on at once, while this
        # thread closes the stream (storing the run as stopped takes a moment).
        handle.active.clear()
        handle.handed_over.set()
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if handle.abandoned or handle.stop.is_set():
        st.stop()  # the script run Stop started has taken over the page
    handle.partial = None
    elapsed = progress.done()
    live.clear_partial()
    if last is None:
        raise RuntimeError("the sampler produced no output")
    return last, elapsed


# ============================================================================ run store


def record_live(
    stream: Iterable[Any], *, page: str, label: str, settings: Mapping[str, Any], target: Mapping[str, Any]
) -> Iterable[Any]:
    """``stream`` recorded into the run store while it runs (:func:`lltools.storage.recording.record_stream`).

    ``settings`` are the ``estimate_stream`` keywords (enough to re-run it: resume),
    ``target`` a store target spec (:func:`lltools.storage.specs.target_spec`); ``page`` and the
    display ``label`` go into the run's meta.  Iterate the result exactly like the stream;
    afterwards ``.result`` holds the summarised ``EstimateResult``.  Chunks are flushed at
    most once per ``flush_interval`` (1 s), so live streaming keeps its speed.  If the
    store cannot be written, a warning says so and the run goes ahead unrecorded.
    """
    store = RunStore()
    try:
        store.runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        st.warning(f"This run is not saved: cannot write the run store at {store.root} ({exc}).")
        return stream
    return record_stream(
        store,
        stream,
        kind="estimate",
        settings=dict(settings),
        target=dict(target),
        meta={"app": "dashboard", "page": page, "label": label},
    )


def record_cached(
    result: Any,
    *,
    page: str,
    label: str,
    settings: Mapping[str, Any],
    target: Mapping[str, Any],
    existing: str | None = None,
) -> str | None:
    """The stored run behind a result served from the result cache.

    A cached repeat is not a new run: when ``existing`` (the store id of the run that made
    the cached result) is still in the store it is returned and nothing is written.  Else
    (deleted, or a server restart emptied the store) the result is saved once, as a run.
    Returns the run id, or ``None`` if the store cannot be written (never raises).
    """
    if existing is not None:
        try:
            RunStore().resolve(existing)
            return existing
        except Exception:  # gone: record it again below
            pass
    event = RunEvent(kind="estimate", steps_done=result.trace.num_steps_total,
                     steps_total=result.trace.num_steps_total, trace=result.trace,
                     settings=result.settings, target=None, result=result)
    try:
        recorder = record_stream(
            RunStore(),
            [event],
            kind="estimate",
            settings=dict(settings),
            target=dict(target),
            meta={"app": "dashboard", "page": page, "label": label, "cached": True},
        )
        for _ in recorder:
            pass
        return recorder.run_id
    except Exception as exc:  # saving a copy must never fail the page
        st.warning(f"This run is not saved in the run store ({type(exc).__name__}: {exc}).")
        return None

