"""Pure Plotly figure builders: tidy DataFrames in, ``go.Figure`` out.

Every figure in the dashboard (and in notebooks) comes from here, so they share one
look: the :func:`template` (light or dark, normal or lecture-size fonts), one fixed colour
per chain (:func:`chain_color`), and named reference lines (the exact λ, the finite-nβ
target T(nβ, γ)) that tests can find by ``trace.meta["role"]``.

Nothing here imports Streamlit or runs a sampler.  Inputs are the tidy frames of
:mod:`lltools.estimation.frames` (``chain, step, is_draw, loss, llc_running, ...``), the per-setting
sweep table of :mod:`lltools.workflows.sweep` (``setting, epsilon, gamma, nbeta, llc_mean, ...``)
and small frames computed by :mod:`lltools.theory.core`.

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
#: Continuous colour scales (readable in both themes).
SEQUENTIAL = "Viridis"
DIVERGING = "RdBu_r"

FONT_FAMILY = "Inter, 'Source Sans 3', 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif"


def chain_color(chain: int) -> str:
    """The fixed colour of chain ``chain`` (wraps after 10 chains)."""
    return CHAIN_COLORS[int(chain) % len(CHAIN_COLORS)]


def template(*, dark: bool = False, large: bool = False) -> go.layout.Template:
    """The lltools Plotly template.

    Parameters
    ----------
    dark : bool
        Light text and grid for a dark page background.  Backgrounds are transparent in
        both cases, so the figure sits on the app's own background.
    large : bool
        Lecture-projector sizes: bigger fonts, thicker lines, larger margins.
    """
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
    fig.update_layout(template=template(dark=dark, large=large))
    scale = 1.6 if large else 1.0
    for tr in fig.data:
        role = _role(tr)
        if role in ("mean", "theory") and hasattr(tr, "line"):
            tr.line.color = fg
        if role == "theory" and hasattr(tr, "marker") and tr.marker is not None:
            tr.marker.color = fg
        if large and hasattr(tr, "line") and tr.line is not None and tr.line.width:
            tr.line.width = tr.line.width * scale
        if (
            large
            and hasattr(tr, "marker")
            and tr.marker is not None
            and isinstance(tr.marker.size, int | float)
        ):
            tr.marker.size = tr.marker.size * scale
    for ann in fig.layout.annotations or ():
        if ann.font is None or ann.font.color is None:
            ann.font = {"color": fg}
    return fig


def _role(trace: Any) -> str | None:
    meta = getattr(trace, "meta", None)
    if isinstance(meta, dict):
        return meta.get("role")
    return None


def _chain_legend(chain: int, first: bool, n_chains: int) -> dict[str, Any]:
    """Legend settings so all chains share ONE legend entry ("chains 0–k") that toggles them."""
    label = "chain 0" if n_chains == 1 else f"chains 0–{n_chains - 1}"
    return {"legendgroup": "chains", "showlegend": first, "name": label if first else f"chain {chain}"}


def _robust_range(
    values: np.ndarray, refs: Sequence[float | None] = (), pad: float = 0.08
) -> list[float] | None:
    """A y range covering the 1st–99th percentile of ``values`` and every reference value."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    lo, hi = np.quantile(v, [0.01, 0.99])
    for r in refs:
        if r is not None and math.isfinite(float(r)):
            lo, hi = min(lo, float(r)), max(hi, float(r))
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    return [float(lo - pad * span), float(hi + pad * span)]


def _new_figure(title: str | None, x_title: str, y_title: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        template=template(),
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
    fig: go.Figure, x0: float, x1: float, theory_llc: float | None, *, dash: str = "dash"
) -> None:
    """The exact λ from ``x0`` to ``x1`` in the foreground colour; nothing if it is unknown."""
    if theory_llc is not None and math.isfinite(float(theory_llc)):
        _hline(
            fig,
            x0,
            x1,
            float(theory_llc),
            name=f"exact λ = {_fmt(theory_llc)}",
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
                "color": "#FFD400",
                "line": {"width": 1.5, "color": "black"},
            },
            hoverinfo=hoverinfo,
            meta={"role": "recommended"},
        )
    )


# ----------------------------------------------------------------------------- toy page


