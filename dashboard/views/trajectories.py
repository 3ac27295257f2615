"""Training trajectories: λ̂ at every saved checkpoint beside the loss and accuracy curves.

The shipped ``trajectory.parquet`` of a sample model shows instantly; a button recomputes
the whole trajectory with the user's sampler settings (one batched run over all
checkpoints, :func:`lltools.workflows.trajectory.trajectory_stream`), cached by its settings.
widgets -> params -> cached run -> figures from :mod:`lltools.viz.training`.
"""

from __future__ import annotations

import contextvars
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import common as ui
from dashboard import running as live_ui
from dashboard.views import landscape as landscape_view
from dashboard.views.refined_panel import refined_trajectory_view
from lltools.targets.models import folder_card, list_checkpoints, load_model_folder, read_card
from lltools.viz import training as plots_training
from lltools.workflows.trajectory import grokking_severity_of, trajectory_stream

ROOT = Path(__file__).resolve().parents[2]

NS = "trajectories"
#: Where the sample models live; ``LLTOOLS_SAMPLE_MODELS`` points the page at another folder.
SAMPLE_MODELS_ENV = "LLTOOLS_SAMPLE_MODELS"


def models_root() -> str:
    return os.environ.get(SAMPLE_MODELS_ENV) or str(ROOT / "sample_models")


TRAJECTORY_FILE = "trajectory.parquet"
#: The widget keys' prefix (the sampler inputs are ``traj.nbeta`` … ``traj.burnin``).
KEY_PREFIX = "traj"
K_MODEL, K_LOGX, K_VIEW = "traj.model", "traj.logx", "traj.view"
K_NBETA, K_GAMMA, K_EPS = "traj.nbeta", "traj.gamma", "traj.epsilon"
K_CHAINS, K_DRAWS, K_BURNIN = "traj.chains", "traj.draws", "traj.burnin"
K_BATCH, K_SEED, K_STRIDE = "traj.batch", "traj.seed", "traj.stride"
SAMPLER_KEYS = [K_NBETA, K_GAMMA, K_EPS, K_CHAINS, K_DRAWS, K_BURNIN, K_BATCH, K_SEED, K_STRIDE]
#: The recompute inputs (keys ``traj.nbeta`` …); the same settings serve every checkpoint.
SAMPLER_INPUTS = ui.SamplerInputs(
    nbeta_help="Effective inverse temperature (same at every checkpoint).",
    gamma_help="Localisation strength.",
    epsilon_help="SGLD step size.",
    chains_max=64,
    chains_help="Chains per checkpoint.",
    batch_help="0 = full batch.",
)
COMPUTED = "traj.__computed"  # {model path: (settings dict, table)}
SHOW_MINE = "traj.__show_mine"
IN_PROGRESS = "traj.__in_progress"  # the request being computed (left behind if it is stopped)
SHIPPED, MINE = "shipped", "mine"
PREFERRED = ("modular_addition",)
STRIDES = (1, 2, 4, 8)
#: The columns of the table shown and downloaded (when present), in this order.
COLUMNS = [
    "checkpoint_index",
    "checkpoint",
    "step",
    "llc_mean",
    "llc_sem",
    "llc_std",
    "rhat",
    "ess",
    "acceptance",
    "n_diverged",
    "train_loss",
    "val_loss",
    "train_acc",
    "val_acc",
    "geometric_complexity",
    "gsm",
    "nbeta",
    "gamma",
    "epsilon",
    "num_chains",
]
GSM_HELP = (
    "Grokking severity (seed 003 §6.4): GSM = 1{acc_val(T) ≥ 0.95} / T · Σ_t |acc_train(t) − acc_val(t)|, "
    "the average gap between train and validation accuracy over training, counted only if the run "
    "eventually generalises (T = last step). 0 = no delay; larger = longer memorisation before grokking."
)

# ----------------------------------------------------------------------------- data


@st.cache_data(ttl=120, show_spinner=False)
def trajectory_models(root: str | None = None) -> list[dict[str, Any]]:
    """Model folders (shipped, and given at launch) with at least two training checkpoints
    (cards + ``path``)."""
    out = []
    for card in ui.model_cards(root or models_root()):
        n_ckpt = len(list_checkpoints(card["path"]))
        if n_ckpt >= 2:
            out.append({**card, "num_checkpoints": n_ckpt})
    return out


