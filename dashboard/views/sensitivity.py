"""Sensitivity & calibrate: one batched sweep over γ × ε × nβ, and a Calibrate action.

widgets -> params -> (cached | live-streamed) sweep -> figures from :mod:`lltools.viz`;
the recommendation logic lives in :mod:`lltools.estimation.calibrate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import common as ui
from dashboard import running as live_ui
from dashboard import theory as bg_theory
from dashboard.views import networks as nw
from dashboard.views.toy import K_EPS as T_EPS
from dashboard.views.toy import K_EXPR as T_EXPR
from dashboard.views.toy import K_GAMMA as T_GAMMA
from dashboard.views.toy import K_NBETA as T_NBETA
from dashboard.views.toy import K_POT as T_POT
from lltools import viz as plots
from lltools.estimation import calibrate, frames
from lltools.estimation.health import CALIBRATION_CRITERIA, describe_criteria
from lltools.estimation.llc import llc_bias_reduced
from lltools.estimation.summary import summarize
from lltools.targets.potentials import find_builtin, sampler_defaults
from lltools.theory.record import theory_for
from lltools.workflows.sweep import sweep_stream, with_expected

NS_SWEEP, NS_CALIB = "sens", "calib"
K_SOURCE, K_MODEL = "sens.source", "sens.model"
SOURCES = ("Toy potential", "Sample model")
K_POT, K_EXPR = "sens.potential", "sens.expr"
K_EPS, K_GAMMA, K_NBETA = "sens.eps_list", "sens.gamma_list", "sens.nbeta_list"
K_CHAINS, K_DRAWS, K_BURNIN, K_SEED = "sens.chains", "sens.draws", "sens.burnin", "sens.seed"
K_C_EPS, K_C_GAMMA, K_C_NBETA = "calib.epsilon", "calib.gamma", "calib.nbeta"
K_C_ACC, K_C_RHAT = "calib.acceptance_min", "calib.rhat_max"
K_VIEW_NBETA, K_MT_EPS, K_MT_GAMMA = "sens.view_nbeta", "sens.mt_eps", "sens.mt_gamma"
SWEEP_RESULT, CALIB_RESULT = "sens.__result", "calib.__result"
K_GOTO, K_APPLIED = "calib.__goto", "calib.__applied"

DEFAULTS: dict[str, Any] = {K_SOURCE: SOURCES[0], K_MODEL: "", K_POT: "x**4 + y**4", K_EXPR: "x**2 * y**2",
                            K_SEED: 0, K_C_ACC: CALIBRATION_CRITERIA.acceptance_min,
                            K_C_RHAT: CALIBRATION_CRITERIA.rhat_max}
MAX_SETTINGS = 200


def _potential_from_url(raw: str) -> dict[str, Any]:
    if raw.startswith(ui.MODEL_PREFIX):
        path = raw[len(ui.MODEL_PREFIX) :]
        if path not in {str(c["path"]) for c in ui.sample_model_cards()}:  # never load arbitrary folders
            raise ValueError("not one of the shipped sample models")
        values = {K_SOURCE: SOURCES[1], K_MODEL: path}
    else:
        builtin = find_builtin(raw)
        values = {K_POT: builtin.name} if builtin else {K_POT: ui.CUSTOM, K_EXPR: raw}
    return {**values, **target_defaults(values)}  # its default sweep; the link's own lists follow


def _list_param(key: str, name: str, lo: float, exclusive: bool) -> ui.QueryParam:
    def apply(raw: str) -> dict[str, Any]:
        values = ui.parse_float_list(raw, name=name, min_value=lo, exclusive_min=exclusive)
        return {key: ui.format_float_list(values)}

    return ui.QueryParam(key, str, apply=apply, read=lambda s: str(s.get(key, "")).replace(" ", ""))


QUERY = {
    "potential": ui.QueryParam(K_POT, str, apply=_potential_from_url, read=lambda s: spec_of(s)),
    "epsilon": _list_param(K_EPS, "ε", 0.0, True),
    "gamma": _list_param(K_GAMMA, "γ", 0.0, False),
    "nbeta": _list_param(K_NBETA, "nβ", 0.0, True),
    "chains": ui.QueryParam(K_CHAINS, int, lo=1, hi=256),
    "draws": ui.QueryParam(K_DRAWS, int, lo=10, hi=100_000),
    "burnin": ui.QueryParam(K_BURNIN, int, lo=0, hi=100_000),
    "seed": ui.QueryParam(K_SEED, int, lo=0, hi=2**31 - 1),
}


def spec_of(state: Any) -> str:
    """``"model:<path>"`` for a sample model, else the potential's spec string."""
    if state.get(K_SOURCE) == SOURCES[1] and state.get(K_MODEL):
        return ui.MODEL_PREFIX + str(state[K_MODEL])
    choice = state.get(K_POT, DEFAULTS[K_POT])
    return str(state.get(K_EXPR, "")).strip() if choice == ui.CUSTOM else str(choice)