def potential_figure(
    grid: pd.DataFrame,
    positions: pd.DataFrame | None = None,
    *,
    w_star: Sequence[float] = (0.0, 0.0),
    title: str | None = None,
    log_color: bool = True,
    max_points: int = 300,
    tail_points: int = 40,
) -> go.Figure:
    """The potential L(x, y) around w* as a heatmap with contours, chain samples on top.

    Parameters
    ----------
    grid : DataFrame
        Columns ``x, y, loss`` on a regular grid (any row order).
    positions : DataFrame, optional
        Columns ``chain, step, x, y`` (see ``frames.positions_frame``).  Each chain in its
        colour: its positions as a faint cloud (≤ ``max_points``), its last
        ``tail_points`` steps as a line, and its current position as a large dot.
    w_star : (float, float)
        The centre, drawn as a white-edged star.
    log_color : bool
        Colour by log10(L − min L + tiny) so degenerate valleys stay visible.
    """
    fig = _new_figure(title, "x", "y")
    if not grid.empty:
        gx, gy, z = grid_matrix(grid, "loss")
        if log_color:
            finite = np.isfinite(z)
            lo = float(np.nanmin(z[finite])) if finite.any() else 0.0
            span = float(np.nanmax(z[finite]) - lo) if finite.any() else 1.0
            tiny = max(span, 1e-12) * 1e-4
            zc = np.log10(np.clip(z - lo, 0.0, None) + tiny)
            cbar_title = "log₁₀ L"
        else:
            zc = z
            cbar_title = "L"
        fig.add_trace(
            go.Heatmap(
                x=gx,
                y=gy,
                z=zc,
                customdata=z,
                colorscale=SEQUENTIAL,
                reversescale=True,
                colorbar={"title": {"text": cbar_title}, "thickness": 14},
                hovertemplate="x=%{x:.3g}<br>y=%{y:.3g}<br>L=%{customdata:.3g}<extra></extra>",
                meta={"role": "potential"},
                name="L(w)",
                showscale=True,
            )
        )
        fig.add_trace(
            go.Contour(
                x=gx,
                y=gy,
                z=zc,
                contours={"coloring": "none", "showlabels": False},
                line={"color": "rgba(255,255,255,0.45)", "width": 1},
                ncontours=14,
                showscale=False,
                hoverinfo="skip",
                meta={"role": "contour"},
                name="level sets",
            )
        )
    if positions is not None and not positions.empty:
        pos = positions.dropna(subset=["x", "y"]).sort_values(["chain", "step"])
        cloud = thin(pos, max_points)
        chains = sorted(pos["chain"].unique())
        for i, chain in enumerate(chains):
            color = chain_color(int(chain))
            group = cloud[cloud["chain"] == chain]
            fig.add_trace(
                go.Scattergl(
                    x=group["x"],
                    y=group["y"],
                    mode="markers",
                    marker={"color": color, "size": 4, "opacity": 0.55},
                    hovertemplate=f"chain {int(chain)}<br>step %{{text}}<br>x=%{{x:.3g}}, "
                    "y=%{y:.3g}<extra></extra>",
                    text=group["step"],
                    meta={"role": "chain", "chain": int(chain)},
                    **_chain_legend(int(chain), i == 0, len(chains)),
                )
            )
            tail = pos[pos["chain"] == chain].tail(tail_points)
            fig.add_trace(
                go.Scatter(
                    x=tail["x"],
                    y=tail["y"],
                    mode="lines",
                    line={"color": color, "width": 1.6},
                    showlegend=False,
                    legendgroup="chains",
                    hoverinfo="skip",
                    meta={"role": "chain_tail", "chain": int(chain)},
                )
            )
            if len(tail):
                last = tail.iloc[-1]
                fig.add_trace(
                    go.Scatter(
                        x=[last["x"]],
                        y=[last["y"]],
                        mode="markers",
                        showlegend=False,
                        legendgroup="chains",
                        marker={"color": color, "size": 10, "line": {"color": "white", "width": 1.5}},
                        hoverinfo="skip",
                        meta={"role": "chain_end", "chain": int(chain)},
                    )
                )
    fig.add_trace(
        go.Scatter(
            x=[float(w_star[0])],
            y=[float(w_star[1])],
            mode="markers",
            name="w*",
            marker={"symbol": "star", "size": 16, "color": "white", "line": {"color": "black", "width": 1.5}},
            hovertemplate="w* = (%{x:.3g}, %{y:.3g})<extra></extra>",
            meta={"role": "w_star"},
        )
    )
    if not grid.empty:
        fig.update_xaxes(
            range=[float(grid["x"].min()), float(grid["x"].max())], showgrid=False, constrain="domain"
        )
        fig.update_yaxes(
            range=[float(grid["y"].min()), float(grid["y"].max())],
            showgrid=False,
            scaleanchor="x",
            scaleratio=1,
            constrain="domain",
        )
    fig.update_layout(showlegend=False)
    return fig


def loss_trace_figure(
    traces: pd.DataFrame,
    *,
    loss_init: float | None = None,
    burnin: int | None = None,
    total_steps: int | None = None,
    title: str | None = "Loss per chain",
    max_points: int = 800,
) -> go.Figure:
    """Per-chain loss L(w_t) against step, burn-in shaded.

    Parameters
    ----------
    traces : DataFrame
        ``frames.trace_frame`` rows: ``chain, step, loss`` (``is_draw`` optional).
    loss_init : float, optional
        L(w*), drawn as a reference line.
    burnin : int, optional
        Burn-in length; steps before it are shaded.
    total_steps : int, optional
        Fixes the x range while a live run is still filling in.
    """
    fig = _new_figure(title, "step", "loss L(wₜ)")
    data = thin(traces.sort_values(["chain", "step"]), max_points) if not traces.empty else traces
    groups = list(data.groupby("chain", sort=True)) if not data.empty else []
    for i, (chain, group) in enumerate(groups):
        fig.add_trace(
            go.Scattergl(
                x=group["step"],
                y=group["loss"],
                mode="lines",
                **_chain_legend(int(chain), i == 0, len(groups)),
                opacity=0.6,
                line={"color": chain_color(int(chain)), "width": 0.9},
                hovertemplate=f"chain {int(chain)}<br>step %{{x}}<br>L=%{{y:.4g}}<extra></extra>",
                meta={"role": "chain", "chain": int(chain)},
            )
        )
    _shade_burnin(fig, burnin, traces, total_steps)
    if loss_init is not None and math.isfinite(float(loss_init)):
        x1 = total_steps if total_steps else (float(traces["step"].max()) if not traces.empty else 1.0)
        _hline(
            fig,
            0.0,
            float(x1),
            float(loss_init),
            name="L(w*)",
            role="theory",
            color=FOREGROUND["light"],
            dash="dash",
            width=1.5,
        )
    if total_steps:
        fig.update_xaxes(range=[0, total_steps])
    if not data.empty:
        rng = _robust_range(data["loss"].to_numpy(dtype=float), (loss_init,), pad=0.05)
        if rng is not None:
            fig.update_yaxes(range=rng)
    return fig


def _shade_burnin(fig: go.Figure, burnin: int | None, traces: pd.DataFrame, total_steps: int | None) -> None:
    if not burnin:
        return
    fig.add_vrect(
        x0=0,
        x1=burnin,
        fillcolor="rgba(128,128,128,0.14)",
        line_width=0,
        layer="below",
        annotation_text="burn-in",
        annotation_position="top left",
        annotation_font_size=12,
    )