def card_of(path: str) -> dict[str, Any]:
    for c in trajectory_models(models_root()):
        if str(c["path"]) == path:
            return c

    return folder_card(path) or {**read_card(path), "path": path}


def default_model(cards: list[dict[str, Any]]) -> str | None:
    for pref in PREFERRED:
        for c in cards:
            if str(c["path"]).endswith(pref):
                return str(c["path"])
    return str(cards[0]["path"]) if cards else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_data(max_entries=32, show_spinner=False)
def shipped_trajectory(path: str, mtime: float) -> pd.DataFrame | None:
    """The shipped ``trajectory.parquet`` (``None`` if absent); keyed by its modification time."""
    file = Path(path) / TRAJECTORY_FILE
    if not file.exists():
        return None
    table = pd.read_parquet(file)
    return table.sort_values("step").reset_index(drop=True)


@st.cache_data(max_entries=32, show_spinner=False)
def load_shipped(path: str) -> tuple[pd.DataFrame | None, str | None]:
    """``(table, None)``, ``(None, None)`` when absent, or ``(None, why)`` when unreadable."""
    try:
        table = shipped_trajectory(path, _mtime(Path(path) / TRAJECTORY_FILE))
    except Exception as exc:  # a damaged file must not take the page down
        return (
            None,
            f"The shipped {TRAJECTORY_FILE} could not be read ({type(exc).__name__}: {ui.plain(str(exc))}).",
        )
    if table is not None and not {"step", "llc_mean"} <= set(table.columns):
        return None, f"The shipped {TRAJECTORY_FILE} lacks the columns step and llc_mean."
    return table, None


@st.cache_data(max_entries=32, show_spinner=False)
def logged_metrics(path: str, mtime: float) -> pd.DataFrame:
    """``metrics.csv`` (training curves) of a model, without λ̂."""
    file = Path(path) / "metrics.csv"
    try:
        table = pd.read_csv(file)
        return table.sort_values("step").reset_index(drop=True)
    except (OSError, ValueError, KeyError, pd.errors.ParserError):  # absent or damaged: no curves
        return pd.DataFrame(columns=["step"])


def settings_of(table: pd.DataFrame) -> dict[str, Any]:
    """The sampler settings a trajectory was computed with (from attrs, else columns)."""
    out: dict[str, Any] = {}
    attrs = dict(table.attrs.get("settings") or {})
    out.update(attrs)
    columns = (("nbeta", "nbeta"), ("gamma", "gamma"), ("epsilon", "epsilon"), ("num_chains", "chains"))
    for col, key in columns:
        if key not in out and col in table and len(table):
            out[key] = table[col].iloc[0]
    return out


def sampler_defaults(card: dict[str, Any], shipped: pd.DataFrame | None) -> dict[str, Any]:
    ds = dict(card.get("default_sampler") or {})
    if shipped is not None:
        ds.update({k: v for k, v in settings_of(shipped).items() if k in ds or k in ("nbeta", "seed")})
    return {**ui.card_sampler_values(KEY_PREFIX, card, ds), K_SEED: int(ds.get("seed", 0) or 0), K_STRIDE: 1}


def query_spec(cards: list[dict[str, Any]]) -> dict[str, ui.QueryParam]:
    """The page's URL parameters: the model (by its card's name), the log axis and the
    recompute settings.  A model in the URL brings its own settings; later parameters override."""
    paths: dict[str, str] = {}
    for c in cards:
        paths.setdefault(str(c["name"]), str(c["path"]))
    names = {p: n for n, p in paths.items()}

    def apply_model(name: str) -> dict[str, Any]:
        shipped, _ = load_shipped(paths[name])
        return {K_MODEL: paths[name], K_VIEW: SHIPPED, **sampler_defaults(card_of(paths[name]), shipped)}

    return {
        "model": ui.QueryParam(K_MODEL, str, choices=tuple(paths), apply=apply_model,
                               read=lambda s: names.get(str(s.get(K_MODEL)))),
        "logx": ui.QueryParam(K_LOGX, int, lo=0, hi=1, apply=lambda v: {K_LOGX: bool(v)},
                              read=lambda s: int(bool(s.get(K_LOGX, True)))),
        **ui.sampler_query(KEY_PREFIX, SAMPLER_INPUTS),
        "batch": ui.QueryParam(K_BATCH, int, lo=0, hi=1_000_000_000),
        "seed": ui.QueryParam(K_SEED, int, lo=0, hi=2**31 - 1),
        "stride": ui.QueryParam(K_STRIDE, int, valid=lambda v, _: None if v in STRIDES else
                                f"must be one of {', '.join(map(str, STRIDES))}"),
    }


