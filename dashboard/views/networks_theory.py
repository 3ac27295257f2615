"""The Networks page's theory panel: the closed form, rank(J)/2 (when cheap or asked for), the teaching text.

The closed form itself is chosen by :func:`lltools.theory.record.card_theory`; this module
gathers it with the page's sizes and draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard import common as ui
from dashboard.views.networks_models import card_of
from lltools.theory.rank_plan import plan_for, subset_rank_llc
from lltools.theory.record import card_theory


@dataclass(frozen=True)
class Theory:
    """What is known about λ for this model and checkpoint (all optional)."""

    dim: int
    n: int
    closed_form: float | None
    closed_label: str
    closed_note: str
    rank_llc: float | None
    rank_note: str
    #: Set when rank(J)/2 can be computed on request (the key for the button).
    rank_offer: str | None = None
    rank_seconds: float = 0.0
    #: Whether the closed form is exact here (never z-score λ̂ against one that is not).
    closed_exact: bool = False


@st.cache_data(max_entries=64, show_spinner="Computing rank(J) at w*…")
def rank_llc(path: str, checkpoint_key: str, _target: Any = None) -> tuple[float | None, str]:
    """:func:`lltools.theory.rank_plan.subset_rank_llc`, cached per model and checkpoint."""
    if _target is None:
        return None, "not computed"
    return subset_rank_llc(_target)


def closed_form(card: dict[str, Any], checkpoint: str | None) -> tuple[float | None, str, str]:
    """``(λ, label, note)`` of :func:`lltools.theory.record.card_theory` for this model."""
    record = card_theory(card, checkpoint)
    return record.llc, record.label, record.note


RANK_REQUESTS = "networks.__rank_requested"


def _request_rank(key: str) -> None:
    st.session_state.setdefault(RANK_REQUESTS, set()).add(key)


def theory_for(path: str, checkpoint_key: str, checkpoint: str | None, target: Any) -> Theory:
    """Closed form, rank(J)/2 (when cheap or requested) and sizes for this model and centre."""
    card = card_of(path)
    record = card_theory(card, checkpoint)
    value, label, note = record.llc, record.label, record.note
    plan = plan_for(target)
    rank_key = f"{path}|{checkpoint_key}"
    offer = None
    if plan.tier == "auto" or (
        plan.tier == "on request" and rank_key in st.session_state.get(RANK_REQUESTS, set())
    ):
        rank, rank_note = rank_llc(path, checkpoint_key, _target=target)
    elif plan.tier == "on request":
        rank, rank_note, offer = None, f"on request ({plan.reason})", rank_key
    else:
        rank, rank_note = None, plan.reason
    return Theory(
        dim=int(target.dim),
        n=int(target.n),
        closed_form=value,
        closed_label=label,
        closed_note=note,
        rank_llc=rank,
        rank_note=rank_note,
        rank_offer=offer,
        rank_seconds=plan.seconds,
        closed_exact=record.exact,
    )


def rank_panel(th: Theory, running: bool) -> None:
    """Say why rank(J)/2 is missing and, when it is affordable, offer to compute it."""
    if th.rank_llc is not None:
        return
    if th.rank_offer is not None:
        st.button(
            f"Compute rank(J)/2 (about {max(th.rank_seconds, 5):,.0f} s)",
            key="networks.rank",
            on_click=_request_rank,
            args=(th.rank_offer,),
            disabled=running,
            icon=":material/calculate:",
            help=ui.plain(th.rank_note),
        )
    else:
        st.caption(f"rank(J)/2 {ui.plain(th.rank_note)}.")


def _share(value: float | None, d2: float) -> str | None:
    if value is None or not math.isfinite(value) or d2 <= 0:
        return None
    return f"{value / d2:.0%}"


def teaching_text(card: dict[str, Any], th: Theory, llc: float | None) -> str:
    d2 = th.dim / 2
    kind = (card.get("architecture") or {}).get("kind")
    text = (
        "**Why λ ≪ d/2.** Near a *regular* minimum every one of the d directions costs loss "
        "quadratically, the set of nearly-optimal weights shrinks like ε^(d/2), and λ = d/2. "
        "Networks are *singular*: symmetries (rescaling one layer up and the next down, "
        "W₂W₁ = (W₂A)(A⁻¹W₁)), dead or redundant units and low-rank solutions make whole "
        "directions flat or only quartic, so the near-optimal set is much bigger and **λ < d/2**. "
        "λ counts the *effective* number of parameters: the free energy is "
        "F ≈ n·L + λ·log n and the Bayes generalisation error ≈ λ/n."
    )
    d2_txt = fmt_count(d2)
    if kind == "deep_linear" and th.closed_form is not None:
        text += (
            f"\n\nHere d/2 = {d2_txt} and Aoyagi's λ = {ui.fmt(th.closed_form, 5)}: "
            f"**{_share(th.closed_form, d2)} of d/2**. For deep linear networks the degeneracy is "
            "exact: only the product of the layers matters, and a low-rank teacher leaves most "
            "directions unconstrained."
        )
    elif kind == "quadratic" and th.closed_form is not None:
        text += (
            f"\n\nThe paper's λ = {ui.fmt(th.closed_form, 5)} "
            f"({_share(th.closed_form, d2)} of d/2 = {d2_txt}) "
            "is the value at a *true parameter* with generic inputs: only the symmetric matrices "
            "Σₖ vₖ wₖwₖᵀ matter. A checkpoint trained with weight decay to non-zero loss on one-hot "
            "inputs is neither, so it is a reference, not the answer (see the model card)."
        )
    if llc is not None and math.isfinite(llc) and llc > 0:
        text += f"\n\nThe estimate λ̂ = {ui.fmt(llc, 4)} is **{_share(llc, d2)} of d/2**."
    if th.rank_llc is not None:
        text += (
            f"\n\nrank(J)/2 = {ui.fmt(th.rank_llc, 5)} counts the directions that change the outputs "
            "to first order; λ ≥ rank(J)/2, with equality for minimally singular models."
        )
    return text


def fmt_count(value: float) -> str:
    """Thousands separators for whole numbers (d, d/2), else compact formatting."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"
