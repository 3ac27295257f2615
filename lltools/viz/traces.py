"""Figures of one run's traces: loss, running λ̂, acceptance, per-chain λ̂, two runs compared."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lltools.viz.style import (
    CHAIN_COLORS,
    FOREGROUND,
    HEALTHY_COLOR,
    _band,
    _chain_legend,
    _hline,
    _new_figure,
    _robust_range,
    _target_line,
    _theory_line,
    chain_color,
    thin,
)


def loss_quantiles(traces: pd.DataFrame, quantiles: tuple[float, float] = (0.1, 0.9)) -> pd.DataFrame:
    """Per step, the median and a central band of the loss across chains.

    Returns columns ``step, lo, median, hi, chains`` (``lo``/``hi`` are the ``quantiles``
    across the chains recorded at that step; non-finite losses — diverged chains — are left
    out).
    """
    finite = traces[np.isfinite(traces["loss"].to_numpy(dtype=float))]
    if finite.empty:
        return pd.DataFrame(columns=["step", "lo", "median", "hi", "chains"])
    grouped = finite.groupby("step")["loss"]
    out = grouped.quantile([quantiles[0], 0.5, quantiles[1]]).unstack()
    out.columns = ["lo", "median", "hi"]
    out["chains"] = grouped.size()
    return out.reset_index()


def loss_trace_figure(
    traces: pd.DataFrame,
    *,
    loss_init: float | None = None,
    burnin: int | None = None,
    total_steps: int | None = None,
    title: str | None = "Loss across chains",
    max_points: int = 800,
    show_chains: bool | str = "legendonly",
    band: tuple[float, float] = (0.1, 0.9),
) -> go.Figure:
    """The loss L(w_t) against step: the median over chains with a 10–90 % band, burn-in shaded.

    Eight or more overlapping chain traces hide each other, so the figure shows one line and one
    band; every chain's own trace is there on demand: hidden behind its legend entry
    ("chains 0–k", click to show) by default, drawn with ``show_chains=True``, left out with
    ``False``.

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
    show_chains : bool or "legendonly"
        Each chain's trace (thinned to ``max_points`` points per chain): shown, left out, or
        behind its legend entry.
    band : (float, float)
        The quantiles across chains that bound the shaded band.
    """
    fig = _new_figure(title, "step", "loss L(wₜ)")
    stats = loss_quantiles(traces, band) if not traces.empty else loss_quantiles(traces.iloc[0:0], band)
    if len(stats) > max_points:
        picks = np.linspace(0, len(stats) - 1, max_points).round().astype(int)
        keep = np.unique(np.r_[picks, len(stats) - 1])
        stats = stats.iloc[keep]
    if not stats.empty:
        num_chains = int(stats["chains"].max())
        label = f"{int(band[0] * 100)}–{int(band[1] * 100)} % of chains"
        fig.add_trace(go.Scatter(x=stats["step"], y=stats["hi"], mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip", meta={"role": "band"}))
        fig.add_trace(go.Scatter(
            x=stats["step"], y=stats["lo"], mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor="rgba(76,155,232,0.28)", name=label, hoverinfo="skip", meta={"role": "band"},
        ))
        fig.add_trace(go.Scatter(
            x=stats["step"], y=stats["median"], mode="lines", name=f"median of {num_chains} chains",
            line={"color": FOREGROUND["light"], "width": 1.8}, meta={"role": "mean"},
            customdata=np.c_[stats["lo"], stats["hi"]],
            hovertemplate="step %{x}<br>median L=%{y:.4g}<br>band %{customdata[0]:.4g} … %{customdata[1]:.4g}"
            "<extra></extra>",
        ))
    if show_chains and not traces.empty:
        data = thin(traces.sort_values(["chain", "step"]), max_points)
        groups = list(data.groupby("chain", sort=True))
        for i, (chain, group) in enumerate(groups):
            fig.add_trace(
                go.Scatter(
                    x=group["step"],
                    y=group["loss"],
                    mode="lines",
                    **_chain_legend(int(chain), i == 0, len(groups)),
                    opacity=0.45,
                    visible=True if show_chains is True else "legendonly",
                    line={"color": chain_color(int(chain)), "width": 0.8},
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
    if not stats.empty:
        # The whole band is in view (its top was clipped by a robust per-point range before).
        values = np.r_[stats["lo"].to_numpy(dtype=float), stats["hi"].to_numpy(dtype=float)]
        rng = _robust_range(values, (loss_init,), pad=0.05, quantile=0.0)
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
    theory_label: str = "exact λ",
    theory_exact: bool = True,
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
    theory_label, theory_exact : str, bool
        The reference's name in the legend (the theory record's ``label``) and whether it is
        exact; a reference that is not exact (a formula outside its regime) does not stretch
        the y axis: the axis is scaled to the data.
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
                go.Scatter(
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
            go.Scatter(
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
    _theory_line(fig, x0, x1, theory_llc, label=theory_label)
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
        rng = _robust_range(settled, (theory_llc if theory_exact else None, finite_target))
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
                    go.Scatter(
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
    theory_label: str = "exact λ",
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
        _theory_line(fig, x0, x1, theory_llc, label=theory_label)
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