def budget(state: Any) -> dict[str, int]:
    return {
        "chains": int(state[K_CHAINS]),
        "draws": int(state[K_DRAWS]),
        "burnin": int(state[K_BURNIN]),
        "seed": int(state[K_SEED]),
    }


def parse_grid(state: Any) -> tuple[dict[str, list[float]] | None, list[str]]:
    """The sweep grid from the three list inputs, or ``None`` and the problems."""
    problems = []
    out: dict[str, list[float]] = {}
    for key, name, kw in (
        (K_EPS, "ε", {"min_value": 0.0, "exclusive_min": True, "max_value": 10.0}),
        (K_GAMMA, "γ", {"min_value": 0.0, "max_value": 1e6}),
        (K_NBETA, "nβ", {"min_value": 0.0, "exclusive_min": True, "max_value": 1e12}),
    ):
        try:
            out[{"ε": "epsilon", "γ": "gamma", "nβ": "nbeta"}[name]] = ui.parse_float_list(
                str(state.get(key, "")), name=name, **kw
            )
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        return None, problems
    n = len(out["epsilon"]) * len(out["gamma"]) * len(out["nbeta"])
    if n > MAX_SETTINGS:
        return None, [f"The grid has {n} settings; at most {MAX_SETTINGS} per sweep."]
    return out, []


@dataclass
class SweepRun:
    """A finished (or stopped) sweep or calibration as drawn by the page."""

    kind: str  # "sweep" | "calibrate"
    spec: str
    grid: dict[str, list[float]]
    budget: dict[str, int]
    table: pd.DataFrame
    theory_llc: float | None
    status: str
    elapsed_s: float
    traces: pd.DataFrame = field(default_factory=pd.DataFrame)
    recommendation: Any = None
    criteria: Any = None


# ----------------------------------------------------------------------------- running


def _on_sweep() -> None:
    grid, _ = parse_grid(st.session_state)
    if grid:
        live_ui.LiveRun(NS_SWEEP).request(
            {"spec": spec_of(st.session_state), "grid": grid, "budget": budget(st.session_state)}
        )


def _on_calibrate() -> None:
    s = st.session_state
    grid = calibrate.default_grid(float(s[K_C_EPS]), float(s[K_C_GAMMA]))
    grid["nbeta"] = [float(s[K_C_NBETA])]
    criteria = {"acceptance_min": float(s[K_C_ACC]), "rhat_max": float(s[K_C_RHAT])}
    live_ui.LiveRun(NS_CALIB).request(
        {"spec": spec_of(s), "grid": grid, "budget": budget(s), "criteria": criteria}
    )


def live_sweep_view(trace: Any, settings: pd.DataFrame, slot: Any, key: str) -> None:
    """Heatmap of λ̂ so far (and acceptance) per setting while the sweep runs."""
    table = live_ui.partial_sweep_table(trace, settings)
    nb = sorted(table["nbeta"].unique())[0]
    sub = table[np.isclose(table["nbeta"], nb)]
    with slot.container():
        c1, c2 = st.columns(2)
        ui.show_figure(
            plots.sweep_heatmap(sub, "llc_mean", title=f"λ̂ so far (nβ = {ui.fmt(nb)})", colorbar_title="λ̂"),
            container=c1,
            key=f"{key}.llc",
        )
        ui.show_figure(
            plots.sweep_heatmap(
                sub, "acceptance", title="acceptance so far", colorbar_title="acc.", zmin=0.0, zmax=1.0
            ),
            container=c2,
            key=f"{key}.acc",
        )


