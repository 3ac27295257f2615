"""Figure builders for trained networks (lltools.viz.training): pure, small frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lltools import viz as plots
from lltools.viz import training as plots_training


def _by_role(fig: go.Figure, role: str) -> list:
    return [t for t in fig.data if isinstance(t.meta, dict) and t.meta.get("role") == role]


def _trajectory(with_acc: bool = True) -> pd.DataFrame:
    steps = np.array([0, 10, 50, 100, 400, 1000, 2000, 3000])
    table = pd.DataFrame(
        {
            "step": steps,
            "llc_mean": [-5.0, 20.0, 500.0, 650.0, 675.0, 665.0, 640.0, 590.0],
            "llc_sem": [1.0, 2.0, 3.0, 1.0, 1.0, 2.0, 2.0, 1.5],
            "train_loss": [0.48, 0.40, 0.07, 0.02, 0.009, 0.006, 0.0035, 0.0015],
            "val_loss": [0.48, 0.60, 1.0, 1.2, 1.25, 1.08, 0.62, 0.10],
            "geometric_complexity": [0.1, 1.3, 68.0, 95.0, 103.0, 95.0, 83.0, 75.0],
        }
    )
    if with_acc:
        table["train_acc"] = [0.04, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
        table["val_acc"] = [0.04, 0.01, 0.02, 0.04, 0.04, 0.09, 0.57, 1.0]
    return table.sample(frac=1.0, random_state=0)  # builders must sort by step themselves


# ============================================================================ λ vs d/2


def test_complexity_rows_order_values_and_missing() -> None:
    rows = plots_training.complexity_rows(108, llc=12.0, llc_sem=0.5, theory=13.5, rank_llc=10.0)
    assert list(rows["role"]) == ["count", "regular", "rank", "theory", "estimate"]
    assert list(rows["value"]) == [108.0, 54.0, 10.0, 13.5, 12.0]
    assert rows.loc[rows["role"] == "estimate", "error"].item() == 1.0  # 2 × SEM
    # Unknown values are left out, not drawn as zero.
    short = plots_training.complexity_rows(4416, llc=None, theory=None, rank_llc=float("nan"))
    assert list(short["role"]) == ["count", "regular"]
    assert list(plots_training.complexity_rows(10, include_count=False)["role"]) == ["regular"]


def test_complexity_figure_bars_colours_error_and_regular_line() -> None:
    rows = plots_training.complexity_rows(108, llc=12.0, llc_sem=0.5, theory=13.5, rank_llc=10.0)
    fig = plots_training.complexity_figure(rows)
    assert all(isinstance(t, go.Bar) for t in fig.data)
    # One bar per quantity, the first row on top (Plotly draws horizontal bars bottom-up).
    assert [t.meta["role"] for t in fig.data] == ["estimate", "theory", "rank", "regular", "count"]
    est = _by_role(fig, "estimate")[0]
    assert est.x == (12.0,) and est.marker.color == plots_training.LLC_COLOR
    assert est.error_x.array == (1.0,)
    assert _by_role(fig, "theory")[0].marker.color == plots_training.THEORY_COLOR
    assert "13.5" in _by_role(fig, "theory")[0].text[0]
    # d/2 is marked by a vertical reference line.
    assert any(s.type == "line" and s.x0 == 54.0 for s in fig.layout.shapes)
    assert fig.layout.xaxis.type == "linear"  # 12 … 108: no need for a log axis
    assert fig.layout.xaxis.title.text.startswith("value")


def test_complexity_figure_goes_log_for_wide_ranges() -> None:
    rows = plots_training.complexity_rows(12_500, llc=20.0, llc_sem=1.0)
    assert plots_training.complexity_figure(rows).layout.xaxis.type == "log"
    assert plots_training.complexity_figure(rows, log_x=False).layout.xaxis.type == "linear"
    assert len(plots_training.complexity_figure(rows.iloc[:0]).data) == 0


# ============================================================================ trajectories


def test_event_steps() -> None:
    ev = plots_training.event_steps(_trajectory())
    assert ev == {"memorised": 50.0, "grokked": 3000.0}
    assert plots_training.event_steps(_trajectory(with_acc=False)) == {"memorised": None, "grokked": None}
    never = _trajectory().assign(val_acc=0.1)
    assert plots_training.event_steps(never)["grokked"] is None
    assert plots_training.event_steps(pd.DataFrame()) == {"memorised": None, "grokked": None}


def test_trajectory_figure_panels_traces_and_axes() -> None:
    fig = plots_training.trajectory_figure(_trajectory(), log_x=True)
    # Three linked panels: λ̂, loss, accuracy (shared x axis).
    assert fig.layout.xaxis3.matches is None and fig.layout.xaxis.matches == "x3"
    assert [a.text for a in fig.layout.annotations][:3] == [
        "local learning coefficient λ̂ (± SEM)",
        "loss",
        "accuracy",
    ]
    llc = _by_role(fig, "llc")[0]
    assert llc.line.color == plots_training.LLC_COLOR
    # Sorted by step, plotted at step + 1 on the log axis, the true step in customdata.
    assert list(llc.x) == [1.0, 11.0, 51.0, 101.0, 401.0, 1001.0, 2001.0, 3001.0]
    assert list(llc.customdata) == [0, 10, 50, 100, 400, 1000, 2000, 3000]
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis3.type == "log"
    assert fig.layout.xaxis3.title.text == "training step + 1 (log scale)"
    assert fig.layout.yaxis.title.text == "λ̂"
    assert fig.layout.yaxis2.type == "log"  # positive losses
    assert fig.layout.yaxis3.range == (-0.03, 1.05)
    train = {t.meta["column"] for t in _by_role(fig, "train")}
    val = {t.meta["column"] for t in _by_role(fig, "val")}
    assert train == {"train_loss", "train_acc"} and val == {"val_loss", "val_acc"}
    assert all(
        t.line.color == plots_training.TRAIN_COLOR and t.line.dash == "solid" for t in _by_role(fig, "train")
    )
    assert all(
        t.line.color == plots_training.VAL_COLOR and t.line.dash == "dash" for t in _by_role(fig, "val")
    )
    assert {t.yaxis for t in _by_role(fig, "train")} == {"y2", "y3"}


def test_trajectory_sem_band_is_mean_plus_minus_sem() -> None:
    table = _trajectory().sort_values("step")
    fig = plots_training.trajectory_figure(table, log_x=False)
    band = _by_role(fig, "band")[0]
    assert band.fill == "toself"
    k = len(table)
    upper, lower = np.array(band.y[:k]), np.array(band.y[k:])[::-1]
    np.testing.assert_allclose(upper, table["llc_mean"] + table["llc_sem"])
    np.testing.assert_allclose(lower, table["llc_mean"] - table["llc_sem"])
    assert list(band.x[:k]) == list(table["step"].astype(float))
    assert fig.layout.xaxis3.title.text == "training step"


def test_trajectory_reference_lines() -> None:
    fig = plots_training.trajectory_figure(_trajectory(), theory_llc=13.5, theory_label="Aoyagi λ")
    theory = _by_role(fig, "theory")[0]
    assert theory.y == (13.5, 13.5) and theory.line.dash == "dash" and "Aoyagi λ = 13.5" in theory.name
    # The theme colours the theory line (light/dark) like every other exact-λ line.
    plots.style_figure(fig, dark=True)
    assert theory.line.color == plots.FOREGROUND["dark"]
    events = {a.name: a for a in fig.layout.annotations if (a.name or "").startswith("event:")}
    assert set(events) == {"event:memorised", "event:grokked"}
    assert events["event:grokked"].text == "grokked (step 3,000)"
    # Annotations on a log axis take log10 positions; the late label is drawn left of its line.
    assert events["event:grokked"].x == pytest.approx(math.log10(3001.0))
    assert events["event:grokked"].xanchor == "right" and events["event:memorised"].xanchor == "left"
    assert events["event:grokked"].yref == "y domain"
    # λ̂ is high just left of the grokking line: that label goes to the bottom of the panel.
    assert events["event:grokked"].yanchor == "bottom" and events["event:grokked"].y == 0.03
    # One dotted vertical line per event in each of the three panels, at step + 1 (data units).
    vlines = [s for s in fig.layout.shapes if s.type == "line" and s.line.dash == "dot"]
    assert len(vlines) == 6 and {s.x0 for s in vlines} == {51.0, 3001.0}


def test_trajectory_without_accuracy_or_llc() -> None:
    fig = plots_training.trajectory_figure(_trajectory(with_acc=False))
    assert [a.text for a in fig.layout.annotations][:2] == ["local learning coefficient λ̂ (± SEM)", "loss"]
    assert not [a for a in fig.layout.annotations if (a.name or "").startswith("event:")]
    # Loss curves from a denser log (metrics.csv) while λ̂ is missing: still a figure.
    curves = _trajectory().drop(columns=["llc_mean", "llc_sem"])
    fig = plots_training.trajectory_figure(pd.DataFrame({"step": [0, 50]}), curves=curves)
    assert len(_by_role(fig, "train")) == 2 and _by_role(fig, "llc")
    # Empty input: an empty figure, not an error.
    assert len(plots_training.trajectory_figure(pd.DataFrame()).data) == 0


def test_trajectory_loss_axis_linear_when_not_positive() -> None:
    fig = plots_training.trajectory_figure(_trajectory().assign(train_loss=-1.0))
    assert fig.layout.yaxis2.type != "log"


# ============================================================================ GC


def test_scaled() -> None:
    np.testing.assert_allclose(plots_training.scaled([1.0, -4.0, 2.0]), [0.5, -2.0, 1.0])  # max ↦ 1
    np.testing.assert_allclose(plots_training.scaled([-1.0, -4.0]), [-0.25, -1.0])
    out = plots_training.scaled([np.nan, 0.0])
    assert math.isnan(out[0]) and out[1] == 0.0


def test_negative_llc_at_non_minima_does_not_squash_the_curve() -> None:
    assert not plots_training.negatives_dominate(np.array([-5.0, 20.0, 500.0]))
    assert plots_training.negatives_dominate(np.array([-2500.0, -800.0, 5.0, 13.5]))
    assert not plots_training.negatives_dominate(np.array([-2500.0, 13.5]))  # one point is no curve
    table = pd.DataFrame(
        {"step": [0, 10, 100, 1000], "llc_mean": [-2500.0, -800.0, 12.0, 13.4], "llc_sem": 0.2}
    )
    fig = plots_training.trajectory_figure(table, log_x=False)
    lo, hi = fig.layout.yaxis.range
    assert -3 < lo <= 0 and 13.6 < hi < 20  # framed on the λ̂ ≥ 0 checkpoints
    [note] = [a for a in fig.layout.annotations if a.name == "note:negative"]
    assert note.text.startswith("2 checkpoints with λ̂ < 0")
    # Not when the negatives are small: the modular-addition curve keeps its early points.
    assert fig.layout.yaxis.range is not None
    small = plots_training.trajectory_figure(_trajectory())
    assert small.layout.yaxis.range is None
    assert not [a for a in small.layout.annotations if a.name == "note:negative"]
    gc = plots_training.llc_vs_gc_figure(table.assign(geometric_complexity=[0.1, 0.5, 1.0, 1.0]))
    assert gc.layout.yaxis.range == (-0.3, 1.1)


def test_llc_vs_gc_figure() -> None:
    table = _trajectory()
    fig = plots_training.llc_vs_gc_figure(table)
    llc, gc = _by_role(fig, "llc")[0], _by_role(fig, "gc")[0]
    assert max(llc.y) == pytest.approx(1.0) and max(gc.y) == pytest.approx(1.0)
    assert gc.line.color == plots_training.GC_COLOR and llc.line.color == plots_training.LLC_COLOR
    # Hover shows the raw, unscaled values.
    assert max(row[1] for row in gc.customdata) == 103.0
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.title.text == "value ÷ its maximum"
    assert not _by_role(plots_training.llc_vs_gc_figure(table.drop(columns="geometric_complexity")), "gc")
    assert len(plots_training.llc_vs_gc_figure(pd.DataFrame()).data) == 0


def _label_span(ann, xs_log: tuple[float, float], width: float = 0.28) -> tuple[float, float, float]:
    """(left, right, y) of an event label in axis fractions; ``width`` is a generous estimate of
    a "memorised (step 20,000)" label on a 1280-px-wide page (~170 px of ~600 px)."""
    lo, hi = xs_log
    pos = (ann.x - lo) / (hi - lo)
    return (pos, pos + width, ann.y) if ann.xanchor == "left" else (pos - width, pos, ann.y)


CLOSE_EVENTS = [(2_000, 2_700), (150, 200), (15_000, 19_000), (900, 2_000)]


@pytest.mark.parametrize(("memorised", "grokked"), CLOSE_EVENTS)
def test_close_event_labels_do_not_overlap(memorised: int, grokked: int) -> None:
    """Labels of two nearby events collided at 1280 px ("memorised (step20kked (step 2,700)")."""
    steps = np.array([0, 100, memorised, grokked, 20_000])
    table = pd.DataFrame({
        "step": steps, "llc_mean": [1.0, 5.0, 8.0, 6.0, 4.0], "llc_sem": [0.1] * 5,
        "train_loss": [1.0, 0.5, 0.01, 0.01, 0.01], "val_loss": [1.0, 0.9, 0.9, 0.1, 0.05],
        "train_acc": [0.1, 0.5, 1.0, 1.0, 1.0], "val_acc": [0.1, 0.1, 0.2, 1.0, 1.0],
    })
    fig = plots_training.trajectory_figure(table, log_x=True)
    events = {a.name: a for a in fig.layout.annotations if (a.name or "").startswith("event:")}
    assert set(events) == {"event:memorised", "event:grokked"}
    xs_log = (math.log10(1.0), math.log10(20_001.0))
    (l1, r1, y1), (l2, r2, y2) = (_label_span(a, xs_log) for a in events.values())
    apart = r1 <= l2 or r2 <= l1
    assert apart or y1 != y2, (events["event:memorised"], events["event:grokked"])


def test_a_negative_estimate_is_still_drawn() -> None:
    """Issue 13.12: λ̂ = −484 at a mid-training checkpoint gets a bar (left of zero), not nothing."""
    rows = plots_training.complexity_rows(4416, llc=-484.0, llc_sem=20.0, rank_llc=30.0)
    fig = plots_training.complexity_figure(rows)
    [bar] = [t for t in fig.data if t.meta["role"] == "estimate"]
    assert bar.x[0] == -484.0
    lo, hi = fig.layout.xaxis.range
    assert fig.layout.xaxis.type == "linear" and lo <= -484 - 40 and hi >= 4416