def llc_running_figure(
    traces: pd.DataFrame,
    *,
    theory_llc: float | None = None,
    finite_target: float | None = None,
    llc_mean: float | None = None,
    llc_sem: float | None = None,
    total_steps: int | None = None,
    title: str | None = "Running λ̂ per chain",
    max_points: int = 1500,
) -> go.Figure:
    """The online estimate λ̂_c(t) = nβ(mean_{s≤t} L_s − L(w*)) per chain and its mean.

    Parameters
    ----------
    traces : DataFrame
        ``frames.trace_frame`` rows with ``chain, step, is_draw, llc_running``.  Only draws
        (after burn-in) are plotted; NaN rows (diverged chains) are dropped.
    theory_llc : float, optional
        The exact λ (primer §4), a dashed line in the foreground colour.
    finite_target : float, optional
        The exact finite-nβ value T(nβ, γ) = nβ·E[L] the sampler should reproduce, dotted.
    llc_mean, llc_sem : float, optional
        The final estimate; drawn as a band mean ± 2·SEM at the right edge.
    total_steps : int, optional
        Fixes the x range while a live run is still going.
    """
    fig = _new_figure(title, "step", "running λ̂")
    data = traces
    if not data.empty and "is_draw" in data:
        data = data[data["is_draw"].astype(bool)]
    data = data.dropna(subset=["llc_running"]) if not data.empty else data
    if not data.empty:
        data = data.sort_values(["chain", "step"])
        shown = thin(data, max_points)
        groups = list(shown.groupby("chain", sort=True))
        for i, (chain, group) in enumerate(groups):
            fig.add_trace(
                go.Scattergl(
                    x=group["step"],
                    y=group["llc_running"],
                    mode="lines",
                    **_chain_legend(int(chain), i == 0, len(groups)),
                    line={"color": chain_color(int(chain)), "width": 1.3},
                    opacity=0.9,
                    hovertemplate=f"chain {int(chain)}<br>step %{{x}}<br>λ̂=%{{y:.4g}}<extra></extra>",
                    meta={"role": "chain", "chain": int(chain)},
                )
            )
        mean = data.groupby("step", sort=True)["llc_running"].mean().reset_index()
        mean["chain"] = 0
        mean = thin(mean, max_points)
        fig.add_trace(
            go.Scattergl(
                x=mean["step"],
                y=mean["llc_running"],
                mode="lines",
                name="mean",
                line={"color": FOREGROUND["light"], "width": 3.0},
                hovertemplate="mean<br>step %{x}<br>λ̂=%{y:.4g}<extra></extra>",
                meta={"role": "mean"},
            )
        )
    if data.empty:
        x0, x1 = 0.0, float(total_steps or 1)
    else:
        x0 = float(data["step"].min())
        x1 = float(total_steps) if total_steps else float(data["step"].max())
    _theory_line(fig, x0, x1, theory_llc)
    _target_line(fig, x0, x1, finite_target)
    if (
        llc_mean is not None
        and math.isfinite(float(llc_mean))
        and llc_sem is not None
        and math.isfinite(float(llc_sem))
    ):
        lo, hi = float(llc_mean) - 2 * float(llc_sem), float(llc_mean) + 2 * float(llc_sem)
        _band(fig, x0, x1, lo, hi, name="λ̂ ± 2 SEM", fillcolor="rgba(128,128,128,0.18)", role="band")
    if total_steps:
        fig.update_xaxes(range=[x0, total_steps])
    if not data.empty:
        # Ignore the first 10% of draws (running means start noisy) when framing the y axis.
        cut = x0 + 0.1 * (float(data["step"].max()) - x0)
        settled = data[data["step"] >= cut]["llc_running"].to_numpy(dtype=float)
        rng = _robust_range(settled, (theory_llc, finite_target))
        if rng is not None:
            fig.update_yaxes(range=rng)
    return fig


def acceptance_figure(
    traces: pd.DataFrame,
    *,
    threshold: float = 0.9,
    window: int = 50,
    title: str | None = "MALA acceptance (rolling mean)",
    max_points: int = 800,
) -> go.Figure:
    """Rolling mean of the per-step MALA acceptance per chain, with the health threshold."""
    fig = _new_figure(title, "step", "acceptance")
    if not traces.empty and "acceptance" in traces:
        data = traces.dropna(subset=["acceptance"]).sort_values(["chain", "step"])
        parts = []
        for _chain, group in data.groupby("chain", sort=True):
            g = group[["chain", "step"]].copy()
            g["acc"] = group["acceptance"].rolling(window, min_periods=1).mean().to_numpy()
            parts.append(g)
        if parts:
            rolled = thin(pd.concat(parts), max_points)
            groups = list(rolled.groupby("chain", sort=True))
            for i, (chain, group) in enumerate(groups):
                fig.add_trace(
                    go.Scattergl(
                        x=group["step"],
                        y=group["acc"],
                        mode="lines",
                        **_chain_legend(int(chain), i == 0, len(groups)),
                        line={"color": chain_color(int(chain)), "width": 1.3},
                        meta={"role": "chain", "chain": int(chain)},
                    )
                )
        x1 = float(data["step"].max()) if not data.empty else 1.0
        x0 = float(data["step"].min()) if not data.empty else 0.0
    else:
        x0, x1 = 0.0, 1.0
    _hline(
        fig,
        x0,
        x1,
        threshold,
        name=f"healthy ≥ {threshold:g}",
        role="threshold",
        color=HEALTHY_COLOR,
        dash="dash",
        width=1.5,
    )
    fig.update_yaxes(range=[0, 1.02])
    return fig


