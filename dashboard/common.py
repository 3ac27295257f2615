"""Shared dashboard helpers: chrome, state, caching, live runs, downloads and run history.

Every page follows one shape: widgets -> params -> cached (or live) run -> figures from
:mod:`lltools.viz`.  This module holds everything the pages share, so that a page file
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
  :func:`potential_grid` (``st.cache_data``; λ and T(nβ, γ) live in :mod:`dashboard.theory`,
  computed in the background) and
  :class:`ResultCache` for streamed runs (keyed by their settings).
- **Live runs** — :class:`LiveRun`: Run/Stop buttons, a request/stop protocol over
  ``st.session_state``, a progress bar with rate and ETA, and the partial trace kept for
  Stop.
- **Downloads** — :func:`download_buttons` (CSV and Parquet for every frame).
- **Run store** — :func:`record_live` wraps a page's stream with
  :func:`lltools.storage.recording.record_stream`, so every run is saved while it runs into the
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
import os
import string
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from lltools import viz as plots
from lltools.base.untrusted import terminal_safe
from lltools.targets.models import folder_card, list_sample_models, load_sample_model
from lltools.targets.potentials import potential_target as build

ROOT = Path(__file__).resolve().parents[1]

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


def large_fonts() -> bool:
    """Whether lecture mode is on."""
    return bool(st.session_state.get(LARGE_KEY, False))


#: Session-state key of :func:`dashboard.components.theme_probe`'s value (the theme the page shows).
THEME_KEY = "lltools.theme_probe"
#: URL parameter that keeps lecture mode across reloads and in shared links.
LECTURE_PARAM = "lecture"


def control_split() -> list[float]:
    """Widths of a page's controls column and main column: wider controls in lecture mode, so
    the large-font inputs show their values in full at 1280 × 720."""
    return [1.0, 2.0] if large_fonts() else [1.0, 3.2]


def is_dark() -> bool:
    """Whether the app is showing its dark theme.

    The browser's theme probe (:func:`dashboard.components.theme_probe`) knows at once when the
    user switches theme; Streamlit's own ``st.context.theme`` only on a later rerun, so it is
    the fallback until the probe has reported.
    """
    reported = st.session_state.get(THEME_KEY)
    if reported in ("light", "dark"):
        return reported == "dark"
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


#: The ASCII punctuation that Markdown links and autolinks (``[ ] ( ) : . @ <``), HTML, emphasis,
#: code, emoji shortcodes or Streamlit's formulas and colour directives read (CommonMark lets
#: each be backslash-escaped); ``= , ; ' " ? / % >`` are harmless on one line and stay readable.
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in string.punctuation if c not in "=,;'\"?/%>"})


def plain(text: Any) -> str:
    """``text`` from elsewhere made inert in Markdown: shown literally, never as markup.

    Every user-supplied string rendered through Markdown (file names, model-card fields,
    expressions, run labels, error messages quoting them) goes through this.  Control
    characters and terminal escapes are dropped, line breaks become spaces (no new block can
    start), and every ASCII punctuation character is backslash-escaped, so ``[text](url)``,
    bare ``https://`` autolinks, ``<html>``, headings, emphasis, ``:emoji:`` shortcodes and
    Streamlit's ``$…$`` formulas all render as the literal characters.
    """
    return terminal_safe(text, keep_newlines=False).translate(_MD_SPECIAL)


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
    if batch is not None and batch < result.num_chains:
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


def held(key: str, fallback: Any = "min", lo: float | None = None, hi: float | None = None) -> Any:
    """The value a keyed widget is created with (``value=``): the one Session State holds.

    Widgets whose value lives in Session State must still be *created* with it: a number
    input or slider created without ``value=`` declares its minimum as its default, and when
    the browser misses the one message that sets the value from Session State (a rerun that
    supersedes the first run of a freshly opened page, e.g. the theme probe answering while
    a slow first run is still going), it starts from that default and sends it back on the
    next click — a run at nβ = 0.001, ε = 10⁻⁹, one chain (λ̂ ≈ 5·10⁻¹², seen in the real
    browser).  ``fallback`` is used when the key is not set ("min": Streamlit's own default).
    A number is clamped into ``[lo, hi]`` (the widget's bounds): Streamlit refuses a default
    outside them, and a value there (settings from elsewhere) is reset to it.
    """
    value = st.session_state.get(key, fallback)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if lo is not None and value < lo:
            value = type(value)(lo)
        if hi is not None and value > hi:
            value = type(value)(hi)
    return value


def held_index(key: str, options: Sequence[Any]) -> int:
    """``index=`` for a keyed selectbox or radio: the position of the value Session State holds
    (0 when it holds none of the options); see :func:`held`."""
    value = st.session_state.get(key)
    return list(options).index(value) if value in options else 0


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


def go_to_page(goto_key: str, fallback_key: str) -> None:
    """Open the page a callback asked for with ``st.session_state[goto_key] = (file, title)``
    (a file under ``dashboard/views/``; callbacks cannot switch pages, so a page calls this at
    its top).  A page run on its own, not through ``dashboard/app.py``, cannot switch: then
    ``st.session_state[fallback_key]`` gets the title, for an "open <title>" message."""
    target = st.session_state.pop(goto_key, None)
    if not target:
        return
    file, title = target
    try:
        st.switch_page(Path(__file__).resolve().parent / "views" / file)
    except StreamlitAPIException:
        st.session_state[fallback_key] = title


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
    #: Optional check of the parsed value against the values parsed before it (e.g. a checkpoint
    #: of the model named earlier in the URL): a problem message, or ``None`` when it is valid.
    valid: Callable[[Any, Mapping[str, Any]], str | None] | None = None

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


#: The six sampler settings: widget key suffix -> kind (the URL parameter has the same name).
SAMPLER_KINDS: dict[str, type] = {"nbeta": float, "gamma": float, "epsilon": float, "chains": int,
                                  "draws": int, "burnin": int}


def sampler_bounds(inputs: SamplerInputs) -> dict[str, tuple[float, float]]:
    """``{name: (min, max)}`` of a page's six sampler inputs (:data:`SAMPLER_KINDS`): the
    widgets' bounds, and the URL's (:func:`sampler_query`), which must be the same."""
    return {"nbeta": (1e-3, inputs.nbeta_max), "gamma": (0.0, inputs.gamma_max),
            "epsilon": (inputs.epsilon_min, 1.0), "chains": (1, inputs.chains_max),
            "draws": (10, inputs.draws_max), "burnin": (0, 100_000)}


def sampler_query(prefix: str, inputs: SamplerInputs) -> dict[str, QueryParam]:
    """URL parameters ``nbeta=…&gamma=…&epsilon=…&chains=…&draws=…&burnin=…`` for the inputs of
    :func:`sampler_controls`, clamped into the widgets' own bounds (a link cannot set a value
    the input refuses)."""
    return {name: QueryParam(f"{prefix}.{name}", SAMPLER_KINDS[name], lo=lo, hi=hi)
            for name, (lo, hi) in sampler_bounds(inputs).items()}


def sampler_controls(
    prefix: str, inputs: SamplerInputs, *, running: bool, batch_max: int | None = None
) -> tuple[Any, Any]:
    """Draw the nβ, γ, ε, chains, draws and burn-in inputs in two columns.

    Their values live in Session State under ``f"{prefix}.nbeta"`` etc. (seed them with
    :func:`init_state`); each input is created with that value (:func:`held`).  With
    ``batch_max`` (the network pages) the minibatch size (``.batch``, 0 = full batch) and the
    seed (``.seed``) follow.
    Returns the two columns, so the page can add its own inputs below in the same grid.
    """
    c1, c2 = st.columns(2)
    i = inputs
    bounds = sampler_bounds(i)
    rows = (  # column, label, key suffix, step, format, help
        (c1, i.nbeta_label, "nbeta", i.nbeta_step, "%g", i.nbeta_help),
        (c2, i.gamma_label, "gamma", i.gamma_step, "%g", i.gamma_help),
        (c1, i.epsilon_label, "epsilon", i.epsilon_step, "%.2e", i.epsilon_help),
        (c2, "chains", "chains", 1, None, i.chains_help),
        (c1, "draws", "draws", i.draws_step, None, None),
        (c2, "burn-in", "burnin", 100, None, None),
    )
    for col, label, name, step, fmt, help_text in rows:
        lo, hi = bounds[name]
        col.number_input(
            label,
            min_value=lo,
            max_value=hi,
            value=held(f"{prefix}.{name}", "min", lo, hi),
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
            value=held(f"{prefix}.batch", "min", 0, batch_max),
            step=32,
            key=f"{prefix}.batch",
            disabled=running,
            help=inputs.batch_help,
        )
        c2.number_input(
            "seed", min_value=0, max_value=2**31 - 1, value=held(f"{prefix}.seed"), step=1,
            key=f"{prefix}.seed", disabled=running
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


def card_n(card: Mapping[str, Any]) -> int | None:
    """The training-set size n of a model: its card's ``n``, else that of the loaded folder
    (a folder given by ``model.py`` alone; loading it is cached), else None."""
    if card.get("n"):
        return int(card["n"])
    if not card.get("path"):
        return None
    try:
        return int(sample_model_target(str(card["path"])).n)
    except Exception:  # shown by the page that loads the target
        return None


def card_sampler_values(prefix: str, card: Mapping[str, Any], sampler: Mapping[str, Any]) -> dict[str, Any]:
    """Widget values (keys ``f"{prefix}.nbeta"`` … ``.burnin`` and ``.batch``) for a model.

    ``sampler`` is the model card's settings (``default_sampler``, or the Networks page's
    first-click :func:`lltools.targets.cards.first_run_settings`; possibly updated); a missing nβ
    is n/log n (100 without a usable n), a missing batch size is 0 (full batch).
    """
    n = card_n(card)
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
            problem = param.valid(parsed, values) if param.valid else None
            if problem:
                raise ValueError(problem)
            values.update(param.apply(parsed) if param.apply else {param.key: parsed})
        except (TypeError, ValueError) as exc:
            problems.append(f"ignored URL parameter {name}={str(raw)[:80]!r}: {exc}")
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
        out[name] = f"{v:.12g}" if isinstance(v, float) else str(v)  # a link reproduces nβ = 2019.491
    if st.session_state.get(LARGE_KEY):
        out[LECTURE_PARAM] = "1"  # an app-wide setting: keep it when a page rewrites its own
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
    return build(spec, device=POTENTIAL_DEVICE)


def expression_error_text(exc: BaseException, text: str) -> str:
    """A two-line message pointing at the offending column of a bad expression."""
    column = getattr(exc, "column", None)
    msg = plain(str(exc))
    if (column is not None and isinstance(column, int) and 1 <= column <= len(text) + 1
            and len(text) <= 200 and "`" not in text and "\n" not in text):
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
        return None, f"Could not build this potential ({type(exc).__name__}: {plain(exc)})."


def potential_picker(
    pot_key: str, expr_key: str, *, disabled: bool = False, label: str = "Potential L(x, y)",
    only_2d: str | None = None, on_change: Callable[[], None] | None = None,
) -> tuple[str, Any | None, str | None]:
    """Built-in potential selectbox + custom expression input, with inline errors.

    The keys must have been seeded with :func:`init_state`.  Returns ``(spec, target,
    error)``: the spec string, the cached target (``None`` on error) and the error text.
    Target warnings (e.g. "w* is not a local minimum") are shown as warnings.  With
    ``only_2d`` (the page's name), a potential in other than two variables is an error.
    ``on_change`` runs when another potential is chosen (e.g. to apply its preset).
    """
    choices = [*POTENTIAL_LABELS, CUSTOM]
    st.selectbox(
        label,
        choices,
        index=held_index(pot_key, choices),
        key=pot_key,
        disabled=disabled,
        on_change=on_change,
        format_func=lambda s: POTENTIAL_LABELS.get(s, "Custom expression…"),
    )
    custom = st.session_state.get(pot_key) == CUSTOM
    if custom:
        st.text_input(
            "Expression in x and y",
            value=held(expr_key, ""),
            key=expr_key,
            disabled=disabled,
            placeholder="x**2 * y**2 + x**6",
            help="Use + − * / ** and sin cos tan exp log sqrt abs tanh, pi. w* is the origin.",
        )
    spec = str(st.session_state.get(expr_key, "")).strip() if custom else str(st.session_state.get(pot_key))
    target, error = try_potential(spec)
    if target is not None and only_2d and getattr(target, "dim", 2) != 2:
        target, error = None, (
            f"the {only_2d} page plots x and y, and this potential has {target.dim} variables; "
            "use the CLI or Learn for more dimensions."
        )
    if error:
        user_error(f"**Invalid expression.** {error}")
    elif target is not None:
        for w in target.warnings:
            st.warning(plain(w), icon=":material/warning:")
    return spec, target, error


MODEL_PREFIX = "model:"


#: Model folders given at launch (``make app MODELS="DIR1 DIR2"``), ``os.pathsep``-separated.
MODELS_ENV = "LLTOOLS_MODELS"


def launch_model_paths() -> list[str]:
    """The model folders named by :data:`MODELS_ENV` (absolute; folders that do not exist are
    left out).  Only the person who starts the app chooses them: never the browser or a URL."""
    raw = os.environ.get(MODELS_ENV, "")
    paths = [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]
    return [str(p) for p in paths if p.is_dir()]


def model_cards(root: str | Path | None = None) -> list[dict[str, Any]]:
    """The shipped model folders under ``root`` (default ``sample_models/``), then the folders
    given at launch (:func:`launch_model_paths`; ``"user": True``), each a card with ``path``.
    A folder whose card cannot be read is skipped (never takes a page down)."""
    try:
        cards = list_sample_models(root or ROOT / "sample_models")
    except Exception:  # a broken card must not take a page down
        cards = []
    seen = {str(c["path"]) for c in cards}
    for path in launch_model_paths():
        if path in seen:
            continue
        try:
            card = folder_card(path)
        except Exception:
            card = None
        if card is not None:
            cards.append({**card, "user": True})
            seen.add(path)
    return cards


@st.cache_data(ttl=120, show_spinner=False)
def sample_model_cards() -> list[dict[str, Any]]:
    """The shipped model folders' cards and those given at launch (:func:`model_cards`)."""
    return model_cards()


@st.cache_resource(max_entries=8, show_spinner="Loading the model and its data…")
def sample_model_target(path: str) -> Any:
    """A sample model centred at its final checkpoint (cached per path)."""
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


# ============================================================================ downloads


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of ``frame`` (pyarrow)."""
    buf = io.BytesIO()
    clean = frame.copy()
    clean.attrs = {}  # pandas would try to serialise attrs into the Parquet metadata
    clean.to_parquet(buf, index=False)
    return buf.getvalue()


def _csv_bytes(frame: pd.DataFrame) -> Callable[[], bytes]:
    return lambda: frame.to_csv(index=False).encode()


def _parquet_bytes(frame: pd.DataFrame) -> Callable[[], bytes]:
    return lambda: to_parquet_bytes(frame)


def download_buttons(frames: Mapping[str, pd.DataFrame], *, basename: str, key: str) -> None:
    """CSV and Parquet download buttons for every non-empty frame, in one row per frame.

    The files are made when a button is clicked (deferred ``data``), not on every script
    run: a toy run's traces as CSV and Parquet cost about a second of the page's redraw."""
    for name, frame in frames.items():
        if frame is None or frame.empty:
            continue
        c0, c1, c2 = st.columns([2, 1, 1])
        c0.markdown(f"**{name}** · {len(frame):,} rows × {frame.shape[1]} columns")
        slug = f"{basename}_{name.lower().replace(' ', '_')}"
        c1.download_button(
            "CSV",
            _csv_bytes(frame),
            file_name=f"{slug}.csv",
            mime="text/csv",
            key=f"{key}.{name}.csv",
            width="stretch",
            icon=":material/download:",
            on_click="ignore",  # no rerun: quick successive clicks must not cancel each other
        )
        c2.download_button(
            "Parquet",
            _parquet_bytes(frame),
            file_name=f"{slug}.parquet",
            mime="application/vnd.apache.parquet",
            key=f"{key}.{name}.parquet",
            width="stretch",
            icon=":material/download:",
            on_click="ignore",  # no rerun: quick successive clicks must not cancel each other
        )

