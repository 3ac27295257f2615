"""Pure Plotly figure builders for trained networks: tidy DataFrames in, ``go.Figure`` out.

Companion of :mod:`lltools.viz` (same template, palette and ``meta["role"]``
conventions) for the *Networks* and *Training trajectories* pages:

- :func:`complexity_rows` / :func:`complexity_figure` — the parameter count d, the
  regular value d/2, rank(J)/2, a closed-form λ and the estimate λ̂ side by side
  ("why λ ≪ d/2", primer §1 and §4).
- :func:`trajectory_figure` — λ̂ over training checkpoints with a ±SEM band, linked to
  train/validation loss and accuracy on a shared step axis (primer §5).
- :func:`llc_vs_gc_figure` — λ̂ beside the geometric complexity, each scaled to its
  largest value.
- :func:`event_steps` — the first step at which train / validation accuracy reaches a
  threshold (memorised / grokked), drawn as vertical reference lines.

Input tables are those of :func:`lltools.workflows.trajectory.compute_trajectory` (one row per
checkpoint: ``step, llc_mean, llc_sem, train_loss, val_loss, train_acc, val_acc,
geometric_complexity, ...``).  Nothing here imports Streamlit or runs a sampler.

Roles (``trace.meta["role"]``): ``"llc"``, ``"band"``, ``"train"``, ``"val"``, ``"gc"``,
``"theory"`` (closed-form λ, drawn in the theme's foreground colour by
:func:`lltools.viz.style_figure`), and for the
comparison chart ``"count"``, ``"regular"``, ``"rank"``, ``"theory"``, ``"estimate"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lltools.viz.style import FOREGROUND, format_number, template

#: λ̂ (the estimate) — the first chain colour, so it reads as "the sampler's number".
LLC_COLOR = "#4C9BE8"
#: Training-set curves (loss, accuracy): solid orange.
TRAIN_COLOR = "#F58518"
#: Validation curves: dashed green.
VAL_COLOR = "#54A24B"
#: Geometric complexity.
GC_COLOR = "#B279A2"
#: Reference quantities of the comparison chart (neutral greys and the theory colour).
COUNT_COLOR = "rgba(140,146,160,0.35)"
REGULAR_COLOR = "rgba(140,146,160,0.75)"
RANK_COLOR = "#72B7B2"
THEORY_COLOR = "#C2185B"
#: Colour of the memorised / grokked vertical lines.
EVENT_COLOR = "rgba(128,128,128,0.75)"

ROLE_COLORS: dict[str, str] = {
    "count": COUNT_COLOR,
    "regular": REGULAR_COLOR,
    "rank": RANK_COLOR,
    "theory": THEORY_COLOR,
    "estimate": LLC_COLOR,
}


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _new(title: str | None) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template=template(), title={"text": title} if title else None)
    return fig


# ============================================================================ λ vs d/2


def complexity_rows(
    dim: int,
    *,
    llc: float | None = None,
    llc_sem: float | None = None,
    theory: float | None = None,
    theory_label: str = "closed-form λ",
    rank_llc: float | None = None,
    include_count: bool = True,
) -> pd.DataFrame:
    """The rows of :func:`complexity_figure`: ``quantity, value, error, role, note``.

    Parameters
    ----------
    dim : int
        Number of parameters d.
    llc, llc_sem : float, optional
        The estimate λ̂ and its standard error (``error`` is 2·SEM).
    theory : float, optional
        A closed-form λ (Aoyagi for deep linear networks, the paper value for quadratic
        networks), labelled ``theory_label``.
    rank_llc : float, optional
        rank(J)/2 (the minimally-singular value, a lower bound on λ).
    include_count : bool
        Also list d itself (not on the λ scale, but what people compare against).

    Rows missing a value (None/NaN) are left out; order is d, d/2, rank(J)/2, closed form,
    λ̂ (top to bottom in the figure).
    """
    rows: list[dict[str, Any]] = []
    if include_count:
        rows.append(
            {
                "quantity": "d (parameters)",
                "value": float(dim),
                "error": np.nan,
                "role": "count",
                "note": "number of parameters",
            }
        )
    rows.append(
        {
            "quantity": "d/2 (regular model)",
            "value": dim / 2.0,
            "error": np.nan,
            "role": "regular",
            "note": "λ of a regular (non-degenerate) minimum",
        }
    )
    if _finite(rank_llc):
        rows.append(
            {
                "quantity": "rank(J)/2",
                "value": float(rank_llc),
                "error": np.nan,
                "role": "rank",
                "note": "minimally singular value; a lower bound on λ",
            }
        )
    if _finite(theory):
        rows.append(
            {
                "quantity": theory_label,
                "value": float(theory),
                "error": np.nan,
                "role": "theory",
                "note": "closed form",
            }
        )
    if _finite(llc):
        err = 2.0 * float(llc_sem) if _finite(llc_sem) else np.nan
        rows.append(
            {
                "quantity": "λ̂ (estimate)",
                "value": float(llc),
                "error": err,
                "role": "estimate",
                "note": "SGLD estimate ± 2 SEM",
            }
        )
    return pd.DataFrame(rows, columns=["quantity", "value", "error", "role", "note"])


def complexity_figure(
    rows: pd.DataFrame,
    *,
    log_x: bool | None = None,
    title: str | None = "λ̂ against the parameter count",
) -> go.Figure:
    """Horizontal bars: d, d/2, rank(J)/2, closed-form λ and λ̂ (± 2 SEM) on one axis.

    Parameters
    ----------
    rows : DataFrame
        :func:`complexity_rows` output (``quantity, value, error, role``).
    log_x : bool, optional
        Logarithmic value axis; default: automatic, when the positive values span more
        than a factor 50 (then a small λ̂ stays visible next to d).

    A dotted vertical line marks d/2 (role ``"regular"``), so "λ ≪ d/2" is visible at a
    glance; each bar is one trace with its ``role`` in ``meta``.
    """
    fig = _new(title)
    if rows.empty:
        return fig
    order = rows.iloc[::-1]  # first row on top
    positive = rows["value"][rows["value"] > 0]
    negative = bool((rows["value"] < 0).any())
    if log_x is None:
        log_x = bool(len(positive) >= 2 and positive.max() / positive.min() > 50)
    if negative:
        log_x = False  # a negative λ̂ (w* not a minimum) is drawn, left of zero
    for _, row in order.iterrows():
        role = str(row["role"])
        value = float(row["value"])
        err = float(row["error"]) if _finite(row.get("error")) else None
        shown = value if (not log_x or value > 0) else None
        text = format_number(value, 4) + (f" ± {format_number(err, 2)}" if err else "")
        shown_text = ("\u2007\u2007" + text) if err else text  # clear the error-bar whisker
        fig.add_trace(
            go.Bar(
                x=[shown],
                y=[row["quantity"]],
                orientation="h",
                name=str(row["quantity"]),
                marker={"color": ROLE_COLORS.get(role, REGULAR_COLOR)},
                error_x={"type": "data", "array": [err], "visible": True, "thickness": 1.6, "width": 6}
                if err
                else None,
                text=[shown_text],
                textposition="outside",
                cliponaxis=False,
                hovertemplate=f"{row['quantity']}: {text}<extra></extra>",
                showlegend=False,
                meta={"role": role, "value": value},
            )
        )
    regular = rows.loc[rows["role"] == "regular", "value"]
    if not regular.empty:
        fig.add_vline(
            x=float(regular.iloc[0]),
            line={"dash": "dot", "color": FOREGROUND["light"], "width": 1.2},
            opacity=0.6,
        )
    fig.update_layout(bargap=0.35, margin={"r": 90})
    fig.update_xaxes(title_text="value (λ scale; d for reference)", type="log" if log_x else "linear")
    fig.update_yaxes(title_text=None, automargin=True)
    if not log_x:
        top = float((rows["value"] + rows["error"].fillna(0)).max())
        bottom = min(0.0, float((rows["value"] - rows["error"].fillna(0)).min()))
        fig.update_xaxes(range=[bottom * 1.18, top * 1.18 if top > 0 else 1.0])
    return fig


# ============================================================================ trajectories


def event_steps(table: pd.DataFrame, threshold: float = 0.95) -> dict[str, float | None]:
    """First logged step where train / validation accuracy reaches ``threshold``.

    Returns ``{"memorised": step or None, "grokked": step or None}`` (None when the
    accuracy column is missing, all NaN, or never reaches the threshold).
    """
    out: dict[str, float | None] = {"memorised": None, "grokked": None}
    if table.empty or "step" not in table:
        return out
    for key, col in (("memorised", "train_acc"), ("grokked", "val_acc")):
        if col not in table:
            continue
        rows = table.dropna(subset=[col]).sort_values("step")
        hit = rows[rows[col] >= threshold]
        if not hit.empty:
            out[key] = float(hit["step"].iloc[0])
    return out


def _has(table: pd.DataFrame, col: str) -> bool:
    return col in table and bool(np.isfinite(pd.to_numeric(table[col], errors="coerce")).any())


def _x(table: pd.DataFrame, log_x: bool) -> np.ndarray:
    steps = table["step"].to_numpy(dtype=float)
    return steps + 1.0 if log_x else steps


def _relative_position(x: float, xs: np.ndarray, log: bool) -> float:
    """Where ``x`` sits between min and max of ``xs`` (0 … 1), in log units on a log axis."""
    lo, hi = float(np.nanmin(xs)), float(np.nanmax(xs))
    if log:
        x, lo, hi = math.log10(x), math.log10(lo), math.log10(hi)
    return (x - lo) / (hi - lo) if hi > lo else 0.5


def _label_at_top(xv: float, x: np.ndarray, y: np.ndarray, log: bool, right: bool, span: float = 0.3) -> bool:
    """Whether an event label beside ``xv`` avoids the λ̂ curve better at the top of the panel.

    Looks at the curve over ``span`` of the axis width on the label's side: if it runs in
    the upper 40 % of its range there, the label goes to the bottom.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    if log:
        ok &= x > 0
    if ok.sum() < 2:
        return True
    xs, ys = (np.log10(x[ok]) if log else x[ok]), y[ok]
    x0 = math.log10(xv) if log else xv
    width = float(xs.max() - xs.min()) or 1.0
    lo, hi = (x0, x0 + span * width) if right else (x0 - span * width, x0)
    near = ys[(xs >= lo) & (xs <= hi)]
    if near.size == 0:
        return True
    rel = (near - ys.min()) / ((ys.max() - ys.min()) or 1.0)
    return bool(rel.max() < 0.6)