def chain_llc_figure(
    summary: pd.DataFrame,
    *,
    theory_llc: float | None = None,
    finite_target: float | None = None,
    title: str | None = "λ̂ per chain",
) -> go.Figure:
    """One dot per chain (its λ̂_c), in its chain colour; diverged chains as crosses.

    Parameters
    ----------
    summary : DataFrame
        ``frames.chain_frame`` rows with ``chain`` and ``llc`` (optional ``diverged``).
    """
    fig = _new_figure(title, "chain", "λ̂_c")
    if not summary.empty:
        col = "llc" if "llc" in summary else "llc_mean"
        for _, row in summary.iterrows():
            chain = int(row["chain"])
            diverged = bool(row.get("diverged", False))
            fig.add_trace(
                go.Scatter(
                    x=[chain],
                    y=[row[col] if not diverged else None],
                    mode="markers",
                    name=f"chain {chain}",
                    showlegend=False,
                    marker={"color": chain_color(chain), "size": 13, "symbol": "x" if diverged else "circle"},
                    hovertemplate=f"chain {chain}<br>λ̂_c=%{{y:.4g}}<extra></extra>",
                    meta={"role": "chain", "chain": chain},
                )
            )
        x0, x1 = float(summary["chain"].min()) - 0.5, float(summary["chain"].max()) + 0.5
        _theory_line(fig, x0, x1, theory_llc)
        _target_line(fig, x0, x1, finite_target)
        fig.update_xaxes(dtick=1)
    return fig


def compare_runs_figure(
    runs: pd.DataFrame,
    *,
    title: str | None = "Running λ̂ (mean over chains): run comparison",
    max_points: int = 1500,
) -> go.Figure:
    """Overlay the mean running λ̂ of several runs.

    Parameters
    ----------
    runs : DataFrame
        Columns ``run`` (a label), ``step``, ``llc_running`` (the chain-mean trace).
    """
    fig = _new_figure(title, "step", "running λ̂ (mean over chains)")
    dashes = ("solid", "dash", "dot", "dashdot")
    if not runs.empty:
        for i, (label, group) in enumerate(runs.groupby("run", sort=False)):
            g = group.sort_values("step").assign(chain=0)
            g = thin(g, max_points)
            fig.add_trace(
                go.Scatter(
                    x=g["step"],
                    y=g["llc_running"],
                    mode="lines",
                    name=str(label),
                    line={
                        "color": CHAIN_COLORS[i % len(CHAIN_COLORS)],
                        "width": 2.4,
                        "dash": dashes[i % len(dashes)],
                    },
                    meta={"role": "run", "run": str(label)},
                )
            )
    return fig


# ----------------------------------------------------------------------------- sensitivity


def _axis_label(value: float) -> str:
    return f"{float(value):.3g}"


def sweep_heatmap(
    table: pd.DataFrame,
    value: str,
    *,
    x: str = "epsilon",
    y: str = "gamma",
    healthy: pd.Series | Sequence[bool] | None = None,
    recommended: int | None = None,
    title: str | None = None,
    colorbar_title: str | None = None,
    colorscale: str | None = None,
    zmin: float | None = None,
    zmax: float | None = None,
    digits: int = 3,
) -> go.Figure:
    """Heatmap of one sweep-table column over two hyperparameters (log-spaced categories).

    Parameters
    ----------
    table : DataFrame
        Sweep table rows (one per setting) with columns ``x``, ``y``, ``value``, ``setting``.
        If several rows share an (x, y) cell (e.g. different nβ) their mean is shown:
        filter to one nβ first.
    value : str
        Column to colour by (``llc_mean``, ``acceptance``, ``rhat`` ...).
    healthy : bool Series aligned with ``table``, optional
        Healthy cells get a green outline (layout shapes named ``"healthy"``; a legend-only
        trace with role ``"healthy"`` counts them).  Cells where every chain diverged read
        "diverged".
    recommended : int, optional
        ``setting`` id of the recommended cell, marked with a star.
    """
    labels = {"epsilon": "step size ε", "gamma": "localisation γ", "nbeta": "nβ"}
    fig = _new_figure(title, labels.get(x, x), labels.get(y, y))
    if table.empty:
        return fig
    frame = table.copy()
    frame["_healthy"] = list(healthy) if healthy is not None else False
    xs = sorted(frame[x].unique())
    ys = sorted(frame[y].unique())
    xl = [_axis_label(v) for v in xs]
    yl = [_axis_label(v) for v in ys]
    frame["_all_div"] = (
        frame["n_diverged"] >= frame["n_chains"] if {"n_diverged", "n_chains"} <= set(frame) else False
    )
    cell = frame.groupby([y, x], sort=True).agg(
        val=(value, "mean"),
        healthy=("_healthy", "all"),
        setting=("setting", "first"),
        dead=("_all_div", "all"),
    )
    z = np.full((len(ys), len(xs)), np.nan)
    dead = np.zeros((len(ys), len(xs)), dtype=bool)
    for (yy, xx), row in cell.iterrows():
        z[ys.index(yy), xs.index(xx)] = row["val"]
        dead[ys.index(yy), xs.index(xx)] = bool(row["dead"])
    text = [
        [_fmt(v, digits) if np.isfinite(v) else ("div." if d else "—") for v, d in zip(r, dr, strict=True)]
        for r, dr in zip(z, dead, strict=True)
    ]
    fig.add_trace(
        go.Heatmap(
            x=xl,
            y=yl,
            z=z,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 12},
            colorscale=colorscale or SEQUENTIAL,
            zmin=zmin,
            zmax=zmax,
            colorbar={"title": {"text": colorbar_title or value}, "thickness": 10, "len": 0.9, "nticks": 5},
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{value}=%{{z:.4g}}<extra></extra>",
            xgap=2,
            ygap=2,
            meta={"role": "data", "value": value},
            name=value,
        )
    )
    good = cell[cell["healthy"]]
    if len(good):
        # Outline each healthy cell (category axes: cell k spans k − 0.5 … k + 0.5).
        for yy, xx in good.index:
            i, j = xs.index(xx), ys.index(yy)
            fig.add_shape(
                type="rect",
                x0=i - 0.46,
                x1=i + 0.46,
                y0=j - 0.46,
                y1=j + 0.46,
                xref="x",
                yref="y",
                line={"color": HEALTHY_COLOR, "width": 3},
                fillcolor="rgba(0,0,0,0)",
                layer="above",
                name="healthy",
            )
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name="healthy",
                marker={"symbol": "square-open", "size": 14, "color": HEALTHY_COLOR, "line": {"width": 3}},
                hoverinfo="skip",
                meta={"role": "healthy", "cells": len(good)},
            )
        )
    if recommended is not None and (frame["setting"] == recommended).any():
        row = frame[frame["setting"] == recommended].iloc[0]
        _recommended_star(fig, _axis_label(row[x]), _axis_label(row[y]), size=20, hoverinfo="skip")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=xl, showgrid=False)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=yl, showgrid=False)
    fig.update_layout(showlegend=False)
    return fig


