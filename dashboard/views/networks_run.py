"""The Networks page's runs: serve a Run request from the cache or live, store it, summarise a stopped run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import health_light, history
from dashboard import running as live_ui
from dashboard.views.networks_models import NS, PAGE, RESULT, card_of, checkpoint_display, current_target
from dashboard.views.networks_results import NetResult, Slots, draw_metrics, draw_traces
from dashboard.views.networks_theory import Theory
from lltools.estimation import frames
from lltools.estimation.live import live_estimate
from lltools.targets.specs import TargetSpec
from lltools.workflows.estimate import estimate_result, estimate_stream


def execute(request: dict[str, Any], slots: Slots, live: live_ui.LiveRun, th: Theory) -> None:
    """Serve a Run request: from the cache, or stream live into ``slots``."""
    path = str(request["model"])
    params = {
        k: request[k]
        for k in ("nbeta", "gamma", "epsilon", "chains", "draws", "burnin", "batch_size", "seed")
    }
    label = checkpoint_display(path, request)
    key = live_ui.settings_key("networks", path, request["checkpoint_key"], **params)
    cache = live_ui.result_cache()
    cached = cache.get(key)
    ckpt = str(request["checkpoint_key"])
    saved = {  # how the run is recorded in the run store (settings re-run it: resume)
        "page": PAGE,
        "label": f"{card_of(path)['name']} @ {label}",
        "settings": params,
        "target": (
            TargetSpec("upload", path=path, sha256=ckpt.removeprefix("upload:"))
            if ckpt.startswith("upload:")
            else TargetSpec.model(path, Path(path) / rel if (rel := ckpt.removeprefix("ckpt:")) else None)
        ).to_dict(),
    }
    if cached is not None:
        cache.set_stored_id(key, live_ui.record_cached(cached.result, existing=cache.stored_id(key), **saved))
        store(
            NetResult(
                path,
                label,
                request["checkpoint_key"],
                params,
                cached.result,
                "complete (cached)",
                0.0,
                th,
                traces=cached.traces,
            )
        )
        return
    target = current_target(request)
    total = params["burnin"] + params["draws"]
    state = {"n": 0}
    light = health_light.HealthLight(slots.progress, health_light.auto_stop_target(NS))

    def on_chunk(item: Any) -> None:
        trace = item.trace
        traces = frames.trace_frame(trace)
        now = live_estimate(trace)
        state["n"] += 1
        light.draw(item)
        health = light.health(item)  # the light's numbers: the tiles never contradict it
        draw_metrics(
            slots.metrics,
            th,
            llc=now.llc,
            sem=health.sem if math.isfinite(health.sem) else None,
            rhat=health.rhat,
            ess=health.ess,
            acc=now.acceptance,
            diverged=now.diverged,
            num_chains=now.num_chains,
            live=True,
        )
        draw_traces(
            slots,
            traces,
            burnin=params["burnin"],
            total=total,
            loss_init=float(trace.loss_init[0]),
            theory=th.closed_form,
            key=f"live{state['n']}",
            theory_label=th.closed_label,
            theory_exact=th.closed_exact,
        )

    every = live_ui.report_every(total)
    # positions are kept (thinned by the driver's cap) for the Landscape section's chains overlay
    stream = live_ui.record_live(
        estimate_stream(target, report_every=every, report_seconds=live_ui.LIVE_REPORT_S,
                        record_positions=True, **params), **saved
    )
    last, elapsed = live_ui.stream_live(
        stream, live=live, total_steps=total, on_chunk=on_chunk, progress_container=slots.progress,
        stop_when=light.stop_when,
        starting=live_ui.starting_text(target, params["chains"], total),
    )
    result, status = light.outcome(last)
    done = NetResult(path, label, request["checkpoint_key"], params, result, status, elapsed, th)
    done.traces = result.traces
    if status == "complete":  # a run stopped early is not the result of these settings
        cache.put(key, done, stored_id=getattr(stream, "run_id", None))
    store(done)


def store(done: NetResult) -> None:
    record = history.record_estimate(
        PAGE,
        f"{card_of(done.model)['name']} @ {done.checkpoint}",
        done.result,
        status=done.status,
        elapsed_s=done.elapsed_s,
        traces=done.traces,
    )
    done.record_id = record.id
    st.session_state[RESULT] = done


def finish_stopped(partial: Any, request_like: dict[str, Any], th: Theory) -> None:
    """Summarise the draws of an interrupted run (Stop pressed, or the page was left)."""
    trace, settings, placed = partial.trace, partial.settings, partial.target
    done_steps = int(trace.meta.get("steps_done", 0))
    if trace.draw_loss.shape[1] < 2:
        st.info(f"Stopped at step {done_steps:,}, still in burn-in: no draws to estimate from yet.")
        return
    result = estimate_result(trace, placed, settings)
    params = {
        k: getattr(settings, k)
        for k in ("nbeta", "gamma", "epsilon", "chains", "draws", "burnin", "batch_size", "seed")
    }
    path = str(request_like["model"])
    done = NetResult(
        path,
        checkpoint_display(path, request_like),
        str(request_like["checkpoint_key"]),
        params,
        result,
        f"stopped at step {done_steps:,} of {trace.num_steps_total:,}",
        float("nan"),
        th,
    )
    done.traces = result.traces
    store(done)