#: Two event lines closer than this fraction of the axis width have labels that would collide.
EVENT_LABEL_GAP = 0.3


def _place_event_labels(
    events: list[tuple[str, float]], xs: np.ndarray, log: bool
) -> list[tuple[str, float, bool, int]]:
    """``(name, x, right, level)`` for each event line: which side of its line its label goes
    and on which text row (0 = the panel's edge), so that no two labels overlap.

    A lone label goes to the side with more room; for two lines closer than
    :data:`EVENT_LABEL_GAP` of the axis, the earlier label goes left of its line and the later
    one right of its line, and if either would still run into the other (both forced to
    the same side by the axis edges) the later one drops to the next row.
    """
    ordered = sorted(events, key=lambda e: e[1])
    out: list[tuple[str, float, bool, int]] = []
    for i, (name, xv) in enumerate(ordered):
        pos = _relative_position(xv, xs, log)
        right = pos <= 0.5
        gaps = [abs(pos - _relative_position(other, xs, log)) for _, other in ordered]
        near_prev = i > 0 and gaps[i - 1] < EVENT_LABEL_GAP
        near_next = i + 1 < len(ordered) and gaps[i + 1] < EVENT_LABEL_GAP
        if near_next and pos > 0.15:
            right = False  # the earlier of a close pair looks left, away from the later one
        elif near_prev and pos < 0.85:
            right = True  # the later one looks right
        level = 0
        if near_prev:
            _, _, prev_right, prev_level = out[-1]
            if prev_right or not right:  # both labels on the side between or beyond: next row
                level = prev_level + 1
        out.append((name, xv, right, level))
    return out


