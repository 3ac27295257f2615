"""The shared look of every figure, and the small helpers the figure builders share.

Pure Plotly figure builders: tidy DataFrames in, ``go.Figure`` out.

Every figure in the dashboard (and in notebooks) comes from here, so they share one
look: the :func:`template` (light or dark, normal or lecture-size fonts), one fixed colour
per chain (:func:`chain_color`), and named reference lines (the exact λ, the finite-nβ
target T(nβ, γ)) that tests can find by ``trace.meta["role"]``.

Nothing here imports Streamlit or runs a sampler.  Inputs are the tidy frames of
:mod:`lltools.estimation.frames` (``chain, step, is_draw, loss, llc_running, ...``), the per-setting
sweep table of :mod:`lltools.workflows.sweep` (``setting, epsilon, gamma, nbeta, llc_mean, ...``)
and small frames computed by :mod:`lltools.theory`.

Conventions
-----------
- Each trace carries ``meta={"role": ...}``: ``"chain"``, ``"mean"``, ``"theory"``,
  ``"target"``, ``"fit"``, ``"data"``, ``"burnin"``, ``"healthy"``, ``"start"``...
  Roles ``"mean"`` and ``"theory"`` are drawn in the theme's foreground colour, which
  :func:`style_figure` fills in for light or dark backgrounds.
- Long traces are thinned to at most ``max_points`` per chain for the browser
  (statistics are always computed on the full trace elsewhere).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# ----------------------------------------------------------------------------- palette

#: One fixed colour per chain (chain k uses ``CHAIN_COLORS[k % 10]``).  A Tableau-10-like
#: set that keeps its contrast on white and on near-black backgrounds.
CHAIN_COLORS: tuple[str, ...] = (
    "#4C9BE8",  # blue
    "#F58518",  # orange
    "#54A24B",  # green
    "#E45756",  # red
    "#B279A2",  # purple
    "#72B7B2",  # teal
    "#EECA3B",  # yellow
    "#FF9DA6",  # pink
    "#9D755D",  # brown
    "#A0CBE8",  # light blue
)

#: The theme's foreground colour, used for the cross-chain mean and the exact λ.
FOREGROUND = {"light": "#1F2430", "dark": "#E8EAF0"}
#: Colour of the exact finite-nβ target T(nβ, γ) (distinct from every chain colour).
TARGET_COLOR = "#C2185B"
#: Colour marking healthy settings on heatmaps.
HEALTHY_COLOR = "#2CA02C"
#: The recommended setting of a calibration (star and heatmap outline).
RECOMMENDED_COLOR = "#FFD400"
#: Continuous colour scales (readable in both themes).
SEQUENTIAL = "Viridis"
DIVERGING = "RdBu_r"

FONT_FAMILY = "Inter, 'Source Sans 3', 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif"


def chain_color(chain: int) -> str:
    """The fixed colour of chain ``chain`` (wraps after 10 chains)."""
    return CHAIN_COLORS[int(chain) % len(CHAIN_COLORS)]


def template(*, dark: bool = False, large: bool = False) -> go.layout.Template:
    """The lltools Plotly template (a fresh copy of one built once per ``dark``/``large``:
    building it validates a few hundred properties, ~0.07 s, and every figure uses it twice).

    Parameters
    ----------
    dark : bool
        Light text and grid for a dark page background.  Backgrounds are transparent in
        both cases, so the figure sits on the app's own background.
    large : bool
        Lecture-projector sizes: bigger fonts, thicker lines, larger margins.
    """
    return go.layout.Template(_template(bool(dark), bool(large)))


@functools.lru_cache(maxsize=4)
def _template(dark: bool, large: bool) -> go.layout.Template:
    """The template of :func:`template`, built once per combination (never handed out: copied)."""
    key = "dark" if dark else "light"
    fg = FOREGROUND[key]
    grid = "rgba(210,214,224,0.16)" if dark else "rgba(40,44,60,0.10)"
    axis_line = "rgba(210,214,224,0.45)" if dark else "rgba(40,44,60,0.45)"
    size = 21 if large else 14
    axis = {
        "gridcolor": grid,
        "zerolinecolor": grid,
        "linecolor": axis_line,
        "showline": True,
        "ticks": "outside",
        "tickcolor": axis_line,
        "title": {"standoff": 10, "font": {"size": size + 1}},
        "automargin": True,
        "exponentformat": "power",
    }
    tpl = go.layout.Template()
    tpl.layout = go.Layout(
        font={"family": FONT_FAMILY, "size": size, "color": fg},
        title={
            "font": {"size": size + 4},
            "x": 0.0,
            "xanchor": "left",
            "xref": "paper",
            "y": 1.0,
            "yanchor": "top",
            "yref": "container",
            "pad": {"t": 14 if large else 10},
        },
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        colorway=list(CHAIN_COLORS),
        xaxis=axis,
        yaxis=axis,
        legend={
            "bgcolor": "rgba(0,0,0,0)",
            "orientation": "h",
            "yref": "container",
            "yanchor": "bottom",
            "y": 0.0,
            "xanchor": "left",
            "x": 0.0,
            "font": {"size": size - 2},
            "itemsizing": "constant",
            "itemwidth": 30,
        },
        # The title sits in the top margin (container-anchored), clear of subplot titles.
        margin={"l": 70 if large else 60, "r": 24, "t": 84 if large else 64, "b": 64 if large else 52},
        hoverlabel={"font": {"family": FONT_FAMILY, "size": size - 1}},
        hovermode="closest",
        coloraxis={"colorbar": {"outlinewidth": 0, "tickfont": {"size": size - 2}}},
    )
    tpl.data.scatter = [go.Scatter(line={"width": 2.6 if large else 1.6})]
    tpl.data.heatmap = [go.Heatmap(colorbar={"outlinewidth": 0})]
    tpl.data.contour = [go.Contour(colorbar={"outlinewidth": 0})]
    return tpl


def style_figure(fig: go.Figure, *, dark: bool = False, large: bool = False) -> go.Figure:
    """Apply :func:`template` to ``fig`` in place and return it.

    Traces with ``meta["role"]`` in {"mean", "theory"} get the theme's foreground colour;
    with ``large`` every explicit line width and marker size is scaled by 1.6.
    """
    fg = FOREGROUND["dark" if dark else "light"]
    fig.update_layout(template=_template(bool(dark), bool(large)))  # plotly copies it
    scale = 1.6 if large else 1.0
    for tr in fig.data:
        role = _role(tr)
        if role in ("mean", "theory") and hasattr(tr, "line"):
            tr.line.color = fg
        if role == "theory" and hasattr(tr, "marker") and tr.marker is not None:
            tr.marker.color = fg
        line = getattr(tr, "line", None)
        if large and line is not None and getattr(line, "width", None):
            line.width = line.width * scale
        marker = getattr(tr, "marker", None)  # a histogram's or a bar's marker has no size
        if large and marker is not None and isinstance(getattr(marker, "size", None), int | float):
            marker.size = marker.size * scale
    for ann in fig.layout.annotations or ():
        if ann.font is None or ann.font.color is None:
            ann.font = {"color": fg}
    return fig


def _role(trace: Any) -> str | None:
    meta = getattr(trace, "meta", None)
    if isinstance(meta, dict):
        return meta.get("role")
    return None


def _chain_legend(chain: int, first: bool, num_chains: int) -> dict[str, Any]:
    """Legend settings so all chains share ONE legend entry ("chains 0–k") that toggles them."""
    label = "chain 0" if num_chains == 1 else f"chains 0–{num_chains - 1}"
    return {"legendgroup": "chains", "showlegend": first, "name": label if first else f"chain {chain}"}


def _robust_range(
    values: np.ndarray, refs: Sequence[float | None] = (), pad: float = 0.08, quantile: float = 0.01
) -> list[float] | None:
    """A y range covering the ``quantile``–(1 − ``quantile``) range of ``values`` (default the
    1st–99th percentile; 0 for all of them) and every reference value."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    lo, hi = np.quantile(v, [quantile, 1.0 - quantile])
    for r in refs:
        if r is not None and math.isfinite(float(r)):
            lo, hi = min(lo, float(r)), max(hi, float(r))
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    return [float(lo - pad * span), float(hi + pad * span)]