def execute(kind: str, request: dict[str, Any], live: live_ui.LiveRun, slots: dict[str, Any]) -> SweepRun:
    """Serve a sweep/calibrate request from the cache or by streaming it live."""
    spec, grid, bud = request["spec"], request["grid"], request["budget"]
    target = ui.target_for(spec)
    key = live_ui.settings_key(kind, spec, **grid, **bud)
    cache = live_ui.result_cache()
    cached = cache.get(key)
    if cached is None:
        total = bud["burnin"] + bud["draws"]
        state = {"n": 0}

        def on_chunk(item: Any) -> None:
            state["n"] += 1
            live_sweep_view(item.trace, item.settings, slots["live"], key=f"{kind}.live{state['n']}")

        stream = sweep_stream(
            target,
            epsilon=grid["epsilon"],
            gamma=grid["gamma"],
            nbeta=grid["nbeta"],
            chains=bud["chains"],
            draws=bud["draws"],
            burnin=bud["burnin"],
            seed=bud["seed"],
            device=ui.device_for(spec),
            report_every=live_ui.report_every(total),
            report_seconds=live_ui.LIVE_REPORT_S,
        )
        num_chains = bud["chains"] * len(grid["epsilon"]) * len(grid["gamma"]) * len(grid["nbeta"])
        last, elapsed = live_ui.stream_live(
            stream,
            live=live,
            total_steps=total,
            on_chunk=on_chunk,
            label=(f"{'Calibrating' if kind == 'calibrate' else 'Sweeping'}: {num_chains:,} chains in "
                   "one batch"),
            progress_container=slots["progress"],
        )
        host = last.result.trace
        cached = SweepRun(
            kind=kind,
            spec=spec,
            grid=grid,
            budget=bud,
            table=last.result.table,
            theory_llc=theory_for(target).llc,
            status="complete",
            elapsed_s=elapsed,
            traces=frames.trace_frame(host),
        )
        cache.put(key, cached)
    return finalise(cached, request)


def finalise(run: SweepRun, request: dict[str, Any]) -> SweepRun:
    """Attach the calibration verdict (cheap; never cached) and return a fresh copy."""
    out = SweepRun(**{**run.__dict__})
    if out.kind == "calibrate":
        crit = dataclasses.replace(CALIBRATION_CRITERIA, **request.get("criteria", {}))
        out.criteria = crit
        out.recommendation = calibrate.recommend(with_expected(out.table, ui.target_for(out.spec)), crit)
    return out


def finish_stopped(kind: str, partial: Any, request_like: dict[str, Any]) -> SweepRun | None:
    """Summarise an interrupted sweep from its partial trace."""
    trace = partial.trace
    steps = int(trace.meta.get("steps_done", 0))
    if trace.draw_loss.shape[1] < 2:
        st.info(f"Stopped at step {steps:,}, still in burn-in: nothing to summarise yet.")
        return None
    host = trace.cpu()
    run = SweepRun(
        kind=kind,
        spec=request_like["spec"],
        grid=request_like["grid"],
        budget=request_like["budget"],
        table=summarize(host).table,
        theory_llc=theory_for(ui.target_for(request_like["spec"])).llc,
        status=f"stopped at step {steps:,} of {trace.num_steps_total:,}",
        elapsed_s=float("nan"),
        traces=frames.trace_frame(host),
    )
    return finalise(run, request_like)


# ----------------------------------------------------------------------------- results


def heatmaps(run: SweepRun, healthy: pd.Series, recommended: int | None, key: str) -> None:
    table = run.table
    nbetas = sorted(table["nbeta"].unique())
    nb = nbetas[0]
    if len(nbetas) > 1:
        nb = st.selectbox(
            "nβ shown in the heatmaps", nbetas, key=f"{key}.nbeta", format_func=lambda v: f"{v:g}"
        )
    mask = np.isclose(table["nbeta"], nb)
    sub, hsub = table[mask], healthy[mask]
    c1, c2, c3 = st.columns(3)
    ui.show_figure(
        plots.sweep_heatmap(
            sub, "llc_mean", healthy=hsub, recommended=recommended, title="λ̂", colorbar_title="λ̂"
        ),
        container=c1,
        key=f"{key}.fig.llc",
    )
    ui.show_figure(
        plots.sweep_heatmap(
            sub,
            "acceptance",
            healthy=hsub,
            recommended=recommended,
            title="MALA acceptance",
            colorbar_title="acc.",
            zmin=0.0,
            zmax=1.0,
        ),
        container=c2,
        key=f"{key}.fig.acc",
    )
    ui.show_figure(
        plots.sweep_heatmap(
            sub,
            "rhat",
            healthy=hsub,
            recommended=recommended,
            title="R-hat",
            colorbar_title="R-hat",
            colorscale="Reds",
            zmin=1.0,
            zmax=max(1.3, float(np.nanmax(sub["rhat"])) if sub["rhat"].notna().any() else 1.3),
        ),
        container=c3,
        key=f"{key}.fig.rhat",
    )


