"""Figures of refined LLCs: restricted λ̂ per component, a component × checkpoint heatmap
with the training curves above it, and probe samples embedded by their loss covariance.

Pure builders: a DataFrame in (a refined table of :mod:`lltools.workflows.refined`, or a
:meth:`~lltools.estimation.influence.LossMoments.table`), a Plotly figure out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lltools.viz.style import (
    CHAIN_COLORS,
    SEQUENTIAL,
    TARGET_COLOR,
    _new_figure,
    _sem_error_y,
    format_estimate,
    template,
)

#: The restriction name of the whole model (the unrestricted λ̂).
WHOLE = "all"


def restricted_bars(
    table: pd.DataFrame, *, full_llc: float | None = None, title: str | None = None
) -> go.Figure:
    """λ̂ ± 2 SEM of each restriction as bars, with its regular bound d_S/2 as a hollow
    marker and the whole model's λ̂ as a dashed line.

    Parameters
    ----------
    table : DataFrame
        Rows with ``restriction, restricted_dim, llc_mean, llc_sem`` (one setting).
    full_llc : float, optional
        The unrestricted λ̂ (default: the table's ``"all"`` row, if any).
    """
    parts = table[table["restriction"] != WHOLE]
    whole = table[table["restriction"] == WHOLE]
    if full_llc is None and len(whole):
        full_llc = float(whole["llc_mean"].iloc[0])
    fig = _new_figure(title, "restriction", "restricted λ̂")
    labels = parts["restriction"].astype(str).tolist()
    fig.add_trace(go.Bar(
        x=labels, y=parts["llc_mean"], name="restricted λ̂", marker_color=CHAIN_COLORS[0],
        error_y=_sem_error_y(parts["llc_sem"], 1.5),
        customdata=np.stack([parts["restricted_dim"], parts["llc_sem"]], axis=1),
        hovertemplate=("%{x}<br>λ̂ = %{y:.3g} ± %{customdata[1]:.2g} (SEM)<br>d = %{customdata[0]}"
                       "<extra></extra>"),
    ))
    fig.add_trace(go.Scatter(
        x=labels, y=parts["restricted_dim"] / 2, mode="markers", name="d_S / 2 (regular bound)",
        marker={"symbol": "line-ew-open", "size": 28, "line": {"width": 2, "color": "#888888"}},
        hovertemplate="%{x}: d_S/2 = %{y:g}<extra></extra>",
    ))
    if full_llc is not None and np.isfinite(full_llc):
        fig.add_hline(y=full_llc, line={"dash": "dash", "color": TARGET_COLOR, "width": 2},
                      annotation_text=f"whole model λ̂ = {full_llc:.3g}", annotation_position="top left")
    fig.update_layout(legend={"orientation": "h", "y": -0.2}, bargap=0.35)
    fig.update_xaxes(type="category")  # names like "0", "1" are labels, not numbers
    return fig


def restricted_heatmap(
    table: pd.DataFrame, *, value: str = "llc_mean", title: str | None = None
) -> go.Figure:
    """Component × checkpoint heatmap of restricted λ̂ with the training and validation
    loss on the same x axis above it.

    Parameters
    ----------
    table : DataFrame
        A refined trajectory: ``restriction, step, llc_mean, llc_sem`` and, when logged,
        ``train_loss``/``val_loss`` (one row per restriction × checkpoint).
    """
    x = "step" if "step" in table.columns and table["step"].notna().all() else "checkpoint"
    parts = table[table["restriction"] != WHOLE]
    wide = parts.pivot_table(index="restriction", columns=x, values=value, sort=False)
    sem = parts.pivot_table(index="restriction", columns=x, values="llc_sem", sort=False).reindex_like(wide)
    steps = wide.columns.to_numpy()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.32, 0.68], vertical_spacing=0.04)
    curves = table.drop_duplicates(x).sort_values(x)
    for i, column in enumerate(c for c in ("train_loss", "val_loss") if c in curves.columns):
        fig.add_trace(go.Scatter(x=curves[x], y=curves[column], mode="lines+markers",
                                 name=column.replace("_", " "), line={"color": CHAIN_COLORS[i]},
                                 marker={"size": 5}), row=1, col=1)
    text = np.vectorize(lambda m, s: format_estimate(m, s, 3))(wide.to_numpy(), sem.to_numpy())
    fig.add_trace(go.Heatmap(
        x=steps, y=wide.index.astype(str), z=wide.to_numpy(), colorscale=SEQUENTIAL,
        colorbar={"title": {"text": "λ̂", "side": "top"}, "y": 0.34, "len": 0.68}, text=text,
        hovertemplate=f"%{{y}}<br>{x} %{{x}}<br>λ̂ = %{{text}}<extra></extra>", name="restricted λ̂",
    ), row=2, col=1)
    fig.update_layout(template=template(), title={"text": title} if title else None,
                      legend={"orientation": "h", "x": 1.0, "xanchor": "right", "y": 1.0,
                              "yanchor": "bottom"})
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_xaxes(title_text="training step" if x == "step" else "checkpoint", row=2, col=1)
    return fig


def influence_scatter(frame: pd.DataFrame, *, color: str | None = None, hover: str | None = None,
                      title: str | None = None) -> go.Figure:
    """Probe samples placed by the covariance of their losses across the posterior (points
    close together move together: they influence each other), coloured by ``color``.

    Parameters
    ----------
    frame : DataFrame
        :meth:`lltools.estimation.influence.LossMoments.table` (``sample, x, y,
        loss_change, …``), optionally with label columns.
    color : str, optional
        Column to colour by (default ``loss_change``).
    hover : str, optional
        Column shown on hover (e.g. the sample as text).
    """
    color = color or "loss_change"
    fig = _new_figure(title, "embedding 1", "embedding 2")
    hover_text = frame[hover].astype(str) if hover else frame["sample"].astype(str)
    if frame[color].dtype.kind in "biuf":
        fig.add_trace(go.Scatter(
            x=frame["x"], y=frame["y"], mode="markers", text=hover_text, name=color,
            marker={"color": frame[color], "colorscale": SEQUENTIAL, "size": 8,
                    "colorbar": {"title": {"text": color.replace("_", " ")}}},
            hovertemplate="%{text}<extra></extra>",
        ))
    else:
        for i, (label, group) in enumerate(frame.groupby(color, sort=True)):
            fig.add_trace(go.Scatter(
                x=group["x"], y=group["y"], mode="markers", name=str(label),
                text=hover_text.loc[group.index],
                marker={"size": 8, "color": CHAIN_COLORS[i % len(CHAIN_COLORS)]},
                hovertemplate="%{text}<extra></extra>",
            ))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
