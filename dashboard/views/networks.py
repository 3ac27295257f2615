"""Networks: estimate λ̂ of a trained sample model at one of its checkpoints, live.

widgets -> params -> (cached | live-streamed) run -> figures from :mod:`lltools.viz`
and :mod:`lltools.viz.training`.  Beside λ̂ the page shows what is known in closed form
(Aoyagi's λ for deep linear networks, the paper's value for quadratic networks), the
parameter count d, the regular value d/2 and rank(J)/2 when it is cheap to compute.
Uploaded checkpoints go through :func:`lltools.targets.checkpoints.load_checkpoint` (safetensors,
validated against the architecture's exact keys and shapes) and never crash the page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import common as ui
from dashboard import history
from dashboard import running as live_ui
from lltools import viz as plots
from lltools.estimation import frames
from lltools.estimation.health import describe_acceptance
from lltools.targets.checkpoints import CheckpointError
from lltools.targets.models import list_checkpoints, list_sample_models, load_sample_model, read_card
from lltools.targets.specs import TargetSpec
from lltools.theory.closed_forms import deep_linear_llc
from lltools.theory.networks import quadratic_network_llc
from lltools.theory.rank_plan import plan_for, subset_rank_llc
from lltools.viz import training as plots_training
from lltools.workflows.estimate import estimate_result, estimate_stream

ROOT = Path(__file__).resolve().parents[2]

NS = "networks"
PAGE = "Networks"
#: Where the sample models live; ``LLTOOLS_SAMPLE_MODELS`` points the page at another folder.
SAMPLE_MODELS_ENV = "LLTOOLS_SAMPLE_MODELS"


def models_root() -> str:
    return os.environ.get(SAMPLE_MODELS_ENV) or str(ROOT / "sample_models")


K_MODEL, K_SOURCE, K_CKPT, K_UPLOAD = "networks.model", "networks.source", "networks.ckpt", "networks.upload"
K_NBETA, K_GAMMA, K_EPS = "networks.nbeta", "networks.gamma", "networks.epsilon"
K_CHAINS, K_DRAWS, K_BURNIN = "networks.chains", "networks.draws", "networks.burnin"
K_BATCH, K_SEED = "networks.batch", "networks.seed"
RESULT = "networks.__result"
SHIPPED, UPLOAD = "shipped", "upload"
SAMPLER_KEYS = [K_NBETA, K_GAMMA, K_EPS, K_CHAINS, K_DRAWS, K_BURNIN, K_BATCH, K_SEED]
#: The sampler inputs' labels and help (nβ's help names the model's n, so it is set per draw).
SAMPLER_INPUTS = ui.SamplerInputs(
    nbeta_label="nβ (inverse temp.)",
    gamma_label="γ (localisation)",
    gamma_help="Pull back to w*: (γ/2)‖w − w*‖². Too large shrinks λ̂; too small lets chains escape.",
    epsilon_label="ε (step size)",
    epsilon_help="SGLD step size: too large diverges or biases λ̂ up; too small freezes the chains.",
    batch_help="SGLD minibatch size m; 0 = full batch (exact gradients, slower for large n).",
)
#: Models shown first when nothing is chosen yet (small, exact λ known, fast on a CPU).
PREFERRED = ("dln_8_6_6_4_r2", "rrr_6_4_5_r2")
MAX_UPLOAD_BYTES = 256 * 1024**2

# ----------------------------------------------------------------------------- models


@st.cache_data(ttl=120, show_spinner=False)
def sample_models(root: str | None = None) -> list[dict[str, Any]]:
    """Every sample model's card (``model.json`` plus ``path``), sorted; cached briefly."""
    return list_sample_models(root or models_root())


def model_label(card: dict[str, Any]) -> str:
    d = card.get("num_parameters")
    return f"{card['name']}" + (f"  ·  d = {int(d):,}" if d else "")


def default_model(cards: list[dict[str, Any]]) -> str | None:
    for pref in PREFERRED:
        for c in cards:
            if str(c["path"]).endswith(pref):
                return str(c["path"])
    return str(cards[0]["path"]) if cards else None


