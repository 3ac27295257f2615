"""Learn: interactive pictures of the ideas behind λ (singular learning theory).

Four panels, each with a teaching note in the primer's symbols: volume scaling V(ε) ∝ ε^λ,
the Newton polyhedron (why x²y⁴ has λ = 1/4), free energy and basin competition, and
what γ, ε and nβ do to the distribution SGLD samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import common as ui
from dashboard import theory as bg_theory
from lltools import viz as plots
from lltools.targets.expressions import parse_expression
from lltools.targets.potentials import domain_warnings
from lltools.theory.density import DENSITY_POTENTIALS
from lltools.theory.free_energy import free_energy_curves, free_energy_difference
from lltools.theory.numeric import volume_scaling
from lltools.theory.puiseux import PlaneStep
from lltools.theory.record import expression_theory, plane_result
from lltools.workflows import demos

K_VS_POT, K_VS_EXPR, K_VS_RADIUS, K_VS_SAMPLES = (
    "learn.vs.potential",
    "learn.vs.expr",
    "learn.vs.radius",
    "learn.vs.n",
)
K_NP_TEXT, K_NP_PRESET = "learn.np.text", "learn.np.preset"
K_FE = {k: f"learn.fe.{k}" for k in ("la", "lama", "lb", "lamb")}
K_D_POT, K_D_NBETA, K_D_GAMMA, K_D_EPS, K_D_SEED = (
    "learn.d.potential",
    "learn.d.nbeta",
    "learn.d.gamma",
    "learn.d.eps",
    "learn.d.seed",
)

NEWTON_PRESETS = {
    "x**2 * y**4": "x² y⁴: one monomial, the diagonal meets the edge y = 4",
    "x**2 + y**6": "x² + y⁶: the diagonal meets the edge between (2,0) and (0,6)",
    "x**2 * y**2": "x² y²: the diagonal hits a vertex, so m = 2",
    "x**6 + x**2*y**2 + y**6": "x⁶ + x²y² + y⁶: a vertex between two edges",
    "x**2 + y**2": "x² + y²: regular, λ = d/2 = 1",
    "(x + y)**4": "(x + y)⁴: degenerate edge — one change y → y − x gives y⁴, λ = 1/4",
    "(y - x**2)**2 + x**6": "(y − x²)² + x⁶: a curved valley — y → y + x² gives y² + x⁶, λ = 2/3",
}
EPS_CHOICES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3]
NBETA_CHOICES = [1, 3, 10, 30, 100, 300, 1000, 3000]

DEFAULTS: dict[str, Any] = {
    K_VS_POT: "x**2 * y**4",
    K_VS_EXPR: "x**2 * y**2",
    K_VS_RADIUS: 1.0,
    K_VS_SAMPLES: 200_000,
    K_NP_PRESET: "x**2 * y**4",
    K_NP_TEXT: "x**2 * y**4",
    K_FE["la"]: 0.010,
    K_FE["lama"]: 5.0,
    K_FE["lb"]: 0.012,
    K_FE["lamb"]: 1.0,
    K_D_POT: list(DENSITY_POTENTIALS)[1],
    K_D_NBETA: 30,
    K_D_GAMMA: 0.5,
    K_D_EPS: 3e-3,
    K_D_SEED: 0,
}


# ----------------------------------------------------------------------------- panels



# ---------------------------------------------------------------------------- cached computations
@st.cache_data(max_entries=32, show_spinner="Counting samples below each level…")
def volume_scaling_table(
    spec: str, radius: float, num_samples: int, seed: int = 0
) -> tuple[pd.DataFrame, float, float]:
    """``(table, slope, stderr)`` of :func:`lltools.theory.numeric.volume_scaling` for a potential.

    The table has ``epsilon, volume (fraction of the box), count, in_fit``.
    """
    target = ui.potential_target(spec)
    fn = getattr(getattr(target, "expression", None), "fn", None) or target.fn
    res = volume_scaling(
        fn, target.w_star.double().cpu(), radius=radius, num_samples=num_samples, seed=seed
    )
    table = res.table.rename(columns={"fraction": "volume"})
    return table, float(res.llc), float(res.stderr)



@dataclass(frozen=True)
class NewtonView:
    """What the Newton-polygon panel draws: the polygon in each coordinate system, and λ.

    ``exponents``/``vertices``/``t`` are those of the last (adapted) coordinates, where
    λ = 1/t; ``steps`` holds every coordinate system with the change that led on from it.
    """

    exponents: pd.DataFrame
    vertices: pd.DataFrame
    t: float
    llc: float | None
    multiplicity: int | None
    exact: bool
    note: str
    steps: tuple[PlaneStep, ...] = ()


def newton_view(text: str) -> NewtonView:
    """Parse an expression in x, y and compute λ by Newton polygons in adapted coordinates.

    Raises ``ValueError`` (one line) when it is not possible: not two variables, no exact
    Taylor polynomial, a constant, or a failed domain check (w* is not a minimum, L is
    undefined near w*) — the same checks as the Toy page and the CLI.
    """
    compiled = parse_expression(text)
    if compiled.dim != 2:
        raise ValueError("use the two variables x and y")
    problems = domain_warnings(compiled)
    if problems:
        raise ValueError(problems[0])
    record = expression_theory(compiled)
    result = plane_result(compiled)
    if result is None or not result.steps:
        raise ValueError(record.note)
    last = result.steps[-1]
    return NewtonView(
        exponents=pd.DataFrame(list(last.support), columns=["a", "b"]),
        vertices=pd.DataFrame(list(last.vertices), columns=["a", "b"]),
        t=float(last.distance),
        llc=record.llc,
        multiplicity=record.multiplicity,
        exact=record.exact,
        note=record.note,
        steps=result.steps,
    )


@st.cache_data(max_entries=64, show_spinner="Sampling…")
def density_demo(
    label: str, nbeta: float, gamma: float, epsilon: float, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """:func:`lltools.workflows.demos.density_demo`, cached per setting."""
    return demos.density_demo(label, nbeta, gamma, epsilon, seed)


def volume_panel() -> None:
    left, right = st.columns([1, 2.6], gap="large")
    with left:
        spec, target, error = ui.potential_picker(K_VS_POT, K_VS_EXPR)
        st.select_slider(
            "box half-width around w*",
            options=[0.25, 0.5, 1.0, 2.0],
            value=ui.held(K_VS_RADIUS, None),
            key=K_VS_RADIUS,
            help="Samples are uniform in w* + [−r, r]².",
        )
        st.select_slider(
            "samples",
            options=[50_000, 200_000, 1_000_000],
            value=ui.held(K_VS_SAMPLES, None),
            key=K_VS_SAMPLES,
            format_func=lambda n: f"{n:,}",
        )
    with right:
        if error or target is None:
            st.info("Fix the expression on the left to see its volume scaling.", icon=":material/edit:")
            return
        table, slope, stderr = volume_scaling_table(
            spec, float(st.session_state[K_VS_RADIUS]), int(st.session_state[K_VS_SAMPLES])
        )
        record = bg_theory.theory_record(spec)
        theory = record.llc
        ui.metric_row(
            [
                ("fitted slope", f"{ui.fmt(slope)} ± {ui.fmt(stderr, 2)}", "Slope of log V against log ε."),
                (record.label, ui.fmt(theory), record.note),
                ("samples below the largest ε", f"{int(table['count'].max()):,}", None),
            ]
        )
        fig_col, note_col = st.columns([3, 2], gap="medium")
        with fig_col:
            ui.show_figure(
                plots.volume_scaling_figure(
                    table, slope=slope, theory_llc=theory, title=f"V(ε) for L = {spec}"
                ),
                key="learn.fig.volume",
            )
        with note_col:
            ui.teaching_note(
                "Pick points **uniformly** in a box around w\\* and count the fraction V(ε) with "
                "L(w) − L(w\\*) < ε. Near a minimum V(ε) ≈ c·ε^λ·(−log ε)^(m−1), so on log–log axes "
                "the points fall on a line of **slope λ**.\n\n"
                "A regular minimum in d dimensions has λ = d/2 (the set {L < ε} is an ellipse "
                "of area ∝ ε). Degenerate directions make {L < ε} much larger (for x²y⁴ it is a "
                "thin cross along the axes), so V shrinks more **slowly** and λ is smaller. "
                "That is what λ measures: how much parameter volume is nearly as good as w\\*.\n\n"
                "Filled points are the small-ε window used for the fit; with multiplicity m > 1 "
                "the log factor bends the line slightly."
            )


def newton_panel() -> None:
    left, right = st.columns([1, 2.6], gap="large")
    with left:
        st.selectbox(
            "Example",
            list(NEWTON_PRESETS),
            key=K_NP_PRESET,
            format_func=lambda k: NEWTON_PRESETS[k],
            on_change=lambda: ui.set_values({K_NP_TEXT: st.session_state[K_NP_PRESET]}),
        )
        st.text_input(
            "Polynomial in x and y",
            key=K_NP_TEXT,
            help="Any polynomial with non-negative integer powers, e.g. x**4 + x**2*y**2 + y**6.",
        )
        text = str(st.session_state[K_NP_TEXT]).strip()
        try:
            view = newton_view(text)
        except ValueError as exc:
            ui.user_error(f"**Cannot draw a Newton polygon.** {ui.expression_error_text(exc, text)}")
            view = None
    with right:
        if view is None:
            st.info("Type a polynomial on the left, e.g. `x**2 * y**4`.", icon=":material/edit:")
            return
        ui.metric_row(
            [
                ("hit point t", ui.fmt(view.t), "Where the diagonal meets the polygon (adapted)."),
                ("λ = 1/t", ui.fmt(view.llc) if view.llc is not None else "unknown", None),
                ("multiplicity m", ui.fmt(view.multiplicity), "2 when the diagonal hits a vertex, else 1."),
                ("exact?", "yes" if view.exact else "no", None),
            ]
        )
        fig_col, note_col = st.columns([3, 2], gap="medium")
        with fig_col:
            steps = view.steps
            labels = [f"step {i + 1}" for i in range(len(steps))]
            tabs = [st.container()] if len(steps) < 2 else st.tabs(labels)
            for i, (tab, step) in enumerate(zip(tabs, steps, strict=True)):
                title = f"L = {text}" if i == 0 else f"after {steps[i - 1].change}"
                if step.change:
                    title += f"  (next: {step.change})"
                with tab:
                    ui.show_figure(
                        plots.newton_polyhedron_figure(
                            pd.DataFrame(list(step.support), columns=["a", "b"]),
                            hull=pd.DataFrame(list(step.vertices), columns=["a", "b"]),
                            hit=float(step.distance),
                            title=title,
                        ),
                        key=f"learn.fig.newton.{i}",
                    )
        with note_col:
            ui.teaching_note(
                "Near w\\* = 0 only the **exponents** of L = Σ c·x^a·y^b matter. Plot each monomial "
                "as the point (a, b). The **Newton polyhedron** is everything above and to the "
                "right of their convex hull (shaded).\n\n"
                "Walk from the origin along the diagonal a = b. The first point (t, t) where you "
                "touch the polyhedron gives **λ = 1/t** — once the coordinates are *adapted*: when "
                "the face that is hit is an edge whose polynomial has a real root of multiplicity "
                "> t (as for (x − y)², root y = x twice, t = 1), substitute along that root "
                "(y → y + x) and redraw; the tabs show each step. (x − y)² becomes y²: λ = 1/2.\n\n"
                "**Why x²y⁴ has λ = 1/4:** its only point is (2, 4). The region above it starts "
                "at a = 2 and b = 4, so the diagonal enters it at (4, 4): t = 4 and λ = 1/4. The "
                "flatter direction, y⁴, sets the answer. Hitting an edge gives m = 1; hitting a "
                "vertex (as for x²y²) gives m = 2 and an extra log factor.\n\n"
                f"*{ui.plain(view.note)}*"
            )


def free_energy_panel() -> None:
    left, right = st.columns([1, 2.6], gap="large")
    with left:
        st.markdown("**Basin A**: lower loss, more complex")
        st.slider("L_A (loss at the minimum)", 0.0, 0.05, value=ui.held(K_FE["la"], None), step=0.001,
                  format="%.3f", key=K_FE["la"])
        st.slider("λ_A", 0.5, 20.0, value=ui.held(K_FE["lama"], None), step=0.5, key=K_FE["lama"])
        st.markdown("**Basin B**: higher loss, simpler")
        st.slider("L_B (loss at the minimum)", 0.0, 0.05, value=ui.held(K_FE["lb"], None), step=0.001,
                  format="%.3f", key=K_FE["lb"])
        st.slider("λ_B", 0.5, 20.0, value=ui.held(K_FE["lamb"], None), step=0.5, key=K_FE["lamb"])
    s = st.session_state
    basins = {
        f"A: L = {s[K_FE['la']]:.3f}, λ = {s[K_FE['lama']]:g}": (
            float(s[K_FE["la"]]),
            float(s[K_FE["lama"]]),
        ),
        f"B: L = {s[K_FE['lb']]:.3f}, λ = {s[K_FE['lamb']]:g}": (
            float(s[K_FE["lb"]]),
            float(s[K_FE["lamb"]]),
        ),
    }
    curves, crossings = free_energy_curves(basins)
    with right:
        fig_col, note_col = st.columns([3, 2], gap="medium")
        with fig_col:
            crossing = crossings[-1] if crossings else None
            ui.show_figure(
                plots.free_energy_difference_figure(
                    free_energy_difference(basins), labels=("A", "B"), crossover=crossing
                ),
                key="learn.fig.fe",
            )
            ui.show_figure(plots.posterior_share_figure(curves), key="learn.fig.share", height=300)
            with st.expander("Download the curves (CSV / Parquet)"):
                ui.download_buttons(
                    {"Free energy": curves}, basename="lltools_free_energy", key="learn.dl.fe"
                )
        with note_col:
            if crossings:
                verdict = (
                    f"The basins swap at **n ≈ {ui.fmt(crossings[-1])}**: below it the posterior prefers "
                    f"the basin with the smaller λ, above it the one with the smaller loss."
                )
            else:
                winner = curves.groupby("basin")["free_energy"].last().idxmin()
                verdict = f"In this range one basin always wins: **{ui.plain(winner)}**."
            ui.teaching_note(
                "The Bayesian posterior mass of a basin is ≈ exp(−F_n), with free energy "
                "**F_n ≈ n·L_n(w\\*) + λ·log n** (primer §1). The loss term grows like n, the "
                "complexity term only like log n.\n\n"
                "So at **small n** a simple basin (small λ) can win even with a higher loss; as "
                "**n grows** the accurate basin (lower L) takes over. Learning as a sequence of "
                "**phase transitions** between basins is this picture. "
                f"{verdict}\n\n"
                "The top panel is ΔF_n = F_n(B) − F_n(A) = n·(L_B − L_A) + (λ_B − λ_A)·log n, the "
                "log posterior odds of A over B: shaded blue where A wins, orange where B wins. "
                "The lower panel is each basin's posterior share."
            )


def density_panel() -> None:
    left, right = st.columns([1, 2.6], gap="large")
    with left:
        st.selectbox("1-D potential", list(DENSITY_POTENTIALS), key=K_D_POT)
        st.select_slider("nβ", options=NBETA_CHOICES, value=ui.held(K_D_NBETA, None), key=K_D_NBETA)
        st.slider("γ", 0.0, 10.0, value=ui.held(K_D_GAMMA, None), step=0.1, key=K_D_GAMMA)
        st.select_slider("ε", options=EPS_CHOICES, value=ui.held(K_D_EPS, None), key=K_D_EPS,
                         format_func=lambda v: f"{v:g}")
        st.number_input("seed", min_value=0, max_value=10_000, value=ui.held(K_D_SEED), step=1, key=K_D_SEED)
    s = st.session_state
    try:
        density, samples, stats = density_demo(
            s[K_D_POT], float(s[K_D_NBETA]), float(s[K_D_GAMMA]), float(s[K_D_EPS]), int(s[K_D_SEED])
        )
    except ValueError as exc:
        ui.user_error(ui.plain(str(exc)))
        return
    with right:
        n_div, n_ch = int(stats["diverged"]), int(stats["chains"])
        items = [
            ("exact T = nβ·E[L − L*]", ui.fmt(stats["target"], 4), "What a perfect sampler returns."),
            ("SGLD λ̂", "n/a" if n_div == n_ch else ui.fmt(stats["llc"], 4), "32 chains × 1500 draws."),
            ("acceptance", ui.fmt(stats["acceptance"], 3), None),
            ("diverged", f"{n_div} / {n_ch}", None),
        ]
        if math.isfinite(stats["mass_other_basin"]):
            items.append(
                (
                    "mass in the other basin",
                    f"{stats['mass_other_basin']:.1%} (SGLD {stats['sampled_other_basin']:.1%})",
                    "Probability of w < 0: exact vs SGLD draws.",
                )
            )
        ui.metric_row(items)
        fig_col, note_col = st.columns([3, 2], gap="medium")
        with fig_col:
            if n_div == n_ch:
                st.error(
                    "Every chain diverged at this step size: ε is far too large for this nβ. "
                    "Lower ε (the exact density is still drawn).",
                    icon=":material/error:",
                )
            ui.show_figure(
                plots.density_figure(density, samples=samples, title="What SGLD samples"),
                key="learn.fig.density",
            )
            with st.expander("Download densities and draws (CSV / Parquet)"):
                ui.download_buttons(
                    {"Densities": density, "SGLD draws": samples},
                    basename="lltools_density",
                    key="learn.dl.density",
                )
        with note_col:
            gap = stats["llc"] - stats["target"] if n_div < n_ch else float("nan")
            gap_txt = f" Here λ̂ − T = {ui.fmt(gap, 2)}." if np.isfinite(gap) else ""
            exact_other, sampled_other = stats["mass_other_basin"], stats["sampled_other_basin"]
            if (
                math.isfinite(exact_other)
                and math.isfinite(sampled_other)
                and exact_other > 0.02 + 2 * sampled_other
            ):
                gap_txt += (
                    f"\n\n**Notice:** the exact posterior has {exact_other:.0%} of its mass in the other "
                    f"basin, but the chains found only {sampled_other:.0%}: crossing a barrier of height "
                    "nβ·ΔL takes exponentially many steps. In practice this is part of what makes the "
                    "estimate *local*; γ makes it local by design."
                )
            ui.teaching_note(
                "SGLD samples p(w) ∝ exp(−nβ·L(w)) · exp(−(γ/2)(w − w\\*)²) (red curve), the "
                "product of the **tempered likelihood** and the **localisation** (dashed).\n\n"
                "- **nβ** sharpens the likelihood: larger nβ hugs the minimum.\n"
                "- **γ** is a leash to w\\*: for the double well, small nβ and γ = 0 leak half the "
                "mass into the other basin at w = −1; γ > 0 keeps the estimate **local**.\n"
                "- **ε** is the step. Small ε: the histogram of draws matches the red curve. "
                "Large ε: the histogram is too wide (λ̂ biased upward), then chains diverge.\n\n"
                f"λ̂ = nβ·(Eₚ[L] − L(w\\*)) is computed from these draws.{gap_txt}"
            )


# ----------------------------------------------------------------------------- page


def main() -> None:
    ui.setup_page("Learn", "Singular learning theory, one picture at a time. Everything is interactive.")
    ui.init_state(DEFAULTS)
    tabs = st.tabs(
        [
            "Volume scaling V(ε) ∝ ε^λ",
            "Why x²y⁴ has λ = 1/4",
            "Free energy & basins",
            "What γ, ε, nβ do",
        ]
    )
    panels = (volume_panel, newton_panel, free_energy_panel, density_panel)
    names = ("draw the volume-scaling plot", "draw the Newton polyhedron", "draw the free energy", "sample")
    for tab, panel, what in zip(tabs, panels, names, strict=True):
        with tab:
            ui.run_page(panel, what=what)
    ui.remember(list(DEFAULTS))


if __name__ == "__main__":
    ui.run_page(main, what="show the Learn page")
