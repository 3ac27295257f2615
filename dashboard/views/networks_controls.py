"""The Networks page's controls: model, centre w* (shipped checkpoint or uploaded weights), sampler, Run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard import common as ui
from dashboard import running as live_ui
from dashboard.views.networks_models import (
    K_BATCH,
    K_CKPT,
    K_GAMMA,
    K_MODEL,
    K_SOURCE,
    K_UPLOAD,
    NS,
    SAMPLER_INPUTS,
    SHIPPED,
    UPLOAD,
    card_of,
    checkpoint_label,
    checkpoint_options,
    model_label,
    sampler_defaults,
    sampler_params,
    shipped_target,
    uploaded_target,
)


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


#: Pickle-based checkpoint suffixes: refused on upload, with the reason (issue 13.12).
PICKLE_SUFFIXES = ("pt", "pth", "bin", "ckpt")
PICKLE_REFUSAL = (
    "**{name} is refused:** a .pt file is a pickle, which could run code here; upload .safetensors."
)
PICKLE_WAY_OUT = (
    "Convert it on your machine with `lltools.targets.checkpoints.save_checkpoint`, or use the CLI "
    "(`lltools estimate --model DIR --checkpoint FILE.pt`), which loads your own .pt with "
    "`torch.load(weights_only=True)`."
)


def pick_model(cards: list[dict[str, Any]], running: bool) -> Selection:
    paths = [str(c["path"]) for c in cards]
    labels = {str(c["path"]): model_label(c) for c in cards}
    st.selectbox(
        "Model",
        paths,
        index=ui.held_index(K_MODEL, paths),
        key=K_MODEL,
        format_func=lambda p: labels.get(p, p),
        on_change=_on_model_change,
        disabled=running,
        help="The sample models in sample_models/ and the model folders given at launch "
        "(make app MODELS=\"DIR …\" or LLTOOLS_MODELS); see the model card below.",
    )
    path = str(st.session_state[K_MODEL])
    st.radio(
        "Centre w*",
        [SHIPPED, UPLOAD],
        index=ui.held_index(K_SOURCE, [SHIPPED, UPLOAD]),
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
            index=ui.held_index(K_CKPT, options),
            key=K_CKPT,
            format_func=lambda rel: checkpoint_label(path, rel),
            disabled=running,
            help="λ̂ is estimated at these weights.",
        )
        rel = str(st.session_state[K_CKPT])
        try:
            target = shipped_target(path, rel)
        except Exception as exc:  # a broken shipped file must not take the page down
            msg = f"Could not load {rel or path}: {ui.plain(str(exc))}"
            ui.user_error(msg)
            return Selection(path, rel, f"ckpt:{rel}", None, msg)
        return Selection(path, rel, f"ckpt:{rel}", target, None)

    upload = st.file_uploader(
        "Weights for this architecture (.safetensors)",
        type=["safetensors", *PICKLE_SUFFIXES],  # .pt is accepted only to say why it is refused
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
    if upload.name.lower().rsplit(".", 1)[-1] in PICKLE_SUFFIXES:
        msg = PICKLE_REFUSAL.format(name=ui.plain(upload.name))
        ui.user_error(msg)
        st.caption(PICKLE_WAY_OUT)
        return Selection(path, upload.name, "upload:refused", None, msg)
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
    path = st.session_state.get(K_MODEL)
    ref = (card_of(str(path)).get("default_sampler") or {}).get("gamma") if path else None
    gamma = st.session_state.get(K_GAMMA)
    if ref is not None and gamma is not None and not math.isclose(float(gamma), float(ref), rel_tol=1e-9):
        st.caption(f":material/tune: γ = {float(gamma):g} here; this model's trajectory uses "
                   f"γ = {float(ref):g}. λ̂ depends on γ: the two are not the same quantity.")
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