def gamma_and_temperature(run: SweepRun, healthy: pd.Series) -> None:
    table = run.table
    left, right = st.columns(2, gap="medium")
    with left:
        nb = sorted(table["nbeta"].unique())[0]
        sub = table[np.isclose(table["nbeta"], nb)]
        finite = bg_theory.finite_target_curve(run.spec, float(nb), sorted(sub["gamma"].unique()))
        ui.show_figure(
            plots.llc_vs_param_figure(
                sub,
                x="gamma",
                group="epsilon",
                theory_llc=run.theory_llc,
                finite_target=finite,
                log_x=bool((sub["gamma"] > 0).all()),
                title=f"λ̂ against γ (nβ = {ui.fmt(nb)})",
            ),
            key="sens.fig.gamma",
        )
        if not (sub["gamma"] > 0).all():
            st.caption("γ = 0 is in the grid, so the γ axis is linear.")
    with right:
        multi_temperature(run, healthy)


def multi_temperature(run: SweepRun, healthy: pd.Series) -> None:
    table = run.table
    nbetas = sorted(v for v in table["nbeta"].unique() if v > 1)
    if len(nbetas) < 2:
        ui.teaching_note(
            "Add **at least two nβ values** (e.g. `30, 100, 300, 1000`) to the grid to see the "
            "multi-temperature plot. It regresses λ̂ on 1/log nβ, because "
            "nβ·(E_β[L] − L\\*) ≈ λ − (m−1)/log nβ, and reads the bias-reduced λ at the intercept.",
            title="Multi-temperature fit",
        )
        return
    eps_options = sorted(table["epsilon"].unique())
    gamma_options = sorted(table["gamma"].unique())
    # Default: the (ε, γ) pair whose fit is possible with the most temperatures (finite λ̂ at
    # nβ > 1), then the most healthy ones; ties go to the larger ε and the smaller γ.
    scored = (
        table.assign(h=healthy.to_numpy(), f=np.isfinite(table["llc_mean"]) & (table["nbeta"] > 1))
        .groupby(["epsilon", "gamma"])[["f", "h"]]
        .sum()
        .reset_index()
        .sort_values(["f", "h", "epsilon", "gamma"], ascending=[False, False, False, True])
    )
    best = scored.iloc[0]
    c1, c2 = st.columns(2)
    eps = c1.selectbox(
        "ε for the fit",
        eps_options,
        index=eps_options.index(best["epsilon"]),
        key=K_MT_EPS,
        format_func=lambda v: f"{v:g}",
    )
    gamma = c2.selectbox(
        "γ for the fit",
        gamma_options,
        index=gamma_options.index(best["gamma"]),
        key=K_MT_GAMMA,
        format_func=lambda v: f"{v:g}",
    )
    pts = table[np.isclose(table["epsilon"], eps) & np.isclose(table["gamma"], gamma) & (table["nbeta"] > 1)]
    pts = pts[np.isfinite(pts["llc_mean"])]
    fit = None
    try:
        sem = pts["llc_sem"].to_numpy(dtype=float)
        ok = bool(np.isfinite(sem).all() and (sem > 0).all())
        res = llc_bias_reduced(pts["nbeta"], pts["llc_mean"], sem if ok else None)
        fit = {"intercept": res.intercept, "intercept_se": res.intercept_se, "slope": res.slope}
    except ValueError as exc:
        st.caption(f"No fit: {ui.plain(str(exc))}")
    ui.show_figure(plots.multi_temperature_figure(pts, fit, theory_llc=run.theory_llc), key="sens.fig.temp")
    if fit:
        st.caption(
            f"Bias-reduced λ (intercept) = {plots.format_estimate(fit['intercept'], fit['intercept_se'])}; "
            f"slope ≈ −(m−1) = {ui.fmt(fit['slope'])}."
        )
        if len(pts) < 3:
            st.caption(
                ":material/warning: With two temperatures the line passes through both points, so the "
                "intercept has no error bar and no check of the 1/log nβ form: add a third nβ."
            )


def results_table(run: SweepRun, assessed: pd.DataFrame, key: str) -> None:
    cols = [
        "setting",
        "epsilon",
        "gamma",
        "nbeta",
        "llc_mean",
        "llc_sem",
        "rhat",
        "ess",
        "acceptance",
        "n_diverged",
        "healthy",
        "problem",
    ]
    shown = assessed[[c for c in cols if c in assessed]].copy()
    for c in ("epsilon", "gamma", "nbeta"):  # float32 noise from the trace (0.3199999928 → 0.32)
        shown[c] = shown[c].map(lambda v: float(f"{v:.7g}"))
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "epsilon": st.column_config.NumberColumn("ε", format="%.2e"),
            "gamma": st.column_config.NumberColumn("γ"),
            "nbeta": st.column_config.NumberColumn("nβ"),
            "llc_mean": st.column_config.NumberColumn("λ̂", format="%.4f"),
            "llc_sem": st.column_config.NumberColumn("± sem", format="%.3f"),
            "rhat": st.column_config.NumberColumn("R-hat", format="%.3f"),
            "ess": st.column_config.NumberColumn("ESS", format="%.0f"),
            "acceptance": st.column_config.NumberColumn("acc.", format="%.3f"),
            "problem": st.column_config.TextColumn("what to change", width="large"),
        },
    )
    with st.expander("Download (CSV / Parquet)"):
        ui.download_buttons(
            {"Settings table": assessed.drop(columns=["plateau"], errors="ignore"), "Traces": run.traces},
            basename=f"lltools_{run.kind}",
            key=f"{key}.dl",
        )
    st.caption(
        f"{run.status} · {len(run.table)} settings × {run.budget['chains']} chains · "
        f"{run.budget['draws']:,} draws after {run.budget['burnin']:,} burn-in"
        + (f" · {run.elapsed_s:.1f} s" if run.elapsed_s == run.elapsed_s and run.elapsed_s > 0 else "")
    )


