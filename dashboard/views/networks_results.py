"""The Networks page's result area: slots, headline metrics, figures, diagnostics, downloads, model card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import common as ui
from dashboard.views.networks_models import card_of
from dashboard.views.networks_theory import Theory, fmt_count
from lltools import viz as plots
from lltools.estimation.health import describe_acceptance
from lltools.estimation.live import z_score
from lltools.targets.cards import first_run_gamma_note
from lltools.viz import training as plots_training


@dataclass
class NetResult:
    """A finished (or stopped) run, as drawn by the page."""

    model: str
    checkpoint: str  # a label
    checkpoint_key: str
    params: dict[str, Any]
    result: Any  # lltools.workflows.estimate.EstimateResult
    status: str
    elapsed_s: float
    theory: Theory | None = None
    record_id: int | None = None
    traces: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class Slots:
    progress: Any
    metrics: Any
    loss: Any
    running: Any
    compare: Any
    note: Any


def make_slots() -> Slots:
    progress = st.container()
    metrics = st.empty()
    left, right = st.columns(2, gap="medium")
    c_left, c_right = st.columns([5, 4], gap="medium")
    return Slots(
        progress=progress,
        metrics=metrics,
        loss=left.empty(),
        running=right.empty(),
        compare=c_left.empty(),
        note=c_right.container(),
    )


def draw_metrics(
    slot: Any,
    th: Theory,
    *,
    llc: float | None,
    sem: float | None,
    rhat: float | None = None,
    ess: float | None = None,
    acc: float | None = None,
    diverged: int | None = None,
    num_chains: int | None = None,
    live: bool = False,
    ran: bool = True,
) -> None:
    with slot.container():
        top = st.columns(5)
        top[0].metric("d (parameters)", f"{th.dim:,}", help="Number of parameters of the network.")
        top[1].metric("d/2", fmt_count(th.dim / 2), help="λ of a regular model with d parameters.")
        top[2].metric(
            "rank(J)/2",
            ui.fmt(th.rank_llc, 6) if th.rank_llc is not None else "n/a",
            help="Half the rank of the Jacobian of the outputs at w*: λ for a minimally singular model. "
            + ui.plain(th.rank_note),
        )
        top[3].metric(th.closed_label, ui.fmt(th.closed_form, 5), help=ui.plain(th.closed_note))
        top[4].metric("n (training samples)", f"{th.n:,}")
        if not ran:
            return
        bottom = st.columns(5)
        bottom[0].metric(
            "λ̂ so far" if live else "λ̂ (estimate)",
            "…" if llc is None or not math.isfinite(llc) else ui.fmt(llc, 4),
            delta=None if sem is None else f"± {ui.fmt(sem, 2)} (SEM)",
            delta_color="off",
            delta_arrow="off",
            help="λ̂ = nβ·(mean draw loss − L(w*)), mean over chains ± its standard error.",
        )
        bottom[1].metric(
            "R-hat", ui.fmt(rhat, 4), help="Split, rank-normalised R-hat of the loss draws: ≈ 1 is good."
        )
        bottom[2].metric(
            "ESS",
            "n/a" if ess is None or not math.isfinite(ess) else f"{ess:,.0f}",
            help="Bulk effective sample size of the loss draws.",
        )
        bottom[3].metric("acceptance", ui.fmt(acc, 3), help=describe_acceptance())
        bottom[4].metric("diverged", "…" if diverged is None else f"{diverged} / {num_chains}")


def gamma_note(slot: Any, path: str, gamma: float | None) -> None:
    """Say, beside the result, when its γ is not the γ of the model's reference setting (that of
    its trajectory): λ̂ depends on γ, so the two numbers are different quantities."""
    note = first_run_gamma_note(card_of(path), gamma)
    if note:
        slot.info(note, icon=":material/tune:")


def draw_traces(
    slots: Slots,
    traces: pd.DataFrame,
    *,
    burnin: int,
    total: int,
    loss_init: float | None,
    theory: float | None,
    llc: float | None = None,
    sem: float | None = None,
    key: str,
    theory_label: str = "exact λ",
    theory_exact: bool = True,
) -> None:
    ui.show_figure(
        plots.loss_trace_figure(
            traces, loss_init=loss_init, burnin=burnin, total_steps=total,
            title="Loss across chains (minibatch)",
        ),
        container=slots.loss,
        key=f"networks.fig.loss.{key}",
    )
    ui.show_figure(
        plots.llc_running_figure(traces, theory_llc=theory, llc_mean=llc, llc_sem=sem, total_steps=total,
                                 theory_label=theory_label, theory_exact=theory_exact),
        container=slots.running,
        key=f"networks.fig.running.{key}",
    )


def draw_compare(slots: Slots, th: Theory, llc: float | None, sem: float | None, key: str) -> None:
    rows = plots_training.complexity_rows(
        th.dim,
        llc=llc,
        llc_sem=sem,
        theory=th.closed_form,
        theory_label=th.closed_label,
        rank_llc=th.rank_llc,
    )
    ui.show_figure(
        plots_training.complexity_figure(rows),
        container=slots.compare,
        key=f"networks.fig.compare.{key}",
        height=330,
    )


def draw_result(done: NetResult, slots: Slots, th: Theory) -> None:
    r = done.result
    if done.status != "complete":
        slots.progress.info(f"Run {done.status}.", icon=":material/info:")
    gamma_note(slots.progress, done.model, done.params.get("gamma"))
    draw_metrics(
        slots.metrics,
        th,
        llc=r.llc_mean,
        sem=r.llc_sem,
        rhat=r.rhat,
        ess=r.ess,
        acc=r.acceptance,
        diverged=len(r.diverged_chains),
        num_chains=r.num_chains,
    )
    draw_traces(
        slots,
        done.traces,
        burnin=done.params["burnin"],
        total=done.params["burnin"] + done.params["draws"],
        loss_init=float(r.trace.loss_init[0]),
        theory=th.closed_form,
        llc=r.llc_mean,
        sem=r.llc_sem,
        key="final",
        theory_label=th.closed_label,
        theory_exact=th.closed_exact,
    )
    draw_compare(slots, th, r.llc_mean, r.llc_sem, key="final")


def diagnostics_panel(done: NetResult, th: Theory) -> None:
    r = done.result
    st.subheader("Diagnostics")
    left, right = st.columns([2, 3], gap="medium")
    with left:
        # A negative λ̂ is explained once, below (the core's own line says the same, shorter).
        shown = [w for w in r.warnings if not (r.llc_mean < 0 and "< 0" in w and w.startswith("λ̂"))]
        if r.warnings:
            for w in shown:
                st.warning(ui.plain(w), icon=":material/warning:")
        else:
            st.success(
                "No problems detected: chains agree (R-hat ≈ 1), enough effective draws, "
                "healthy acceptance, no divergences.",
                icon=":material/check_circle:",
            )
        if r.llc_mean < 0:
            st.warning(
                f"λ̂ = {ui.fmt(r.llc_mean, 4)} < 0: the sampler found lower loss than L(w*), so this "
                "checkpoint is not a local minimum (early in training, or γ too small to hold the chains "
                "near it). The LLC is defined at a minimum: λ̂ is not meaningful here. Pick a later "
                "checkpoint, or raise γ.",
                icon=":material/warning:",
            )
        z = z_score(r.llc_mean, r.llc_sem, th.closed_form) if th.closed_exact else None
        if th.closed_form is not None and not th.closed_exact:
            st.markdown(
                f"λ̂ = {ui.fmt(r.llc_mean, 4)} beside the {th.closed_label} = {ui.fmt(th.closed_form, 5)}: "
                "that formula is a reference outside its regime here, not the answer, so λ̂ is not "
                "scored against it (see the note below)."
            )
        elif th.closed_form is not None and z is not None:
            st.markdown(
                f"λ̂ − {th.closed_label} = {ui.fmt(r.llc_mean - th.closed_form)} "
                f"({ui.fmt(z, 2)} standard errors). At finite nβ and γ > 0 a correct sampler usually "
                "sits somewhat *below* λ (γ pulls the chains in; a multiplicity m > 1 adds a "
                "−(m−1)/log nβ bias, primer §2); "
                "a large gap with healthy diagnostics usually means nβ, γ or the checkpoint differ from the "
                "closed form's assumptions."
            )
        st.caption(ui.plain(th.closed_note))
        st.caption(ui.run_caption(done.record_id, done.status, done.elapsed_s, r,
                                  f"batch {r.settings.batch_size or 'full'}"))
    with right:
        t1, t2 = st.tabs(["λ̂ per chain", "Acceptance"])
        with t1:
            ui.show_figure(
                plots.chain_llc_figure(
                    r.chains.assign(diverged=lambda d: d["diverged_at"] >= 0), theory_llc=th.closed_form,
                    theory_label=th.closed_label,
                ),
                key="networks.fig.chains",
            )
        with t2:
            ui.show_figure(plots.acceptance_figure(done.traces), key="networks.fig.acc")


def downloads(done: NetResult) -> None:
    r = done.result
    summary = pd.DataFrame(
        [
            {
                "model": card_of(done.model)["name"],
                "checkpoint": done.checkpoint,
                **r.settings.as_dict(),
                "llc_mean": r.llc_mean,
                "llc_sem": r.llc_sem,
                "rhat": r.rhat,
                "ess": r.ess,
                "acceptance": r.acceptance,
                "closed_form_llc": done.theory.closed_form if done.theory else None,
                "rank_llc": done.theory.rank_llc if done.theory else None,
                "num_parameters": done.theory.dim if done.theory else None,
                "status": done.status,
            }
        ]
    )
    ui.download_buttons(
        {"Summary": summary, "Chains": r.chains, "Traces": done.traces},
        basename=f"lltools_network_run{done.record_id}",
        key="networks.dl",
    )


def model_card(path: str) -> None:
    card = card_of(path)
    with st.expander(f"Model card: {ui.plain(card['name'])}", icon=":material/description:"):
        md = Path(path) / "MODEL_CARD.md"
        if md.exists():
            st.markdown(md.read_text(encoding="utf-8"))
        else:
            if card.get("description"):
                st.markdown(ui.plain(card["description"]))
            src = (card.get("theory") or {}).get("source")
            if src:
                st.caption(f"Theory: {ui.plain(src)}")
        st.json({k: v for k, v in card.items() if k != "path"}, expanded=False)