def card_of(path: str) -> dict[str, Any]:
    for c in sample_models(models_root()):
        if str(c["path"]) == path:
            return c

    return {**read_card(path), "path": path}


def sampler_defaults(card: dict[str, Any]) -> dict[str, Any]:
    """The sampler controls' values for a model: its card's ``default_sampler``, nβ = n/log n."""
    return {**ui.card_sampler_values(NS, card, dict(card.get("default_sampler") or {})), K_SEED: 0}


def checkpoint_options(path: str) -> list[str]:
    """Checkpoint files (relative to the model folder): the card's final one first."""
    card = card_of(path)
    folder = Path(path)
    final = str(card["final_checkpoint"])
    out = [final]
    for p in list_checkpoints(folder):
        rel = str(p.relative_to(folder)) if p.is_relative_to(folder) else str(p)
        if rel not in out:
            out.append(rel)
    return out


def checkpoint_label(path: str, rel: str) -> str:
    card = card_of(path)
    name = Path(rel).stem
    final = rel == str(card["final_checkpoint"])
    if "teacher" in name:
        return "teacher w* (true parameter)"
    digits = "".join(ch for ch in name if ch.isdigit())
    label = f"step {int(digits):,}" if digits else name
    return label + ("  (final)" if final else "")


@st.cache_resource(max_entries=24, show_spinner="Loading the model and its data…")
def shipped_target(path: str, checkpoint: str) -> Any:
    """The sample model centred at a shipped checkpoint (cached per server)."""
    return load_sample_model(path, checkpoint=checkpoint)


@st.cache_resource(max_entries=8, show_spinner="Checking the uploaded checkpoint…")
def uploaded_target(path: str, digest: str, _data: bytes | None = None, _name: str = "upload") -> Any:
    """The sample model centred at uploaded weights (keyed by the file's SHA-256).

    The bytes are written to a temporary ``.safetensors`` file and loaded with the
    architecture's exact keys and shapes by :func:`lltools.targets.models.load_sample_model`
    (which uses :func:`lltools.targets.checkpoints.load_checkpoint`: nothing is unpickled).
    Raises :class:`lltools.targets.checkpoints.CheckpointError` for a bad file.
    """
    if _data is None:
        raise CheckpointError("the uploaded file is no longer available: upload it again")
    if len(_data) > MAX_UPLOAD_BYTES:
        raise CheckpointError(
            f"{_name} is {len(_data):,} bytes; the limit is {MAX_UPLOAD_BYTES:,} bytes"
        )
    with tempfile.TemporaryDirectory(prefix="lltools_upload_") as tmp:
        file = Path(tmp) / "uploaded.safetensors"
        file.write_bytes(_data)
        try:
            target = load_sample_model(path, checkpoint=file)
        except CheckpointError as exc:  # name the user's file, not the temporary copy
            raise CheckpointError(str(exc).replace(file.name, _name).replace(str(file), _name)) from None
    target.checkpoint_path = Path(_name)
    return target


# ----------------------------------------------------------------------------- theory


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


@st.cache_data(max_entries=64, show_spinner="Computing rank(J) at w*…")
def rank_llc(path: str, checkpoint_key: str, _target: Any = None) -> tuple[float | None, str]:
    """:func:`lltools.theory.rank_plan.subset_rank_llc`, cached per model and checkpoint."""
    if _target is None:
        return None, "not computed"
    return subset_rank_llc(_target)