SWEEP_NOTE = (
    "λ̂ is only meaningful where it does **not** depend on the sampler's knobs. Each cell is "
    "one setting (ε, γ, nβ), all run as **one batched computation**. A green box marks a "
    f"**healthy** setting. {describe_criteria(CALIBRATION_CRITERIA)}\n\n"
    "- **ε** (columns): too large biases λ̂ upward, then chains diverge; too small and the "
    "chains barely move. Look for a **plateau** of λ̂ across ε inside the green region.\n"
    "- **γ** (rows): the localisation (γ/2)‖w − w\\*‖² pulls chains home. Larger γ shrinks λ̂; "
    "too small lets chains wander off (R-hat grows).\n"
    "- **nβ**: larger is more local and less biased but noisier. The dotted curve is the exact "
    "target T(nβ, γ) a perfect sampler would return."
)

CALIB_NOTE = (
    "Calibrate runs a small grid (5 step sizes over two decades × 3 values of γ around your "
    "centre) as one batch, then applies three rules:\n\n"
    "1. **Healthy**: acceptance ≥ the threshold, no divergence, R-hat ≤ the threshold, enough "
    "effective draws.\n"
    "2. **Plateau**: for each γ, the healthy step sizes whose λ̂ agree (within 10% and 3 "
    "standard errors).\n"
    "3. **Pick** the weakest γ that has a plateau, and its **largest** ε on the plateau: the "
    "fastest-mixing step that still gives the same answer.\n\n"
    "Where the exact T(nβ, γ) is known (a 2-D potential), rules 2–3 use it instead: the largest "
    "healthy ε, at the weakest γ, whose λ̂ is within 2 standard errors and 20% of T."
)


def render_sweep(run: SweepRun) -> None:
    assessed = calibrate.assess(run.table)
    healthy = assessed["healthy"]
    heatmaps(run, healthy, None, key="sens.heat")
    plots_col, note_col = st.columns([5, 2], gap="medium")
    with plots_col:
        gamma_and_temperature(run, healthy)
    with note_col:
        ui.teaching_note(SWEEP_NOTE, title="Reading the sweep")
    results_table(run, assessed, key="sens.table")


def _apply_to_toy(rec: Any, spec: str) -> None:
    values = {T_EPS: float(rec.epsilon), T_GAMMA: float(rec.gamma), T_NBETA: float(rec.nbeta)}
    values.update({T_POT: spec} if spec in ui.POTENTIAL_LABELS else {T_POT: ui.CUSTOM, T_EXPR: spec})
    ui.set_values(values)
    st.session_state[K_GOTO] = ("toy.py", "Toy potentials")


def _apply_to_networks(rec: Any, spec: str) -> None:
    path = spec[len(ui.MODEL_PREFIX) :]
    card = _card(path) or {}
    values = {
        nw.K_MODEL: path,
        nw.K_EPS: float(rec.epsilon),
        nw.K_GAMMA: float(rec.gamma),
        nw.K_NBETA: float(rec.nbeta),
    }
    if "final_checkpoint" in card and hasattr(nw, "K_CKPT"):
        values[nw.K_CKPT] = str(card["final_checkpoint"])
    if hasattr(nw, "SHIPPED") and hasattr(nw, "K_SOURCE"):
        values[nw.K_SOURCE] = nw.SHIPPED
    ui.set_values(values)
    st.session_state[K_GOTO] = ("networks.py", "Networks")


def target_label(spec: str) -> str:
    """ "L = x**2 + y**2" or "model deep_linear/…" for captions."""
    if spec.startswith(ui.MODEL_PREFIX):
        card = _card(spec[len(ui.MODEL_PREFIX) :]) or {}
        return f"the model {card.get('name', spec[len(ui.MODEL_PREFIX) :])}"
    return f"L = {spec}"


