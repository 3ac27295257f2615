"""Shared dashboard helpers: chrome, state, caching, live runs, downloads and run history.

Every page follows one shape: widgets -> params -> cached (or live) run -> figures from
:mod:`lltools.viz.plots`.  This module holds everything the pages share, so that a page file
reads like a description of the page.

Sections
--------
- **Chrome** — :func:`setup_page`, :func:`show_figure` (theme- and lecture-aware),
  :func:`teaching_note`, :func:`metric_row`.
- **Errors** — :func:`run_page` wraps a page body so an unexpected exception becomes a
  friendly ``st.error`` with the details in an expander (never a bare traceback);
  :func:`user_error` shows a known bad input inline.
- **State** — :func:`init_state` / :func:`remember` keep widget values when the user
  switches pages; :func:`load_query_params` / :func:`save_query_params` make settings
  shareable through the URL.
- **Targets and caching** — :func:`potential_target` (``st.cache_resource``),
  :func:`potential_grid`, :func:`finite_nbeta_target` (``st.cache_data``) and
  :class:`ResultCache` for streamed runs (keyed by their settings).
- **Live runs** — :class:`LiveRun`: Run/Stop buttons, a request/stop protocol over
  ``st.session_state``, a progress bar with rate and ETA, and the partial trace kept for
  Stop.
- **Downloads** — :func:`download_buttons` (CSV and Parquet for every frame).
- **Run store** — :func:`record_live` wraps a page's stream with
  :func:`lltools.storage.store.record_stream`, so every run is saved while it runs into the
  store the CLI uses (``$LLTOOLS_HOME`` or ``~/.lltools``); :func:`record_cached` saves a
  run served from the result cache.  :func:`stream_live` closes the stream when the
  script is interrupted (Stop), which marks the stored run stopped (``failed``).
- **History** — :func:`render_history` (the store's runs, newest first; select two to
  overlay their λ̂ traces and diff their settings; downloads via ``RunStore.export``;
  implemented in :mod:`dashboard.history`), :class:`RunHistory` (this session's records,
  kept for the pages' run numbers) and :func:`render_comparison`.

Core modules never import Streamlit; this module is the only bridge.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # pragma: no cover - depends on how streamlit was started
    sys.path.insert(0, str(ROOT))

from lltools.viz import plots  # noqa: E402

ASSETS = ROOT / "assets"
LOGO = ASSETS / "logo.svg"
ICON = ASSETS / "icon.svg"

#: Session-state key of the lecture-mode (large fonts) toggle.
LARGE_KEY = "ui.large"
#: The device used for toy potentials (tiny 2-D runs are fastest on the CPU).
POTENTIAL_DEVICE = "cpu"
#: The most chain-steps (chains × (burn-in + draws)) one dashboard run may take.
MAX_CHAIN_STEPS = 40_000_000

# ============================================================================ chrome


def setup_page(title: str, caption: str | None = None) -> None:
    """Page heading and a one-line caption."""
    st.title(title)
    if caption:
        st.caption(caption)


def inject_css() -> None:
    """Inject ``assets/style.css`` and, in lecture mode, scale every rem-based size."""
    css = ""
    path = ASSETS / "style.css"
    if path.exists():
        css = path.read_text(encoding="utf-8")
    if large_fonts():
        css += "\nhtml { font-size: 125%; }\n"
    if css:
        st.html(f"<style>{css}</style>")


def sidebar_display_options() -> None:
    """Sidebar: lecture mode (large fonts in the app and in every figure) and where runs are
    saved; above the page, the notice about unfinished stored runs (resume / discard)."""
    from dashboard import history

    init_state({LARGE_KEY: False})
    with st.sidebar:
        st.toggle(
            "Lecture mode (large fonts)",
            key=LARGE_KEY,
            help="Bigger text, thicker lines and larger markers, for a projector.",
        )
        remember([LARGE_KEY])
        st.caption("Light/dark: ⋮ menu → Settings → Theme. Figures follow the app theme.")
        history.store_caption()
    run_page(history.store_notice, what="check the run store for unfinished runs")


def large_fonts() -> bool:
    """Whether lecture mode is on."""
    return bool(st.session_state.get(LARGE_KEY, False))


def is_dark() -> bool:
    """Whether the app is showing its dark theme (from the browser's reported colours)."""
    try:
        return st.context.theme.type == "dark"
    except Exception:  # older Streamlit, bare mode
        return False


PLOTLY_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},
    "modeBarButtonsToRemove": ["select2d", "lasso2d"],
}


def show_figure(
    fig: Any, *, key: str | None = None, container: Any = None, height: int | None = None
) -> None:
    """Style ``fig`` for the current theme / lecture mode and draw it full width."""
    plots.style_figure(fig, dark=is_dark(), large=large_fonts())
    if height:
        fig.update_layout(height=height)
    target = container if container is not None else st
    target.plotly_chart(fig, theme=None, config=PLOTLY_CONFIG, key=key, width="stretch")


