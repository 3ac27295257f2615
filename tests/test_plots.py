"""Figure builders: pure functions of tidy frames (no sampler, no Streamlit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lltools import viz as plots
from lltools.viz import theory as viz_theory


def _traces(chains: int = 3, steps: int = 40, burnin: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for c in range(chains):
        loss = 0.01 + 0.005 * rng.random(steps)
        running = np.full(steps, np.nan)
        draws = loss[burnin:] * 100
        running[burnin:] = np.cumsum(draws) / np.arange(1, len(draws) + 1)
        for t in range(steps):
            rows.append(
                {
                    "chain": c,
                    "step": t,
                    "is_draw": t >= burnin,
                    "loss": loss[t],
                    "llc_running": running[t],
                    "acceptance": 0.95 + 0.05 * rng.random(),
                }
            )
    return pd.DataFrame(rows)


def _by_role(fig: go.Figure, role: str) -> list:
    return [t for t in fig.data if isinstance(t.meta, dict) and t.meta.get("role") == role]


def _sweep_table() -> pd.DataFrame:
    rows = []
    s = 0
    for eps in (1e-4, 1e-3, 1e-2):
        for gamma in (1.0, 10.0):
            rows.append(
                {
                    "setting": s,
                    "epsilon": eps,
                    "gamma": gamma,
                    "nbeta": 100.0,
                    "llc_mean": 0.9 + eps,
                    "llc_sem": 0.02,
                    "rhat": 1.01,
                    "ess": 300.0,
                    "acceptance": 0.99 - 20 * eps,
                    "num_chains": 4,
                    "n_diverged": 0,
                }
            )
            s += 1
    return pd.DataFrame(rows)


def test_chain_colours_are_fixed_and_wrap() -> None:
    assert plots.chain_color(0) == plots.CHAIN_COLORS[0]
    assert plots.chain_color(len(plots.CHAIN_COLORS)) == plots.CHAIN_COLORS[0]
    assert len(set(plots.CHAIN_COLORS)) == len(plots.CHAIN_COLORS)
    assert plots.TARGET_COLOR not in plots.CHAIN_COLORS


@pytest.mark.parametrize("dark", [False, True])
@pytest.mark.parametrize("large", [False, True])
def test_template_light_dark_large(dark: bool, large: bool) -> None:
    tpl = plots.template(dark=dark, large=large)
    assert tpl.layout.paper_bgcolor == "rgba(0,0,0,0)"
    assert tpl.layout.font.color == plots.FOREGROUND["dark" if dark else "light"]
    assert tpl.layout.font.size == (21 if large else 14)


def test_llc_running_one_trace_per_chain_with_reference_lines() -> None:
    df = _traces(chains=3)
    fig = plots.llc_running_figure(df, theory_llc=0.25, finite_target=0.2, llc_mean=0.9, llc_sem=0.01)
    chains = _by_role(fig, "chain")
    assert [t.meta["chain"] for t in chains] == [0, 1, 2]
    assert [t.line.color for t in chains] == [plots.chain_color(i) for i in range(3)]
    # only draws are plotted: the first x is the burn-in length
    assert min(chains[0].x) == 10
    assert [t.showlegend for t in chains] == [True, False, False]  # one legend entry for all chains
    assert chains[0].name == "chains 0–2"
    (theory,) = _by_role(fig, "theory")
    assert set(theory.y) == {0.25}
    assert "exact λ" in theory.name
    (target,) = _by_role(fig, "target")
    assert set(target.y) == {0.2}
    assert target.line.color == plots.TARGET_COLOR
    assert len(_by_role(fig, "mean")) == 1
    assert len(_by_role(fig, "band")) == 1
    assert fig.layout.xaxis.title.text == "step"
    assert "λ̂" in fig.layout.yaxis.title.text


def test_llc_running_skips_missing_references_and_handles_empty() -> None:
    fig = plots.llc_running_figure(_traces(), theory_llc=None, finite_target=float("nan"))
    assert not _by_role(fig, "theory") and not _by_role(fig, "target")
    empty = plots.llc_running_figure(_traces().iloc[0:0], theory_llc=1.0, total_steps=100)
    assert len(_by_role(empty, "theory")) == 1
    assert tuple(empty.layout.xaxis.range) == (0, 100)


def test_loss_figure_is_a_median_and_band_with_chains_on_demand() -> None:
    """Eight overlapping chains hid each other (issue 13 item 14): by default one median line
    and one 10–90 % band, with the exact quantiles across chains; the whole band in view."""
    rng = np.random.default_rng(0)
    steps, chains = 50, 8
    loss = rng.exponential(1.0, size=(chains, steps))
    df = pd.DataFrame({"chain": np.repeat(np.arange(chains), steps),
                       "step": np.tile(np.arange(steps), chains), "loss": loss.ravel()})
    fig = plots.loss_trace_figure(df, burnin=10)
    assert {t.visible for t in _by_role(fig, "chain")} == {"legendonly"}  # one legend click away
    assert not _by_role(plots.loss_trace_figure(df, burnin=10, show_chains=False), "chain")
    (median,) = _by_role(fig, "mean")
    np.testing.assert_allclose(median.y, np.median(loss, axis=0))
    upper, lower = _by_role(fig, "band")
    np.testing.assert_allclose(upper.y, np.quantile(loss, 0.9, axis=0))
    np.testing.assert_allclose(lower.y, np.quantile(loss, 0.1, axis=0))
    lo, hi = fig.layout.yaxis.range
    assert lo <= lower.y.min() and hi >= upper.y.max()
    with_chains = plots.loss_trace_figure(df, burnin=10, show_chains=True)
    assert len(_by_role(with_chains, "chain")) == chains
    assert all(t.visible is True for t in _by_role(with_chains, "chain"))


def test_loss_traces_thinned_and_burnin_shaded() -> None:
    df = _traces(chains=2, steps=5000, burnin=100)
    fig = plots.loss_trace_figure(df, loss_init=0.0, burnin=100, max_points=500, show_chains=True)
    assert all(len(t.x) <= 501 for t in _by_role(fig, "mean"))
    chains = _by_role(fig, "chain")
    assert len(chains) == 2
    assert all(len(t.x) <= 500 for t in chains)
    assert chains[0].x[-1] == 4999  # the last point is always kept
    assert any(s.x1 == 100 for s in fig.layout.shapes)
    assert fig.layout.yaxis.title.text.startswith("loss")


def test_potential_figure_paths_and_w_star() -> None:
    xs = np.linspace(-1, 1, 11)
    grid = pd.DataFrame([(x, y, x**2 * y**4) for x in xs for y in xs], columns=["x", "y", "loss"])
    pos = pd.DataFrame(
        {"chain": [0, 0, 1, 1], "step": [0, 1, 0, 1], "x": [0, 0.1, 0, -0.1], "y": [0, 0.2, 0, 0.1]}
    )
    fig = plots.potential_figure(grid, pos)
    assert len(_by_role(fig, "potential")) == 1
    clouds = _by_role(fig, "chain")
    assert [t.marker.color for t in clouds] == [plots.chain_color(0), plots.chain_color(1)]
    tails = _by_role(fig, "chain_tail")
    assert [t.line.color for t in tails] == [plots.chain_color(0), plots.chain_color(1)]
    # one legend entry for all chains
    assert [t.showlegend for t in clouds] == [True, False]
    assert len(_by_role(fig, "w_star")) == 1
    assert fig.layout.yaxis.scaleanchor == "x"


def test_sweep_heatmap_marks_healthy_and_recommended() -> None:
    table = _sweep_table()
    healthy = table["acceptance"] >= 0.9
    fig = plots.sweep_heatmap(table, "llc_mean", healthy=healthy, recommended=3)
    (heat,) = _by_role(fig, "data")
    z = np.array(heat.z, dtype=float)
    assert z.shape == (2, 3)  # gamma rows × epsilon columns
    assert list(heat.x) == ["0.0001", "0.001", "0.01"]
    (good,) = _by_role(fig, "healthy")
    assert good.meta["cells"] == int(healthy.sum())
    outlines = [sh for sh in fig.layout.shapes if sh.name == "healthy"]
    assert len(outlines) == int(healthy.sum())
    (rec,) = _by_role(fig, "recommended")
    assert list(rec.x) == [None]  # no marker drawn over the cell's number
    # The recommended cell (setting 3: ε = 1e-3, γ = 10) keeps its number, the star after it.
    assert heat.text[1][1] == f"{plots.format_number(z[1][1], 3)} ★"
    assert sum("★" in t for r in heat.text for t in r) == 1
    assert [sh.name for sh in fig.layout.shapes].count("recommended") == 1
    assert fig.layout.xaxis.title.text == "step size ε"
    table.loc[5, ["llc_mean", "n_diverged"]] = [float("nan"), 4]
    (heat,) = _by_role(plots.sweep_heatmap(table, "llc_mean"), "data")
    assert heat.text[1][2] == "div."


def test_llc_vs_gamma_log_axis_and_error_bars() -> None:
    fig = plots.llc_vs_param_figure(_sweep_table(), x="gamma", group="epsilon", theory_llc=1.0)
    data = _by_role(fig, "data")
    assert len(data) == 3
    assert fig.layout.xaxis.type == "log"
    assert data[0].error_y.array is not None
    assert len(_by_role(fig, "theory")) == 1


def test_multi_temperature_intercept() -> None:
    points = pd.DataFrame(
        {"nbeta": [10.0, 100.0, 1000.0], "llc_mean": [0.6, 0.7, 0.75], "llc_sem": [0.01, 0.01, 0.01]}
    )
    fig = plots.multi_temperature_figure(
        points, {"intercept": 0.9, "slope": -0.7, "intercept_se": 0.02}, theory_llc=1.0
    )
    (data,) = _by_role(fig, "data")
    assert np.allclose(sorted(data.x), sorted(1 / np.log(points["nbeta"])))
    (icpt,) = _by_role(fig, "intercept")
    assert icpt.x[0] == 0.0 and icpt.y[0] == pytest.approx(0.9)
    assert "log" in fig.layout.xaxis.title.text
    # One error bar for one fit (issue 13 item 11): the legend, the bar and the page caption
    # all give the intercept's standard error, written by one formatter.
    assert icpt.error_y.array == (0.02,)
    assert icpt.name == "intercept = " + plots.format_estimate(0.9, 0.02) == "intercept = 0.9 ± 0.02 (SE)"


def test_volume_scaling_loglog_with_fit_and_theory() -> None:
    eps = np.geomspace(1e-4, 1e-1, 10)
    vol = pd.DataFrame({"epsilon": eps, "volume": eps**0.25})
    fig = plots.volume_scaling_figure(vol, slope=0.25, intercept=0.0, theory_llc=0.25)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    (fit,) = _by_role(fig, "fit")
    assert fit.meta["slope"] == 0.25
    assert len(_by_role(fig, "theory")) == 1


def test_newton_polyhedron_hit_point() -> None:
    fig = plots.newton_polyhedron_figure(pd.DataFrame({"a": [2], "b": [4]}), hit=4.0)
    (hit,) = _by_role(fig, "hit")
    assert (hit.x[0], hit.y[0]) == (4.0, 4.0)
    assert "λ = 1/t = 0.25" in hit.name
    assert len(_by_role(fig, "polyhedron")) == 1


def test_lower_hull_drops_interior_points() -> None:
    hull = viz_theory._lower_hull(np.array([[4, 0], [0, 4], [2, 2], [3, 3], [1, 5]]))
    assert [tuple(p) for p in hull] == [(0.0, 4.0), (4.0, 0.0)] or [tuple(p) for p in hull] == [
        (0.0, 4.0),
        (2.0, 2.0),
        (4.0, 0.0),
    ]


def test_free_energy_and_density_figures() -> None:
    n = np.geomspace(10, 1e5, 20)
    curves = pd.concat(
        [
            pd.DataFrame({"n": n, "basin": "A", "free_energy": 0.1 * n + 2 * np.log(n)}),
            pd.DataFrame({"n": n, "basin": "B", "free_energy": 0.11 * n + 0.5 * np.log(n)}),
        ]
    )
    fig = plots.free_energy_figure(curves, crossover=150.0)
    assert len(_by_role(fig, "basin")) == 2 and fig.layout.xaxis.type == "log"
    dens = pd.DataFrame({"w": np.linspace(-1, 1, 5), "density": 1.0, "label": "p(w)"})
    fig2 = plots.density_figure(dens, samples=pd.DataFrame({"w": np.zeros(10)}))
    assert len(_by_role(fig2, "samples")) == 1 and len(_by_role(fig2, "density")) == 1


def test_free_energy_difference_regions_and_swap() -> None:
    n = np.geomspace(10, 1e7, 50)
    diff = pd.DataFrame({"n": n, "delta": n * 0.002 - 4 * np.log(n)})
    fig = plots.free_energy_difference_figure(diff, labels=("A", "B"), crossover=1.98e4)
    assert [t.name for t in _by_role(fig, "region")] == ["A wins", "B wins"]
    (swap,) = _by_role(fig, "target")
    assert swap.meta["value"] == 1.98e4
    assert fig.layout.xaxis.type == "log"
    y0, y1 = fig.layout.yaxis.range
    assert y0 < float(diff["delta"].min()) and y1 < float(diff["delta"].max())  # framed, not swamped


def test_style_figure_dark_recolours_foreground_roles_and_scales_lines() -> None:
    fig = plots.llc_running_figure(_traces(), theory_llc=0.5)
    width_before = _by_role(fig, "chain")[0].line.width
    plots.style_figure(fig, dark=True, large=True)
    assert _by_role(fig, "theory")[0].line.color == plots.FOREGROUND["dark"]
    assert _by_role(fig, "mean")[0].line.color == plots.FOREGROUND["dark"]
    assert _by_role(fig, "chain")[0].line.width == pytest.approx(width_before * 1.6)
    assert fig.layout.template.layout.font.size == 21


def test_compare_runs_overlay() -> None:
    runs = pd.DataFrame(
        {"run": ["#1"] * 3 + ["#2"] * 3, "step": [0, 1, 2] * 2, "llc_running": [1, 1, 1, 2, 2, 2]}
    )
    fig = plots.compare_runs_figure(runs)
    assert [t.name for t in fig.data] == ["#1", "#2"]


def test_calibration_figure_marks_pick() -> None:
    table = _sweep_table().assign(healthy=True)
    fig = plots.calibration_figure(table, recommended=2, plateau=[True] * len(table))
    assert len(_by_role(fig, "data")) == 2  # one line per gamma
    assert len(_by_role(fig, "recommended")) == 1
    assert fig.layout.xaxis.type == "log"


def test_a_reference_that_is_not_exact_is_named_so_and_does_not_stretch_the_axis() -> None:
    """Issue 13.10: a formula outside its regime (modular addition's "paper λ" 2176 beside
    λ̂ ≈ 1.5) is drawn under its own name, never "exact λ", and the y axis follows the data."""
    df = _traces(chains=3)  # running λ̂ within about [1, 1.5]
    exact = plots.llc_running_figure(df, theory_llc=2176.0)
    assert exact.layout.yaxis.range[1] > 2176  # an exact λ is always in view
    ref = plots.llc_running_figure(df, theory_llc=2176.0, theory_label="Cullen et al. formula",
                                   theory_exact=False)
    lo, hi = ref.layout.yaxis.range
    assert hi < 3 and lo > 0  # scaled to the chains, not stretched to 2176
    (theory,) = _by_role(ref, "theory")
    assert theory.name.startswith("Cullen et al. formula") and "exact" not in theory.name
    chains = plots.chain_llc_figure(pd.DataFrame({"chain": [0, 1], "llc": [1.2, 1.3]}), theory_llc=2176.0,
                                    theory_label="paper λ (not exact)")
    assert _by_role(chains, "theory")[0].name.startswith("paper λ (not exact)")


def test_style_figure_in_lecture_mode_takes_traces_without_a_marker_size() -> None:
    """Lecture mode styled the Learn page's density figure into an AttributeError: a histogram's
    marker has no ``size``."""
    fig = go.Figure([go.Histogram(x=[0.0, 1.0, 1.0]), go.Scatter(x=[0], y=[0], marker={"size": 5})])
    plots.style_figure(fig, dark=False, large=True)
    assert fig.data[1].marker.size == pytest.approx(8.0)
