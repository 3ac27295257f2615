"""The dashboard's run history, backed by the persistent run store (:mod:`lltools.storage`).

Every toy-page and networks-page run is recorded into the store while it runs (see
:func:`dashboard.live_ui.record_live`), the same store the CLI writes (``$LLTOOLS_HOME``
or ``~/.lltools``).  This module reads it back for the app:

- :func:`history_frame` — the store's runs as the history table (newest first, with the
  ``incomplete`` status of runs whose writer died);
- :func:`stored_record` — one stored run as a :class:`~dashboard.history.RunRecord`, so
  the two-run comparison (:func:`render_comparison`) works on any run;
- :func:`render_history` — table, select two rows to compare, downloads via
  :meth:`RunStore.export <lltools.storage.index.RunStore.export>`;
- :func:`store_notice` — on app start, lists ``incomplete`` runs with **Resume**
  (re-run from scratch with the same seed, :func:`lltools.storage.recording.resume_stream`, as
  ``lltools runs resume`` does) and **Discard**.

Store problems (unreadable directory, corrupt run) are shown as messages, never raised.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import common as ui
from dashboard import running as live_ui
from lltools import viz as plots
from lltools.estimation import frames
from lltools.storage.files import RunStoreError
from lltools.storage.index import RunStore
from lltools.storage.recording import resume_stream
from lltools.storage.specs import describe_target, total_steps
from lltools.theory.record import TheoryRecord


@dataclass
class RunRecord:
    """One finished (or stopped) run, as listed in the run history.

    ``llc_trace`` holds the chain-mean running λ̂ (columns ``step, llc_running``) so two
    runs can be overlaid without keeping their full traces.
    """

    id: int | str
    page: str
    target: str
    settings: dict[str, Any]
    llc_mean: float
    llc_sem: float
    rhat: float
    ess: float
    acceptance: float
    n_diverged: int
    theory_llc: float | None = None
    finite_target: float | None = None
    status: str = "complete"
    #: What the theory value is (the theory record's label: "exact λ" only when exact).
    theory_label: str = "theory λ"
    elapsed_s: float = float("nan")
    time: str = field(default_factory=lambda: datetime.now().strftime("%H:%M:%S"))
    llc_trace: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def tag(self) -> str:
        """``#3`` for a session run, ``#<short store id>`` for a stored one."""
        return f"#{self.id}"

    @property
    def label(self) -> str:
        """What the run was: target and settings (and when), never a bare number."""
        return f"{self.target} · {settings_text(self.settings)} · {self.time} (λ̂ = {ui.fmt(self.llc_mean)})"

    def row(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "time": self.time,
            "page": self.page,
            "target": self.target,
            "λ̂": self.llc_mean,
            "± sem": self.llc_sem,
            "theory λ": self.theory_llc,
            "theory": self.theory_label if self.theory_llc is not None else "",
            "target T": self.finite_target,
            "R-hat": self.rhat,
            "ESS": self.ess,
            "acceptance": self.acceptance,
            "diverged": self.n_diverged,
            "status": self.status,
            **{k: v for k, v in self.settings.items() if k in HISTORY_SETTINGS},
        }


def settings_text(settings: dict[str, Any]) -> str:
    """``nβ=100 γ=1 ε=1e-3 8×2000 seed 0``: the settings that tell two runs apart."""
    names = (("nbeta", "nβ"), ("gamma", "γ"), ("epsilon", "ε"))
    parts = [
        f"{sym}={ui.fmt(settings[k], 3)}" for k, sym in names if isinstance(settings.get(k), int | float)
    ]
    if settings.get("chains") and settings.get("draws"):
        parts.append(f"{settings['chains']}×{settings['draws']}")
    if settings.get("seed") not in (None, 0):
        parts.append(f"seed {settings['seed']}")
    return " ".join(parts)


#: Settings shown as history columns (and compared in the diff).
HISTORY_SETTINGS = ("nbeta", "gamma", "epsilon", "chains", "draws", "burnin", "seed", "batch_size")