def request_settings(state: Any) -> dict[str, Any]:
    """The keyword arguments of ``trajectory_stream`` the controls describe (and the stride)."""
    batch = int(state[K_BATCH])
    return {
        **ui.sampler_values(state, KEY_PREFIX),
        "batch_size": batch if batch > 0 else None,
        "seed": int(state[K_SEED]),
        "stride": int(state[K_STRIDE]),
    }


def checkpoint_subset(num: int, stride: int) -> tuple[int, ...] | None:
    """Every ``stride``-th checkpoint, always including the last (``None`` = all)."""
    if stride <= 1:
        return None
    idx = list(range(0, num, stride))
    if idx[-1] != num - 1:
        idx.append(num - 1)
    return tuple(idx)


@st.cache_data(max_entries=16, show_spinner=False)
def computed_trajectory(
    path: str,
    settings: tuple[tuple[str, Any], ...],
    checkpoints: tuple[int, ...] | None,
    _progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """λ̂ at the model's checkpoints with these settings (cached by path and settings).

    Runs :func:`lltools.workflows.trajectory.trajectory_stream` (one batched run over the
    checkpoints) and reports its fraction done to ``_progress`` (not part of the key).
    """
    kwargs = dict(settings)
    total = int(kwargs["burnin"]) + int(kwargs["draws"])
    table = None
    for event in trajectory_stream(
        path,
        checkpoints=list(checkpoints) if checkpoints is not None else None,
        report_every=live_ui.report_every(total, updates=100, minimum=5),
        **kwargs,
    ):
        if _progress is not None:
            _progress(event.fraction)
        if event.result is not None:
            table = event.result
    if table is None:  # pragma: no cover - the stream always ends with the table
        raise RuntimeError("the trajectory run produced no table")
    out = table.sort_values("step").reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def outside_cache(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` in the caller's context, so that progress updates made from inside a
    ``st.cache_data`` function are not recorded for replay (they target a placeholder
    created outside the cached function)."""
    ctx = contextvars.copy_context()

    def call(*args: Any, **kwargs: Any) -> Any:
        return ctx.run(fn, *args, **kwargs)

    return call


# ----------------------------------------------------------------------------- controls


def _on_model_change() -> None:
    path = st.session_state.get(K_MODEL)
    if not path:
        return
    shipped, _ = load_shipped(path)
    ui.set_values({**sampler_defaults(card_of(path), shipped), K_VIEW: SHIPPED})


def _on_compute() -> None:
    settings = {"model": st.session_state.get(K_MODEL), **request_settings(st.session_state)}
    live_ui.LiveRun(NS).request(settings)


def controls(cards: list[dict[str, Any]], running: bool) -> str:
    paths = [str(c["path"]) for c in cards]
    labels = {str(c["path"]): f"{c['name']}  ·  {c['num_checkpoints']} checkpoints" for c in cards}
    st.selectbox(
        "Sample model",
        paths,
        index=ui.held_index(K_MODEL, paths),
        key=K_MODEL,
        format_func=lambda p: labels.get(p, p),
        on_change=_on_model_change,
        disabled=running,
    )
    st.toggle("Log step axis", value=bool(ui.held(K_LOGX, True)), key=K_LOGX,
              help="Log scale for the training step (plots step + 1).")
    path = str(st.session_state[K_MODEL])
    card = card_of(path)
    n = int(card.get("n") or 0)
    if n and int(st.session_state.get(K_BATCH, 0)) > n:
        st.session_state[K_BATCH] = 0  # settings carried over from a larger model: full batch
    with st.expander("Recompute with my settings", expanded=running, icon=":material/tune:"):
        ui.sampler_controls(
            KEY_PREFIX, SAMPLER_INPUTS, running=running, batch_max=int(card.get("n") or 1_000_000)
        )
        st.selectbox(
            "Checkpoints",
            STRIDES,
            key=K_STRIDE,
            format_func=lambda k: "all" if k == 1 else f"every {k}th (+ the last)",
            disabled=running,
            help="Fewer checkpoints = proportionally faster.",
        )  # fmt: skip
        p = request_settings(st.session_state)
        n_ckpt = int(card.get("num_checkpoints", 0))
        subset = checkpoint_subset(n_ckpt, p["stride"])
        k = len(subset) if subset is not None else n_ckpt
        chains = k * p["chains"]
        budget = ui.check_budget(chains, p["draws"] + p["burnin"])
        st.caption(
            f"{k} checkpoints × {p['chains']} chains = {chains:,} chains, "
            f"{p['burnin'] + p['draws']:,} steps each, in one batched run."
            + (
                " Without a GPU this takes minutes: try fewer checkpoints first."
                if chains * (p["burnin"] + p["draws"]) > 100_000 and not _has_cuda()
                else ""
            )
        )
        if budget:
            ui.user_error(budget)
        live_ui.LiveRun(NS).buttons(
            running=running, on_run=_on_compute, disabled=budget is not None, run_label="Compute"
        )
    ui.remember([K_MODEL, K_LOGX, *SAMPLER_KEYS])
    return path


# ----------------------------------------------------------------------------- running


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def execute(request: dict[str, Any], slot: Any) -> None:
    """Compute (or fetch from the cache) the trajectory a Compute request asks for."""
    path = str(request["model"])
    card = card_of(path)
    settings = {k: v for k, v in request.items() if k not in ("model", "stride")}
    subset = checkpoint_subset(int(card.get("num_checkpoints", 0)), int(request["stride"]))
    st.session_state[IN_PROGRESS] = dict(request)  # cleared when the table is stored
    bar = slot.progress(0.0, text="Computing the trajectory: starting…")
    t0 = time.perf_counter()

    def progress(frac: float) -> None:
        elapsed = time.perf_counter() - t0
        eta = elapsed * (1 - frac) / frac if frac > 0.01 else float("nan")
        eta_txt = f" · about {eta:,.0f} s left" if math.isfinite(eta) and eta >= 1 else ""
        bar.progress(min(max(frac, 0.0), 1.0), text=f"Sampling every checkpoint: {frac:.0%}{eta_txt}")

    table = computed_trajectory(
        path, tuple(sorted(settings.items())), subset, _progress=outside_cache(progress)
    )
    bar.empty()
    st.session_state.setdefault(COMPUTED, {})[path] = (dict(request), table)
    st.session_state.pop(IN_PROGRESS, None)
    st.session_state[SHOW_MINE] = True  # applied at the top of the next run, before the widget exists


# ----------------------------------------------------------------------------- results


def run_gsm(table: pd.DataFrame, curves: pd.DataFrame) -> float | None:
    """GSM of the whole logged run (``metrics.csv``), else the table's ``gsm`` column."""
    if not curves.empty:
        value = grokking_severity_of(curves)
        if math.isfinite(value):
            return float(value)
    if "gsm" in table and table["gsm"].notna().any():
        return float(table["gsm"].dropna().iloc[0])
    return None


def summary_metrics(table: pd.DataFrame, curves: pd.DataFrame, has_llc: bool) -> None:
    events = plots_training.event_steps(curves if not curves.empty else table)
    gsm = run_gsm(table, curves)
    cols = st.columns(5)
    cols[0].metric("GSM", ui.fmt(gsm, 3) if gsm is not None else "n/a", help=GSM_HELP)
    cols[1].metric(
        "memorised at step",
        f"{int(events['memorised']):,}" if events["memorised"] is not None else "n/a",
        help="First logged step with train accuracy ≥ 0.95.",
    )
    cols[2].metric(
        "grokked at step",
        f"{int(events['grokked']):,}" if events["grokked"] is not None else "n/a",
        help="First logged step with validation accuracy ≥ 0.95.",
    )
    if has_llc and table["llc_mean"].notna().any():
        peak = table.loc[table["llc_mean"].idxmax()]
        final = table.iloc[-1]
        cols[3].metric(
            "peak λ̂",
            ui.fmt(float(peak["llc_mean"]), 4),
            delta=f"at step {int(peak['step']):,}",
            delta_color="off",
            delta_arrow="off",
        )
        cols[4].metric(
            "final λ̂",
            ui.fmt(float(final["llc_mean"]), 4),
            delta=f"± {ui.fmt(float(final['llc_sem']), 2)} (SEM)"
            if "llc_sem" in final and math.isfinite(float(final["llc_sem"]))
            else None,
            delta_color="off",
            delta_arrow="off",
            help=f"λ̂ at the last checkpoint (step {int(final['step']):,}).",
        )
    else:
        cols[3].metric("peak λ̂", "n/a")
        cols[4].metric("final λ̂", "n/a")
    if gsm is not None:
        st.caption(
            "**GSM** = 1{acc_val(T) ≥ 0.95} / T · Σₜ |acc_train(t) − acc_val(t)|: the average "
            "train–validation accuracy gap over training, if the run generalises in the end."
        )


def grokking_numbers(table: pd.DataFrame, curves: pd.DataFrame) -> str:
    """One sentence with this run's own numbers: the λ̂ peak during memorisation and the drop."""
    events = plots_training.event_steps(curves if not curves.empty else table)
    data = table.dropna(subset=["llc_mean"]).sort_values("step")
    grokked = events["grokked"]
    if data.empty or grokked is None:
        return ""
    before = data[data["step"] < grokked]
    after = data[data["step"] >= grokked]
    if before.empty or after.empty:
        return ""
    peak = before.loc[before["llc_mean"].idxmax()]
    final = after.iloc[-1]
    drop = (
        1 - float(final["llc_mean"]) / float(peak["llc_mean"])
        if float(peak["llc_mean"]) > 0
        else float("nan")
    )
    text = (
        f"\n\n**In this run** λ̂ peaks at **{ui.fmt(float(peak['llc_mean']), 4)}** "
        f"(step {int(peak['step']):,}), "
        f"while validation accuracy is still low, and ends at **{ui.fmt(float(final['llc_mean']), 4)}** "
        f"(step {int(final['step']):,}) after validation accuracy passed 95 % at step {int(grokked):,}"
    )
    if math.isfinite(drop) and drop > 0:
        text += f": a drop of {drop:.0%}."
    else:
        text += "."
    return text


def teaching_text(card: dict[str, Any], table: pd.DataFrame, curves: pd.DataFrame, has_llc: bool) -> str:
    kind = (card.get("architecture") or {}).get("kind")
    text = (
        "Each point is λ̂ at one saved checkpoint, with the **same sampler settings** everywhere, so the "
        "curve compares checkpoints with each other (absolute values depend on nβ and γ). "
        "λ̂ < 0 means that checkpoint is not a local minimum yet (early training): not an LLC.\n\n"
    )
    has_acc = not curves.empty and "val_acc" in curves and curves["val_acc"].notna().any()
    if kind == "quadratic":
        text += (
            "**Grokking.** On modular addition the network first *memorises* the training pairs "
            "(train accuracy → 1, validation accuracy stays at chance) and λ̂ **rises**: it builds "
            "a complex, high-λ solution. Much later validation accuracy climbs and λ̂ **falls**: "
            "training has moved to a *lower-λ basin* that generalises. Singular learning theory says "
            "why the simpler basin wins: its free energy F ≈ n·L + λ·log n is lower once its loss "
            "is comparable, so the posterior (and, empirically, SGD with weight decay) prefers it. "
            "Geometric complexity follows a similar shape."
        )
        if has_llc:
            text += grokking_numbers(table, curves)
    elif has_acc:
        text += (
            "**Classification.** λ̂ measures how much of the network the fitted solution really uses. "
            "It typically grows while the network fits more of the data and levels off with the loss. "
            "Compare with *modular addition*, where λ̂ falls while the network generalises (grokking); "
            "a small GSM means validation accuracy kept up with training accuracy here."
        )
    else:
        text += (
            "**Regression.** As the loss falls the weights settle near a true parameter and λ̂ approaches "
            "the LLC of that basin; for deep linear networks the dashed line is Aoyagi's λ at the "
            "teacher. Checkpoints far from a minimum give λ̂ < 0 or unstable values."
        )
        theory, _ = theory_line(card)
        data = table.dropna(subset=["llc_mean"]).sort_values("step") if has_llc else table.iloc[:0]
        if theory is not None and not data.empty:
            last = data.iloc[-1]
            sem = (
                float(last["llc_sem"])
                if "llc_sem" in last and math.isfinite(float(last["llc_sem"]))
                else None
            )
            text += (
                f"\n\n**In this run** the last checkpoint (step {int(last['step']):,}) has "
                f"λ̂ = {ui.fmt(float(last['llc_mean']), 4)}"
                + (f" ± {ui.fmt(sem, 2)}" if sem is not None else "")
                + f", against Aoyagi's λ = {ui.fmt(theory, 4)}."
            )
    if not has_llc:
        text += "\n\nNo λ̂ yet for this model: compute the trajectory with the controls on the left."
    return text


def table_for_download(table: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in COLUMNS if c in table] + [c for c in table if c not in COLUMNS]
    return table[cols]


def theory_line(card: dict[str, Any]) -> tuple[float | None, str]:
    """A reference λ for the λ̂ panel: Aoyagi's λ at the teacher for deep linear models."""
    arch = card.get("architecture") or {}
    value = (card.get("theory") or {}).get("llc")
    if arch.get("kind") == "deep_linear" and value is not None:
        return float(value), "Aoyagi λ (teacher)"
    return None, ""


def render(path: str, table: pd.DataFrame, has_llc: bool, source: str) -> None:
    card = card_of(path)
    log_x = bool(st.session_state.get(K_LOGX, True))
    curves = logged_metrics(path, _mtime(Path(path) / "metrics.csv"))
    summary_metrics(table, curves, has_llc)
    theory, label = theory_line(card)
    fig = plots_training.trajectory_figure(
        table,
        curves=curves if not curves.empty else None,
        log_x=log_x,
        theory_llc=theory,
        theory_label=label,
        title=f"{card['name']}: λ̂ over training ({source})",
    )
    ui.show_figure(fig, key=f"traj.fig.main.{source}")
    left, right = st.columns([5, 4], gap="medium")
    with left:
        if has_llc and "geometric_complexity" in table and table["geometric_complexity"].notna().any():
            ui.show_figure(
                plots_training.llc_vs_gc_figure(table, log_x=log_x), key=f"traj.fig.gc.{source}", height=360
            )
            st.caption(
                "Geometric complexity GC = (1/|D|) Σₓ ‖∇ₓ f(x)‖²_F (Dherin et al.): the discrete Dirichlet "
                "energy of the model function, a cheap complexity measure. Both curves are divided by "
                "their maximum; hover for the raw values."
            )
        else:
            st.caption("Geometric complexity is not available for this trajectory.")
    with right:
        ui.teaching_note(teaching_text(card, table, curves, has_llc))
    landscape_view.trajectory_section(path, table, model_target)
    if has_llc:
        with st.expander("The trajectory table (and downloads)"):
            shown = table_for_download(table)
            st.dataframe(shown, hide_index=True, width="stretch")
            ui.download_buttons(
                {"Trajectory": shown},
                basename=f"lltools_trajectory_{Path(path).name}",
                key=f"traj.dl.{source}",
            )


@st.cache_resource(max_entries=8, show_spinner="Loading the model and its data…")
def model_target(path: str) -> Any:
    """The model's target (its data and architecture; the checkpoints are loaded on top)."""
    return load_model_folder(path)


def describe_settings(settings: dict[str, Any]) -> str:
    names = {
        "nbeta": "nβ",
        "gamma": "γ",
        "epsilon": "ε",
        "chains": "chains",
        "draws": "draws",
        "burnin": "burn-in",
        "batch_size": "batch",
        "seed": "seed",
    }
    parts = []
    for key, name in names.items():
        if key in settings and settings[key] is not None:
            v = settings[key]
            parts.append(f"{name} = {ui.fmt(float(v), 4) if isinstance(v, float | np.floating) else v}")
    return ", ".join(parts)


# ----------------------------------------------------------------------------- page


def main() -> None:
    ui.setup_page(
        "Training trajectories",
        "λ̂ at every saved checkpoint, beside the train/validation loss and accuracy: watch grokking happen.",
    )
    cards = trajectory_models(models_root())
    if not cards:
        st.warning(
            "No sample model with saved checkpoints was found under sample_models/.",
            icon=":material/warning:",
        )
        return
    live = live_ui.LiveRun(NS)
    query = query_spec(cards)
    problems = ui.load_query_params(NS, query)
    first = str(default_model(cards))
    chosen = st.session_state.get(K_MODEL) or st.session_state.get("_persist", {}).get(K_MODEL)
    if chosen in {str(c["path"]) for c in cards}:
        first = str(chosen)  # the defaults below must be that model's settings
    first_shipped, _ = load_shipped(first)
    ui.init_state(
        {K_MODEL: first, K_LOGX: True, K_VIEW: SHIPPED, **sampler_defaults(card_of(first), first_shipped)}
    )
    if st.session_state[K_MODEL] not in {str(c["path"]) for c in cards}:
        st.session_state[K_MODEL] = first
    if st.session_state.pop(SHOW_MINE, False):
        ui.set_values({K_VIEW: MINE})
    request = live.take()
    running = request is not None
    live.stopped_partial()  # a stopped trajectory keeps nothing (partial λ̂ would be misleading)
    interrupted = None if running else st.session_state.pop(IN_PROGRESS, None)

    ctrl, main_col = st.columns(ui.control_split(), gap="large")
    with ctrl:
        for p in problems:
            st.warning(ui.plain(p), icon=":material/link_off:")
        path = controls(cards, running)
        ui.save_query_params(query)  # the URL holds these settings: a reload or a shared link keeps them
    with main_col:
        progress_slot = st.container()
        if interrupted is not None:
            progress_slot.info(
                "The trajectory computation was stopped before it finished; nothing was kept "
                "(λ̂ from unfinished chains would be misleading). Press **Compute** to "
                "start again.",
                icon=":material/stop_circle:",
            )
        show_current(path, running)
        if running:  # the current view stays visible below the progress bar while computing
            try:
                execute(request, progress_slot)
            except Exception as exc:
                st.session_state.pop(IN_PROGRESS, None)
                ui.show_exception(exc, "compute the trajectory", container=progress_slot)
                return
            st.rerun()


def show_current(path: str, running: bool) -> None:
    """Draw the selected view: my recomputed trajectory, the shipped one, or the logged curves."""
    shipped, problem = load_shipped(path)
    if problem:
        st.warning(problem, icon=":material/warning:")
    mine = st.session_state.get(COMPUTED, {}).get(path)
    options = ([SHIPPED] if shipped is not None else []) + ([MINE] if mine is not None else [])
    if len(options) == 2:
        st.segmented_control(
            "Show",
            options,
            key=K_VIEW,
            disabled=running,
            format_func=lambda o: "shipped trajectory" if o == SHIPPED else "my recomputed trajectory",
        )
    view = st.session_state.get(K_VIEW) if st.session_state.get(K_VIEW) in options else (options or [None])[0]
    if view == MINE and mine is not None:
        req, table = mine
        st.caption(
            f":material/person: Your trajectory · {describe_settings(req)}"
            + (f" · every {req['stride']}th checkpoint" if req.get("stride", 1) > 1 else "")
        )
        render(path, table, True, "recomputed")
    elif view == SHIPPED and shipped is not None:
        st.caption(
            f":material/inventory_2: Shipped `{TRAJECTORY_FILE}` · " + describe_settings(settings_of(shipped))
        )
        render(path, shipped, True, "shipped")
    else:
        st.info(
            "No precomputed trajectory ships with this model yet. Open **Recompute with my settings** "
            "on the left and press **Compute** (try every 4th checkpoint first: it is "
            "proportionally faster). Meanwhile, here are its logged training curves.",
            icon=":material/hourglass_empty:",
        )
        metrics = logged_metrics(path, _mtime(Path(path) / "metrics.csv")).assign(llc_mean=np.nan)
        render(path, metrics, False, "metrics")
    refined_trajectory_view(path)


if __name__ == "__main__":
    ui.run_page(main, what="show the Training trajectories page")