def closed_form(card: dict[str, Any], checkpoint: str | None) -> tuple[float | None, str, str]:
    """``(λ, label, note)`` from the primer §4 closed forms that apply to this model."""
    arch = card.get("architecture") or {}
    kind = arch.get("kind")
    card_theory = card.get("theory") or {}
    source = str(card_theory.get("source") or "")
    teacher = checkpoint is not None and "teacher" in Path(checkpoint).stem
    if kind == "deep_linear":
        value = card_theory.get("llc")
        data = card.get("data") or {}
        if value is None and "rank" in data:
            try:
                value, _ = deep_linear_llc(arch["widths"], int(data["rank"]), bool(arch.get("bias")))
            except (ValueError, KeyError):
                value = None
        where = (
            "This is the LLC at the teacher w* you selected (every layer of rank r)."
            if teacher
            else "It is the LLC at the teacher w* (every layer of rank r). A trained student is near a true "
            "parameter only once its loss is ≈ 0; early checkpoints are not minima, and the LLC can be "
            "larger at other true parameters."
            if checkpoint is not None
            else "It is the LLC at a teacher whose every layer has rank r."
        )
        widths = "-".join(str(w) for w in arch.get("widths", []))
        return (
            None if value is None else float(value),
            "exact λ (Aoyagi)",
            f"Aoyagi (2024) closed form for the deep linear network {widths} with true rank "
            f"r = {data.get('rank', '?')}. {where}",
        )
    if kind == "quadratic":
        try:
            q = quadratic_network_llc(int(arch["d"]), int(arch["p"]), int(arch["width"]))
        except (KeyError, ValueError):
            return None, "Cullen et al. formula", source
        validity = {True: "it agrees with rank(J)/2", False: "it does NOT agree with rank(J)/2",
                    None: "not checked against rank(J)/2"}[q.valid]
        note = f"Cullen et al. (2026) formula, {q.regime} regime ({validity} at a generic teacher): "
        note += f"{q.note}. " + (source if source else "")
        return float(q.formula), "Cullen et al. formula", note
    return (
        None,
        "closed-form λ",
        "No closed form is known for this architecture: compare λ̂ with d/2 and rank(J)/2.",
    )


RANK_REQUESTS = "networks.__rank_requested"


def _request_rank(key: str) -> None:
    st.session_state.setdefault(RANK_REQUESTS, set()).add(key)


def theory_for(path: str, checkpoint_key: str, checkpoint: str | None, target: Any) -> Theory:
    """Closed form, rank(J)/2 (when cheap or requested) and sizes for this model and centre."""
    card = card_of(path)
    value, label, note = closed_form(card, checkpoint)
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
    )


# ----------------------------------------------------------------------------- params


def sampler_params(state: Any) -> dict[str, Any]:
    """The keyword arguments of ``estimate_stream`` the controls describe."""
    batch = int(state[K_BATCH])
    return {
        **ui.sampler_values(state, NS),
        "batch_size": batch if batch > 0 else None,
        "seed": int(state[K_SEED]),
    }


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


# ----------------------------------------------------------------------------- controls


def _on_model_change() -> None:
    path = st.session_state.get(K_MODEL)
    if not path:
        return
    card = card_of(path)
    ui.set_values({**sampler_defaults(card), K_CKPT: str(card["final_checkpoint"]), K_SOURCE: SHIPPED})


def _on_reset() -> None:
    _on_model_change()


@dataclass
class Selection:
    """What the controls point at: a model and a centre w* (or why there is none)."""

    path: str | None
    checkpoint: str | None  # relative path (shipped) or the uploaded file's name
    checkpoint_key: str  # "ckpt:<rel>" or "upload:<sha256>"
    target: Any | None
    error: str | None


