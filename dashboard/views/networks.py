"""Networks: estimate λ̂ of a trained sample model at one of its checkpoints, live.

widgets -> params -> (cached | live-streamed) run -> figures from :mod:`lltools.viz`
and :mod:`lltools.viz.training`.  Beside λ̂ the page shows what is known in closed form
(Aoyagi's λ for deep linear networks, the paper's value for quadratic networks), the
parameter count d, the regular value d/2 and rank(J)/2 when it is cheap to compute.
Uploaded checkpoints go through :func:`lltools.targets.checkpoints.load_checkpoint` (safetensors,
validated against the architecture's exact keys and shapes) and never crash the page.

This script lays the page out; its parts are
:mod:`~dashboard.views.networks_models` (models, checkpoints, targets, state keys),
:mod:`~dashboard.views.networks_controls` (the inputs and Run),
:mod:`~dashboard.views.networks_theory` (closed form, rank(J)/2, teaching text),
:mod:`~dashboard.views.networks_run` (cached or live runs, stopped runs) and
:mod:`~dashboard.views.networks_results` (metrics, figures, diagnostics, downloads).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import common as ui
from dashboard import health_light, history
from dashboard import running as live_ui
from dashboard.views import landscape as landscape_view
from dashboard.views.networks_controls import _on_run, pick_model, sampler_controls
from dashboard.views.networks_models import (
    K_CKPT,
    K_EPS,
    K_GAMMA,
    K_MODEL,
    K_NBETA,
    K_SOURCE,
    NS,
    PAGE,
    RESULT,
    SAMPLER_KEYS,
    SHIPPED,
    card_of,
    default_model,
    models_root,
    query_spec,
    sample_models,
    sampler_defaults,
    sampler_params,
)
from dashboard.views.networks_results import (
    NetResult,
    diagnostics_panel,
    downloads,
    draw_compare,
    draw_metrics,
    draw_result,
    make_slots,
    model_card,
)
from dashboard.views.networks_run import execute, finish_stopped
from dashboard.views.networks_theory import rank_panel, teaching_text, theory_for
from dashboard.views.refined_panel import refined_panel

__all__ = [
    "K_CKPT", "K_EPS", "K_GAMMA", "K_MODEL", "K_NBETA", "K_SOURCE", "SHIPPED", "main", "sampler_params",
]


def main() -> None:
    ui.setup_page(
        "Networks",
        "Estimate λ̂ for a trained sample model at one of its checkpoints, with the theory values beside it.",
    )
    cards = sample_models(models_root())
    if not cards:
        st.warning("No sample models found under sample_models/.", icon=":material/warning:")
        return
    live = live_ui.LiveRun(NS)
    query = query_spec(cards, health_light.auto_stop_query(NS))
    problems = ui.load_query_params(NS, query)
    first = default_model(cards)
    chosen = st.session_state.get(K_MODEL) or st.session_state.get("_persist", {}).get(K_MODEL)
    if chosen in {str(c["path"]) for c in cards}:
        first = str(chosen)  # the defaults below must be that model's card settings
    ui.init_state(
        {
            K_MODEL: first,
            K_SOURCE: SHIPPED,
            K_CKPT: str(card_of(first)["final_checkpoint"]),
            **sampler_defaults(card_of(first)),
        }
    )
    if st.session_state[K_MODEL] not in {str(c["path"]) for c in cards}:
        st.session_state[K_MODEL] = first
    request = live.take()
    running = request is not None
    partial = None if running else live.stopped_partial()

    ctrl, main_col = st.columns(ui.control_split(), gap="large")
    with ctrl:
        for p in problems:
            st.warning(ui.plain(p), icon=":material/link_off:")
        sel = pick_model(cards, running)
        st.session_state["networks.__ckpt_key"] = sel.checkpoint_key
        st.session_state["networks.__ckpt_name"] = sel.checkpoint
        n = int(sel.target.n) if sel.target is not None else card_of(sel.path or first).get("n")
        budget = sampler_controls(running, n)
        health_light.auto_stop_controls(NS, running=running, default_target=0.1)
        live.buttons(running=running, on_run=_on_run, disabled=sel.target is None or budget is not None)
        ui.remember([K_MODEL, K_SOURCE, K_CKPT, *SAMPLER_KEYS])
        ui.save_query_params(query)  # the URL holds these settings: a reload or a shared link keeps them

    path = str(sel.path)
    card = card_of(path)
    with main_col:
        slots = make_slots()
        if sel.target is None:
            slots.progress.info(
                "Choose a shipped checkpoint or upload valid weights to see this model's numbers.",
                icon=":material/upload_file:",
            )
            model_card(path)
            return
        th = theory_for(path, sel.checkpoint_key, sel.checkpoint, sel.target)
        if partial is not None:
            last = st.session_state.get("networks.__last_request") or {}
            ui.run_page(lambda: finish_stopped(partial, last, th), what="summarise the stopped run")
        if running:
            st.session_state["networks.__last_request"] = request
            with slots.note:
                st.caption(
                    ":material/hourglass_top: Sampling… press **Stop** to end early and keep the draws."
                )
                ui.teaching_note(teaching_text(card, th, None), title="Why is λ so much smaller than d/2?")
            draw_compare(slots, th, None, None, key="live")
            try:
                execute(request, slots, live, th)
            except Exception as exc:
                live.clear_partial()
                ui.show_exception(exc, "run the sampler", container=slots.progress)
                return
            st.rerun()

        done: NetResult | None = st.session_state.get(RESULT)
        if done is not None and (done.model != path or done.checkpoint_key != sel.checkpoint_key):
            done = None  # the shown numbers always belong to the selected model and checkpoint
        for w in sel.target.warnings:
            slots.progress.warning(ui.plain(w), icon=":material/warning:")
        if done is None:
            draw_metrics(slots.metrics, th, llc=None, sem=None, ran=False)
            draw_compare(slots, th, None, None, key="preview")
            with slots.note:
                rank_panel(th, running=False)
                ui.teaching_note(teaching_text(card, th, None), title="Why is λ so much smaller than d/2?")
                st.info(
                    "Press **Run** to sample around this checkpoint. Loss traces and the running λ̂ "
                    "update live.",
                    icon=":material/play_arrow:",
                )
            refined_panel(path, sel.checkpoint_key, sel.target, sampler_params(st.session_state),
                          running=running)
            landscape_view.network_section(sel.target, path, sel.checkpoint_key, counts=spectrum_counts(th))
            model_card(path)
            return
        with slots.note:
            rank_panel(th, running=False)
            ui.teaching_note(
                teaching_text(card, th, done.result.llc_mean), title="Why is λ so much smaller than d/2?"
            )
            if sampler_params(st.session_state) != done.params:
                st.caption(":material/edit: The controls changed since this run: press **Run** to update.")
        draw_result(done, slots, th)
        diagnostics_panel(done, th)
        refined_panel(path, sel.checkpoint_key, sel.target, sampler_params(st.session_state), running=running)
        landscape_view.network_section(sel.target, path, sel.checkpoint_key, result=done.result,
                                       run_key=str(done.record_id), counts=spectrum_counts(th, done.result))
        model_card(path)
        with st.expander("Download this run (CSV / Parquet)"):
            downloads(done)
        with st.expander("Run history: compare runs", expanded=len(history.RunHistory().records(PAGE)) >= 2):
            history.render_history(PAGE, key="networks.history")


def spectrum_counts(th: Any, result: Any = None) -> dict[str, float | None]:
    """What the Hessian spectrum marks beside d/2 and rank(H)/2: rank(J)/2, λ̂, the closed form."""
    return {"rank(J)/2": th.rank_llc, "λ̂": None if result is None else result.llc_mean,
            "λ": th.closed_form}


if __name__ == "__main__":
    ui.run_page(main, what="show the Networks page")

