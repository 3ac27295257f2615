"""Figures of a network's landscape: a plane through w* (contour or 3-D surface) with the
SGLD chains on it, the Hessian spectrum beside λ̂, the loss along checkpoint lines, and the
training path on a plane coloured by λ̂.  Pure: DataFrames in, Plotly figures out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy.interpolate import RegularGridInterpolator

from lltools.viz.landscape import potential_figure
from lltools.viz.style import (
    SEQUENTIAL,
    TARGET_COLOR,
    _new_figure,
    chain_color,
    grid_matrix,
    thin,
)

__all__ = [
    "checkpoint_line_figure",
    "plane_figure",
    "spectrum_figure",
    "training_path_figure",
]

#: Colours of the count markers of the spectrum figure.
COUNT_COLORS = {"d/2": "#7F7F7F", "rank(H)/2": "#1F77B4", "rank(J)/2": "#9467BD", "λ̂": TARGET_COLOR,
                "λ": "#2CA02C"}


def _log_z(z: np.ndarray) -> np.ndarray:
    finite = np.isfinite(z)
    lo = float(np.nanmin(z[finite])) if finite.any() else 0.0
    span = float(np.nanmax(z[finite]) - lo) if finite.any() else 1.0
    return np.log10(np.clip(z - lo, 0.0, None) + max(span, 1e-12) * 1e-4)


def plane_figure(
    grid: pd.DataFrame,
    chains: pd.DataFrame | None = None,
    *,
    kind: str = "contour",
    a_label: str = "a",
    b_label: str = "b",
    title: str | None = None,
    log_color: bool = True,
    max_points: int = 300,
) -> go.Figure:
    """L_n on a plane through w* (at a = b = 0), with the projected chains.

    Parameters
    ----------
    grid : DataFrame
        Columns ``a, b, loss`` on a regular grid.
    chains : DataFrame, optional
        Columns ``chain, step, x, y`` (plane coordinates of the draws).
    kind : {"contour", "surface"}
        A heatmap with level sets (the Toy page's figure), or a 3-D surface on which the
        chains are drawn at the height of the plane's loss under them.
    log_color : bool
        Colour (contour) or height (surface) by log10(L − min L + tiny), so flat valleys show.
    """
    if kind not in ("contour", "surface"):
        raise ValueError(f"kind must be 'contour' or 'surface', got {kind!r}")
    frame = grid.rename(columns={"a": "x", "b": "y"})
    if kind == "contour":
        fig = potential_figure(frame, chains, title=title, log_color=log_color, max_points=max_points)
        fig.update_layout(xaxis_title=a_label, yaxis_title=b_label)
        for trace in fig.data:
            if getattr(trace, "meta", None) == {"role": "potential"}:
                trace.hovertemplate = "a=%{x:.3g}<br>b=%{y:.3g}<br>L=%{customdata:.4g}<extra></extra>"
        return fig
    fig = go.Figure()
    fig.update_layout(title={"text": title} if title else None)
    gx, gy, z = grid_matrix(frame, "loss")
    zc = _log_z(z) if log_color else z
    z_title = "log₁₀(L − min L)" if log_color else "L"
    fig.add_trace(go.Surface(
        x=gx, y=gy, z=zc, customdata=z, colorscale=SEQUENTIAL, reversescale=True,
        colorbar={"title": {"text": z_title}, "thickness": 14}, meta={"role": "surface"}, name="L(w)",
        hovertemplate="a=%{x:.3g}<br>b=%{y:.3g}<br>L=%{customdata:.4g}<extra></extra>",
    ))
    if chains is not None and not chains.empty and len(gx) > 1 and len(gy) > 1:
        height = RegularGridInterpolator((gy, gx), zc, bounds_error=False, fill_value=np.nan)
        pts = thin(chains.dropna(subset=["x", "y"]).sort_values(["chain", "step"]), max_points)
        for chain, group in pts.groupby("chain"):
            zz = height(np.column_stack([group["y"], group["x"]]))
            fig.add_trace(go.Scatter3d(
                x=group["x"], y=group["y"], z=zz, mode="lines+markers",
                line={"color": chain_color(int(chain)), "width": 3},
                marker={"size": 2, "color": chain_color(int(chain))}, name=f"chain {int(chain)}",
                meta={"role": "chain", "chain": int(chain)}, hoverinfo="skip",
            ))
    centre = RegularGridInterpolator((gy, gx), zc, bounds_error=False, fill_value=np.nan)([[0.0, 0.0]])
    fig.add_trace(go.Scatter3d(
        x=[0.0], y=[0.0], z=centre, mode="markers", name="w*", meta={"role": "w_star"},
        marker={"symbol": "diamond", "size": 6, "color": "white", "line": {"color": "black", "width": 2}},
    ))
    fig.update_layout(
        scene={"xaxis_title": a_label, "yaxis_title": b_label, "zaxis_title": z_title,
               "aspectmode": "manual", "aspectratio": {"x": 1, "y": 1, "z": 0.6}},
        showlegend=False, margin={"l": 0, "r": 0, "t": 40 if title else 10, "b": 0},
    )
    return fig


def spectrum_figure(
    eigenvalues: pd.DataFrame,
    *,
    dim: int,
    tolerance: float,
    counts: Mapping[str, float | None] | None = None,
    title: str | None = "Hessian spectrum at w*",
) -> go.Figure:
    """|μ| of the Hessian eigenvalues against their index, with counts marked on the same axis.

    Parameters
    ----------
    eigenvalues : DataFrame
        Columns ``index`` (1 = largest, d = smallest) and ``eigenvalue``; the whole spectrum
        or its two ends.
    dim : int
        d (the index axis runs to d).
    tolerance : float
        "Near zero" threshold, drawn as a horizontal line.
    counts : mapping, optional
        Label → value drawn as vertical lines on the index axis, e.g. ``{"d/2": …,
        "rank(H)/2": …, "rank(J)/2": …, "λ̂": …}``: every one of them is a number of
        directions, so it reads on the same axis as the eigenvalue index (``None`` skipped).
    """
    fig = _new_figure(title, "eigenvalue index (largest first)", "|μ| (log scale)")
    ev = eigenvalues.sort_values("index")
    mags = np.abs(ev["eigenvalue"].to_numpy(dtype=float))
    floor = max(float(tolerance) * 1e-3, 1e-300)
    shown = np.maximum(mags, floor)
    positive = ev["eigenvalue"].to_numpy(dtype=float) >= 0
    for mask, name, color in ((positive, "μ ≥ 0", "#1F77B4"), (~positive, "μ < 0", "#D62728")):
        if mask.any():
            fig.add_trace(go.Scatter(
                x=ev["index"].to_numpy()[mask], y=shown[mask], mode="markers", name=name,
                marker={"color": color, "size": 5}, meta={"role": "eigenvalues", "sign": name},
                customdata=ev["eigenvalue"].to_numpy()[mask],
                hovertemplate="index %{x}<br>μ = %{customdata:.4g}<extra></extra>",
            ))
    fig.add_trace(go.Scatter(
        x=[1, dim], y=[tolerance, tolerance], mode="lines", name=f"tolerance {tolerance:.2g}",
        line={"color": "#7F7F7F", "dash": "dot", "width": 1}, meta={"role": "tolerance"}, hoverinfo="skip",
    ))
    lo = float(np.min(shown)) if shown.size else floor
    hi = float(np.max(shown)) if shown.size else 1.0
    for label, value in (counts or {}).items():
        if value is None or not np.isfinite(value):
            continue
        color = COUNT_COLORS.get(label, "#FF7F0E")
        fig.add_trace(go.Scatter(
            x=[value, value], y=[lo, hi], mode="lines", name=f"{label} = {value:,.4g}",
            line={"color": color, "dash": "dash", "width": 2}, meta={"role": "count", "label": label},
            hovertemplate=f"{label} = {value:,.4g}<extra></extra>",
        ))
    fig.update_yaxes(type="log")
    fig.update_xaxes(range=[0, dim + 1])
    fig.update_layout(legend={"orientation": "h", "y": -0.25})
    return fig


def checkpoint_line_figure(
    path: pd.DataFrame,
    *,
    title: str | None = "Loss along the straight lines between checkpoints",
    log_y: bool = True,
) -> go.Figure:
    """L_n along the segments between consecutive checkpoints (``lltools.theory.planes.path_losses``:
    columns ``t, loss, start, end, at_checkpoint``); a bump between two checkpoints is a barrier
    the straight line crosses (training took another route)."""
    fig = _new_figure(title, "checkpoint (straight segments between consecutive ones)", "L_n")
    fig.add_trace(go.Scatter(
        x=path["t"], y=path["loss"], mode="lines", name="on the line", line={"color": "#1F77B4", "width": 2},
        customdata=np.column_stack([path["start"], path["end"]]),
        hovertemplate="%{customdata[0]} → %{customdata[1]}<br>L = %{y:.4g}<extra></extra>",
        meta={"role": "line"},
    ))
    at = path[path["at_checkpoint"]]
    # the point at t = i opens segment i (t = 0) or closes segment i − 1
    labels = [str(row.start if np.isclose(row.t, row.segment) else row.end) for row in at.itertuples()]
    fig.add_trace(go.Scatter(
        x=at["t"], y=at["loss"], mode="markers", name="checkpoints", text=labels,
        marker={"color": TARGET_COLOR, "size": 8}, meta={"role": "checkpoint"},
        hovertemplate="%{text}<br>L = %{y:.4g}<extra></extra>",
    ))
    if log_y and (path["loss"] > 0).all():
        fig.update_yaxes(type="log")
    fig.update_xaxes(tickvals=at["t"].tolist(), ticktext=labels)
    fig.update_layout(showlegend=False)
    return fig


def training_path_figure(
    path: pd.DataFrame,
    grid: pd.DataFrame | None = None,
    *,
    color: str = "llc",
    color_label: str = "λ̂",
    a_label: str = "PC 1",
    b_label: str = "PC 2",
    title: str | None = "Training path on the plane of its principal components",
) -> go.Figure:
    """The checkpoints (``x, y`` plane coordinates, ``step``, and ``color``, e.g. λ̂) joined in
    training order over an optional loss contour (``grid``: ``a, b, loss``)."""
    fig = _new_figure(title, a_label, b_label)
    if grid is not None and not grid.empty:
        gx, gy, z = grid_matrix(grid.rename(columns={"a": "x", "b": "y"}), "loss")
        fig.add_trace(go.Contour(
            x=gx, y=gy, z=_log_z(z), colorscale="Greys", showscale=False, opacity=0.55,
            contours={"coloring": "heatmap"}, ncontours=16, hoverinfo="skip", meta={"role": "contour"},
        ))
    ordered = path.sort_values("step")
    fig.add_trace(go.Scatter(
        x=ordered["x"], y=ordered["y"], mode="lines", line={"color": "#7F7F7F", "width": 1.5},
        hoverinfo="skip", meta={"role": "path"}, showlegend=False,
    ))
    has_color = color in ordered and ordered[color].notna().any()
    fig.add_trace(go.Scatter(
        x=ordered["x"], y=ordered["y"], mode="markers", text=ordered["step"],
        marker={"size": 11, "line": {"color": "white", "width": 1},
                **({"color": ordered[color], "colorscale": "Plasma", "showscale": True,
                    "colorbar": {"title": {"text": color_label}, "thickness": 14}}
                   if has_color else {"color": TARGET_COLOR})},
        customdata=ordered[color] if has_color else None,
        hovertemplate="step %{text}<br>" + (f"{color_label} = %{{customdata:.4g}}" if has_color else "")
        + "<extra></extra>",
        meta={"role": "checkpoints"}, showlegend=False,
    ))
    return fig