def mean_running_llc(traces: pd.DataFrame) -> pd.DataFrame:
    """The chain-mean running λ̂ per step over the draws (columns ``step, llc_running``)."""
    if traces.empty:
        return pd.DataFrame(columns=["step", "llc_running"])
    d = traces[traces["is_draw"].astype(bool)] if "is_draw" in traces else traces
    return d.groupby("step", sort=True)["llc_running"].mean().reset_index()


class RunHistory:
    """The session's run history (newest last).

    Backed by ``st.session_state``; the interface (``add``, ``records``, ``get``,
    ``frame``, ``clear``) is what a persistent store needs to provide to replace it.
    """

    KEY = "history.records"
    MAX = 200

    def __init__(self, state: Any = None) -> None:
        self.state = st.session_state if state is None else state
        if self.KEY not in self.state:
            self.state[self.KEY] = []

    def _list(self) -> list[RunRecord]:
        return self.state[self.KEY]

    def next_id(self) -> int:
        items = self._list()
        return (items[-1].id + 1) if items else 1

    def add(self, **fields: Any) -> RunRecord:
        """Append a record (``id`` assigned here) and return it."""
        record = RunRecord(id=self.next_id(), **fields)
        items = self._list()
        items.append(record)
        del items[: max(0, len(items) - self.MAX)]
        return record

    def records(self, page: str | None = None) -> list[RunRecord]:
        return [r for r in self._list() if page is None or r.page == page]

    def get(self, run_id: int) -> RunRecord | None:
        return next((r for r in self._list() if r.id == run_id), None)

    def frame(self, page: str | None = None) -> pd.DataFrame:
        rows = [r.row() for r in self.records(page)]
        return pd.DataFrame(rows)

    def clear(self) -> None:
        self.state[self.KEY] = []


def record_estimate(
    page: str,
    target_name: str,
    result: Any,
    *,
    finite_target: float | None = None,
    status: str = "complete",
    elapsed_s: float = float("nan"),
    traces: pd.DataFrame | None = None,
) -> RunRecord:
    """Append an :class:`~lltools.workflows.estimate.EstimateResult` to the history.

    A cached repeat (``status`` "complete (cached)") is not a new run: the earlier record of
    the same page, target and settings is returned instead, when there is one.
    """
    frame = traces if traces is not None else result.traces
    settings = result.settings.as_dict()
    if status.startswith("complete (cached)"):
        for earlier in reversed(RunHistory().records(page)):
            if earlier.target == target_name and earlier.settings == settings:
                return earlier
    return RunHistory().add(
        page=page,
        target=target_name,
        settings=settings,
        llc_mean=float(result.llc_mean),
        llc_sem=float(result.llc_sem),
        rhat=float(result.rhat),
        ess=float(result.ess),
        acceptance=float(result.acceptance),
        n_diverged=len(result.diverged_chains),
        theory_llc=result.theory_llc,
        theory_label=result.theory.label if getattr(result, "theory", None) is not None else "theory λ",
        finite_target=finite_target,
        status=status,
        elapsed_s=elapsed_s,
        llc_trace=mean_running_llc(frame),
    )


def settings_diff(a: RunRecord, b: RunRecord) -> pd.DataFrame:
    """Rows for every setting (and the target) that differs between two runs."""
    rows = []
    ca, cb = "A", "B"
    if a.target != b.target:
        rows.append({"setting": "target", ca: a.target, cb: b.target})
    for k in sorted(set(a.settings) | set(b.settings)):
        va, vb = a.settings.get(k), b.settings.get(k)
        if va != vb:
            rows.append({"setting": k, ca: str(va), cb: str(vb)})
    return pd.DataFrame(rows, columns=["setting", ca, cb])