def pick_model(cards: list[dict[str, Any]], running: bool) -> Selection:
    paths = [str(c["path"]) for c in cards]
    labels = {str(c["path"]): model_label(c) for c in cards}
    st.selectbox(
        "Sample model",
        paths,
        key=K_MODEL,
        format_func=lambda p: labels.get(p, p),
        on_change=_on_model_change,
        disabled=running,
        help="Networks trained by the scripts in sample_models/ (see the model card below).",
    )
    path = str(st.session_state[K_MODEL])
    st.radio(
        "Centre w*",
        [SHIPPED, UPLOAD],
        key=K_SOURCE,
        horizontal=True,
        format_func=lambda s: "shipped checkpoint" if s == SHIPPED else "upload weights",
        disabled=running,
    )
    if st.session_state[K_SOURCE] == SHIPPED:
        options = checkpoint_options(path)
        if st.session_state.get(K_CKPT) not in options:
            st.session_state[K_CKPT] = options[0]
        st.selectbox(
            "Checkpoint",
            options,
            key=K_CKPT,
            format_func=lambda rel: checkpoint_label(path, rel),
            disabled=running,
            help="λ̂ is estimated at these weights.",
        )
        rel = str(st.session_state[K_CKPT])
        try:
            target = shipped_target(path, rel)
        except Exception as exc:  # a broken shipped file must not take the page down
            msg = f"Could not load {rel}: {ui.plain(str(exc))}"
            ui.user_error(msg)
            return Selection(path, rel, f"ckpt:{rel}", None, msg)
        return Selection(path, rel, f"ckpt:{rel}", target, None)

    upload = st.file_uploader(
        "Weights for this architecture (.safetensors)",
        type=["safetensors"],
        key=K_UPLOAD,
        disabled=running,
        help="A safetensors file with exactly this model's parameter names and shapes. "
        "Files are validated before use; nothing is ever unpickled.",
    )
    if upload is None:
        st.caption(
            "Upload weights saved from this architecture "
            "(e.g. with `lltools.targets.checkpoints.save_checkpoint`)."
        )
        return Selection(path, None, "upload:none", None, "no file uploaded yet")
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    try:
        target = uploaded_target(path, digest, _data=data, _name=upload.name)
    except ValueError as exc:  # CheckpointError and TargetError are ValueErrors
        msg = f"**This file cannot be used as weights for {card_of(path)['name']}.** {ui.plain(str(exc))}"
        ui.user_error(msg)
        return Selection(path, upload.name, f"upload:{digest}", None, msg)
    except Exception as exc:
        ui.show_exception(exc, "read the uploaded checkpoint")
        return Selection(path, upload.name, f"upload:{digest}", None, str(exc))
    st.success(f"Loaded {ui.plain(upload.name)}: {target.dim:,} parameters match.", icon=":material/check:")
    return Selection(path, upload.name, f"upload:{digest}", target, None)


def sampler_controls(running: bool, n: int | None) -> str | None:
    """Draw the sampler, batch-size and seed inputs; returns the budget message or ``None``."""
    if n and int(st.session_state.get(K_BATCH, 0)) > int(n):
        st.session_state[K_BATCH] = 0  # settings carried over from a larger model: full batch
    inputs = dataclasses.replace(
        SAMPLER_INPUTS,
        nbeta_help="Effective inverse temperature nβ; the model card's value, else n/log n"
        + (f" = {n / math.log(n):,.1f}" if n and n > 1 else "")
        + ".",
    )
    ui.sampler_controls(NS, inputs, running=running, batch_max=int(n or 1_000_000))
    st.button(
        "Reset to card settings",
        key="networks.reset",
        on_click=_on_reset,
        disabled=running,
        icon=":material/restart_alt:",
        type="tertiary",
    )
    p = sampler_params(st.session_state)
    budget = ui.check_budget(p["chains"], p["draws"] + p["burnin"])
    if budget:
        ui.user_error(budget)
    return budget


def _on_run() -> None:
    src = st.session_state.get(K_SOURCE)
    ckpt_key = st.session_state.get("networks.__ckpt_key", "")
    live_ui.LiveRun(NS).request(
        {
            "model": st.session_state.get(K_MODEL),
            "source": src,
            "checkpoint": st.session_state.get("networks.__ckpt_name"),
            "checkpoint_key": ckpt_key,
            **sampler_params(st.session_state),
        }
    )


# ----------------------------------------------------------------------------- layout


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
    n_chains: int | None = None,
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
        bottom[4].metric("diverged", "…" if diverged is None else f"{diverged} / {n_chains}")


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
        plots.llc_running_figure(traces, theory_llc=theory, llc_mean=llc, llc_sem=sem, total_steps=total),
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


# ----------------------------------------------------------------------------- running