def llc_vs_param_figure(
    table: pd.DataFrame,
    *,
    x: str = "gamma",
    group: str | None = "epsilon",
    theory_llc: float | None = None,
    finite_target: pd.DataFrame | None = None,
    log_x: bool = True,
    title: str | None = None,
) -> go.Figure:
    """λ̂ ± 2·SEM against one hyperparameter (log axis), one line per ``group`` value.

    Parameters
    ----------
    table : DataFrame
        Sweep table with ``x``, ``llc_mean``, ``llc_sem`` (and ``group``).
    finite_target : DataFrame, optional
        Columns ``x`` and ``target``: the exact T at each x, drawn as a dotted curve.
    """
    labels = {"epsilon": "step size ε", "gamma": "localisation γ", "nbeta": "nβ"}
    fig = _new_figure(title, labels.get(x, x), "λ̂")
    if not table.empty:
        groups = table.groupby(group, sort=True) if group else [(None, table)]
        for i, (key, g) in enumerate(groups):
            g = g.groupby(x, sort=True).agg(llc_mean=("llc_mean", "mean"), llc_sem=("llc_sem", "mean"))
            name = f"{labels.get(group, group).split()[-1]} = {_fmt(key)}" if group else "λ̂"
            fig.add_trace(
                go.Scatter(
                    x=g.index.to_numpy(),
                    y=g["llc_mean"],
                    error_y=_sem_error_y(g["llc_sem"], 1.2),
                    mode="lines+markers",
                    name=name,
                    line={"color": CHAIN_COLORS[i % len(CHAIN_COLORS)], "width": 2},
                    marker={"size": 8},
                    meta={"role": "data", "group": None if key is None else float(key)},
                )
            )
        _theory_line(fig, float(table[x].min()), float(table[x].max()), theory_llc)
    if finite_target is not None and not finite_target.empty:
        ft = finite_target.sort_values(x)
        fig.add_trace(
            go.Scatter(
                x=ft[x],
                y=ft["target"],
                mode="lines",
                name="target T(nβ,γ)",
                line={"color": TARGET_COLOR, "dash": "dot", "width": 2.4},
                meta={"role": "target"},
            )
        )
    if log_x:
        fig.update_xaxes(type="log")
        xs = table[x][table[x] > 0] if not table.empty else table[x]
        if len(xs) and float(xs.max()) / float(xs.min()) >= 100:  # ≥ 2 decades: label decades only
            fig.update_xaxes(dtick=1)
    return fig


def multi_temperature_figure(
    points: pd.DataFrame,
    fit: dict[str, float] | None = None,
    *,
    theory_llc: float | None = None,
    title: str | None = "Bias reduction across temperatures",
) -> go.Figure:
    """λ̂ against 1/log(nβ) with the fitted line and its intercept (primer §2).

    nβ(E_β[L] − L*) ≈ λ − (m−1)/log(nβ): regressing λ̂_j on 1/log(nβ_j) and reading the
    intercept at 1/log(nβ) = 0 removes the multiplicity bias.

    Parameters
    ----------
    points : DataFrame
        Columns ``nbeta, llc_mean, llc_sem`` (one row per temperature).
    fit : dict, optional
        ``intercept``, ``slope`` and optionally ``intercept_se`` from
        ``estimators.llc_bias_reduced``.
    """
    fig = _new_figure(title, "1 / log(nβ)", "λ̂")
    if points.empty:
        return fig
    p = points[points["nbeta"] > 1].copy()
    p["inv_log"] = 1.0 / np.log(p["nbeta"].astype(float))
    p = p.sort_values("inv_log")
    fig.add_trace(
        go.Scatter(
            x=p["inv_log"],
            y=p["llc_mean"],
            error_y={"type": "data", "array": 2 * p["llc_sem"].fillna(0).to_numpy(), "visible": True},
            mode="markers",
            name="λ̂ at each nβ",
            marker={"size": 11, "color": CHAIN_COLORS[0]},
            text=[f"nβ = {_fmt(v)}" for v in p["nbeta"]],
            hovertemplate="%{text}<br>λ̂=%{y:.4g}<extra></extra>",
            meta={"role": "data"},
        )
    )
    xmax = float(p["inv_log"].max()) if len(p) else 1.0
    if fit and fit.get("intercept") is not None and math.isfinite(float(fit["intercept"])):
        b0, b1 = float(fit["intercept"]), float(fit.get("slope", 0.0))
        xs = np.array([0.0, xmax * 1.05])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=b0 + b1 * xs,
                mode="lines",
                name="fit",
                line={"color": CHAIN_COLORS[1], "width": 2.2, "dash": "dash"},
                meta={"role": "fit"},
            )
        )
        se = fit.get("intercept_se")
        label = f"intercept = {_fmt(b0)}" + (
            f" ± {_fmt(2 * float(se), 2)}" if se is not None and math.isfinite(float(se)) else ""
        )
        fig.add_trace(
            go.Scatter(
                x=[0.0],
                y=[b0],
                mode="markers",
                name=label,
                marker={
                    "size": 15,
                    "symbol": "diamond",
                    "color": CHAIN_COLORS[1],
                    "line": {"color": "white", "width": 1.5},
                },
                error_y={
                    "type": "data",
                    "array": [2 * float(se)] if se is not None and math.isfinite(float(se)) else [0.0],
                    "visible": True,
                },
                meta={"role": "intercept", "value": b0},
            )
        )
    _theory_line(fig, 0.0, xmax * 1.05, theory_llc, dash="dot")
    fig.update_xaxes(rangemode="tozero")
    return fig