def render_comparison(a: RunRecord, b: RunRecord, *, key: str = "history") -> None:
    """Overlay two runs' chain-mean running λ̂, say whether they differ, and diff their settings."""
    parts = [r.llc_trace.assign(run=r.label) for r in (a, b) if not r.llc_trace.empty]
    runs = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["run", "step", "llc_running"])
    )
    fig = plots.compare_runs_figure(runs)
    for r in (a, b):
        if r.theory_llc is not None:
            fig.add_hline(
                y=r.theory_llc,
                line_dash="dash",
                line_color="grey",
                annotation_text=f"{r.theory_label} = {ui.fmt(r.theory_llc)}",
                annotation_position="bottom right",
            )
            break
    left, right = st.columns([3, 2])
    with left:
        ui.show_figure(fig, key=f"{key}.compare")
    with right:
        st.markdown(f"**A** = {ui.plain(a.label)}  \n**B** = {ui.plain(b.label)}")
        d = b.llc_mean - a.llc_mean
        se = (
            math.hypot(a.llc_sem, b.llc_sem)
            if math.isfinite(a.llc_sem) and math.isfinite(b.llc_sem)
            else math.nan
        )
        z = abs(d) / se if se and math.isfinite(se) and se > 0 else math.nan
        verdict = (
            "within noise"
            if math.isfinite(z) and z < 2
            else "a real difference (more than 2 standard errors)"
            if math.isfinite(z)
            else "no error bars"
        )
        st.markdown(f"Δλ̂ = {ui.fmt(d)} ({verdict}{', z = ' + ui.fmt(z, 2) if math.isfinite(z) else ''}).")
        diff = settings_diff(a, b)
        if diff.empty:
            st.caption("Same settings.")
        else:
            st.dataframe(diff, hide_index=True, width="stretch")


#: Most stored runs shown in the history table (newest first).
HISTORY_LIMIT = 200
#: Most unfinished runs listed one by one in the start-up notice.
NOTICE_LIMIT = 5
#: Target kinds a page's history shows besides the runs it recorded itself.
PAGE_TARGET_KINDS: dict[str, tuple[str, ...]] = {"Networks": ("model", "upload")}
#: Session-state keys of the start-up notice.
NOTICE_RUNS = "store.notice.runs"
NOTICE_HIDDEN = "store.notice.hidden"
NOTICE_MESSAGES = "store.notice.messages"
RESUME_REQUEST = "store.notice.resume"
EXPORT_FORMATS = {"Parquet": ("parquet", "application/vnd.apache.parquet"),
                  "CSV": ("csv", "text/csv"), "JSON": ("json", "application/json")}  # fmt: skip


def run_store() -> RunStore:
    """The store the app reads and writes (``$LLTOOLS_HOME`` or ``~/.lltools``), read afresh."""
    return RunStore()


def short_id(run_id: str) -> str:
    """A readable short form of a store id: ``HH:MM:SS·<4 hex>`` (the id's time is UTC)."""
    try:
        stamp = datetime.strptime(run_id[:22], "%Y%m%dT%H%M%S.%f")
        return f"{stamp:%m-%d %H:%M:%S}·{run_id.rsplit('-', 1)[-1][:4]}"
    except ValueError:
        return re.sub(r"[^\w.\-]", "", run_id)[:24]  # a foreign folder name: nothing Markdown reads