def step_axis_title(log_x: bool) -> str:
    """The shared x-axis title (log axes plot step + 1 so that step 0 is shown)."""
    return "training step + 1 (log scale)" if log_x else "training step"


def trajectory_figure(
    table: pd.DataFrame,
    *,
    log_x: bool = True,
    log_loss: bool = True,
    theory_llc: float | None = None,
    theory_label: str = "closed-form λ",
    threshold: float = 0.95,
    curves: pd.DataFrame | None = None,
    focus_nonnegative: bool = True,
    title: str | None = "λ̂ over training",
    height_per_row: int = 230,
) -> go.Figure:
    """λ̂ (± SEM band) over checkpoints, with loss and accuracy in linked panels.

    Parameters
    ----------
    table : DataFrame
        One row per checkpoint: ``step, llc_mean`` and optionally ``llc_sem``,
        ``train_loss, val_loss, train_acc, val_acc``.
    log_x : bool
        Log step axis (plots ``step + 1``; hover shows the true step).
    log_loss : bool
        Log loss axis (used only when every loss value is positive).
    theory_llc : float, optional
        A reference λ (dashed, role ``"theory"``).
    threshold : float
        Accuracy marking "memorised" (train) and "grokked" (validation); both are drawn
        as dotted vertical lines in every panel, labelled by annotations named
        ``"event:memorised"`` / ``"event:grokked"`` in the λ̂ panel.
    curves : DataFrame, optional
        The logged training curves (``step, train_loss, val_loss, train_acc, val_acc``,
        e.g. ``metrics.csv``) for the loss and accuracy panels and the events, when they
        are logged more densely than λ̂ was computed; default: ``table``'s own columns.
    focus_nonnegative : bool
        When λ̂ < 0 values (checkpoints that are not minima) are larger in size than the
        largest λ̂ ≥ 0, frame the λ̂ axis on the λ̂ ≥ 0 checkpoints and say how many fall
        below it (annotation ``"note:negative"``).

    Panels share the x axis (zoom one, all follow): λ̂, loss, and accuracy when any
    accuracy is logged.
    """
    data = table.sort_values("step").reset_index(drop=True) if not table.empty else table
    logged = data if curves is None else curves.sort_values("step").reset_index(drop=True)
    has_acc = not logged.empty and (_has(logged, "train_acc") or _has(logged, "val_acc"))
    has_loss = not logged.empty and (_has(logged, "train_loss") or _has(logged, "val_loss"))
    panels = ["λ̂"] + (["loss"] if has_loss else []) + (["accuracy"] if has_acc else [])
    titles = {
        "λ̂": "local learning coefficient λ̂ (± SEM)",
        "loss": "loss",
        "accuracy": "accuracy",
    }
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07 if len(panels) > 1 else 0.0,
        subplot_titles=[titles[p] for p in panels],
    )
    for ann in fig.layout.annotations or ():  # subplot titles: small, left-aligned
        ann.update(x=0.0, xanchor="left", font={"size": 13})
    fig.update_layout(
        template=template(),
        title={"text": title} if title else None,
        height=max(320, height_per_row * len(panels) + 90),
        hovermode="x unified",
    )
    if data.empty and logged.empty:
        return fig
    x = _x(data, log_x)
    steps = data["step"].to_numpy()
    lx = _x(logged, log_x)
    lsteps = logged["step"].to_numpy()
    row_of = {p: i + 1 for i, p in enumerate(panels)}

    # --- λ̂ with a ± SEM band
    llc = data["llc_mean"].to_numpy(dtype=float) if "llc_mean" in data else np.full(len(data), np.nan)
    if _has(data, "llc_sem"):
        sem = data["llc_sem"].to_numpy(dtype=float)
        sem = np.where(np.isfinite(sem), sem, 0.0)
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([llc + sem, (llc - sem)[::-1]]),
                fill="toself",
                fillcolor="rgba(76,155,232,0.22)",
                line={"width": 0},
                mode="lines",
                name="± SEM",
                hoverinfo="skip",
                showlegend=True,
                legendgroup="llc",
                meta={"role": "band"},
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=llc,
            customdata=steps,
            mode="lines+markers",
            name="λ̂",
            line={"color": LLC_COLOR, "width": 2.4},
            marker={"size": 6, "color": LLC_COLOR},
            legendgroup="llc",
            hovertemplate="step %{customdata}<br>λ̂ = %{y:.4g}<extra></extra>",
            meta={"role": "llc"},
        ),
        row=1,
        col=1,
    )
    if _finite(theory_llc) and len(x):
        fig.add_trace(
            go.Scatter(
                x=[float(np.nanmin(x)), float(np.nanmax(x))],
                y=[float(theory_llc)] * 2,
                mode="lines",
                name=f"{theory_label} = {format_number(theory_llc)}",
                line={"color": FOREGROUND["light"], "dash": "dash", "width": 1.8},
                hoverinfo="skip",
                meta={"role": "theory", "value": float(theory_llc)},
            ),
            row=1,
            col=1,
        )

    # --- loss and accuracy (train solid, validation dashed)
    for panel, cols in (("loss", ("train_loss", "val_loss")), ("accuracy", ("train_acc", "val_acc"))):
        if panel not in row_of:
            continue
        for col in cols:
            if not _has(logged, col):
                continue
            is_train = col.startswith("train")
            color = TRAIN_COLOR if is_train else VAL_COLOR
            label = ("train " if is_train else "validation ") + panel
            fig.add_trace(
                go.Scatter(
                    x=lx,
                    y=logged[col].to_numpy(dtype=float),
                    customdata=lsteps,
                    mode="lines+markers",
                    name=label,
                    line={"color": color, "width": 2.0, "dash": "solid" if is_train else "dash"},
                    marker={"size": 4, "color": color},
                    legendgroup="train" if is_train else "val",
                    hovertemplate=f"step %{{customdata}}<br>{label} = %{{y:.4g}}<extra></extra>",
                    meta={"role": "train" if is_train else "val", "column": col},
                ),
                row=row_of[panel],
                col=1,
            )
    if "loss" in row_of and log_loss:
        vals = pd.concat([logged[c] for c in ("train_loss", "val_loss") if c in logged]).to_numpy(dtype=float)
        vals = vals[np.isfinite(vals)]
        if vals.size and (vals > 0).all():
            fig.update_yaxes(type="log", row=row_of["loss"], col=1)
    if "accuracy" in row_of:
        fig.update_yaxes(range=[-0.03, 1.05], row=row_of["accuracy"], col=1)
    if focus_nonnegative and negatives_dominate(llc):
        # Frame the λ̂ ≥ 0 checkpoints; the non-minima (λ̂ < 0) fall below the axis, with a note.
        sem_all = data["llc_sem"].to_numpy(dtype=float) if "llc_sem" in data else np.zeros(len(llc))
        keep = np.isfinite(llc) & (llc >= 0)
        hi = float(np.nanmax(llc[keep] + np.nan_to_num(sem_all[keep])))
        lo = float(min(0.0, np.nanmin(llc[keep] - np.nan_to_num(sem_all[keep]))))
        pad = 0.12 * ((hi - lo) or 1.0)
        fig.update_yaxes(range=[lo - pad, hi + pad], row=1, col=1)
        hidden = int((llc < 0).sum())
        _negative_note(
            fig, f"{hidden} checkpoint{'s' if hidden > 1 else ''} with λ̂ < 0 (not minima) below the axis"
        )

    # --- memorised / grokked markers in every panel
    events = event_steps(logged, threshold)
    lines = [(name, step + 1.0 if log_x else step) for name, step in events.items() if step is not None]
    placed = _place_event_labels(lines, lx, log_x)
    for name, xv, right, level in placed:
        step = events[name]
        label = f"{name} (step {int(step):,})"
        for i in range(1, len(panels) + 1):
            fig.add_vline(
                x=xv,  # shapes take data values even on log axes (plotly.py #2580)
                line={"dash": "dot", "color": EVENT_COLOR, "width": 1.3},
                row=i,
                col=1,
            )
        # The label sits inside the top (or bottom) of the λ̂ panel, clear of the curve and of
        # the other event's label.
        top = _label_at_top(xv, x, llc, log_x, right)
        y = (0.97 - 0.16 * level) if top else (0.03 + 0.16 * level)
        fig.add_annotation(
            x=math.log10(xv) if log_x else xv,  # annotations take log10 positions on log axes
            y=y,
            xref="x",
            yref="y domain",
            text=label,
            showarrow=False,
            xanchor="left" if right else "right",
            yanchor="top" if top else "bottom",
            xshift=4 if right else -4,
            font={"size": 11},
            name=f"event:{name}",
        )

    axis_type = "log" if log_x else "linear"
    fig.update_xaxes(type=axis_type)
    fig.update_xaxes(title_text=step_axis_title(log_x), row=len(panels), col=1)
    fig.update_yaxes(title_text="λ̂", row=1, col=1)
    if "loss" in row_of:
        fig.update_yaxes(title_text="loss" + (" (log)" if log_loss else ""), row=row_of["loss"], col=1)
    if "accuracy" in row_of:
        fig.update_yaxes(title_text="accuracy", row=row_of["accuracy"], col=1)
    return fig