def render_calibration(run: SweepRun) -> None:
    rec = run.recommendation
    assessed = rec.table
    healthy = assessed["healthy"]
    if rec.ok:
        st.success(f"**{ui.plain(rec.headline)}**", icon=":material/verified:")
    else:
        st.warning(f"**{ui.plain(rec.headline)}**", icon=":material/warning:")
    left, right = st.columns([3, 2], gap="medium")
    with left:
        ui.show_figure(
            plots.calibration_figure(
                assessed, recommended=rec.setting, plateau=assessed["plateau"], theory_llc=run.theory_llc
            ),
            key="calib.fig.plateau",
        )
    with right:
        st.markdown("**Why**")
        st.markdown("\n".join(f"- {ui.plain(r)}" for r in rec.reasons))
        if rec.as_settings():
            is_model = run.spec.startswith(ui.MODEL_PREFIX)
            st.button(
                f"Use these settings on the {'Networks' if is_model else 'Toy'} page",
                key="calib.apply",
                on_click=_apply_to_networks if is_model else _apply_to_toy,
                args=(rec, run.spec),
                icon=":material/arrow_back:",
            )
            applied = st.session_state.pop(K_APPLIED, None)
            if applied:
                st.success(f"Applied: open **{applied}** and press Run.", icon=":material/check:")
    c1, c2 = st.columns(2)
    ui.show_figure(
        plots.sweep_heatmap(
            assessed,
            "acceptance",
            healthy=healthy,
            recommended=rec.setting,
            title="Acceptance (★ = recommended)",
            colorbar_title="acc.",
            zmin=0.0,
            zmax=1.0,
        ),
        container=c1,
        key="calib.fig.acc",
    )
    ui.show_figure(
        plots.sweep_heatmap(
            assessed, "llc_mean", healthy=healthy, recommended=rec.setting, title="λ̂", colorbar_title="λ̂"
        ),
        container=c2,
        key="calib.fig.llc",
    )
    results_table(run, assessed, key="calib.table")


# ----------------------------------------------------------------------------- page


def _card(path: str) -> dict[str, Any] | None:
    return next((c for c in ui.sample_model_cards() if str(c["path"]) == path), None)


def _smallest(cards: list[dict[str, Any]]) -> str:
    """The path of the model with the fewest parameters (quickest to sweep on a CPU)."""
    return str(min(cards, key=lambda c: int(c.get("num_parameters") or 10**12))["path"])


def target_defaults(state: Any) -> dict[str, Any]:
    """Widget values for the chosen target: its default sweep (:func:`calibrate.default_sweep`
    around a potential's preset or a model card's default sampler) and calibration centre."""
    if state.get(K_SOURCE) == SOURCES[1]:
        card = _card(str(state.get(K_MODEL, "")))
        if card is None:
            return {}
        values = ui.card_sampler_values("d", card, card.get("default_sampler") or {})
        d = {k[2:]: v for k, v in values.items()}
    else:
        d = sampler_defaults(spec_of(state))
    sd = calibrate.default_sweep(d, network=state.get(K_SOURCE) == SOURCES[1])
    return {K_EPS: ui.format_float_list(sd.epsilon), K_GAMMA: ui.format_float_list(sd.gamma),
            K_NBETA: ui.format_float_list(sd.nbeta), K_CHAINS: sd.chains, K_DRAWS: sd.draws,
            K_BURNIN: sd.burnin, K_C_EPS: float(d["epsilon"]), K_C_GAMMA: float(d["gamma"]),
            K_C_NBETA: float(sd.nbeta[0])}


DEFAULTS.update(target_defaults(DEFAULTS))
WIDGET_KEYS = list(DEFAULTS)


def _centre_on_target() -> None:
    """Another target was chosen: load its default sweep grid, budget and calibration centre."""
    s = st.session_state
    cards = ui.sample_model_cards()
    if s.get(K_SOURCE) == SOURCES[1] and not s.get(K_MODEL) and cards:
        s[K_MODEL] = _smallest(cards)
    ui.set_values(target_defaults(s))


