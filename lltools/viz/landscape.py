"""Figures of a potential's landscape: the contour with the chains on it, and 2-D densities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lltools.viz.style import (
    SEQUENTIAL,
    _chain_legend,
    _new_figure,
    chain_color,
    grid_matrix,
    thin,
)

# ----------------------------------------------------------------------------- toy page


def potential_figure(
    grid: pd.DataFrame,
    positions: pd.DataFrame | None = None,
    *,
    w_star: Sequence[float] = (0.0, 0.0),
    title: str | None = None,
    log_color: bool = True,
    max_points: int = 640,
    tail_points: int = 40,
) -> go.Figure:
    """The potential L(x, y) around w* as a heatmap with contours, chain samples on top.

    Parameters
    ----------
    grid : DataFrame
        Columns ``x, y, loss`` on a regular grid (any row order).
    positions : DataFrame, optional
        Columns ``chain, step, x, y`` (see ``frames.positions_frame``).  Each chain in its
        colour: its positions as a faint cloud, its last ``tail_points`` steps as a line, and
        its current position as a large dot.
    max_points : int
        The clouds' points, all chains together (evenly spaced in time, at least 20 per
        chain): every marker is an SVG element the browser lays out on every redraw — 2 400
        of them (300 per chain) cost ~0.7 s a draw on a 2-core machine, 640 ~0.15 s.
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
        # float32: half the bytes sent to the browser per redraw, more digits than shown.
        zc, z = zc.astype(np.float32), z.astype(np.float32)
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
        chains = sorted(pos["chain"].unique())
        cloud = thin(pos, max(20, max_points // max(1, len(chains))))
        for i, chain in enumerate(chains):
            color = chain_color(int(chain))
            group = cloud[cloud["chain"] == chain]
            fig.add_trace(
                go.Scatter(
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
            go.Scatter(
                x=s["x"],
                y=s["y"],
                mode="markers",
                name="SGLD draws",
                marker={"size": 3, "color": "rgba(160,203,232,0.55)"},
                meta={"role": "samples"},
            )
        )
    return fig