def calibration_figure(
    table: pd.DataFrame,
    *,
    recommended: int | None = None,
    plateau: Sequence[bool] | pd.Series | None = None,
    theory_llc: float | None = None,
    title: str | None = "λ̂ across step sizes (plateau check)",
) -> go.Figure:
    """λ̂ ± 2·SEM against ε per γ, plateau points filled, unhealthy hollow, pick starred.

    Parameters
    ----------
    table : DataFrame
        Assessed sweep table (see ``calibrate.assess``): ``setting, epsilon, gamma,
        llc_mean, llc_sem, healthy``.
    plateau : bool sequence aligned with ``table``, optional
    """
    fig = _new_figure(title, "step size ε", "λ̂")
    if table.empty:
        return fig
    t = table.copy()
    t["_plateau"] = list(plateau) if plateau is not None else False
    healthy = t["healthy"] if "healthy" in t else pd.Series(True, index=t.index)
    t["_healthy"] = healthy.astype(bool).to_numpy()
    for i, (gamma, g) in enumerate(t.groupby("gamma", sort=True)):
        g = g.sort_values("epsilon")
        color = CHAIN_COLORS[i % len(CHAIN_COLORS)]
        symbols = ["circle" if h else "circle-open" for h in g["_healthy"]]
        sizes = [13 if p else 9 for p in g["_plateau"]]
        fig.add_trace(
            go.Scatter(
                x=g["epsilon"],
                y=g["llc_mean"],
                error_y=_sem_error_y(g["llc_sem"], 1),
                mode="lines+markers",
                name=f"γ = {_fmt(gamma)}",
                line={"color": color, "width": 1.6},
                marker={
                    "symbol": symbols,
                    "size": sizes,
                    "color": color,
                    "line": {"width": 2, "color": color},
                },
                meta={"role": "data", "gamma": float(gamma)},
            )
        )
    if recommended is not None and (t["setting"] == recommended).any():
        row = t[t["setting"] == recommended].iloc[0]
        _recommended_star(fig, row["epsilon"], row["llc_mean"], size=22)
    _theory_line(fig, float(t["epsilon"].min()), float(t["epsilon"].max()), theory_llc)
    fig.update_xaxes(type="log")
    return fig


# ----------------------------------------------------------------------------- learn page