def controls(running: bool) -> tuple[str, Any | None, str | None]:
    """Target and per-setting sampler budget, in one row above the tabs."""
    cards = ui.sample_model_cards()
    cols = st.columns([2.4, 1, 1, 1, 1], gap="small")
    with cols[0]:
        if cards:
            st.segmented_control(
                "Target", SOURCES, key=K_SOURCE, disabled=running, on_change=_centre_on_target,
                label_visibility="collapsed",
            )  # fmt: skip
        if cards and st.session_state.get(K_SOURCE) == SOURCES[1]:
            paths = [str(c["path"]) for c in cards]
            if st.session_state.get(K_MODEL) not in paths:
                st.session_state[K_MODEL] = _smallest(cards)
            st.selectbox(
                "Sample model",
                paths,
                key=K_MODEL,
                disabled=running,
                on_change=_centre_on_target,
                format_func=lambda p: (
                    f"{(_card(p) or {}).get('name', p)}  "
                    f"({int((_card(p) or {}).get('num_parameters') or 0):,} parameters)"
                ),
            )
            spec = spec_of(st.session_state)
            try:
                target, error = ui.target_for(spec), None
                st.caption(
                    f"d = {target.dim:,} parameters, n = {target.n:,} samples · theory λ = "
                    f"{ui.fmt(theory_for(target).llc)} · networks are much slower than 2-D potentials "
                    "on a CPU: keep the grid small (the progress bar shows the time left; Stop keeps "
                    "the draws so far)."
                )
            except Exception as exc:
                target, error = None, f"Could not load this model: {exc}"
                ui.user_error(ui.plain(error))
        else:
            if st.session_state.get(K_SOURCE) == SOURCES[1]:
                st.session_state[K_SOURCE] = SOURCES[0]
            spec, target, error = ui.potential_picker(K_POT, K_EXPR, disabled=running,
                                                      on_change=_centre_on_target)
    cols[1].number_input(
        "chains / setting", min_value=1, max_value=256, value=ui.held(K_CHAINS), step=1, key=K_CHAINS,
        disabled=running
    )
    cols[2].number_input("draws", min_value=10, max_value=100_000, value=ui.held(K_DRAWS), step=100,
                         key=K_DRAWS, disabled=running)
    cols[3].number_input("burn-in", min_value=0, max_value=100_000, value=ui.held(K_BURNIN), step=100,
                         key=K_BURNIN, disabled=running)
    cols[4].number_input("seed", min_value=0, max_value=2**31 - 1, value=ui.held(K_SEED), step=1, key=K_SEED,
                         disabled=running)
    return spec, target, error


def run_panel(
    kind: str,
    live: live_ui.LiveRun,
    request: dict[str, Any] | None,
    stopped: Any,
    *,
    running: bool,
    on_run: Callable[[], None],
    disabled: bool,
    run_label: str,
    what: str,
    on_done: Callable[[], None] | None = None,
) -> None:
    """One tab's Run/Stop buttons, then its run: a stopped one kept, a requested one served.

    ``kind`` is ``"sweep"`` or ``"calibrate"``; the result lands in that tab's result key
    (the page reruns after a run finishes).  ``stopped`` is the partial trace a Stop left
    (or ``None``); ``on_done`` runs after a successful run, before the rerun.
    """
    ns, result_key = (NS_SWEEP, SWEEP_RESULT) if kind == "sweep" else (NS_CALIB, CALIB_RESULT)
    last_key = f"{ns}.__last_request"
    bc, _ = st.columns([1, 2])
    with bc:
        live.buttons(running=running, on_run=on_run, disabled=disabled, run_label=run_label)
    slots = {"progress": st.container(), "live": st.empty()}
    if stopped is not None:
        last = st.session_state.get(last_key)
        if last:
            done = finish_stopped(kind, stopped, last)
            if done is not None:
                st.session_state[result_key] = done
    if request is not None:
        st.session_state[last_key] = request
        try:
            st.session_state[result_key] = execute(kind, request, live, slots)
            if on_done is not None:
                on_done()
        except Exception as exc:
            live.clear_partial()
            ui.show_exception(exc, what, container=slots["progress"])
        else:
            st.rerun()