def scaled(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    """``values`` divided by their largest positive finite value (else the largest |value|).

    So the maximum maps to 1 even when a few values are hugely negative (λ̂ < 0 at
    checkpoints that are not minima); all-NaN or all-zero input is returned unchanged.
    """
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return arr
    top = float(finite.max()) if (finite > 0).any() else float(np.max(np.abs(finite)))
    return arr / top if top > 0 else arr


def _negative_note(fig: go.Figure, text: str) -> None:
    """A small note at the bottom left of the (first) panel, named ``note:negative``."""
    fig.add_annotation(
        x=0.01,
        y=0.03,
        xref="x domain",
        yref="y domain",
        xanchor="left",
        yanchor="bottom",
        showarrow=False,
        text=text,
        font={"size": 11},
        name="note:negative",
    )


def negatives_dominate(llc: np.ndarray) -> bool:
    """Whether λ̂ < 0 values (non-minima) are so large they would squash the λ̂ ≥ 0 curve.

    True when at least two λ̂ are ≥ 0 and the most negative value exceeds the largest
    non-negative one in size.
    """
    v = np.asarray(llc, dtype=float)
    v = v[np.isfinite(v)]
    pos = v[v >= 0]
    return bool(pos.size >= 2 and (v < 0).any() and -v.min() > pos.max())


def llc_vs_gc_figure(
    table: pd.DataFrame,
    *,
    log_x: bool = True,
    title: str | None = "λ̂ and geometric complexity, scaled",
) -> go.Figure:
    """λ̂ and the geometric complexity GC over training, each scaled to its largest value.

    GC = (1/|D|) Σ_x ‖∇_x f(x)‖²_F (Dherin et al., primer §5) and λ̂ live on different
    scales; dividing each by its maximum over checkpoints puts their *shapes* side by
    side.  Hover shows the unscaled values.
    """
    fig = _new(title)
    fig.update_layout(hovermode="x unified")
    fig.update_xaxes(title_text=step_axis_title(log_x), type="log" if log_x else "linear")
    fig.update_yaxes(title_text="value ÷ its maximum")
    if table.empty:
        return fig
    data = table.sort_values("step")
    x = _x(data, log_x)
    for col, name, color, role in (
        ("llc_mean", "λ̂", LLC_COLOR, "llc"),
        ("geometric_complexity", "geometric complexity", GC_COLOR, "gc"),
    ):
        if not _has(data, col):
            continue
        raw = data[col].to_numpy(dtype=float)
        if role == "llc" and negatives_dominate(raw):
            fig.update_yaxes(range=[-0.3, 1.1])
            _negative_note(fig, "λ̂ < 0 checkpoints (not minima) are below the axis")
        fig.add_trace(
            go.Scatter(
                x=x,
                y=scaled(raw),
                customdata=np.stack([data["step"].to_numpy(dtype=float), raw], axis=1),
                mode="lines+markers",
                name=name,
                line={"color": color, "width": 2.2, "dash": "solid" if role == "llc" else "dashdot"},
                marker={"size": 5, "color": color},
                hovertemplate=(
                    f"step %{{customdata[0]:.0f}}<br>{name} = %{{customdata[1]:.4g}}<extra></extra>"
                ),
                meta={"role": role},
            )
        )
    return fig


__all__ = [
    "GC_COLOR",
    "LLC_COLOR",
    "TRAIN_COLOR",
    "VAL_COLOR",
    "complexity_figure",
    "complexity_rows",
    "event_steps",
    "llc_vs_gc_figure",
    "negatives_dominate",
    "scaled",
    "step_axis_title",
    "trajectory_figure",
]
