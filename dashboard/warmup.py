"""Compile ahead: the compiled SGLD step of the default toy run, built in the background when
the app starts, so that the first Run uses it (issue 13.17).

A toy run's eager step costs ~0.8 ms (about 40 small tensor operations), so the default run
(8 chains, 2 500 steps) spends ~2 s sampling; the compiled step
(:class:`lltools.sampling.compiled.FusedPotentialStep`) takes a fraction of that but costs a
compile per potential and chain count (5–10 s cold on a 2-core CPU, ~1 s from inductor's
on-disk cache).  :func:`start` compiles it once per server process, on a daemon thread, for
the toy page's default potential and chain count, through the public workflow
(``estimate_stream(..., fused=True)``: a few steps).  :func:`fused_for` then tells a page to
ask for the compiled step only where it is already built for that shape — never to compile
on a user's click; every other run keeps the default choice of
:func:`lltools.sampling.compiled.should_fuse`.

The warm-up starts with the first session (Streamlit runs no app code before one connects)
on a thread of lower priority (:data:`WARMUP_NICENESS`), so a Run pressed at once is served
eagerly at full speed while the compile takes the other core.
The warm-up is **opt-in** (``LLTOOLS_WARMUP=1``): see :func:`enabled`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import streamlit as st

from dashboard import common as ui
from lltools.workflows.estimate import estimate_stream

logger = logging.getLogger("lltools")

#: Environment switch: "0" / "false" / "off" disables the warm-up.
WARMUP_ENV = "LLTOOLS_WARMUP"


@dataclass
class Warmth:
    """Which (potential spec, chain count) shapes have a compiled step built in this process."""

    _warm: set[tuple[str, int]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    seconds: dict[tuple[str, int], float] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def mark(self, spec: str, chains: int, seconds: float | None = None) -> None:
        with self._lock:
            self._warm.add((spec, int(chains)))
            if seconds is not None:
                self.seconds[(spec, int(chains))] = seconds

    def is_warm(self, spec: str, chains: int) -> bool:
        with self._lock:
            return (spec, int(chains)) in self._warm


@st.cache_resource(show_spinner=False)
def warmth() -> Warmth:
    """The server-wide :class:`Warmth`."""
    return Warmth()


def enabled() -> bool:
    """Whether ``LLTOOLS_WARMUP`` asks for the warm-up ("1", "true", "yes", "on").

    Off by default, because on a 2-core machine a first Run pressed while the warm-up compiles
    shares the CPU with it: the first click's run took 8–14 s of server CPU instead of ~3.5
    (``bench_latency.py``, RESULTS.md §11), to save ~1 s on the runs after it.

    (A first Run beside the warm-up once showed λ̂ = 4.8·10⁻¹² instead of 1.013.  The cause was
    not the compile: the slow first script run let the browser miss the message that sets the
    number inputs from Session State, so it sent their minimums — nβ = 0.001, ε = 10⁻⁹, one
    chain.  Widgets are now created with their values, :func:`dashboard.common.held`.)"""
    value = os.environ.get(WARMUP_ENV, "").strip().lower()
    return value in ("1", "true", "yes", "on")


def warm_potential(spec: str, chains: int, state: Warmth, *, steps: int = 10) -> None:
    """Build the compiled step for ``spec`` at ``chains`` chains (a few steps of a real run
    on the page's cached target, so the page's later runs find it); marks it warm when the
    compiled step ran (not when it fell back to eager)."""
    target = ui.potential_target(spec)
    start = time.perf_counter()
    stream = estimate_stream(target, device=ui.POTENTIAL_DEVICE, nbeta=1.0, chains=chains, draws=steps,
                             burnin=0, fused=True)
    last = None
    for item in stream:
        last = item
    if last is not None and last.trace.meta.get("step") == "compiled":
        state.mark(spec, chains, time.perf_counter() - start)


#: The warm-up thread's niceness (Linux: per thread): a user's run started meanwhile (eager)
#: gets the CPU first; the compile uses what is left.
WARMUP_NICENESS = 10


def _run(shapes: Iterable[tuple[str, int]], state: Warmth) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WARMUP_NICENESS)
    try:
        for spec, chains in shapes:
            warm_potential(spec, chains, state)
    except Exception as exc:  # a failed warm-up only means the first runs stay eager
        state.error = f"{type(exc).__name__}: {exc}"
        logger.warning("lltools: warming up the compiled step failed (%s); runs stay eager", state.error)
    finally:
        state.done.set()


@st.cache_resource(show_spinner=False)
def start(shapes: tuple[tuple[str, int], ...]) -> Warmth:
    """Start the background warm-up of ``shapes`` ((potential spec, chains) pairs) once per
    server process; returns the shared :class:`Warmth` (its ``done`` is set when finished)."""
    state = warmth()
    if not enabled():
        state.done.set()
        return state
    threading.Thread(target=_run, args=(shapes, state), name="lltools-warmup", daemon=True).start()
    return state


def fused_for(spec: str, chains: int) -> bool | None:
    """``True`` when the compiled step for this potential and chain count is built (use it),
    else ``None`` (the default choice, which keeps short runs eager rather than compile)."""
    return True if warmth().is_warm(spec, chains) else None
