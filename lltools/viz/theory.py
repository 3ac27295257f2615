"""Teaching figures: volume scaling, Newton polygon, free energy and basin competition, 1-D densities."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lltools.viz.style import (
    CHAIN_COLORS,
    FOREGROUND,
    TARGET_COLOR,
    _band,
    _fmt,
    _new_figure,
)

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