# ============================================================================ reading


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _row(manifest: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """One history-table row from a manifest and its ``list_runs`` row."""
    meta = manifest.get("meta") or {}
    summary = manifest.get("summary") or {}
    settings = manifest.get("settings") or {}
    num_draws = base.get("num_draws")
    created = base.get("created")
    return {
        "id": base["id"],
        "run": short_id(str(base["id"])),
        "created": created.tz_convert(None).strftime("%Y-%m-%d %H:%M:%S") if pd.notna(created) else "",
        "page": meta.get("page") or "CLI",
        "target": meta.get("label") or base.get("target"),
        "status": base.get("status"),
        "λ̂": _num(summary.get("llc_mean")),
        "± sem": _num(summary.get("llc_sem")),
        "theory λ": _num(summary.get("theory_llc")),
        "theory": _theory_label(summary),
        "R-hat": _num(summary.get("rhat")),
        "ESS": _num(summary.get("ess")),
        "acceptance": _num(summary.get("acceptance")),
        "draws done": f"{base.get('draws_done', 0)}/{num_draws if num_draws is not None else '?'}",
        **{k: settings.get(k) for k in HISTORY_SETTINGS},
        "_target_kind": (manifest.get("target") or {}).get("kind"),
    }


def _theory_label(summary: dict[str, Any]) -> str:
    """The stored theory record's label ("exact λ" only when it was exact), "" when none."""
    theory = summary.get("theory")
    if not isinstance(theory, dict) or not isinstance(theory.get("llc"), int | float):
        return ""
    try:
        return TheoryRecord(theory.get("llc"), theory.get("multiplicity"), bool(theory.get("exact")),
                            str(theory.get("method") or ""), str(theory.get("note") or "")).label
    except Exception:
        return ""


def history_frame(store: RunStore, page: str | None = None, limit: int = HISTORY_LIMIT) -> pd.DataFrame:
    """The store's runs as history rows, newest first (``id`` is the full store id).

    With ``page``, only runs recorded by that page or whose target kind it shows.
    """
    listing = store.list_runs().head(limit)
    rows = []
    for base in listing.to_dict(orient="records"):
        try:
            manifest = store.manifest(str(base["id"]))
        except (OSError, RunStoreError):  # deleted while we looked
            continue
        rows.append(_row(manifest, base))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    if page is not None:
        keep = (frame["page"] == page) | frame["_target_kind"].isin(PAGE_TARGET_KINDS.get(page, ()))
        frame = frame[keep]
    return frame.drop(columns="_target_kind").reset_index(drop=True)


@st.cache_data(max_entries=32, show_spinner=False)
def _llc_trace(root: str, run_id: str, stamp: str) -> pd.DataFrame:
    """Chain-mean running λ̂ of a stored run (cached per run and manifest heartbeat)."""
    trace = RunStore(root).load_run(run_id).to_trace()
    return mean_running_llc(frames.trace_frame(trace))


def stored_record(store: RunStore, run_id: str) -> RunRecord:
    """A stored run as a :class:`~dashboard.history.RunRecord` (λ̂ trace from ``to_trace``)."""
    manifest = store.manifest(run_id)
    summary = manifest.get("summary") or {}
    meta = manifest.get("meta") or {}
    try:
        trace = _llc_trace(str(store.root), str(manifest["id"]), str(manifest.get("heartbeat")))
    except RunStoreError:  # nothing flushed yet
        trace = pd.DataFrame(columns=["step", "llc_running"])
    theory = summary.get("theory_llc")
    return RunRecord(
        id=short_id(str(manifest["id"])),
        page=str(meta.get("page") or "CLI"),
        target=str(meta.get("label") or describe_target(manifest.get("target") or {})),
        settings=dict(manifest.get("settings") or {}),
        llc_mean=_num(summary.get("llc_mean")),
        llc_sem=_num(summary.get("llc_sem")),
        rhat=_num(summary.get("rhat")),
        ess=_num(summary.get("ess")),
        acceptance=_num(summary.get("acceptance")),
        n_diverged=len(summary.get("diverged_chains") or []),
        theory_llc=float(theory) if isinstance(theory, int | float) else None,
        theory_label=_theory_label(summary) or "theory λ",
        status=str(manifest.get("status")),
        time=str(manifest.get("created", ""))[:19].replace("T", " "),
        llc_trace=trace,
    )


def export_bytes(store: RunStore, run_id: str, suffix: str) -> bytes:
    """A stored run exported with :meth:`RunStore.export` (``parquet``, ``csv`` or ``json``)."""
    with tempfile.TemporaryDirectory(prefix="lltools_export_") as tmp:
        path = store.export(run_id, Path(tmp) / f"run.{suffix}")
        return path.read_bytes()


def _exporter(root: Path, run_id: str, suffix: str) -> Callable[[], bytes]:
    """Deferred export (runs when the download button is clicked)."""
    return lambda: export_bytes(RunStore(root), run_id, suffix)


# ============================================================================ history UI

COLUMN_CONFIG = {
    "id": None,  # hidden: the full store id
    "λ̂": st.column_config.NumberColumn(format="%.4g"),
    "± sem": st.column_config.NumberColumn(format="%.2g"),
    "theory λ": st.column_config.NumberColumn(format="%.4g", help="λ from theory; the next column says "
                                              "whether it is exact"),
    "R-hat": st.column_config.NumberColumn(format="%.3f"),
    "ESS": st.column_config.NumberColumn(format="%.0f"),
    "acceptance": st.column_config.NumberColumn(format="%.3f"),
    "epsilon": st.column_config.NumberColumn("ε", format="%.2e"),
    "gamma": st.column_config.NumberColumn("γ"),
    "nbeta": st.column_config.NumberColumn("nβ"),
}


@st.fragment
def render_history(page: str | None = None, *, key: str = "history") -> None:
    """The stored runs; select rows to download one or overlay two (λ̂ traces, settings diff).

    A fragment: selecting rows reruns only this block, not the page's sampler.
    """
    store = run_store()
    try:
        frame = history_frame(store, page)
    except Exception as exc:  # an unreadable store must not take the page down
        ui.show_exception(exc, f"read the run store at {store.root}")
        return
    if frame.empty:
        st.caption(f"Runs you make are saved in `{store.root}` and appear here, so you can compare them.")
        return
    event = st.dataframe(
        frame,
        key=f"{key}.table",
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        column_config=COLUMN_CONFIG,
    )
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    chosen = [str(frame["id"].iloc[i]) for i in rows if 0 <= i < len(frame)]
    c1, c2 = st.columns([3, 1])
    c2.download_button(
        "History CSV",
        frame.to_csv(index=False).encode(),
        file_name="lltools_run_history.csv",
        mime="text/csv",
        key=f"{key}.csv",
        width="stretch",
        icon=":material/download:",
        on_click="ignore",  # no rerun: quick successive clicks must not cancel each other
    )
    c1.caption(
        f"{len(frame)} saved runs in `{store.root}`. Tick one row to download it, two to overlay "
        "their running λ̂ and see what changed."
    )
    if chosen:
        download_run(store, chosen[-1], key=key)
    if len(chosen) >= 2:
        try:
            a, b = stored_record(store, chosen[-2]), stored_record(store, chosen[-1])
        except (OSError, RunStoreError, ValueError) as exc:
            ui.user_error(f"Could not read the selected runs: {ui.plain(str(exc))}")
            return
        render_comparison(a, b, key=key)


def download_run(store: RunStore, run_id: str, *, key: str) -> None:
    """Parquet / CSV / JSON downloads of one stored run (written by ``RunStore.export``)."""
    cols = st.columns([2, 1, 1, 1])
    cols[0].markdown(f"**Run {short_id(run_id)}**")
    for col, (label, (suffix, mime)) in zip(cols[1:], EXPORT_FORMATS.items(), strict=True):
        col.download_button(
            label,
            _exporter(store.root, run_id, suffix),
            file_name=f"lltools_run_{run_id}.{suffix}",
            mime=mime,
            key=f"{key}.export.{suffix}",
            width="stretch",
            icon=":material/download:",
            on_click="ignore",  # no rerun: quick successive clicks must not cancel each other
        )


# ============================================================================ start-up notice


def incomplete_runs(store: RunStore) -> list[dict[str, Any]]:
    """Runs whose writer died (``incomplete``), newest first, with whether they can be re-run."""
    listing = store.list_runs()
    out = []
    for base in listing[listing["status"] == "incomplete"].to_dict(orient="records"):
        try:
            info = store.resume_info(str(base["id"]))
        except (OSError, RunStoreError):
            continue
        meta = info.get("meta") or {}
        out.append(
            {
                "id": info["id"],
                "target": meta.get("label") or base.get("target"),
                "page": meta.get("page") or "CLI",
                "kind": info["kind"],
                "steps": f"{info['steps_done']:,}/{info['num_steps_total'] or '?'}",
                "resumable": bool(info["resumable"]),
            }
        )
    return out


def _discard(run_id: str) -> None:
    """Discard button callback."""
    messages = st.session_state.setdefault(NOTICE_MESSAGES, [])
    try:
        run_store().discard(run_id)
        messages.append(("success", f"Discarded run {short_id(run_id)}."))
    except (OSError, RunStoreError) as exc:
        messages.append(("error", f"Could not discard run {short_id(run_id)}: {ui.plain(str(exc))}"))
    _forget(run_id)


def _forget(run_id: str) -> None:
    runs = st.session_state.get(NOTICE_RUNS) or []
    st.session_state[NOTICE_RUNS] = [r for r in runs if r["id"] != run_id]


def _request_resume(run_id: str) -> None:
    st.session_state[RESUME_REQUEST] = run_id


def _hide() -> None:
    st.session_state[NOTICE_HIDDEN] = True


def resume_run(store: RunStore, run_id: str) -> None:
    """Re-run an unfinished run from scratch (same settings and seed) with a progress bar.

    The new run is recorded like any other; once it completes, the unfinished one is
    discarded (``lltools runs resume --discard-old``).
    """
    messages = st.session_state.setdefault(NOTICE_MESSAGES, [])
    try:
        info, recorder = resume_stream(store, run_id)
        total = total_steps(info["settings"])
        progress = live_ui.Progress(total, label=f"Re-running {short_id(run_id)}")
        iterator = iter(recorder)
        try:
            for event in iterator:
                progress.update(event.steps_done)
        finally:  # an interruption (leaving the page) marks the new run stopped at once
            iterator.close()  # type: ignore[attr-defined]
        progress.done()
        store.discard(run_id)
    except (ImportError, OSError, ValueError) as exc:  # RunStoreError is a ValueError
        messages.append(("error", f"Could not re-run {short_id(run_id)}: {ui.plain(str(exc))}"))
        return
    result = recorder.result
    llc = getattr(result, "llc_mean", None)
    messages.append(
        (
            "success",
            f"Re-ran {short_id(run_id)} from scratch as run {short_id(str(recorder.run_id))}"
            + (f": λ̂ = {ui.fmt(llc)}" if llc is not None else "")
            + ". It is in the run history; the unfinished run was discarded.",
        )
    )
    _forget(run_id)


def store_notice() -> None:
    """App start: list the store's ``incomplete`` runs with Resume / Discard buttons.

    The store is scanned once per session (and after each action); **Hide** dismisses the
    notice for this session.  Never raises: a store problem becomes a caption.
    """
    store = run_store()
    if NOTICE_RUNS not in st.session_state:
        try:
            st.session_state[NOTICE_RUNS] = incomplete_runs(store)
        except Exception as exc:  # an unreadable store must not block the app
            st.session_state[NOTICE_RUNS] = []
            st.session_state.setdefault(NOTICE_MESSAGES, []).append(
                ("warning", f"Could not read the run store at {store.root}: {type(exc).__name__}: {exc}")
            )
    pending = st.session_state.pop(RESUME_REQUEST, None)
    if pending is not None:
        resume_run(store, str(pending))
    for level, text in st.session_state.pop(NOTICE_MESSAGES, []):
        getattr(st, level)(text)
    runs = st.session_state.get(NOTICE_RUNS) or []
    if not runs or st.session_state.get(NOTICE_HIDDEN):
        return
    with st.container(border=True, key="store_notice"):
        st.warning(
            f"**{len(runs)} unfinished run{'s' if len(runs) != 1 else ''}** in `{store.root}`: "
            "the app or the CLI stopped while sampling. Their saved draws are kept. "
            "**Resume** re-runs the same settings from scratch with the same seed (sampler state "
            "is not saved); **Discard** deletes the unfinished run.",
            icon=":material/history:",
        )
        for run in runs[:NOTICE_LIMIT]:
            c0, c1, c2 = st.columns([5, 1, 1])
            c0.markdown(
                f"`{short_id(run['id'])}` · {ui.plain(str(run['page']))} · "
                f"{ui.plain(str(run['target']))} · step {run['steps']}"
            )
            c1.button(
                "Resume",
                key=f"store.resume.{run['id']}",
                on_click=_request_resume,
                args=(run["id"],),
                disabled=not run["resumable"],
                help="Re-run from scratch with the same settings and seed."
                if run["resumable"]
                else "This run's target cannot be rebuilt (e.g. an uploaded checkpoint).",
                width="stretch",
                icon=":material/replay:",
            )
            c2.button(
                "Discard",
                key=f"store.discard.{run['id']}",
                on_click=_discard,
                args=(run["id"],),
                width="stretch",
                icon=":material/delete:",
            )
        if len(runs) > NOTICE_LIMIT:
            st.caption(f"… and {len(runs) - NOTICE_LIMIT} more: `lltools runs list --status incomplete`.")
        st.button("Hide for now", key="store.notice.hide", on_click=_hide)


def store_caption() -> None:
    """Sidebar caption: where runs are saved and how to change it."""
    st.caption(f"Runs are saved in `{run_store().root}` (set `LLTOOLS_HOME` to change).")
