"""Toy potentials: sample around w* = 0 of a 2-D potential and watch λ̂ settle, live.

widgets -> params -> (cached | live-streamed) run -> figures from :mod:`lltools.viz`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import common as ui
from dashboard import health_light, history, warmup
from dashboard import running as live_ui
from dashboard import theory as bg_theory
from lltools import viz as plots
from lltools.estimation import frames
from lltools.estimation.health import describe_acceptance
from lltools.estimation.live import gap_verdict, live_estimate, z_score
from lltools.targets.potentials import find_builtin, sampler_defaults
from lltools.targets.specs import TargetSpec
from lltools.workflows.estimate import estimate_result, estimate_stream

NS = "toy"
K_POT, K_EXPR = "toy.potential", "toy.expr"
K_NBETA, K_GAMMA, K_EPS = "toy.nbeta", "toy.gamma", "toy.epsilon"
K_CHAINS, K_DRAWS, K_BURNIN, K_SEED = "toy.chains", "toy.draws", "toy.burnin", "toy.seed"
K_VIEW = "toy.view"
RESULT = "toy.__result"



def preset(spec: str) -> dict[str, Any]:
    """The sampler widgets' values for a potential: its preset (a clean first run, see
    :func:`lltools.targets.potentials.sampler_defaults`)."""
    d = sampler_defaults(spec)
    return {K_NBETA: float(d["nbeta"]), K_GAMMA: float(d["gamma"]), K_EPS: float(d["epsilon"]),
            K_CHAINS: int(d["chains"]), K_DRAWS: int(d["draws"]), K_BURNIN: int(d["burnin"])}


DEFAULTS: dict[str, Any] = {
    K_POT: "x**2 + y**2",
    K_EXPR: "x**2 * y**2",
    **preset("x**2 + y**2"),
    K_SEED: 0,
    K_VIEW: "auto",
}
WIDGET_KEYS = list(DEFAULTS)
VIEW_OPTIONS = ["auto", 0.1, 0.25, 0.5, 1.0, 2.0, 4.0]
#: The toy page's sampler inputs (small 2-D potentials: finer steps, more chains and draws).
SAMPLER_INPUTS = ui.SamplerInputs(
    nbeta_max=1e9,
    nbeta_step=10.0,
    nbeta_help="Effective inverse temperature nβ: larger is more local and less biased, but noisier.",
    gamma_max=1e6,
    gamma_step=0.5,
    gamma_help="Localisation strength γ: the pull (γ/2)‖w − w*‖² back to w*.",
    epsilon_min=1e-9,
    epsilon_step=1e-4,
    epsilon_help="SGLD step size ε: too large biases λ̂ upward or diverges; too small and chains barely move.",
    chains_max=1024,
    draws_max=200_000,
    draws_step=500,
)


def _potential_from_url(raw: str) -> dict[str, Any]:
    builtin = find_builtin(raw)
    if builtin is not None:  # its preset, then the link's own settings (read after this one)
        return {K_POT: builtin.name, **preset(builtin.name)}
    return {K_POT: ui.CUSTOM, K_EXPR: raw}


def _potential_for_url(state: Any) -> str | None:
    return spec_of(state)


QUERY = {
    "potential": ui.QueryParam(K_POT, str, apply=_potential_from_url, read=_potential_for_url),
    **ui.sampler_query(NS, SAMPLER_INPUTS),
    "seed": ui.QueryParam(K_SEED, int, lo=0, hi=2**31 - 1),
    "stop_sem": health_light.auto_stop_query(NS),
}


def spec_of(state: Any) -> str:
    """The potential spec the controls describe (a built-in name or the typed expression)."""
    choice = state.get(K_POT, DEFAULTS[K_POT])
    return str(state.get(K_EXPR, "")).strip() if choice == ui.CUSTOM else str(choice)


def sampler_params(state: Any) -> dict[str, Any]:
    """The sampler settings the controls describe (the keyword arguments of ``estimate``)."""
    return {**ui.sampler_values(state, NS), "seed": int(state[K_SEED])}


@dataclass
class ToyResult:
    """A finished (or stopped) toy run, as drawn by the page."""

    spec: str
    params: dict[str, Any]
    result: Any  # lltools.workflows.estimate.EstimateResult
    finite_target: float | None
    finite_note: str | None
    status: str
    elapsed_s: float
    record_id: int | None = None
    traces: pd.DataFrame = field(default_factory=pd.DataFrame)
    positions: pd.DataFrame = field(default_factory=pd.DataFrame)


# ----------------------------------------------------------------------------- layout


@dataclass
class Slots:
    """Where each piece of the results goes (the same for live and final drawing)."""

    progress: Any
    metrics: Any
    contour: Any
    note: Any
    running: Any
    loss: Any


def make_slots() -> Slots:
    progress = st.container()
    metrics = st.empty()
    if ui.large_fonts():  # lecture mode: one chart per row, readable from the back at 1280 × 720
        top_left, top_right = st.container(), st.container()
        bottom_left, bottom_right = st.container(), st.container()
    else:
        top_left, top_right = st.columns([5, 4], gap="medium")
        bottom_left, bottom_right = st.columns(2, gap="medium")
    return Slots(
        progress=progress,
        metrics=metrics,
        contour=top_left.empty(),
        note=top_right.container(),
        running=bottom_left.empty(),
        loss=bottom_right.empty(),
    )


def draw_metrics(
    slot: Any,
    *,
    llc: float | None,
    sem: float | None,
    theory: float | None,
    finite: float | None,
    acc: float | None,
    live: bool,
    theory_label: str = "exact λ",
) -> None:
    """The headline row: λ̂, the exact λ, the finite-nβ target T, and λ̂ − T (or acceptance live)."""
    with slot.container():
        cols = st.columns(4)
        cols[0].metric(
            "λ̂ so far" if live else "λ̂ (estimate)",
            "…" if llc is None else ui.fmt(llc, 4),
            delta=None if sem is None else f"± {ui.fmt(sem, 2)} (SEM)",
            delta_color="off",
            delta_arrow="off",
            help="λ̂ = nβ·(mean draw loss − L(w*)), mean over chains ± its standard error.",
        )
        cols[1].metric(
            theory_label, ui.fmt(theory, 4), help="The learning coefficient at w* (the limit nβ → ∞)."
        )
        cols[2].metric(
            "target T(nβ, γ)",
            ui.fmt(finite, 4),
            help="What a perfect sampler returns at these nβ and γ: nβ·E_p[L − L(w*)] by quadrature.",
        )
        if live:
            cols[3].metric(
                "acceptance so far", ui.fmt(acc, 3), help=describe_acceptance()
            )
        else:
            gap = None if llc is None or finite is None else llc - finite
            z = z_score(llc, sem, finite)
            cols[3].metric(
                "λ̂ − T",
                ui.fmt(gap, 2),
                delta=None if z is None else f"{ui.fmt(z, 2)} SEM",
                delta_color="off",
                delta_arrow="off",
                help="How far the estimate is from the exact finite-nβ target, in standard errors.",
            )


def draw_figures(
    slots: Slots,
    *,
    spec: str,
    extent: float,
    traces: pd.DataFrame,
    positions: pd.DataFrame,
    theory: float | None,
    finite: float | None,
    burnin: int,
    total_steps: int,
    llc: float | None = None,
    sem: float | None = None,
    loss_init: float | None = None,
    key: str = "final",
) -> None:
    grid = ui.potential_grid(spec, extent)
    ui.show_figure(
        plots.potential_figure(grid, positions, title=f"L = {spec}"),
        container=slots.contour,
        key=f"toy.fig.contour.{key}",
    )
    ui.show_figure(
        plots.llc_running_figure(
            traces,
            theory_llc=theory,
            finite_target=finite,
            llc_mean=llc,
            llc_sem=sem,
            total_steps=total_steps,
        ),
        container=slots.running,
        key=f"toy.fig.running.{key}",
    )
    ui.show_figure(
        plots.loss_trace_figure(traces, loss_init=loss_init, burnin=burnin, total_steps=total_steps),
        container=slots.loss,
        key=f"toy.fig.loss.{key}",
    )


def _theory_label(spec: str) -> str:
    target, _ = ui.try_potential(spec)
    if target is None:
        return "exact λ"
    return bg_theory.theory_record(spec).label


def teaching_text(
    spec: str,
    theory: float | None,
    finite: float | None,
    nbeta: float,
    gamma: float,
    note: str | None,
    finite_note: str | None = None,
) -> str:
    exact = note is None or note.startswith("exact")
    lam = ui.fmt(theory) if theory is not None else "unknown"
    if theory is not None and not exact:
        lam += " (NOT exact, see the theory note)"
    t_txt = ui.fmt(finite) if finite is not None else "not available"
    if finite is not None and finite_note:
        t_txt += " (approximate)"
    text = (
        "SGLD samples the **localised tempered posterior** "
        "p(w) ∝ exp(−nβ·L(w) − (γ/2)‖w − w\\*‖²) around w\\* = 0 (the star). "
        "The estimate is **λ̂ = nβ·(Eₚ[L] − L(w\\*))**: how much extra loss the posterior "
        "tolerates. Flat valleys cost nothing to wander along, so they *lower* λ: that is "
        "what a singular minimum looks like.\n\n"
        f"The **{'exact ' if exact else 'theory '}λ = {lam}** is the limit nβ → ∞. "
        f"At nβ = {ui.fmt(nbeta)} and γ = {ui.fmt(gamma)} "
        f"a perfect sampler returns the **target T(nβ, γ) = {t_txt}** (quadrature, dotted line), "
        "so judge λ̂ against T, not λ."
    )
    if "y**4" in spec.replace(" ", "") and "x**2*" in spec.replace(" ", ""):
        text += (
            " For x²y⁴, T ≈ 1/4 − 0.142·(γ³/nβ)^¼ approaches 1/4 only slowly: a sampler that "
            "returns 0.25 at small nβ is wrong, not good."
        )
    text += (
        "\n\nRead the plots: the running λ̂ should **flatten** near T; loss traces should "
        "look like stationary noise after the shaded burn-in."
    )
    if note and not note.startswith("exact: closed form"):
        text += f"\n\n*Theory note:* {ui.plain(note)}."
    if finite is not None and finite_note:
        text += f"\n\n*{ui.plain(finite_note)}.*"
    return text


# ----------------------------------------------------------------------------- controls


def controls(running: bool) -> tuple[str, Any | None, str | None]:
    """Draw the controls; returns (spec, target or None, error message or None)."""
    spec, target, error = ui.potential_picker(K_POT, K_EXPR, disabled=running, only_2d="Toy",
                                              on_change=_apply_preset)

    c1, c2 = ui.sampler_controls(NS, SAMPLER_INPUTS, running=running)
    c1.number_input("seed", min_value=0, max_value=2**31 - 1, value=ui.held(K_SEED), step=1, key=K_SEED,
                    disabled=running)
    c2.selectbox(
        "view half-width",
        VIEW_OPTIONS,
        index=ui.held_index(K_VIEW, VIEW_OPTIONS),
        key=K_VIEW,
        format_func=lambda v: "auto" if v == "auto" else f"{v:g}",
        help="Zoom of the potential plot (auto frames the chains).",
    )
    ui.remember(WIDGET_KEYS)

    p = sampler_params(st.session_state)
    if target is not None and getattr(target, "needs_gamma", False) and p["gamma"] == 0:
        ui.user_error("This potential has non-compact minima (valleys along the axes): set γ > 0.")
        error = error or "gamma"
    budget = ui.check_budget(p["chains"], p["draws"] + p["burnin"])
    if budget:
        ui.user_error(budget)
        error = error or budget
    return spec, target, error


def _apply_preset() -> None:
    """Another potential was chosen: load its preset sampler settings."""
    ui.set_values(preset(spec_of(st.session_state)))


def _on_run() -> None:
    live_ui.LiveRun(NS).request({"spec": spec_of(st.session_state), **sampler_params(st.session_state)})


# ----------------------------------------------------------------------------- running


def execute(request: dict[str, Any], slots: Slots, live: live_ui.LiveRun) -> None:
    """Serve a Run request: from the cache, or stream live into ``slots``."""
    spec = request["spec"]
    params = {k: v for k, v in request.items() if k != "spec"}
    target = ui.potential_target(spec)
    finite, finite_note = bg_theory.finite_nbeta_target(spec, params["nbeta"], params["gamma"])
    key = live_ui.settings_key("toy", spec, **params)
    cache = live_ui.result_cache()
    cached = cache.get(key)
    saved = {  # how the run is recorded in the run store (settings re-run it: resume)
        "page": "Toy potentials",
        "label": spec,
        "settings": {**params, "device": ui.POTENTIAL_DEVICE},
        "target": TargetSpec.potential(spec).to_dict(),
    }
    if cached is not None:
        cache.set_stored_id(key, live_ui.record_cached(cached.result, existing=cache.stored_id(key), **saved))
        store(
            ToyResult(
                spec,
                params,
                cached.result,
                finite,
                finite_note,
                "complete (cached)",
                0.0,
                traces=cached.traces,
                positions=cached.positions,
            )
        )
        return

    total = params["burnin"] + params["draws"]
    extent_choice = st.session_state.get(K_VIEW, "auto")
    theory = bg_theory.theory_record(spec).llc
    state = {"n": 0}
    light = health_light.HealthLight(slots.progress, health_light.auto_stop_target(NS))

    def on_chunk(item: Any) -> None:
        trace = item.trace
        traces = frames.trace_frame(trace)
        positions = frames.positions_frame(trace) if trace.positions is not None else pd.DataFrame()
        extent = ui.auto_extent(positions) if extent_choice == "auto" else float(extent_choice)
        now = live_estimate(trace)
        state["n"] += 1
        light.draw(item)
        draw_metrics(
            slots.metrics,
            llc=now.llc,
            sem=None,
            theory=theory,
            theory_label=_theory_label(spec),
            finite=finite,
            acc=now.acceptance,
            live=True,
        )
        draw_figures(
            slots,
            spec=spec,
            extent=extent,
            traces=traces,
            positions=positions,
            theory=theory,
            finite=finite,
            burnin=params["burnin"],
            total_steps=total,
            loss_init=float(trace.loss_init[0]),
            key=f"live{state['n']}",
        )

    fused = warmup.fused_for(spec, params["chains"])  # the compiled step, where it is built already
    stream = live_ui.record_live(
        estimate_stream(
            target, device=ui.POTENTIAL_DEVICE, report_every=live_ui.report_every(total),
            report_seconds=live_ui.LIVE_REPORT_S, fused=fused, **params
        ),
        **saved,
    )
    last, elapsed = live_ui.stream_live(
        stream,
        live=live,
        total_steps=total,
        on_chunk=on_chunk,
        progress_container=slots.progress,
        stop_when=light.stop_when,
        starting="starting…" if fused else live_ui.starting_text(target, params["chains"], total),
    )
    result, status = light.outcome(last)
    done = ToyResult(spec, params, result, finite, finite_note, status, elapsed)
    done.traces = result.traces
    done.positions = (
        frames.positions_frame(result.trace) if result.trace.positions is not None else pd.DataFrame()
    )
    if status == "complete":  # a run stopped early is not the result of these settings
        cache.put(key, done, stored_id=getattr(stream, "run_id", None))
    store(done)


def store(done: ToyResult) -> None:
    """Keep the result for drawing, add it to the history and write the URL."""
    record = history.record_estimate(
        "Toy potentials",
        done.spec,
        done.result,
        finite_target=done.finite_target,
        status=done.status,
        elapsed_s=done.elapsed_s,
        traces=done.traces,
    )
    done.record_id = record.id
    st.session_state[RESULT] = done
    ui.save_query_params(QUERY)


def finish_stopped(partial: Any) -> None:
    """Summarise the draws of an interrupted run (Stop pressed, or the page was left)."""
    trace, settings, placed = partial.trace, partial.settings, partial.target
    done_steps = int(trace.meta.get("steps_done", 0))
    if trace.draw_loss.shape[1] < 2:
        st.info(f"Stopped at step {done_steps:,}, still in burn-in: no draws to estimate from yet.")
        return
    result = estimate_result(trace, placed, settings)
    params = {
        k: getattr(settings, k) for k in ("nbeta", "gamma", "epsilon", "chains", "draws", "burnin", "seed")
    }
    spec = spec_of(st.session_state)
    finite, note = bg_theory.finite_nbeta_target(spec, params["nbeta"], params["gamma"])
    done = ToyResult(
        spec,
        params,
        result,
        finite,
        note,
        f"stopped at step {done_steps:,} of {trace.num_steps_total:,}",
        float("nan"),
    )
    done.traces = result.traces
    done.positions = (
        frames.positions_frame(result.trace) if result.trace.positions is not None else pd.DataFrame()
    )
    store(done)


# ----------------------------------------------------------------------------- results


def draw_result(done: ToyResult, slots: Slots) -> None:
    r = done.result
    theory = r.theory_llc
    extent_choice = st.session_state.get(K_VIEW, "auto")
    extent = ui.auto_extent(done.positions) if extent_choice == "auto" else float(extent_choice)
    if done.status != "complete":
        slots.progress.info(f"Run {done.status}.", icon=":material/info:")
    draw_metrics(
        slots.metrics,
        llc=r.llc_mean,
        sem=r.llc_sem,
        theory=theory,
        theory_label=_theory_label(done.spec),
        finite=done.finite_target,
        acc=r.acceptance,
        live=False,
    )
    draw_figures(
        slots,
        spec=done.spec,
        extent=extent,
        traces=done.traces,
        positions=done.positions,
        theory=theory,
        finite=done.finite_target,
        burnin=done.params["burnin"],
        total_steps=done.params["burnin"] + done.params["draws"],
        llc=r.llc_mean,
        sem=r.llc_sem,
        loss_init=float(r.trace.loss_init[0]),
    )


def diagnostics_panel(done: ToyResult) -> None:
    r = done.result
    st.subheader("Diagnostics")
    n_div = len(r.diverged_chains)
    ui.metric_row(
        [
            ("R-hat", ui.fmt(r.rhat, 4), "Split, rank-normalised R-hat across chains: ≈ 1 means they agree."),
            ("ESS", "n/a" if r.ess != r.ess else f"{r.ess:,.0f}", "Bulk effective sample size of the draws."),
            (
                "acceptance",
                ui.fmt(r.acceptance, 3),
                describe_acceptance(),
            ),
            ("diverged", f"{n_div} / {r.num_chains}", "Chains whose loss blew up; they are left out of λ̂."),
        ]
    )
    left, right = st.columns([2, 3], gap="medium")
    with left:
        # an approximate T brings its own error bar (the quadrature's estimate)
        quad, _ = bg_theory.finite_nbeta(done.spec, done.params["nbeta"], done.params["gamma"])
        t_err = 0.0 if quad is None or quad.exact else quad.error
        z = z_score(r.llc_mean, r.llc_sem, done.finite_target, t_err)
        verdict, advice = gap_verdict(
            z if done.finite_target is not None else None, healthy=not r.warnings, acceptance=r.acceptance
        )
        if r.warnings:
            for w in r.warnings:
                st.warning(ui.plain(w), icon=":material/warning:")
        elif verdict == "different":  # one message: healthy chains, yet far from T (issue 13.7)
            st.warning(
                f"The chains are healthy, but λ̂ is {ui.fmt(abs(z or 0.0), 2)} standard errors from T. "
                + (advice or ""),
                icon=":material/warning:",
            )
        else:
            st.success(
                "No problems detected: chains agree (R-hat ≈ 1), enough effective draws, "
                "healthy acceptance, no divergences.",
                icon=":material/check_circle:",
            )
        if done.finite_target is not None and z is not None:
            which = "exact" if t_err == 0.0 else "approximate"
            word = "consistent with" if verdict == "consistent" else "significantly different from"
            st.markdown(
                f"λ̂ − T = {ui.fmt(r.llc_mean - done.finite_target)} ({ui.fmt(z, 2)} standard errors): "
                f"λ̂ is **{word}** the {which} finite-nβ target."
                + (f" {advice}" if advice and r.warnings else "")
            )
        if done.finite_note:
            prefix = "Exact target T unavailable: " if done.finite_target is None else ""
            st.caption(prefix + ui.plain(done.finite_note))
        st.caption(ui.run_caption(done.record_id, done.status, done.elapsed_s, r))
    with right:
        t1, t2 = st.tabs(["λ̂ per chain", "Acceptance"])
        with t1:
            ui.show_figure(
                plots.chain_llc_figure(
                    r.chains.assign(diverged=lambda d: d["diverged_at"] >= 0),
                    theory_llc=r.theory_llc,
                    finite_target=done.finite_target,
                ),
                key="toy.fig.chains",
            )
        with t2:
            ui.show_figure(plots.acceptance_figure(done.traces), key="toy.fig.acc")


def downloads(done: ToyResult) -> None:
    r = done.result
    settings = pd.DataFrame(
        [
            {
                "potential": done.spec,
                **r.settings.as_dict(),
                "llc_mean": r.llc_mean,
                "llc_sem": r.llc_sem,
                "rhat": r.rhat,
                "ess": r.ess,
                "acceptance": r.acceptance,
                "theory_llc": r.theory_llc,
                "finite_target": done.finite_target,
                "status": done.status,
            }
        ]
    )
    ui.download_buttons(
        {"Summary": settings, "Chains": r.chains, "Traces": done.traces, "Positions": done.positions},
        basename=f"lltools_toy_run{done.record_id}",
        key="toy.dl",
    )


# ----------------------------------------------------------------------------- page


def main() -> None:
    ui.setup_page("Toy potentials", "Estimate λ at w* = 0 of a 2-D potential with SGLD, live.")
    live = live_ui.LiveRun(NS)
    problems = ui.load_query_params(NS, QUERY)
    ui.init_state(DEFAULTS)
    request = live.take()
    running = request is not None
    partial = None if running else live.stopped_partial()

    ctrl, main_col = st.columns(ui.control_split(), gap="large")
    with ctrl:
        for p in problems:
            st.warning(ui.plain(p))
        spec, target, error = controls(running)
        health_light.auto_stop_controls(NS, running=running)
        live.buttons(running=running, on_run=_on_run, disabled=error is not None)
        ui.save_query_params(QUERY)
        st.caption("The page URL holds these settings: copy it to share them (a reload keeps them).")

    with main_col:
        slots = make_slots()
        if partial is not None:
            ui.run_page(lambda: finish_stopped(partial), what="summarise the stopped run")
        if running:
            with slots.note:
                st.caption(
                    ":material/hourglass_top: Sampling… press **Stop** to end early and keep the draws."
                )
                ui.teaching_note(
                    teaching_text(
                        request["spec"],
                        bg_theory.theory_record(request["spec"]).llc,
                        bg_theory.finite_nbeta_target(request["spec"], request["nbeta"], request["gamma"])[0],
                        request["nbeta"],
                        request["gamma"],
                        bg_theory.theory_record(request["spec"]).note,
                    )
                )
            try:
                execute(request, slots, live)
            except Exception as exc:
                live.clear_partial()
                ui.show_exception(exc, "run the sampler", container=slots.progress)
                return
            st.rerun()

        done: ToyResult | None = st.session_state.get(RESULT)
        current = {"spec": spec, **sampler_params(st.session_state)}
        if done is None:
            if target is not None:
                view = st.session_state.get(K_VIEW, "auto")
                grid = ui.potential_grid(spec, 1.0 if view == "auto" else float(view))
                ui.show_figure(
                    plots.potential_figure(grid, None, title=f"L(w) = {spec}"),
                    container=slots.contour,
                    key="toy.fig.preview",
                )
                # λ and T are computed in the background: the page is drawn (and usable) at once.
                ready = bg_theory.theory_now(spec, current["nbeta"], current["gamma"])
                with slots.note:
                    if ready is None:
                        bg_theory.refresh_when_ready(spec, current["nbeta"], current["gamma"])
                    else:
                        finite, finite_note = bg_theory.finite_nbeta_target(
                            spec, current["nbeta"], current["gamma"]
                        )
                        ui.teaching_note(
                            teaching_text(
                                spec,
                                ready.record.llc,
                                finite,
                                current["nbeta"],
                                current["gamma"],
                                ready.record.note,
                                finite_note,
                            )
                        )
                    st.info(
                        "Press **Run** to sample. The traces update live while the chains move.",
                        icon=":material/play_arrow:",
                    )
            return
        with slots.note:
            ui.teaching_note(
                teaching_text(
                    done.spec,
                    done.result.theory_llc,
                    done.finite_target,
                    done.params["nbeta"],
                    done.params["gamma"],
                    bg_theory.theory_record(done.spec).note if ui.try_potential(done.spec)[0] else None,
                    done.finite_note,
                )
            )
            if current != {"spec": done.spec, **done.params}:
                st.caption(":material/edit: The controls changed since this run: press **Run** to update.")
        draw_result(done, slots)
        diagnostics_panel(done)
        with st.expander("Download this run (CSV / Parquet)"):
            downloads(done)
        with st.expander("Run history: compare runs", expanded=len(history.RunHistory().records()) >= 2):
            history.render_history(key="toy.history")


if __name__ == "__main__":
    ui.run_page(main, what="show the toy-potentials page")