def _new_figure(title: str | None, x_title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        template=_template(False, False),  # plotly copies it
        title={"text": title} if title else None,
        xaxis_title=x_title,
        yaxis_title=y_title,
    )
    return fig


def thin(frame: pd.DataFrame, max_points: int, by: str = "chain") -> pd.DataFrame:
    """Keep at most ``max_points`` evenly spaced rows per ``by`` group (always the last)."""
    if frame.empty or max_points <= 0:
        return frame
    parts = []
    for _, group in frame.groupby(by, sort=True):
        n = len(group)
        if n <= max_points:
            parts.append(group)
            continue
        idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
        parts.append(group.iloc[idx])
    return pd.concat(parts) if parts else frame


def grid_matrix(grid: pd.DataFrame, value: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xs, ys, z)`` with z[i, j] = value at (xs[j], ys[i]) from a long-form grid frame.

    Fast for regular grids (no pandas pivot); missing cells are NaN, duplicates averaged.
    """
    x = grid["x"].to_numpy(dtype=float)
    y = grid["y"].to_numpy(dtype=float)
    v = grid[value].to_numpy(dtype=float)
    xs, xi = np.unique(x, return_inverse=True)
    ys, yi = np.unique(y, return_inverse=True)
    total = np.zeros((len(ys), len(xs)))
    count = np.zeros((len(ys), len(xs)))
    np.add.at(total, (yi, xi), v)
    np.add.at(count, (yi, xi), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    return xs, ys, z


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{float(value):.{digits}g}"


def format_number(value: float | None, digits: int = 3) -> str:
    """Compact human formatting used in titles and legends (``n/a`` for NaN/None)."""
    return _fmt(value, digits)


def format_estimate(value: float | None, se: float | None, digits: int = 3) -> str:
    """"0.558 ± 0.13 (SE)": the one way a value and its standard error are written, in figure
    legends and page captions alike (so the two never show different error bars)."""
    text = _fmt(value, digits)
    if se is not None and math.isfinite(float(se)):
        text += f" ± {_fmt(float(se), 2)} (SE)"
    return text


def _hline(
    fig: go.Figure,
    x0: float,
    x1: float,
    y: float,
    *,
    name: str,
    role: str,
    color: str | None,
    dash: str,
    width: float = 2.0,
) -> None:
    fig.add_trace(
        go.Scatter(
            x=[x0, x1],
            y=[y, y],
            mode="lines",
            name=name,
            line={"color": color, "dash": dash, "width": width},
            hovertemplate=f"{name}<extra></extra>",
            meta={"role": role, "value": float(y)},
        )
    )


def _theory_line(
    fig: go.Figure, x0: float, x1: float, theory_llc: float | None, *, dash: str = "dash",
    label: str = "exact λ",
) -> None:
    """The theory λ from ``x0`` to ``x1`` in the foreground colour, named ``label`` ("exact λ"
    only for an exact value: pass the theory record's label); nothing if it is unknown."""
    if theory_llc is not None and math.isfinite(float(theory_llc)):
        _hline(
            fig,
            x0,
            x1,
            float(theory_llc),
            name=f"{label} = {_fmt(theory_llc)}",
            role="theory",
            color=FOREGROUND["light"],
            dash=dash,
        )


def _target_line(fig: go.Figure, x0: float, x1: float, finite_target: float | None) -> None:
    """The finite-nβ target T from ``x0`` to ``x1``, dotted; nothing if it is unknown."""
    if finite_target is not None and math.isfinite(float(finite_target)):
        _hline(
            fig,
            x0,
            x1,
            float(finite_target),
            name=f"target T = {_fmt(finite_target)}",
            role="target",
            color=TARGET_COLOR,
            dash="dot",
            width=2.4,
        )


def _band(
    fig: go.Figure, x0: float, x1: float, lo: float, hi: float, *, name: str, fillcolor: str, role: str
) -> None:
    """A filled rectangle ``[x0, x1] × [lo, hi]`` (no outline, no hover)."""
    fig.add_trace(
        go.Scatter(
            x=[x0, x1, x1, x0, x0],
            y=[lo, lo, hi, hi, lo],
            fill="toself",
            mode="lines",
            line={"width": 0},
            fillcolor=fillcolor,
            name=name,
            hoverinfo="skip",
            meta={"role": role},
        )
    )


def _sem_error_y(sem: pd.Series, thickness: float) -> dict[str, Any]:
    """Error bars of ± 2·SEM (a missing SEM draws none)."""
    return {"type": "data", "array": 2 * sem.fillna(0).to_numpy(), "visible": True, "thickness": thickness}


def _recommended_star(fig: go.Figure, x: Any, y: Any, *, size: int, hoverinfo: str | None = None) -> None:
    """The recommended setting: a yellow star at (``x``, ``y``)."""
    fig.add_trace(
        go.Scatter(
            x=[x],
            y=[y],
            mode="markers",
            name="recommended",
            marker={
                "symbol": "star",
                "size": size,
                "color": RECOMMENDED_COLOR,
                "line": {"width": 1.5, "color": "black"},
            },
            hoverinfo=hoverinfo,
            meta={"role": "recommended"},
        )
    )
