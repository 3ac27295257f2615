"""The Networks page's models: where they live, their cards, checkpoints and loaded targets.

The state keys of the page's widgets live here too (the other ``networks_*`` modules read them).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import common as ui
from dashboard.views.refined_panel import K_KIND as K_REFINE_KIND
from dashboard.views.refined_panel import K_SUBSET as K_REFINE_SUBSET
from lltools.targets.cards import first_run_settings
from lltools.targets.checkpoints import CheckpointError
from lltools.targets.models import folder_card, list_checkpoints, load_sample_model, read_card

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


#: Models shown first when nothing is chosen yet (small, exact λ known, fast on a CPU; the
#: first one's first click is healthy in ~10 s, tests/workflows/test_sample_defaults.py).
PREFERRED = ("rrr_6_4_5_r2", "dln_8_6_6_4_r2")


MAX_UPLOAD_BYTES = 256 * 1024**2


@st.cache_data(ttl=120, show_spinner=False)
def sample_models(root: str | None = None) -> list[dict[str, Any]]:
    """Every model folder's card (plus ``path``): the shipped ones, then those given at
    launch (``make app MODELS=…``); cached briefly."""
    return ui.model_cards(root or models_root())


def model_label(card: dict[str, Any]) -> str:
    d = card.get("num_parameters")
    mine = "  ·  your folder" if card.get("user") else ""
    return f"{card['name']}" + (f"  ·  d = {int(d):,}" if d else "") + mine


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

    return folder_card(path) or {**read_card(path), "path": path}


def sampler_defaults(card: dict[str, Any]) -> dict[str, Any]:
    """The sampler controls' values for a model: its card's first-click settings (``first_run``
    over ``default_sampler``, :func:`lltools.targets.cards.first_run_settings`), nβ = n/log n
    unless the card gives it."""
    return {**ui.card_sampler_values(NS, card, first_run_settings(card)), K_SEED: 0}


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
    if not rel:
        return "weights from build()" + ("  (final)" if final else "")
    if "teacher" in name:
        return "teacher w* (true parameter)"
    digits = "".join(ch for ch in name if ch.isdigit())
    label = f"step {int(digits):,}" if digits else name
    return label + ("  (final)" if final else "")


@st.cache_resource(max_entries=24, show_spinner="Loading the model and its data…")
def shipped_target(path: str, checkpoint: str) -> Any:
    """The sample model centred at a shipped checkpoint (cached per server)."""
    return load_sample_model(path, checkpoint=checkpoint or None)


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


def sampler_params(state: Any) -> dict[str, Any]:
    """The keyword arguments of ``estimate_stream`` the controls describe."""
    batch = int(state[K_BATCH])
    return {
        **ui.sampler_values(state, NS),
        "batch_size": batch if batch > 0 else None,
        "seed": int(state[K_SEED]),
    }


def current_target(request: dict[str, Any]) -> Any:
    path = str(request["model"])
    key = str(request["checkpoint_key"])
    if key.startswith("upload:"):
        return uploaded_target(path, key.removeprefix("upload:"))
    return shipped_target(path, key.removeprefix("ckpt:"))


def checkpoint_display(path: str, request: dict[str, Any]) -> str:
    key = str(request.get("checkpoint_key", ""))
    if key.startswith("upload:"):
        return f"uploaded {request.get('checkpoint') or 'file'}"
    return checkpoint_label(path, key.removeprefix("ckpt:"))


def model_by_name(cards: list[dict[str, Any]]) -> dict[str, str]:
    """URL name (the card's name) -> model folder path; the first folder of a name wins."""
    out: dict[str, str] = {}
    for c in cards:
        out.setdefault(str(c["name"]), str(c["path"]))
    return out


def query_spec(cards: list[dict[str, Any]], stop_param: ui.QueryParam) -> dict[str, ui.QueryParam]:
    """The page's URL parameters: the model (by name), its shipped checkpoint, the sampler
    settings, the refined-λ̂ choices and "stop when MCSE ≤ target" (``stop_param``).

    A model in the URL brings its card's settings; the parameters after it override them.
    """
    paths = model_by_name(cards)
    names = {p: n for n, p in paths.items()}
    first = default_model(cards)

    def apply_model(name: str) -> dict[str, Any]:
        card = card_of(paths[name])
        return {K_MODEL: paths[name], K_SOURCE: SHIPPED, K_CKPT: str(card["final_checkpoint"]),
                **sampler_defaults(card)}

    def valid_checkpoint(rel: str, values: Any) -> str | None:
        path = values.get(K_MODEL) or first
        if path is None or rel not in checkpoint_options(str(path)):
            return f"not a shipped checkpoint of {card_of(str(path))['name'] if path else 'this model'}"
        return None

    return {
        "model": ui.QueryParam(K_MODEL, str, choices=tuple(paths), apply=apply_model,
                               read=lambda s: names.get(str(s.get(K_MODEL)))),
        "checkpoint": ui.QueryParam(K_CKPT, str, valid=valid_checkpoint,
                                    read=lambda s: s.get(K_CKPT) if s.get(K_SOURCE) == SHIPPED else None),
        **ui.sampler_query(NS, SAMPLER_INPUTS),
        "batch": ui.QueryParam(K_BATCH, int, lo=0, hi=1_000_000_000),
        "seed": ui.QueryParam(K_SEED, int, lo=0, hi=2**31 - 1),
        "refine": ui.QueryParam(K_REFINE_KIND, str, choices=("layer", "head")),
        "subset": ui.QueryParam(K_REFINE_SUBSET, str),
        "stop_sem": stop_param,
    }