def volume_scaling_figure(
    volumes: pd.DataFrame,
    *,
    slope: float | None = None,
    intercept: float | None = None,
    theory_llc: float | None = None,
    title: str | None = "Volume scaling V(ε) ∝ ε^λ",
) -> go.Figure:
    """log–log plot of V(ε) = Vol{L < ε} with the fitted power law.

    Parameters
    ----------
    volumes : DataFrame
        Columns ``epsilon`` and ``volume`` (a fraction of a box, or an absolute volume), and
        optionally ``in_fit`` (rows used for the slope: filled markers; others hollow).
        Rows with ``volume <= 0`` are dropped (no sample fell below that level).
    slope, intercept : float, optional
        Fit of log V = intercept + slope · log ε (natural logs).  Without ``intercept`` the
        line goes through the centroid of the fitted points.
    theory_llc : float, optional
        The exact λ: a reference line of that slope through the data's geometric centre.
    """
    fig = _new_figure(title, "level ε", "volume fraction V(ε)")
    v = volumes[(volumes["volume"] > 0) & np.isfinite(volumes["volume"])].sort_values("epsilon")
    if v.empty:
        return fig
    in_fit = v["in_fit"].astype(bool) if "in_fit" in v else pd.Series(True, index=v.index)
    for mask, name, symbol in (
        (in_fit, "measured (fitted)", "circle"),
        (~in_fit, "measured (not fitted)", "circle-open"),
    ):
        part = v[mask]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["epsilon"],
                y=part["volume"],
                mode="markers",
                name=name,
                marker={"size": 9, "color": CHAIN_COLORS[0], "symbol": symbol, "line": {"width": 1.5}},
                hovertemplate="ε=%{x:.3g}<br>V=%{y:.3g}<extra></extra>",
                meta={"role": "data", "in_fit": bool(symbol == "circle")},
            )
        )
    fitted = v[in_fit] if in_fit.any() else v
    lx = np.log(fitted["epsilon"].astype(float).to_numpy())
    ly = np.log(fitted["volume"].astype(float).to_numpy())
    xs = np.array([float(fitted["epsilon"].min()), float(fitted["epsilon"].max())])
    if slope is not None and math.isfinite(float(slope)):
        b0 = (
            float(intercept)
            if intercept is not None and math.isfinite(float(intercept))
            else float(ly.mean() - float(slope) * lx.mean())
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=np.exp(b0) * xs ** float(slope),
                mode="lines",
                name=f"fit: slope = {_fmt(slope)}",
                line={"color": CHAIN_COLORS[1], "width": 2.6},
                meta={"role": "fit", "slope": float(slope)},
            )
        )
    if theory_llc is not None and math.isfinite(float(theory_llc)):
        c = float(ly.mean() - float(theory_llc) * lx.mean())
        xs_all = np.array([float(v["epsilon"].min()), float(v["epsilon"].max())])
        fig.add_trace(
            go.Scatter(
                x=xs_all,
                y=np.exp(c) * xs_all ** float(theory_llc),
                mode="lines",
                name=f"slope λ = {_fmt(theory_llc)} (exact)",
                line={"color": FOREGROUND["light"], "width": 1.6, "dash": "dot"},
                meta={"role": "theory", "slope": float(theory_llc)},
            )
        )
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def newton_polyhedron_figure(
    exponents: pd.DataFrame,
    *,
    hull: pd.DataFrame | None = None,
    hit: float | None = None,
    max_coord: float | None = None,
    title: str | None = "Newton polyhedron",
) -> go.Figure:
    """The Newton polyhedron of a 2-D polynomial, the diagonal and where it is hit.

    For L = Σ c_k x^{a_k} y^{b_k}, the polyhedron is the convex hull of the exponent
    points (a_k, b_k) plus the positive quadrant.  The diagonal a = b first touches it at
    (t, t); for a non-degenerate L, λ = 1/t.  For x²y⁴: the single point (2, 4), the
    diagonal hits it at t = 4, so λ = 1/4.

    Parameters
    ----------
    exponents : DataFrame
        Columns ``a, b`` (one row per monomial).
    hull : DataFrame, optional
        Columns ``a, b``: the polyhedron's boundary vertices in order (default: derived
        from ``exponents``).
    hit : float, optional
        t where the diagonal meets the boundary; marks (t, t) and labels λ = 1/t.
    """
    fig = _new_figure(title, "exponent of x", "exponent of y")
    pts = exponents[["a", "b"]].astype(float)
    if pts.empty:
        return fig
    if hull is None or hull.empty:
        hull = pd.DataFrame(_lower_hull(pts.to_numpy()), columns=["a", "b"])
    hv = hull[["a", "b"]].to_numpy(dtype=float)
    top = float(max_coord or max(float(pts.to_numpy().max()), hit or 0.0) + 2.0)
    # The region: the hull boundary extended by vertical/horizontal rays.
    first, last = hv[0], hv[-1]
    region_x = [first[0], *hv[:, 0], top, top, first[0], first[0]]
    region_y = [top, *hv[:, 1], last[1], top, top, first[1]]
    fig.add_trace(
        go.Scatter(
            x=region_x,
            y=region_y,
            fill="toself",
            mode="lines",
            line={"color": CHAIN_COLORS[0], "width": 2.5},
            fillcolor="rgba(76,155,232,0.22)",
            name="Newton polyhedron",
            hoverinfo="skip",
            meta={"role": "polyhedron"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=pts["a"],
            y=pts["b"],
            mode="markers",
            name="monomial exponents",
            marker={"size": 12, "color": CHAIN_COLORS[1], "line": {"color": "white", "width": 1.5}},
            hovertemplate="x^%{x:g} y^%{y:g}<extra></extra>",
            meta={"role": "data"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[0, top],
            y=[0, top],
            mode="lines",
            name="diagonal a = b",
            line={"color": FOREGROUND["light"], "dash": "dash", "width": 1.6},
            hoverinfo="skip",
            meta={"role": "theory"},
        )
    )
    if hit is not None and math.isfinite(float(hit)) and hit > 0:
        fig.add_trace(
            go.Scatter(
                x=[hit],
                y=[hit],
                mode="markers+text",
                name=f"hit at t = {_fmt(hit)} → λ = 1/t = {_fmt(1.0 / hit)}",
                text=[f"  ({_fmt(hit)}, {_fmt(hit)})"],
                textposition="middle right",
                marker={
                    "size": 16,
                    "symbol": "diamond",
                    "color": TARGET_COLOR,
                    "line": {"color": "white", "width": 1.5},
                },
                meta={"role": "hit", "t": float(hit)},
            )
        )
    fig.update_xaxes(range=[0, top], dtick=1, zeroline=True)
    fig.update_yaxes(range=[0, top], dtick=1, zeroline=True, scaleanchor="x", scaleratio=1)
    return fig


def _lower_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the boundary of conv(points) + R²₊ facing the origin, ordered by a."""
    pts = sorted({(float(a), float(b)) for a, b in points})
    # Keep the Pareto-minimal points, then the lower-left convex chain.
    pareto: list[tuple[float, float]] = []
    best_b = math.inf
    for a, b in pts:
        if b < best_b:
            pareto.append((a, b))
            best_b = b
    chain: list[tuple[float, float]] = []
    for p in pareto:
        while len(chain) >= 2:
            (x1, y1), (x2, y2) = chain[-2], chain[-1]
            cross = (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1)
            if cross <= 0:
                chain.pop()
            else:
                break
        chain.append(p)
    return np.array(chain, dtype=float)


def free_energy_figure(
    curves: pd.DataFrame,
    *,
    crossover: float | None = None,
    title: str | None = "Free energy of two basins",
) -> go.Figure:
    """F_n ≈ n·L + λ·log n for competing basins against n (log x axis).

    Parameters
    ----------
    curves : DataFrame
        Columns ``n``, ``basin`` (label) and ``free_energy``; optionally ``posterior``
        (the posterior share of each basin, drawn on a second panel-free axis is not used).
    crossover : float, optional
        The n at which the basins swap order; a vertical marker line.
    """
    fig = _new_figure(title, "number of samples n", "F_n − F_n(reference)")
    for i, (basin, g) in enumerate(curves.groupby("basin", sort=False)):
        g = g.sort_values("n")
        fig.add_trace(
            go.Scatter(
                x=g["n"],
                y=g["free_energy"],
                mode="lines",
                name=str(basin),
                line={"color": CHAIN_COLORS[i % len(CHAIN_COLORS)], "width": 3},
                meta={"role": "basin", "basin": str(basin)},
            )
        )
    if crossover is not None and math.isfinite(float(crossover)):
        fig.add_vline(
            x=float(crossover),
            line_dash="dot",
            line_color=TARGET_COLOR,
            annotation_text=f"swap at n ≈ {_fmt(crossover)}",
            annotation_position="top",
        )
    fig.update_xaxes(type="log", exponentformat="power")
    return fig


def free_energy_difference_figure(
    diff: pd.DataFrame,
    *,
    labels: tuple[str, str] = ("A", "B"),
    crossover: float | None = None,
    title: str | None = "Which basin wins? ΔF_n = F_n(B) − F_n(A)",
) -> go.Figure:
    """The log posterior odds of basin A over basin B against n (log x axis).

    ΔF_n = F_n(B) − F_n(A) = n·(L_B − L_A) + (λ_B − λ_A)·log n: above zero A has more
    posterior mass, below zero B.  The two regions are shaded in the basins' colours and the
    y range is framed around the interesting part (the curve leaves it as n·ΔL takes over).

    Parameters
    ----------
    diff : DataFrame
        Columns ``n`` and ``delta`` (ΔF_n).
    labels : (str, str)
        Names of basins A and B (legend / shading labels).
    crossover : float, optional
        The n where ΔF_n = 0, marked with a vertical line.
    """
    fig = _new_figure(title, "number of samples n", "ΔF_n = log odds A : B")
    if diff.empty:
        return fig
    d = diff.sort_values("n")
    n0, n1 = float(d["n"].min()), float(d["n"].max())
    delta = d["delta"].to_numpy(dtype=float)
    lo = float(np.nanmin(delta))
    hi = float(np.nanmax(delta))
    span = max(abs(lo), 1.0)
    y0 = min(lo, -0.3 * span) * 1.3
    y1 = min(hi, 2.5 * span) * 1.15 if hi > 0 else 0.3 * span
    for (ya, yb), color, label in (
        ((0.0, y1), "rgba(76,155,232,0.14)", f"{labels[0]} wins"),
        ((y0, 0.0), "rgba(245,133,24,0.14)", f"{labels[1]} wins"),
    ):
        _band(fig, n0, n1, ya, yb, name=label, fillcolor=color, role="region")
    fig.add_trace(
        go.Scatter(
            x=d["n"],
            y=delta,
            mode="lines",
            name="ΔF_n",
            line={"color": FOREGROUND["light"], "width": 3},
            hovertemplate="n=%{x:.3g}<br>ΔF=%{y:.3g}<extra></extra>",
            meta={"role": "mean"},
        )
    )
    if crossover is not None and math.isfinite(float(crossover)):
        fig.add_trace(
            go.Scatter(
                x=[crossover, crossover],
                y=[y0, y1],
                mode="lines",
                name=f"swap at n ≈ {_fmt(crossover)}",
                line={"color": TARGET_COLOR, "dash": "dot", "width": 2},
                meta={"role": "target", "value": float(crossover)},
            )
        )
    fig.update_xaxes(type="log", range=[math.log10(n0), math.log10(n1)])
    fig.update_yaxes(range=[y0, y1], zeroline=True, zerolinewidth=2)
    return fig


def posterior_share_figure(
    curves: pd.DataFrame,
    *,
    title: str | None = "Posterior share of each basin",
) -> go.Figure:
    """Stacked area: the posterior probability of each basin ∝ exp(−F_n) against n.

    ``curves`` has columns ``n, basin, posterior``.
    """
    fig = _new_figure(title, "number of samples n", "posterior probability")
    for i, (basin, g) in enumerate(curves.groupby("basin", sort=False)):
        g = g.sort_values("n")
        fig.add_trace(
            go.Scatter(
                x=g["n"],
                y=g["posterior"],
                mode="lines",
                name=str(basin),
                stackgroup="one",
                line={"color": CHAIN_COLORS[i % len(CHAIN_COLORS)], "width": 1},
                meta={"role": "basin", "basin": str(basin)},
            )
        )
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(range=[0, 1])
    return fig


def density_figure(
    density: pd.DataFrame,
    *,
    samples: pd.DataFrame | None = None,
    title: str | None = "Sampled distribution",
    x_title: str = "w",
) -> go.Figure:
    """1-D densities (exact curves) with an optional histogram of sampler draws.

    Parameters
    ----------
    density : DataFrame
        Columns ``w``, ``density`` and ``label`` (one curve per label, e.g. the tempered
        posterior, the prior part, the loss part).
    samples : DataFrame, optional
        Column ``w`` (draws of an actual SGLD run) shown as a normalised histogram.
    """
    fig = _new_figure(title, x_title, "density")
    if samples is not None and not samples.empty:
        fig.add_trace(
            go.Histogram(
                x=samples["w"],
                histnorm="probability density",
                nbinsx=80,
                name="SGLD draws",
                marker={"color": "rgba(76,155,232,0.45)", "line": {"width": 0}},
                meta={"role": "samples"},
            )
        )
    styles = ("solid", "dash", "dot", "dashdot")
    colors = (TARGET_COLOR, CHAIN_COLORS[2], CHAIN_COLORS[4], CHAIN_COLORS[1])
    for i, (label, g) in enumerate(density.groupby("label", sort=False)):
        g = g.sort_values("w")
        fig.add_trace(
            go.Scatter(
                x=g["w"],
                y=g["density"],
                mode="lines",
                name=str(label),
                line={
                    "color": colors[i % len(colors)],
                    "width": 3 if i == 0 else 2,
                    "dash": styles[i % len(styles)],
                },
                meta={"role": "density", "label": str(label)},
            )
        )
    fig.update_layout(barmode="overlay", bargap=0.0)
    return fig


def density_2d_figure(
    grid: pd.DataFrame,
    *,
    samples: pd.DataFrame | None = None,
    title: str | None = "Tempered, localised posterior p(w)",
    max_points: int = 2000,
) -> go.Figure:
    """Exact 2-D density (heatmap of columns ``x, y, density``) with SGLD draws on top."""
    fig = _new_figure(title, "x", "y")
    if not grid.empty:
        gx, gy, z = grid_matrix(grid, "density")
        fig.add_trace(
            go.Heatmap(
                x=gx,
                y=gy,
                z=z,
                colorscale="Magma",
                colorbar={"title": {"text": "p(w)"}, "thickness": 14},
                meta={"role": "density"},
                name="p(w)",
                hovertemplate="x=%{x:.3g}<br>y=%{y:.3g}<br>p=%{z:.3g}<extra></extra>",
            )
        )
        fig.update_xaxes(range=[float(grid["x"].min()), float(grid["x"].max())], showgrid=False)
        fig.update_yaxes(
            range=[float(grid["y"].min()), float(grid["y"].max())],
            showgrid=False,
            scaleanchor="x",
            scaleratio=1,
        )
    if samples is not None and not samples.empty:
        s = samples.iloc[:: max(1, len(samples) // max_points)]
        fig.add_trace(
            go.Scattergl(
                x=s["x"],
                y=s["y"],
                mode="markers",
                name="SGLD draws",
                marker={"size": 3, "color": "rgba(160,203,232,0.55)"},
                meta={"role": "samples"},
            )
        )
    return fig