def current_target(request: dict[str, Any]) -> Any:
    path = str(request["model"])
    key = str(request["checkpoint_key"])
    if key.startswith("upload:"):
        return uploaded_target(path, key.removeprefix("upload:"))
    return shipped_target(path, key.removeprefix("ckpt:"))


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
            else TargetSpec.model(path, Path(path) / ckpt.removeprefix("ckpt:"))
        ).to_dict(),
    }
    if cached is not None:
        live_ui.record_cached(cached.result, **saved)
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

    def on_chunk(item: Any) -> None:
        trace = item.trace
        traces = frames.trace_frame(trace)
        draws = traces[traces["is_draw"]]
        current = draws.groupby("chain")["llc_running"].last().mean() if not draws.empty else None
        state["n"] += 1
        draw_metrics(
            slots.metrics,
            th,
            llc=None if current is None else float(current),
            sem=None,
            acc=float(traces["acceptance"].mean()) if not traces.empty else None,
            diverged=int((trace.diverged_at >= 0).sum()),
            n_chains=trace.num_chains,
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
        )

    every = live_ui.report_every(total)
    stream = live_ui.record_live(estimate_stream(target, report_every=every, **params), **saved)
    last, elapsed = live_ui.stream_live(
        stream, live=live, total_steps=total, on_chunk=on_chunk, progress_container=slots.progress
    )
    result = last.result
    done = NetResult(path, label, request["checkpoint_key"], params, result, "complete", elapsed, th)
    done.traces = result.traces
    cache.put(key, done)
    store(done)


def checkpoint_display(path: str, request: dict[str, Any]) -> str:
    key = str(request.get("checkpoint_key", ""))
    if key.startswith("upload:"):
        return f"uploaded {request.get('checkpoint') or 'file'}"
    return checkpoint_label(path, key.removeprefix("ckpt:"))


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


# ----------------------------------------------------------------------------- results


def draw_result(done: NetResult, slots: Slots, th: Theory) -> None:
    r = done.result
    if done.status != "complete":
        slots.progress.info(f"Run {done.status}.", icon=":material/info:")
    draw_metrics(
        slots.metrics,
        th,
        llc=r.llc_mean,
        sem=r.llc_sem,
        rhat=r.rhat,
        ess=r.ess,
        acc=r.acceptance,
        diverged=len(r.diverged_chains),
        n_chains=r.n_chains,
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
    )
    draw_compare(slots, th, r.llc_mean, r.llc_sem, key="final")


def diagnostics_panel(done: NetResult, th: Theory) -> None:
    r = done.result
    st.subheader("Diagnostics")
    left, right = st.columns([2, 3], gap="medium")
    with left:
        if r.warnings:
            for w in r.warnings:
                st.warning(ui.plain(w), icon=":material/warning:")
        else:
            st.success(
                "No problems detected: chains agree (R-hat ≈ 1), enough effective draws, "
                "healthy acceptance, no divergences.",
                icon=":material/check_circle:",
            )
        if r.llc_mean < 0:
            st.warning(
                "λ̂ < 0: the sampler found lower loss than L(w*), so this checkpoint is not a local "
                "minimum (early in training, or γ too small). λ̂ is not meaningful here.",
                icon=":material/warning:",
            )
        if th.closed_form is not None and r.llc_sem and r.llc_sem > 0 and math.isfinite(r.llc_mean):
            z = (r.llc_mean - th.closed_form) / r.llc_sem
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
                    r.chains.assign(diverged=lambda d: d["diverged_at"] >= 0), theory_llc=th.closed_form
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


# ----------------------------------------------------------------------------- page


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
        sel = pick_model(cards, running)
        st.session_state["networks.__ckpt_key"] = sel.checkpoint_key
        st.session_state["networks.__ckpt_name"] = sel.checkpoint
        n = int(sel.target.n) if sel.target is not None else card_of(sel.path or first).get("n")
        budget = sampler_controls(running, n)
        live.buttons(running=running, on_run=_on_run, disabled=sel.target is None or budget is not None)
        ui.remember([K_MODEL, K_SOURCE, K_CKPT, *SAMPLER_KEYS])

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
        model_card(path)
        with st.expander("Download this run (CSV / Parquet)"):
            downloads(done)
        with st.expander("Run history: compare runs", expanded=len(history.RunHistory().records(PAGE)) >= 2):
            history.render_history(PAGE, key="networks.history")


if __name__ == "__main__":
    ui.run_page(main, what="show the Networks page")