def teaching_note(markdown: str, *, title: str = "What am I looking at?") -> None:
    """A bordered note in plain words with the primer's symbols, placed beside a plot."""
    with st.container(border=True):
        st.markdown(f":material/menu_book: **{title}**")
        st.markdown(markdown)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\*_`$~"})


def plain(text: str) -> str:
    """Escape Markdown (and Streamlit's $…$ LaTeX) in text that comes from elsewhere.

    Diagnostic messages contain ``w*``, ``x**2`` or ``$`` that would otherwise turn into
    italics or formulas.
    """
    return str(text).translate(_MD_SPECIAL)


def run_caption(record_id: Any, status: str, elapsed_s: float, result: Any, *extra: str) -> str:
    """The line under a result: run number, status, wall time, device/dtype, which SGLD step
    ran (compiled or eager) and whether the chains were stepped in memory-sized batches."""
    parts = [f"Run #{record_id}", status]
    if elapsed_s == elapsed_s and elapsed_s > 0:
        parts.append(f"{elapsed_s:.2f} s")
    parts.append(f"device {result.settings.device}, {result.settings.dtype}")
    meta = getattr(result.trace, "meta", {}) or {}
    parts.append(f"{meta.get('step', 'eager')} step")
    batch = meta.get("chain_batch")
    if batch is not None and batch < result.n_chains:
        parts.append(f"chains stepped in batches of {batch:,} to fit memory")
    return " · ".join([*parts, *extra])


def fmt(value: float | None, digits: int = 3) -> str:
    """Compact number formatting ("n/a" for None/NaN)."""
    return plots.format_number(value, digits)


def metric_row(items: list[tuple[str, str, str | None]]) -> None:
    """A row of ``st.metric`` (label, value, help)."""
    cols = st.columns(len(items))
    for col, (label, value, help_text) in zip(cols, items, strict=True):
        col.metric(label, value, help=help_text)


# ============================================================================ errors

#: Exceptions that mean "bad input": shown as a plain message (details still available).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OverflowError, ZeroDivisionError)


def user_error(message: str, *, container: Any = None) -> None:
    """Show a known bad input inline (next to its control)."""
    (container or st).error(message, icon=":material/error:")


def show_exception(exc: BaseException, what: str, *, container: Any = None) -> None:
    """A friendly message for ``exc`` with the traceback tucked into an expander."""
    target = container or st
    if isinstance(exc, USER_ERRORS):
        target.error(f"Could not {what}: {plain(str(exc))}", icon=":material/error:")
    else:
        target.error(
            f"Something went wrong while trying to {what} ({type(exc).__name__}). "
            "The app is still working: change a setting and try again.",
            icon=":material/build:",
        )
    with target.expander("Technical details"):
        st.code("".join(traceback.format_exception(exc)), language="text")


def run_page(body: Callable[[], None], *, what: str = "show this page") -> None:
    """Run a page body; any exception becomes a friendly error instead of a traceback.

    Streamlit's own control flow (``st.rerun``, ``st.stop``) derives from
    ``BaseException`` and passes through untouched.
    """
    try:
        body()
    except Exception as exc:
        show_exception(exc, what)


# ============================================================================ state

_PERSIST = "_persist"


def init_state(defaults: Mapping[str, Any]) -> None:
    """Seed widget keys before their widgets are created.

    A key that is missing (first visit, or Streamlit dropped it while another page was
    shown) gets the value remembered by :func:`remember`, else its default.  Widgets must
    then be created *without* ``value=`` so Session State is their only source.
    """
    saved = st.session_state.setdefault(_PERSIST, {})
    for key, default in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = saved.get(key, default)


def remember(keys: Iterable[str]) -> None:
    """Copy the current values of ``keys`` so they survive a page switch."""
    saved = st.session_state.setdefault(_PERSIST, {})
    for key in keys:
        if key in st.session_state:
            saved[key] = st.session_state[key]


def set_values(values: Mapping[str, Any]) -> None:
    """Set widget values (and their remembered copies), e.g. "apply recommended settings".

    Must run before the widgets are created in this script run, so call it from a
    callback.
    """
    saved = st.session_state.setdefault(_PERSIST, {})
    for key, value in values.items():
        st.session_state[key] = value
        saved[key] = value


@dataclass(frozen=True)
class QueryParam:
    """How one URL parameter maps to a widget key.

    ``kind`` is ``float``, ``int`` or ``str``; ``choices`` restricts strings; numbers are
    clamped into ``[lo, hi]``.
    """

    key: str
    kind: type = float
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    #: Optional mapping of the parsed value to several widget keys (e.g. potential -> select + text).
    apply: Callable[[Any], dict[str, Any]] | None = None
    #: Optional inverse of ``apply`` for writing the URL (session state -> raw value).
    read: Callable[[Mapping[str, Any]], Any] | None = None

    def parse(self, raw: str) -> Any:
        if self.kind is str:
            if self.choices is not None and raw not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)}")
            if len(raw) > 2000:
                raise ValueError("too long")
            return raw
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        if self.kind is int:
            if value != int(value):
                raise ValueError("not a whole number")
            value = int(value)
        if self.lo is not None and value < self.lo:
            raise ValueError(f"must be ≥ {self.lo:g}")
        if self.hi is not None and value > self.hi:
            raise ValueError(f"must be ≤ {self.hi:g}")
        return value


# ============================================================================ sampler inputs


@dataclass(frozen=True)
class SamplerInputs:
    """Labels, limits, steps and help texts of the six shared sampler inputs of one page.

    The defaults are the network pages' (large models); a page overrides what differs.
    The widget keys are ``f"{prefix}.nbeta"``, ``.gamma``, ``.epsilon``, ``.chains``,
    ``.draws`` and ``.burnin`` (see :func:`sampler_controls`).
    """

    nbeta_label: str = "nβ"
    nbeta_max: float = 1e12
    nbeta_step: float = 100.0
    nbeta_help: str | None = None
    gamma_label: str = "γ"
    gamma_max: float = 1e9
    gamma_step: float = 10.0
    gamma_help: str | None = None
    epsilon_label: str = "ε"
    epsilon_min: float = 1e-12
    epsilon_step: float = 1e-5
    epsilon_help: str | None = None
    chains_max: int = 256
    chains_help: str | None = None
    draws_max: int = 100_000
    draws_step: int = 100
    batch_help: str | None = None


def sampler_controls(
    prefix: str, inputs: SamplerInputs, *, running: bool, batch_max: int | None = None
) -> tuple[Any, Any]:
    """Draw the nβ, γ, ε, chains, draws and burn-in inputs in two columns.

    Their values live in Session State under ``f"{prefix}.nbeta"`` etc. (seed them with
    :func:`init_state`; no ``value=`` is passed).  With ``batch_max`` (the network pages)
    the minibatch size (``.batch``, 0 = full batch) and the seed (``.seed``) follow.
    Returns the two columns, so the page can add its own inputs below in the same grid.
    """
    c1, c2 = st.columns(2)
    i = inputs
    rows = (  # column, label, key suffix, min, max, step, format, help
        (c1, i.nbeta_label, "nbeta", 1e-3, i.nbeta_max, i.nbeta_step, "%g", i.nbeta_help),
        (c2, i.gamma_label, "gamma", 0.0, i.gamma_max, i.gamma_step, "%g", i.gamma_help),
        (c1, i.epsilon_label, "epsilon", i.epsilon_min, 1.0, i.epsilon_step, "%.2e", i.epsilon_help),
        (c2, "chains", "chains", 1, i.chains_max, 1, None, i.chains_help),
        (c1, "draws", "draws", 10, i.draws_max, i.draws_step, None, None),
        (c2, "burn-in", "burnin", 0, 100_000, 100, None, None),
    )
    for col, label, name, lo, hi, step, fmt, help_text in rows:
        col.number_input(
            label,
            min_value=lo,
            max_value=hi,
            step=step,
            format=fmt,
            key=f"{prefix}.{name}",
            disabled=running,
            help=help_text,
        )
    if batch_max is not None:
        c1.number_input(
            "batch size",
            min_value=0,
            max_value=batch_max,
            step=32,
            key=f"{prefix}.batch",
            disabled=running,
            help=inputs.batch_help,
        )
        c2.number_input(
            "seed", min_value=0, max_value=2**31 - 1, step=1, key=f"{prefix}.seed", disabled=running
        )
    return c1, c2


def sampler_values(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The six shared sampler settings under ``f"{prefix}.nbeta"`` etc., as ``estimate`` takes them."""
    return {
        "nbeta": float(state[f"{prefix}.nbeta"]),
        "gamma": float(state[f"{prefix}.gamma"]),
        "epsilon": float(state[f"{prefix}.epsilon"]),
        "chains": int(state[f"{prefix}.chains"]),
        "draws": int(state[f"{prefix}.draws"]),
        "burnin": int(state[f"{prefix}.burnin"]),
    }


def card_sampler_values(prefix: str, card: Mapping[str, Any], sampler: Mapping[str, Any]) -> dict[str, Any]:
    """Widget values (keys ``f"{prefix}.nbeta"`` … ``.burnin`` and ``.batch``) for a model.

    ``sampler`` is the model card's ``default_sampler`` (possibly updated); a missing nβ
    is n/log n (100 without a usable n), a missing batch size is 0 (full batch).
    """
    n = card.get("n")
    nbeta = sampler.get("nbeta")
    if nbeta is None:
        nbeta = float(n) / math.log(float(n)) if n and n > 1 else 100.0
    return {
        f"{prefix}.nbeta": float(nbeta),
        f"{prefix}.gamma": float(sampler.get("gamma", 100.0)),
        f"{prefix}.epsilon": float(sampler.get("epsilon", 1e-4)),
        f"{prefix}.chains": int(sampler.get("chains", 4)),
        f"{prefix}.draws": int(sampler.get("draws", 500)),
        f"{prefix}.burnin": int(sampler.get("burnin", 200)),
        f"{prefix}.batch": int(sampler.get("batch_size") or 0),
    }


def load_query_params(ns: str, spec: Mapping[str, QueryParam]) -> list[str]:
    """On a page's first run in this session, copy valid URL parameters into widget keys.

    Returns the problems found (shown by the page as a warning); invalid values are
    ignored, never fatal.
    """
    flag = f"{ns}.__qp_loaded"
    if st.session_state.get(flag):
        return []
    st.session_state[flag] = True
    problems = []
    values = {}
    for name, param in spec.items():
        if name not in st.query_params:
            continue
        raw = st.query_params[name]
        try:
            parsed = param.parse(raw)
            values.update(param.apply(parsed) if param.apply else {param.key: parsed})
        except (TypeError, ValueError) as exc:
            problems.append(f"ignored URL parameter {name}={raw!r}: {exc}")
    if values:
        set_values(values)
    return problems


def save_query_params(spec: Mapping[str, QueryParam], values: Mapping[str, Any] | None = None) -> None:
    """Write the current settings into the URL so the link reproduces the run."""
    state = values or st.session_state
    out = {}
    for name, param in spec.items():
        if param.read is not None:
            v = param.read(state)
        elif param.key in state:
            v = state[param.key]
        else:
            continue
        if v is None:
            continue
        out[name] = f"{v:.6g}" if isinstance(v, float) else str(v)
    with contextlib.suppress(Exception):  # the URL is a convenience; never fail a run over it
        st.query_params.from_dict(out)


# ============================================================================ parsing


def parse_float_list(
    text: str,
    *,
    name: str,
    min_value: float | None = None,
    max_value: float | None = None,
    exclusive_min: bool = False,
    max_count: int = 12,
) -> list[float]:
    """Parse "1e-4, 3e-4, 1e-3" into sorted unique floats; ``ValueError`` says what is wrong."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError(f"{name}: enter at least one value, e.g. 1e-3, 3e-3")
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{name}: {p.strip()!r} is not a number") from None
        if not math.isfinite(v):
            raise ValueError(f"{name}: {p.strip()!r} is not finite")
        if min_value is not None and (v < min_value or (exclusive_min and v <= min_value)):
            op = ">" if exclusive_min else "≥"
            raise ValueError(f"{name}: every value must be {op} {min_value:g} (got {v:g})")
        if max_value is not None and v > max_value:
            raise ValueError(f"{name}: every value must be ≤ {max_value:g} (got {v:g})")
        values.append(v)
    values = sorted(set(values))
    if len(values) > max_count:
        raise ValueError(f"{name}: at most {max_count} values (got {len(values)})")
    return values


def format_float_list(values: Iterable[float]) -> str:
    """Inverse of :func:`parse_float_list` for display."""
    return ", ".join(f"{v:g}" for v in values)


def check_budget(chains: int, steps: int, *, limit: int = MAX_CHAIN_STEPS) -> str | None:
    """A message when chains × steps is too large for an interactive run, else ``None``."""
    total = int(chains) * int(steps)
    if total > limit:
        return (
            f"{chains:,} chains × {steps:,} steps = {total:,} chain-steps is more than this "
            f"dashboard runs interactively ({limit:,}). Use fewer chains or draws, or the CLI "
            "(`lltools estimate`)."
        )
    return None


def auto_extent(positions: pd.DataFrame | None, *, default: float = 1.0, quantile: float = 0.995) -> float:
    """A "nice" half-width (1, 1.5, 2, 3, 5 × 10^k) that frames the chains' positions."""
    if positions is None or positions.empty:
        return default
    coords = positions[["x", "y"]].abs().to_numpy(dtype=float).ravel()
    coords = coords[np.isfinite(coords)]
    if coords.size == 0:
        return default
    reach = float(np.quantile(coords, quantile)) * 1.25
    if reach <= 0:
        return default
    exponent = math.floor(math.log10(reach))
    for m in (1.0, 1.5, 2.0, 3.0, 5.0, 10.0):
        if m * 10**exponent >= reach:
            return float(f"{m * 10**exponent:.3g}")
    return float(f"{10.0 ** (exponent + 1):.3g}")


# ============================================================================ targets & caching

#: Friendly labels for the built-in potentials (spec string -> label).
POTENTIAL_LABELS: dict[str, str] = {
    "x**2 + y**2": "x² + y²   (regular, λ = 1)",
    "x**4 + y**4": "x⁴ + y⁴   (λ = 1/2)",
    "x**2 * y**4": "x² y⁴   (λ = 1/4)",
}
CUSTOM = "custom"


@st.cache_resource(max_entries=64, show_spinner=False)
def potential_target(spec: str) -> Any:
    """The :class:`~lltools.targets.base.FunctionTarget` of a potential spec (cached per spec).

    Raises ``lltools.targets.expressions.ExpressionError`` (a ``ValueError``) on bad input.
    """
    from lltools.targets.potentials import potential_target as build

    return build(spec, device=POTENTIAL_DEVICE)


def expression_error_text(exc: BaseException, text: str) -> str:
    """A two-line message pointing at the offending column of a bad expression."""
    column = getattr(exc, "column", None)
    msg = plain(str(exc))
    if column is not None and isinstance(column, int) and 1 <= column <= len(text) + 1 and len(text) <= 200:
        pointer = " " * (column - 1) + "^"
        return f"{msg}\n\n```text\n{text}\n{pointer}\n```"
    return msg


def try_potential(spec: str) -> tuple[Any | None, str | None]:
    """``(target, None)`` or ``(None, message)`` for a potential spec; never raises."""
    if not spec or not spec.strip():
        return None, "Type an expression in x and y, e.g. `x**2 * y**2`."
    try:
        return potential_target(spec.strip()), None
    except ValueError as exc:
        return None, expression_error_text(exc, spec.strip())
    except Exception as exc:  # a bug in the parser must not take the page down
        return None, f"Could not build this potential ({type(exc).__name__}: {exc})."


def potential_picker(
    pot_key: str, expr_key: str, *, disabled: bool = False, label: str = "Potential L(x, y)"
) -> tuple[str, Any | None, str | None]:
    """Built-in potential selectbox + custom expression input, with inline errors.

    The keys must have been seeded with :func:`init_state`.  Returns ``(spec, target,
    error)``: the spec string, the cached target (``None`` on error) and the error text.
    Target warnings (e.g. "w* is not a local minimum") are shown as warnings.
    """
    st.selectbox(
        label,
        [*POTENTIAL_LABELS, CUSTOM],
        key=pot_key,
        disabled=disabled,
        format_func=lambda s: POTENTIAL_LABELS.get(s, "Custom expression…"),
    )
    custom = st.session_state.get(pot_key) == CUSTOM
    if custom:
        st.text_input(
            "Expression in x and y",
            key=expr_key,
            disabled=disabled,
            placeholder="x**2 * y**2 + x**6",
            help="Use + − * / ** and sin cos tan exp log sqrt abs tanh, pi. w* is the origin.",
        )
    spec = str(st.session_state.get(expr_key, "")).strip() if custom else str(st.session_state.get(pot_key))
    target, error = try_potential(spec)
    if error:
        user_error(f"**Invalid expression.** {error}")
    elif target is not None:
        for w in target.warnings:
            st.warning(plain(w), icon=":material/warning:")
    return spec, target, error


MODEL_PREFIX = "model:"


@st.cache_data(ttl=120, show_spinner=False)
def sample_model_cards() -> list[dict[str, Any]]:
    """The shipped sample models' cards (``sample_models/**/model.json``), with ``path``."""
    from lltools.targets.models import list_sample_models

    try:
        return list_sample_models(ROOT / "sample_models")
    except Exception:  # a broken card must not take a page down
        return []


@st.cache_resource(max_entries=8, show_spinner="Loading the model and its data…")
def sample_model_target(path: str) -> Any:
    """A sample model centred at its final checkpoint (cached per path)."""
    from lltools.targets.models import load_sample_model

    return load_sample_model(path)


def target_for(spec: str) -> Any:
    """The target of a spec: ``"model:<path>"`` for a sample model, else a potential."""
    if spec.startswith(MODEL_PREFIX):
        return sample_model_target(spec[len(MODEL_PREFIX) :])
    return potential_target(spec)


def device_for(spec: str) -> str | None:
    """CPU for 2-D potentials (fastest), auto (CUDA when present) for networks."""
    return None if spec.startswith(MODEL_PREFIX) else POTENTIAL_DEVICE


@st.cache_data(max_entries=64, show_spinner=False)
def potential_grid(spec: str, extent: float, n: int = 121) -> pd.DataFrame:
    """L(x, y) on an n × n grid over [−extent, extent]² around w* (columns x, y, loss)."""
    import torch

    target = potential_target(spec)
    centre = target.w_star.detach().cpu().double()
    xs = np.linspace(-extent, extent, n) + float(centre[0])
    ys = np.linspace(-extent, extent, n) + float(centre[1])
    gx, gy = np.meshgrid(xs, ys)
    w = torch.tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=target.dtype, device=target.device)
    with torch.no_grad():
        loss = target.loss(w).detach().cpu().double().numpy()
    return pd.DataFrame({"x": gx.ravel(), "y": gy.ravel(), "loss": loss})


@st.cache_data(max_entries=256, show_spinner=False)
def finite_nbeta_target(spec: str, nbeta: float, gamma: float) -> tuple[float | None, str | None]:
    """The exact finite-nβ value T(nβ, γ) = nβ·E_p[L] by quadrature, with a note.

    Returns ``(None, reason)`` when it cannot be computed (e.g. γ = 0 with a non-compact
    minimum set, or a potential that is not 2-D).
    """
    try:
        from lltools.theory import core as theory

        target = potential_target(spec)
        expr = getattr(target, "expression", None)
        fn = getattr(expr, "fn", None) or target.fn
        value = theory.tempered_expectation_2d(fn, float(nbeta), float(gamma), num_points=401)
        value = float(getattr(value, "value", value))
        if not math.isfinite(value):
            return None, "the tempered expectation is not finite here (γ = 0 with flat directions?)"
        return value, None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def finite_target_curve(spec: str, nbeta: float, gammas: Iterable[float]) -> pd.DataFrame:
    """T(nβ, γ) for each γ (columns ``gamma, target``), skipping values it cannot compute."""
    rows: list[dict[str, float]] = []
    if spec.startswith(MODEL_PREFIX):
        return pd.DataFrame(rows, columns=["gamma", "target"])
    for g in gammas:
        value, _ = finite_nbeta_target(spec, float(nbeta), float(g))
        if value is not None:
            rows.append({"gamma": float(g), "target": value})
    return pd.DataFrame(rows, columns=["gamma", "target"])


def partial_sweep_table(trace: Any, settings: pd.DataFrame) -> pd.DataFrame:
    """Cheap per-setting summary of a running sweep: λ̂ so far and acceptance so far.

    Columns ``setting, epsilon, gamma, nbeta, llc_mean, acceptance`` (λ̂ = mean over the
    setting's chains of the running estimate at the latest draw; NaN during burn-in).
    """
    from lltools.estimation import frames

    tf = frames.trace_frame(trace)
    draws = tf[tf["is_draw"]]
    if draws.empty:
        llc = pd.Series(np.nan, index=settings["setting"])
    else:
        last = draws.sort_values("step").groupby("chain").tail(1)
        llc = last.groupby("setting")["llc_running"].mean()
    acc = tf.groupby("setting")["acceptance"].mean()
    out = settings.copy()
    out["llc_mean"] = out["setting"].map(llc)
    out["acceptance"] = out["setting"].map(acc)
    return out


class ResultCache:
    """A small thread-safe LRU of finished runs, keyed by their full settings.

    Streamed runs cannot go through ``st.cache_data`` (they draw live while computing),
    so a finished run is stored here and reused when the same settings are run again.
    Shared by all sessions of the server (results are deterministic given the seed).
    """

    def __init__(self, max_entries: int = 48) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = Lock()

    def get(self, key: Any) -> Any | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@st.cache_resource(show_spinner=False)
def result_cache() -> ResultCache:
    """The server-wide :class:`ResultCache`."""
    return ResultCache()


def settings_key(*parts: Any, **settings: Any) -> tuple:
    """A hashable cache key from positional parts and sorted settings."""

    def norm(v: Any) -> Any:
        if isinstance(v, float):
            return float(f"{v:.12g}")
        if isinstance(v, list | tuple):
            return tuple(norm(x) for x in v)
        return v

    return tuple(norm(p) for p in parts) + tuple(sorted((k, norm(v)) for k, v in settings.items()))


# ============================================================================ live runs


@dataclass
class LiveRun:
    """The Run / Stop protocol of one page (namespace ``ns``) over ``st.session_state``.

    1. The Run button's callback stores a *request* (the settings) and clears the stop
       flag.  Callbacks run before the script, so the request is visible at the top.
    2. :meth:`take` pops the request: while a request is being served the page draws its
       controls disabled and streams the run, calling :meth:`keep_partial` per chunk.
    3. The Stop button's callback sets the stop flag; Streamlit interrupts the running
       script and starts a new run, in which :meth:`stopped_partial` hands back the last
       partial result so the page can summarise what was sampled so far.
    4. After a run finishes the page stores the result and calls ``st.rerun()`` so the
       controls are enabled again.
    """

    ns: str

    @property
    def _request(self) -> str:
        return f"{self.ns}.__request"

    @property
    def _partial(self) -> str:
        return f"{self.ns}.__partial"

    @property
    def _stop(self) -> str:
        return f"{self.ns}.__stop"

    def request(self, params: Mapping[str, Any]) -> None:
        """Ask for a run with ``params`` (use in a button callback)."""
        st.session_state[self._request] = dict(params)
        st.session_state[self._stop] = False
        st.session_state.pop(self._partial, None)

    def stop(self) -> None:
        """Ask the running run to stop (use as the Stop button's callback)."""
        st.session_state[self._stop] = True

    def take(self) -> dict[str, Any] | None:
        """Pop the pending request, if any (call once, before drawing the controls)."""
        return st.session_state.pop(self._request, None)

    def keep_partial(self, partial: Any) -> None:
        """Remember the latest partial result (what Stop will summarise)."""
        st.session_state[self._partial] = partial

    def clear_partial(self) -> None:
        st.session_state.pop(self._partial, None)

    def stopped_partial(self) -> Any | None:
        """The partial result of a run that was interrupted (Stop, or leaving the page)."""
        return st.session_state.pop(self._partial, None)

    def buttons(
        self,
        *,
        running: bool,
        on_run: Callable[[], None],
        disabled: bool = False,
        run_label: str = "Run",
        help: str | None = None,
    ) -> None:
        """Run (primary) and Stop side by side."""
        c1, c2 = st.columns([3, 2])
        c1.button(
            run_label,
            type="primary",
            key=f"{self.ns}.run",
            on_click=on_run,
            disabled=running or disabled,
            width="stretch",
            help=help,
        )
        c2.button(
            "Stop",
            key=f"{self.ns}.stop",
            on_click=self.stop,
            disabled=not running,
            width="stretch",
            help="Stop sampling and summarise the draws so far.",
        )


class Progress:
    """``st.progress`` with step counts, rate and ETA."""

    def __init__(self, total_steps: int, *, label: str = "Sampling", container: Any = None) -> None:
        self.total = max(int(total_steps), 1)
        self.label = label
        self.t0 = time.perf_counter()
        self.bar = (container or st).progress(0.0, text=f"{label}: starting…")

    def update(self, done: int) -> None:
        frac = min(max(done / self.total, 0.0), 1.0)
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        eta_txt = f" · about {eta:.0f} s left" if math.isfinite(eta) and eta >= 1 else ""
        self.bar.progress(
            frac, text=f"{self.label}: step {done:,} / {self.total:,} · {rate:,.0f} steps/s{eta_txt}"
        )

    def done(self) -> float:
        """Remove the bar; returns the elapsed seconds."""
        self.bar.empty()
        return time.perf_counter() - self.t0


def report_every(total_steps: int, updates: int = 40, minimum: int = 10) -> int:
    """How often to yield a partial trace for about ``updates`` live refreshes."""
    return max(minimum, math.ceil(total_steps / max(updates, 1)))


def stream_live(
    stream: Iterator[Any],
    *,
    live: LiveRun,
    total_steps: int,
    on_chunk: Callable[[Any], None],
    label: str = "Sampling",
    progress_container: Any = None,
    min_interval: float = 0.15,
) -> tuple[Any, float]:
    """Consume a ``*_stream`` iterator: keep each partial for Stop, redraw, show progress.

    Returns ``(last item, elapsed seconds)``.  On any interruption (Stop raises inside
    the loop) the stream is closed, so a :func:`record_live` run is marked stopped.
    Redraws are adaptive: after a redraw that took D seconds the next one waits at least
    2·D (and ``min_interval``), so drawing never takes more than about a third of the
    run; the progress bar moves every chunk and the final state is always drawn.
    """
    progress = Progress(total_steps, label=label, container=progress_container)
    last = None
    next_draw = 0.0
    iterator = iter(stream)
    try:
        for item in iterator:
            last = item
            live.keep_partial(item)
            trace = item[0]
            done = int(trace.meta.get("steps_done", 0))
            now = time.perf_counter()
            if now >= next_draw and not trace.complete:
                on_chunk(item)
                took = time.perf_counter() - now
                next_draw = time.perf_counter() + max(min_interval, 2.0 * took)
            progress.update(done)
    finally:
        # Stop interrupts the script inside this loop: close the stream now (not at garbage
        # collection), so a recorded run is marked stopped at once.
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    elapsed = progress.done()
    live.clear_partial()
    if last is None:
        raise RuntimeError("the sampler produced no output")
    return last, elapsed


# ============================================================================ run store


def record_live(
    stream: Iterable[Any], *, page: str, label: str, settings: Mapping[str, Any], target: Mapping[str, Any]
) -> Iterable[Any]:
    """``stream`` recorded into the run store while it runs (:func:`lltools.storage.store.record_stream`).

    ``settings`` are the ``estimate_stream`` keywords (enough to re-run it: resume),
    ``target`` a store target spec (:func:`lltools.storage.store.target_spec`); ``page`` and the
    display ``label`` go into the run's meta.  Iterate the result exactly like the stream;
    afterwards ``.result`` holds the summarised ``EstimateResult``.  Chunks are flushed at
    most once per ``flush_interval`` (1 s), so live streaming keeps its speed.  If the
    store cannot be written, a warning says so and the run goes ahead unrecorded.
    """
    from lltools.storage.store import RunStore, record_stream

    store = RunStore()
    try:
        store.runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        st.warning(f"This run is not saved: cannot write the run store at {store.root} ({exc}).")
        return stream
    return record_stream(
        store,
        stream,
        kind="estimate",
        settings=dict(settings),
        target=dict(target),
        meta={"app": "dashboard", "page": page, "label": label},
    )


def record_cached(
    result: Any, *, page: str, label: str, settings: Mapping[str, Any], target: Mapping[str, Any]
) -> str | None:
    """Save a run served from the result cache (its full trace and summary) as a stored run.

    Returns the new run id, or ``None`` if the store cannot be written (never raises).
    """
    from lltools.storage.store import RunStore, record_stream

    try:
        recorder = record_stream(
            RunStore(),
            [(result.trace, result.settings, None)],
            kind="estimate",
            settings=dict(settings),
            target=dict(target),
            meta={"app": "dashboard", "page": page, "label": label, "cached": True},
            summarize=lambda _item: result,
        )
        for _ in recorder:
            pass
        return recorder.run_id
    except Exception as exc:  # saving a copy must never fail the page
        st.warning(f"This run is not saved in the run store ({type(exc).__name__}: {exc}).")
        return None


# ============================================================================ downloads


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of ``frame`` (pyarrow)."""
    buf = io.BytesIO()
    clean = frame.copy()
    clean.attrs = {}  # pandas would try to serialise attrs into the Parquet metadata
    clean.to_parquet(buf, index=False)
    return buf.getvalue()


def download_buttons(frames: Mapping[str, pd.DataFrame], *, basename: str, key: str) -> None:
    """CSV and Parquet download buttons for every non-empty frame, in one row per frame."""
    for name, frame in frames.items():
        if frame is None or frame.empty:
            continue
        c0, c1, c2 = st.columns([2, 1, 1])
        c0.markdown(f"**{name}** · {len(frame):,} rows × {frame.shape[1]} columns")
        slug = f"{basename}_{name.lower().replace(' ', '_')}"
        c1.download_button(
            "CSV",
            frame.to_csv(index=False).encode(),
            file_name=f"{slug}.csv",
            mime="text/csv",
            key=f"{key}.{name}.csv",
            width="stretch",
            icon=":material/download:",
        )
        c2.download_button(
            "Parquet",
            to_parquet_bytes(frame),
            file_name=f"{slug}.parquet",
            mime="application/vnd.apache.parquet",
            key=f"{key}.{name}.parquet",
            width="stretch",
            icon=":material/download:",
        )


# ============================================================================ history


@dataclass
class RunRecord:
    """One finished (or stopped) run, as listed in the run history.

    ``llc_trace`` holds the chain-mean running λ̂ (columns ``step, llc_running``) so two
    runs can be overlaid without keeping their full traces.
    """

    id: int | str
    page: str
    target: str
    settings: dict[str, Any]
    llc_mean: float
    llc_sem: float
    rhat: float
    ess: float
    acceptance: float
    n_diverged: int
    theory_llc: float | None = None
    finite_target: float | None = None
    status: str = "complete"
    elapsed_s: float = float("nan")
    time: str = field(default_factory=lambda: datetime.now().strftime("%H:%M:%S"))
    llc_trace: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def tag(self) -> str:
        """``#3`` for a session run, ``#<short store id>`` for a stored one."""
        return f"#{self.id}"

    @property
    def label(self) -> str:
        return f"{self.tag} {self.target} (λ̂ = {fmt(self.llc_mean)})"

    def row(self) -> dict[str, Any]:
        return {
            "run": self.id,
            "time": self.time,
            "page": self.page,
            "target": self.target,
            "λ̂": self.llc_mean,
            "± sem": self.llc_sem,
            "exact λ": self.theory_llc,
            "target T": self.finite_target,
            "R-hat": self.rhat,
            "ESS": self.ess,
            "acceptance": self.acceptance,
            "diverged": self.n_diverged,
            "status": self.status,
            **{k: v for k, v in self.settings.items() if k in HISTORY_SETTINGS},
        }


#: Settings shown as history columns (and compared in the diff).
HISTORY_SETTINGS = ("nbeta", "gamma", "epsilon", "chains", "draws", "burnin", "seed", "batch_size")


def mean_running_llc(traces: pd.DataFrame) -> pd.DataFrame:
    """The chain-mean running λ̂ per step over the draws (columns ``step, llc_running``)."""
    if traces.empty:
        return pd.DataFrame(columns=["step", "llc_running"])
    d = traces[traces["is_draw"].astype(bool)] if "is_draw" in traces else traces
    return d.groupby("step", sort=True)["llc_running"].mean().reset_index()


class RunHistory:
    """The session's run history (newest last).

    Backed by ``st.session_state``; the interface (``add``, ``records``, ``get``,
    ``frame``, ``clear``) is what a persistent store needs to provide to replace it.
    """

    KEY = "history.records"
    MAX = 200

    def __init__(self, state: Any = None) -> None:
        self.state = st.session_state if state is None else state
        if self.KEY not in self.state:
            self.state[self.KEY] = []

    def _list(self) -> list[RunRecord]:
        return self.state[self.KEY]

    def next_id(self) -> int:
        items = self._list()
        return (items[-1].id + 1) if items else 1

    def add(self, **fields: Any) -> RunRecord:
        """Append a record (``id`` assigned here) and return it."""
        record = RunRecord(id=self.next_id(), **fields)
        items = self._list()
        items.append(record)
        del items[: max(0, len(items) - self.MAX)]
        return record

    def records(self, page: str | None = None) -> list[RunRecord]:
        return [r for r in self._list() if page is None or r.page == page]

    def get(self, run_id: int) -> RunRecord | None:
        return next((r for r in self._list() if r.id == run_id), None)

    def frame(self, page: str | None = None) -> pd.DataFrame:
        rows = [r.row() for r in self.records(page)]
        return pd.DataFrame(rows)

    def clear(self) -> None:
        self.state[self.KEY] = []


def record_estimate(
    page: str,
    target_name: str,
    result: Any,
    *,
    finite_target: float | None = None,
    status: str = "complete",
    elapsed_s: float = float("nan"),
    traces: pd.DataFrame | None = None,
) -> RunRecord:
    """Append an :class:`~lltools.workflows.estimate.EstimateResult` to the history."""
    frame = traces if traces is not None else result.traces
    return RunHistory().add(
        page=page,
        target=target_name,
        settings=result.settings.as_dict(),
        llc_mean=float(result.llc_mean),
        llc_sem=float(result.llc_sem),
        rhat=float(result.rhat),
        ess=float(result.ess),
        acceptance=float(result.acceptance),
        n_diverged=len(result.diverged_chains),
        theory_llc=result.theory_llc,
        finite_target=finite_target,
        status=status,
        elapsed_s=elapsed_s,
        llc_trace=mean_running_llc(frame),
    )


def settings_diff(a: RunRecord, b: RunRecord) -> pd.DataFrame:
    """Rows for every setting (and the target) that differs between two runs."""
    rows = []
    ca, cb = f"run {a.tag}", f"run {b.tag}"
    if cb == ca:
        cb += " (2)"
    if a.target != b.target:
        rows.append({"setting": "target", ca: a.target, cb: b.target})
    for k in sorted(set(a.settings) | set(b.settings)):
        va, vb = a.settings.get(k), b.settings.get(k)
        if va != vb:
            rows.append({"setting": k, ca: str(va), cb: str(vb)})
    return pd.DataFrame(rows, columns=["setting", ca, cb])


def render_history(page: str | None = None, *, key: str = "history") -> None:
    """The run history: the store's runs (newest first, ``incomplete`` included).

    Select two rows to overlay their λ̂ traces and diff their settings; one to download it
    (``RunStore.export``).  ``page`` limits it to that page's runs.  A fragment (see
    :func:`dashboard.history.render_history`): selecting rows does not rerun the sampler.
    """
    from dashboard import history

    history.render_history(page, key=key)


def render_comparison(a: RunRecord, b: RunRecord, *, key: str = "history") -> None:
    """Overlay two runs' chain-mean running λ̂, say whether they differ, and diff their settings."""
    parts = [r.llc_trace.assign(run=r.label) for r in (a, b) if not r.llc_trace.empty]
    runs = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["run", "step", "llc_running"])
    )
    fig = plots.compare_runs_figure(runs)
    for r in (a, b):
        if r.theory_llc is not None:
            fig.add_hline(
                y=r.theory_llc,
                line_dash="dash",
                line_color="grey",
                annotation_text=f"exact λ ({r.tag})",
                annotation_position="bottom right",
            )
            break
    left, right = st.columns([3, 2])
    with left:
        show_figure(fig, key=f"{key}.compare")
    with right:
        st.markdown(f"**Run {a.tag} vs run {b.tag}**")
        d = b.llc_mean - a.llc_mean
        se = (
            math.hypot(a.llc_sem, b.llc_sem)
            if math.isfinite(a.llc_sem) and math.isfinite(b.llc_sem)
            else math.nan
        )
        z = abs(d) / se if se and math.isfinite(se) and se > 0 else math.nan
        verdict = (
            "within noise"
            if math.isfinite(z) and z < 2
            else "a real difference (more than 2 standard errors)"
            if math.isfinite(z)
            else "no error bars"
        )
        st.markdown(f"Δλ̂ = {fmt(d)} ({verdict}{', z = ' + fmt(z, 2) if math.isfinite(z) else ''}).")
        diff = settings_diff(a, b)
        if diff.empty:
            st.caption("Same settings.")
        else:
            st.dataframe(diff, hide_index=True, width="stretch")


# ============================================================================ teaching computations
# Small, cached computations behind the Learn page (kept here so pages hold no math).


@st.cache_data(max_entries=32, show_spinner="Counting samples below each level…")
def volume_scaling_table(
    spec: str, radius: float, num_samples: int, seed: int = 0
) -> tuple[pd.DataFrame, float, float]:
    """``(table, slope, stderr)`` of :func:`lltools.theory.core.volume_scaling` for a potential.

    The table has ``epsilon, volume (fraction of the box), count, in_fit``.
    """
    from lltools.theory import core as theory

    target = potential_target(spec)
    fn = getattr(getattr(target, "expression", None), "fn", None) or target.fn
    res = theory.volume_scaling(
        fn, target.w_star.double().cpu(), radius=radius, num_samples=num_samples, seed=seed
    )
    table = res.table.rename(columns={"fraction": "volume"})
    return table, float(res.llc), float(res.stderr)


@dataclass(frozen=True)
class NewtonView:
    """What the Newton-polyhedron panel draws: exponents, boundary vertices and the hit."""

    exponents: pd.DataFrame
    vertices: pd.DataFrame
    t: float
    llc: float
    multiplicity: int
    exact: bool | None
    note: str


def newton_view(text: str) -> NewtonView:
    """Parse a polynomial in x, y and compute its Newton polygon (``ValueError`` if not possible)."""
    from lltools.targets.expressions import parse_expression
    from lltools.theory import core as theory

    compiled = parse_expression(text)
    if compiled.dim != 2:
        raise ValueError("use the two variables x and y")
    poly = compiled.polynomial
    if poly is None:
        raise ValueError("this is not a polynomial with non-negative integer powers")
    terms = {k: v for k, v in poly.items() if any(k) and v != 0}
    if not terms:
        raise ValueError("the polynomial is constant: every point is a minimum")
    geo = theory.newton_polyhedron_2d(terms)
    return NewtonView(
        exponents=pd.DataFrame(list(geo.support), columns=["a", "b"]),
        vertices=pd.DataFrame(list(geo.vertices), columns=["a", "b"]),
        t=float(geo.t),
        llc=float(geo.llc),
        multiplicity=int(geo.multiplicity),
        exact=geo.exact,
        note=str(geo.note),
    )


def free_energy_curves(
    basins: Mapping[str, tuple[float, float]], n_min: float = 10.0, n_max: float = 1e7, points: int = 400
) -> tuple[pd.DataFrame, list[float]]:
    """F_n ≈ n·L + λ·log n for each basin (primer §1), and the n where the leader changes.

    Parameters
    ----------
    basins : mapping label -> (L, λ)
    Returns
    -------
    curves : DataFrame
        ``n, basin, free_energy`` (minus n·min L, so the curves share a scale) and
        ``posterior`` (each basin's share ∝ exp(−F_n), equal prior mass).
    crossovers : list of float
        Values of n in range where the two basins' free energies are equal (first two basins).

    See :func:`free_energy_difference` for ΔF_n = F_n(B) − F_n(A).
    """
    n = np.geomspace(n_min, n_max, points)
    labels = list(basins)
    l_min = min(L for L, _ in basins.values())
    f = {k: n * (L - l_min) + lam * np.log(n) for k, (L, lam) in basins.items()}
    stacked = np.vstack([f[k] for k in labels])
    logp = -(stacked - stacked.min(axis=0))
    post = np.exp(logp) / np.exp(logp).sum(axis=0)
    rows = [
        pd.DataFrame({"n": n, "basin": k, "free_energy": f[k], "posterior": post[i]})
        for i, k in enumerate(labels)
    ]
    crossings: list[float] = []
    out = pd.concat(rows, ignore_index=True)
    if len(labels) >= 2:
        (la, ma), (lb, mb) = basins[labels[0]], basins[labels[1]]

        def diff(x: float) -> float:
            return x * (la - lb) + (ma - mb) * math.log(x)

        grid = np.geomspace(n_min, n_max, 4000)
        vals = np.array([diff(x) for x in grid])
        for i in np.flatnonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0):
            lo, hi = grid[i], grid[i + 1]
            for _ in range(80):
                mid = math.sqrt(lo * hi)
                if np.sign(diff(mid)) == np.sign(diff(lo)):
                    lo = mid
                else:
                    hi = mid
            crossings.append(math.sqrt(lo * hi))
    return out, crossings


def free_energy_difference(
    basins: Mapping[str, tuple[float, float]], n_min: float = 10.0, n_max: float = 1e7, points: int = 400
) -> pd.DataFrame:
    """ΔF_n = F_n(B) − F_n(A) = n·(L_B − L_A) + (λ_B − λ_A)·log n for the first two basins.

    Columns ``n, delta``: the log posterior odds of A over B (positive: A wins).
    """
    (la, ma), (lb, mb) = list(basins.values())[:2]
    n = np.geomspace(n_min, n_max, points)
    return pd.DataFrame({"n": n, "delta": n * (lb - la) + (mb - ma) * np.log(n)})


#: 1-D potentials for the "what γ, ε, nβ do" demo: label -> (expression in w, w*).
DENSITY_POTENTIALS: dict[str, tuple[str, float]] = {
    "w² (regular, λ = 1/2)": ("w**2", 0.0),
    "w⁴ (singular, λ = 1/4)": ("w**4", 0.0),
    "double well (w² − 1)², w* = 1": ("(w**2 - 1)**2", 1.0),
}


def _density_fn(expr: str) -> Callable[[Any], Any]:
    """A batched torch function of w (C, 1) for the demo expressions (no parsing needed)."""
    if expr == "w**2":
        return lambda w: w[:, 0] ** 2
    if expr == "w**4":
        return lambda w: w[:, 0] ** 4
    if expr == "(w**2 - 1)**2":
        return lambda w: (w[:, 0] ** 2 - 1.0) ** 2
    raise ValueError(f"unknown demo potential {expr!r}")


@st.cache_data(max_entries=64, show_spinner="Sampling…")
def density_demo(
    label: str, nbeta: float, gamma: float, epsilon: float, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Exact localised tempered density vs an actual SGLD run for a 1-D potential.

    Returns ``(density, samples, stats)``: ``density`` has columns ``w, density, label``
    (the posterior p(w) ∝ exp(−nβ(L − L*) − (γ/2)(w − w*)²) and, scaled to the same peak,
    its two factors); ``samples`` has column ``w`` (draws after burn-in, all chains);
    ``stats`` has ``target`` (exact nβ·E_p[L − L*]), ``llc``, ``sem``, ``acceptance``,
    ``diverged`` and ``mass_other_basin`` (exact probability of w < 0, for the double well).
    """
    import torch

    from lltools.targets.base import FunctionTarget
    from lltools.workflows.estimate import estimate

    expr, w_star = DENSITY_POTENTIALS[label]
    fn = _density_fn(expr)
    w = np.linspace(w_star - 3.0, w_star + 3.0, 24001)
    with torch.no_grad():
        loss = fn(torch.tensor(w[:, None], dtype=torch.float64)).numpy()
        l_star = float(fn(torch.tensor([[w_star]], dtype=torch.float64))[0])
    energy = nbeta * (loss - l_star) + 0.5 * gamma * (w - w_star) ** 2
    dens = np.exp(-(energy - energy.min()))
    dw = w[1] - w[0]
    z = dens.sum() * dw
    dens /= z
    target_value = float(nbeta * ((loss - l_star) * dens).sum() * dw)
    other = float(dens[w < 0].sum() * dw) if w_star > 0 else float("nan")
    like = np.exp(-(nbeta * (loss - l_star) - (nbeta * (loss - l_star)).min()))
    prior = np.exp(-0.5 * gamma * (w - w_star) ** 2) if gamma > 0 else np.ones_like(w)
    peak = dens.max()
    # Keep the window where anything is visible (plus the draws), thinned for the browser.
    visible = (dens > peak * 1e-4) | (like * peak > peak * 1e-3)
    idx = np.flatnonzero(visible)
    lo, hi = (idx.min(), idx.max()) if idx.size else (0, len(w) - 1)
    sl = slice(max(lo - 50, 0), min(hi + 50, len(w) - 1) + 1)
    step = max(1, (sl.stop - sl.start) // 1500)
    ws = w[sl][::step]
    density = pd.concat(
        [
            pd.DataFrame({"w": ws, "density": dens[sl][::step], "label": "posterior p(w)"}),
            pd.DataFrame({"w": ws, "density": like[sl][::step] * peak, "label": "exp(−nβ·L) (scaled)"}),
            pd.DataFrame(
                {
                    "w": ws,
                    "density": prior[sl][::step] * peak,
                    "label": "localisation exp(−γ/2·(w−w*)²) (scaled)",
                }
            ),
        ],
        ignore_index=True,
    )

    target = FunctionTarget(fn, torch.tensor([w_star], dtype=torch.float32), name=expr)
    res = estimate(
        target,
        nbeta=nbeta,
        gamma=gamma,
        epsilon=epsilon,
        chains=32,
        draws=1500,
        burnin=300,
        seed=seed,
        device="cpu",
    )
    tr = res.trace
    samples = pd.DataFrame({"w": []})
    if tr.positions is not None and tr.position_steps is not None:
        keep = (tr.position_steps >= tr.num_burnin).numpy()
        pos = tr.positions.numpy()[:, keep, 0]
        pos = pos[(tr.diverged_at.numpy() < 0)]
        vals = pos.ravel()
        vals = vals[np.isfinite(vals)]
        samples = pd.DataFrame({"w": vals})
    stats = {
        "target": target_value,
        "llc": float(res.llc_mean),
        "sem": float(res.llc_sem),
        "acceptance": float(res.acceptance),
        "diverged": float(len(res.diverged_chains)),
        "chains": float(res.n_chains),
        "mass_other_basin": other,
        "sampled_other_basin": float((samples["w"] < 0).mean())
        if w_star > 0 and len(samples)
        else float("nan"),
    }
    return density, samples, stats
