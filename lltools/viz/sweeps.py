"""Figures of a sweep over ε × γ × nβ: heatmaps, λ̂ against a setting, multi-temperature fit, calibration."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lltools.viz.style import (
    CHAIN_COLORS,
    HEALTHY_COLOR,
    RECOMMENDED_COLOR,
    SEQUENTIAL,
    TARGET_COLOR,
    _fmt,
    _new_figure,
    _recommended_star,
    _sem_error_y,
    _theory_line,
    format_estimate,
)

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
        ``setting`` id of the recommended cell: a gold outline and a ★ after its number
        (the number stays readable; a legend-only trace with role ``"recommended"``).
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
        frame["n_diverged"] >= frame["num_chains"] if {"n_diverged", "num_chains"} <= set(frame) else False
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
        # The star goes after the cell's number (never over it), the cell gets a gold outline.
        row = frame[frame["setting"] == recommended].iloc[0]
        i, j = ys.index(row[y]), xs.index(row[x])
        text[i][j] = f"{text[i][j]} ★"
        fig.data[0].text = text
        fig.add_shape(
            type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5, xref="x", yref="y",
            line={"color": RECOMMENDED_COLOR, "width": 4}, fillcolor="rgba(0,0,0,0)", layer="above",
            name="recommended",
        )
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", name="recommended (★)", hoverinfo="skip",
                marker={"symbol": "square-open", "size": 14, "color": RECOMMENDED_COLOR},
                meta={"role": "recommended", "setting": int(recommended), "cell": [_axis_label(row[x]),
                                                                                  _axis_label(row[y])]},
            )
        )
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
        label = f"intercept = {format_estimate(b0, se)}"
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
                    "array": [float(se)] if se is not None and math.isfinite(float(se)) else [0.0],
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