def main() -> None:
    ui.setup_page(
        "Sensitivity & calibrate",
        "How λ̂ depends on the sampler's knobs, and which settings to trust. Every grid is one batched run.",
    )
    ui.go_to_page(K_GOTO, K_APPLIED)  # "Use these settings": open the page they were applied to
    sweep_live, calib_live = live_ui.LiveRun(NS_SWEEP), live_ui.LiveRun(NS_CALIB)
    problems = ui.load_query_params(NS_SWEEP, QUERY)
    ui.init_state(DEFAULTS)
    sweep_req, calib_req = sweep_live.take(), calib_live.take()
    running = sweep_req is not None or calib_req is not None
    stopped = {
        "sweep": None if running else sweep_live.stopped_partial(),
        "calibrate": None if running else calib_live.stopped_partial(),
    }

    for p in problems:
        st.warning(ui.plain(p))
    spec, _target, error = controls(running)
    ui.remember(WIDGET_KEYS)

    main_col = st.container()
    with main_col:
        tab_sweep, tab_calib = st.tabs(["Sweep γ × ε × nβ", "Calibrate"])
        with tab_sweep:
            g1, g2, g3 = st.columns(3)
            g1.text_input("ε values", value=ui.held(K_EPS, ""), key=K_EPS, disabled=running,
                          help="Comma-separated step sizes.")
            g2.text_input(
                "γ values", value=ui.held(K_GAMMA, ""), key=K_GAMMA, disabled=running,
                help="Comma-separated localisation strengths."
            )
            g3.text_input(
                "nβ values",
                value=ui.held(K_NBETA, ""),
                key=K_NBETA,
                disabled=running,
                help="Comma-separated inverse temperatures; two or more give the multi-temperature fit.",
            )
            grid, grid_problems = parse_grid(st.session_state)
            for p in grid_problems:
                ui.user_error(ui.plain(p))
            b = budget(st.session_state)
            sweep_error = error or (grid_problems[0] if grid_problems else None)
            if grid:
                n_set = len(grid["epsilon"]) * len(grid["gamma"]) * len(grid["nbeta"])
                over = ui.check_budget(n_set * b["chains"], b["draws"] + b["burnin"])
                if over:
                    ui.user_error(over)
                    sweep_error = sweep_error or over
                st.caption(
                    f"{n_set} settings × {b['chains']} chains = {n_set * b['chains']:,} chains, "
                    f"{b['burnin'] + b['draws']:,} steps each, in one batch."
                )
            run_panel(
                "sweep",
                sweep_live,
                sweep_req,
                stopped["sweep"],
                running=running,
                on_run=_on_sweep,
                disabled=sweep_error is not None,
                run_label="Run sweep",
                what="run the sweep",
                on_done=lambda: ui.save_query_params(QUERY),
            )
            run: SweepRun | None = st.session_state.get(SWEEP_RESULT)
            if run is None:
                ui.teaching_note(SWEEP_NOTE, title="Reading the sweep")
                st.info("Choose a grid and press **Run sweep**.", icon=":material/play_arrow:")
            else:
                if run.spec != spec:
                    st.caption(
                        f":material/info: Showing the last sweep, for {ui.plain(target_label(run.spec))}."
                    )
                render_sweep(run)

        with tab_calib:
            c1, c2, c3 = st.columns(3)
            c1.number_input(
                "centre ε",
                min_value=1e-9,
                max_value=1.0,
                value=ui.held(K_C_EPS),
                step=1e-4,
                format="%.2e",
                key=K_C_EPS,
                disabled=running,
            )
            c2.number_input(
                "centre γ",
                min_value=0.0,
                max_value=1e6,
                value=ui.held(K_C_GAMMA),
                step=0.5,
                format="%g",
                key=K_C_GAMMA,
                disabled=running,
            )
            c3.number_input(
                "nβ", min_value=1e-3, max_value=1e9, value=ui.held(K_C_NBETA), step=10.0, format="%g",
                key=K_C_NBETA, disabled=running
            )
            with st.expander("Health thresholds"):
                t1, t2 = st.columns(2)
                t1.slider("minimum acceptance", 0.5, 0.99, value=ui.held(K_C_ACC, None), step=0.01,
                          key=K_C_ACC, disabled=running)
                t2.slider("maximum R-hat", 1.01, 1.5, value=ui.held(K_C_RHAT, None), step=0.01,
                          key=K_C_RHAT, disabled=running)
            cg = calibrate.default_grid(float(st.session_state[K_C_EPS]), float(st.session_state[K_C_GAMMA]))
            eps_txt, gam_txt = ui.format_float_list(cg["epsilon"]), ui.format_float_list(cg["gamma"])
            st.caption(
                f"Grid: ε ∈ {{{eps_txt}}} × γ ∈ {{{gam_txt}}} "
                f"at nβ = {st.session_state[K_C_NBETA]:g}, {b['chains']} chains each."
            )
            run_panel(
                "calibrate",
                calib_live,
                calib_req,
                stopped["calibrate"],
                running=running,
                on_run=_on_calibrate,
                disabled=error is not None,
                run_label="Calibrate",
                what="calibrate",
            )
            crun: SweepRun | None = st.session_state.get(CALIB_RESULT)
            if crun is None:
                ui.teaching_note(CALIB_NOTE, title="How Calibrate decides")
                st.info(
                    "Set a centre (your current ε, γ, nβ) and press **Calibrate**.",
                    icon=":material/play_arrow:",
                )
            else:
                render_calibration(crun)
                ui.teaching_note(CALIB_NOTE, title="How Calibrate decides")


if __name__ == "__main__":
    ui.run_page(main, what="show the sensitivity page")
