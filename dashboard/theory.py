"""Theory on the pages, off their critical path: λ and T(nβ, γ) of a potential, computed in the background.

λ (:func:`lltools.theory.record.theory_for`, under its work budget) and the finite-nβ target
T(nβ, γ) (:func:`lltools.theory.record.finite_nbeta_target`, the CLI's cubature) can take
seconds for a hostile expression.  A page never waits for them to draw: :func:`theory_now`
starts the computation in a small thread pool shared by the server (one job per potential,
nβ and γ) and returns ``None`` until it is done; :func:`refresh_when_ready` then polls the job
from a fragment and reruns the page once, when it has finished.  Paths that need the number to
go on (a run, its result) call :func:`theory_wait`, which joins the same job — nothing is
computed twice, and past the budget the record says "degeneracy not checked".
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.common import MODEL_PREFIX, potential_target
from lltools.theory.quadrature import TemperedExpectation
from lltools.theory.record import TheoryRecord, theory_for
from lltools.theory.record import finite_nbeta_target as adapted_tempered_expectation

#: How often a waiting page looks at its job (seconds).
POLL_S = 0.25
#: Threads computing theory for the whole server (each job is budgeted; more would only compete
#: with the samplers for the cores).
WORKERS = 2


@dataclass(frozen=True)
class TheoryBundle:
    """Everything theory says for one potential at one (nβ, γ).

    Attributes
    ----------
    record : TheoryRecord
        λ at w* (exact or not, with its note).
    quad : TemperedExpectation or None
        T(nβ, γ) with its error estimate, ``None`` when it cannot be computed.
    reason : str or None
        Why ``quad`` is ``None``.
    """

    record: TheoryRecord
    quad: TemperedExpectation | None
    reason: str | None


def compute_theory(target: Any, nbeta: float, gamma: float) -> TheoryBundle:
    """λ and T(nβ, γ) of a potential target (runs in the pool; never raises)."""
    try:
        record = theory_for(target)
    except Exception as exc:  # a bug in theory must not take the page down
        record = TheoryRecord(None, None, False, "none", f"unknown ({type(exc).__name__}: {exc})")
    expr = getattr(target, "expression", None)
    if expr is None:
        return TheoryBundle(record, None, "not an expression")
    try:
        quad = adapted_tempered_expectation(expr, float(nbeta), float(gamma))
    except Exception as exc:
        return TheoryBundle(record, None, f"{type(exc).__name__}: {exc}")
    if not math.isfinite(quad.value):
        return TheoryBundle(
            record, None, "the tempered expectation is not finite here (γ = 0 with flat directions?)"
        )
    return TheoryBundle(record, quad, None)


@st.cache_resource(show_spinner=False)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="lltools-theory")


_JOBS: weakref.WeakSet[Future[TheoryBundle]] = weakref.WeakSet()
_JOBS_LOCK = threading.Lock()


@st.cache_resource(max_entries=256, show_spinner=False)
def _job(spec: str, nbeta: float, gamma: float, _target: Any = None) -> Future[TheoryBundle]:
    """The server-wide job for (spec, nβ, γ): started once, shared by every session."""
    job = _pool().submit(compute_theory, _target, nbeta, gamma)
    with _JOBS_LOCK:
        _JOBS.add(job)
    return job


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until every theory job started so far has finished (tests, benchmarks); ``True`` if so."""
    with _JOBS_LOCK:
        jobs = list(_JOBS)
    _, pending = wait(jobs, timeout=timeout)
    return not pending


def theory_job(spec: str, nbeta: float, gamma: float) -> Future[TheoryBundle]:
    """Start (or find) the job for a potential spec at (nβ, γ).

    Raises ``ValueError`` for a bad spec (as :func:`dashboard.common.potential_target`).
    """
    return _job(spec, float(nbeta), float(gamma), _target=potential_target(spec))


def theory_now(spec: str, nbeta: float, gamma: float) -> TheoryBundle | None:
    """The bundle if its job has finished, else ``None`` (the job is started; nothing waits)."""
    job = theory_job(spec, nbeta, gamma)
    return job.result() if job.done() else None


def theory_wait(spec: str, nbeta: float, gamma: float) -> TheoryBundle:
    """The bundle, waiting for its job (for paths that cannot go on without it: a run, a result)."""
    return theory_job(spec, nbeta, gamma).result()


def refresh_when_ready(spec: str, nbeta: float, gamma: float, *, message: str | None = None) -> None:
    """Say that theory is being computed, and rerun the page once when it is ready.

    A fragment polling the job every :data:`POLL_S` seconds; the rest of the page is drawn
    and usable meanwhile.
    """
    job = theory_job(spec, nbeta, gamma)

    @st.fragment(run_every=POLL_S)
    def _poll() -> None:
        if job.done():
            st.rerun(scope="app")
        st.caption(
            message
            or ":material/hourglass_top: Computing λ and T(nβ, γ) in the background "
            "(at most a few seconds; past the work budget λ is reported with \"degeneracy not checked\")…"
        )

    _poll()


# ---------------------------------------------------------------------------- blocking helpers
def theory_record(spec: str) -> TheoryRecord:
    """The theory record of a potential spec (cached per target; waits for the budgeted work)."""
    return theory_for(potential_target(spec))


def finite_nbeta(spec: str, nbeta: float, gamma: float) -> tuple[TemperedExpectation | None, str | None]:
    """T(nβ, γ) with its error estimate — the same adaptive cubature as the CLI — or ``(None, reason)``."""
    try:
        bundle = theory_wait(spec, nbeta, gamma)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return bundle.quad, bundle.reason


def finite_nbeta_target(spec: str, nbeta: float, gamma: float) -> tuple[float | None, str | None]:
    """The finite-nβ value T(nβ, γ) = nβ·E_p[L − L(w*)] and a note.

    The note is ``None`` when T is exact (error estimate < 1e-6 relative), says
    "approximate: ± error" otherwise, and gives the reason when T could not be computed
    (``(None, reason)``: e.g. γ = 0 with a non-compact minimum set, or a potential that is
    not 2-D).
    """
    res, reason = finite_nbeta(spec, nbeta, gamma)
    if res is None:
        return None, reason
    if res.exact:
        return res.value, None
    return res.value, (
        f"T is approximate: ± {res.error:.2g} (the quadrature's error estimate did not reach 1e-6); "
        "allow for it when comparing λ̂ with T"
    )


def finite_target_curve(spec: str, nbeta: float, gammas: Iterable[float]) -> pd.DataFrame:
    """T(nβ, γ) for each γ (columns ``gamma, target``), skipping values it cannot compute."""
    rows: list[dict[str, float]] = []
    if spec.startswith(MODEL_PREFIX):
        return pd.DataFrame(rows, columns=["gamma", "target"])
    for g in gammas:
        value, _ = finite_nbeta_target(spec, float(nbeta), float(g))
        if value is not None:
            rows.append({"gamma": float(g), "target": value})
    return pd.DataFrame(rows, columns=["gamma", "target"])
