"""The Landscape sections: a plane through w* with the chains on it and the Hessian spectrum
beside λ̂ (Networks page), the loss along the lines between checkpoints and the training path
(Trajectories page).

Thin: widgets → :mod:`lltools.theory.planes` / :mod:`lltools.theory.hessian` (cached with
``st.cache_data``, keyed by model, checkpoint and settings) → figures from
:mod:`lltools.viz.planes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
import torch

from dashboard import common as ui
from lltools.targets.models import list_checkpoints
from lltools.theory.hessian import HessianSpectrum, hessian_spectrum
from lltools.theory.planes import (
    build_plane,
    checkpoint_vectors,
    default_span,
    evaluate_plane,
    path_losses,
    pca_plane,
    project_positions,
    seconds_per_point,
)
from lltools.viz import planes as plots_planes

K_ON, K_PLANE, K_GRID = "landscape.on", "landscape.plane", "landscape.grid"
K_RANGE, K_VIEW, K_CHAINS = "landscape.range", "landscape.view", "landscape.chains"
K_SPECTRUM = "landscape.spectrum"
PLANE_LABELS = {
    "random": "random (filter-normalised)",
    "hessian": "top-2 Hessian eigenvectors",
    "flat": "flattest Hessian directions",
    "pca": "top-2 PCs of the SGLD draws",
    "checkpoints": "previous checkpoint → this one",
}
GRIDS = (21, 41, 61, 101)
#: Planes estimated to take longer than this ask before they are computed.
ASK_ABOVE_S = 20.0
K_CONFIRMED = "landscape.__confirmed"

TEACHING = (
    "**A flat direction is a degenerate direction.** Along a direction where L_n does not rise, "
    "moving w away from w* costs nothing: that is a direction the data cannot pin down (a "
    "symmetry such as rescaling one layer up and the next down, or a unit that does nothing). "
    "The flatter and the more numerous such directions, the larger the set of nearly optimal "
    "weights and the smaller λ.\n\n"
    "**A plane can hide what λ sees.** A plane is 2 directions out of d. A random plane through a "
    "singular minimum often looks like an ordinary bowl, because a random direction almost always "
    "has *some* curved component; the degeneracy lives in the other d − 2 directions, and in "
    "directions where the loss grows only like a⁴ (flat to the Hessian, yet costing volume). "
    "λ̂ integrates over all d directions at once; the Hessian counts only the quadratically curved "
    "ones (rank(H)/2 ≤ λ), and a plane shows two."
)
SPECTRUM_TEACHING = (
    "Each eigenvalue μ of the Hessian is the curvature of L_n along one direction. A regular "
    "minimum has all d of them positive and λ = d/2. Here many are ≈ 0 (below the dotted "
    "tolerance): the count \"rank(H)/2\" of curved directions is what one might guess λ to be, "
    "but directions where the loss grows only quartically count as flat for the Hessian and still "
    "cost volume, so λ ≥ rank(H)/2 (and at a zero-loss MSE minimum H = JᵀJ/n: rank(H) = rank(J))."
)


# ----------------------------------------------------------------------------- cached core calls
@st.cache_data(max_entries=16, show_spinner="Computing the Hessian spectrum at w*…")
def spectrum_of(path: str, checkpoint_key: str, _target: Any) -> HessianSpectrum:
    """:func:`lltools.theory.hessian.hessian_spectrum` (top 20; the near-zero count of a large
    model only up to rank 1 024, to stay interactive), per model and checkpoint."""
    return hessian_spectrum(_target, top=20, max_probes=1024)


@st.cache_data(max_entries=32, show_spinner="Evaluating the loss on the plane…")
def plane_of(
    path: str, checkpoint_key: str, kind: str, grid: int, span: float | None, run_key: str,
    _target: Any, _positions: torch.Tensor | None = None, _steps: torch.Tensor | None = None,
) -> dict[str, Any]:
    """The plane's grid (``a, b, loss``), its axis labels and the projected chains."""
    spectrum = spectrum_of(path, checkpoint_key, _target) if kind in ("hessian", "flat") else None
    w_from = w_to = None
    if kind == "checkpoints":
        w_from, w_to = previous_and_this(path, checkpoint_key, _target)
    points = None if _positions is None else _positions.reshape(-1, _positions.shape[-1]).to(_target.w_star)
    plane = build_plane(_target, kind, points=points, spectrum=spectrum, w_from=w_from, w_to=w_to)
    chains = None if _positions is None else project_positions(plane, _positions.to(_target.w_star), _steps)
    resolved = default_span(kind, chains) if span is None else (
        (-0.25 * span, 1.0 + 0.25 * span, -0.5 * span, 0.5 * span) if kind == "checkpoints" else span)
    table = evaluate_plane(_target, plane, grid=grid, span=resolved)
    return {"grid": table, "chains": chains, "a_label": plane.a_label, "b_label": plane.b_label,
            "note": plane.note}


def previous_and_this(path: str, checkpoint_key: str, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The checkpoint saved before the selected one (or the first one) and the selected w*."""
    saved = list_checkpoints(path)
    if len(saved) < 1:
        raise ValueError("this model has no saved training checkpoints to draw a line between")
    rel = checkpoint_key.removeprefix("ckpt:")
    names = [p.name for p in saved]
    here = names.index(Path(rel).name) if Path(rel).name in names else len(saved)
    before = saved[max(here - 1, 0)] if here > 0 else saved[0]
    w_from = checkpoint_vectors(target, [before])[0]
    if torch.equal(w_from, target.w_star):
        w_from = checkpoint_vectors(target, [saved[0]])[0]
    if torch.equal(w_from, target.w_star):
        raise ValueError("the first saved checkpoint is this one: choose a later checkpoint")
    return w_from, target.w_star


@st.cache_data(max_entries=32, show_spinner=False)
def cost_of(path: str, checkpoint_key: str, _target: Any) -> float:
    """Seconds per grid point (:func:`lltools.theory.planes.seconds_per_point`), per model."""
    return seconds_per_point(_target)


# ----------------------------------------------------------------------------- Networks page
def network_section(
    target: Any, path: str, checkpoint_key: str, *, result: Any = None, run_key: str = "none",
    counts: dict[str, float | None] | None = None,
) -> None:
    """The Landscape section of the Networks page (drawn below the run's results).

    ``result``: the current run's :class:`~lltools.workflows.estimate.EstimateResult` (its
    trace's positions give the chains overlay and the pca plane); ``counts``: d/2, rank(J)/2,
    λ̂, the closed-form λ … to mark on the spectrum.
    """
    st.subheader("Landscape")
    on = st.toggle("Show the loss landscape around w*", value=bool(ui.held(K_ON, False)), key=K_ON,
                   help="Planes through w*, the chains on them, and the Hessian spectrum.")
    if not on:
        st.caption("A plane through w* (random, Hessian or principal directions) and the Hessian spectrum "
                   "beside λ̂.")
        return
    trace = getattr(result, "trace", None)
    positions = getattr(trace, "positions", None)
    steps = getattr(trace, "position_steps", None)
    if positions is not None and steps is not None:
        keep = steps >= trace.num_burnin
        positions, steps = positions[:, keep], steps[keep]
        if positions.shape[1] < 2:
            positions = steps = None
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    kinds = [k for k in PLANE_LABELS if k != "pca" or positions is not None]
    if checkpoint_key.startswith("upload:"):
        kinds = [k for k in kinds if k != "checkpoints"]
    if st.session_state.get(K_PLANE) not in kinds:
        st.session_state[K_PLANE] = "random"
    c1.selectbox("Plane", kinds, key=K_PLANE, format_func=PLANE_LABELS.get,
                 help="Which two directions span the plane through w*. The PCs need a finished run.")
    c2.select_slider("Resolution", GRIDS, value=st.session_state.get(K_GRID, 41), key=K_GRID)
    c3.number_input("Range R", min_value=0.01, max_value=100.0, value=None, key=K_RANGE,
                    placeholder="auto", help="a, b ∈ [−R, R] (empty: the plane's default).")
    c4.radio("View", ["contour", "surface"], key=K_VIEW, horizontal=True,
             format_func=lambda v: "contour" if v == "contour" else "3-D surface")
    overlay = st.checkbox("Chains of the current run", value=positions is not None, key=K_CHAINS,
                          disabled=positions is None,
                          help="The SGLD draws of the last run, projected on the plane (they are "
                          "mostly *off* the plane: hover shows where they land).")
    kind = str(st.session_state[K_PLANE])
    span = st.session_state.get(K_RANGE)
    use = positions if (overlay or kind == "pca") and positions is not None else None
    grid = int(st.session_state[K_GRID])
    request = (path, checkpoint_key, kind, grid)
    estimate = cost_of(path, checkpoint_key, _target=target) * grid * grid
    if estimate > ASK_ABOVE_S and st.session_state.get(K_CONFIRMED) != request:
        st.info(f"A {grid} × {grid} plane of this model needs {grid * grid:,} full-data losses: about "
                f"{estimate:,.0f} s here. Lower the resolution, or compute it anyway.",
                icon=":material/timer:")
        st.button(f"Compute the plane (~{estimate:,.0f} s)", key="landscape.confirm",
                  on_click=lambda: st.session_state.__setitem__(K_CONFIRMED, request))
        spectrum_section(target, path, checkpoint_key, counts or {})
        return
    try:
        out = plane_of(path, checkpoint_key, kind, grid,
                       None if span is None else float(span), run_key if use is not None else "none",
                       _target=target, _positions=use, _steps=steps if use is not None else None)
    except ValueError as exc:
        ui.user_error(ui.plain(str(exc)))
        return
    chains = out["chains"] if overlay else None
    fig = plots_planes.plane_figure(out["grid"], chains, kind=str(st.session_state[K_VIEW]),
                                    a_label=out["a_label"], b_label=out["b_label"],
                                    title=f"L_n on a plane through w*: {kind}")
    ui.show_figure(fig, key="landscape.fig.plane", height=460)
    caption = f"The plane: {out['note']}. w* is the star at (0, 0)."
    if chains is not None:
        caption += (f" The chains sit at a median distance {chains['distance'].median():.3g} "
                    "off the plane (the projection keeps only 2 of d coordinates).")
    st.caption(ui.plain(caption))
    ui.teaching_note(TEACHING, title="Flat directions, and what a plane hides")
    spectrum_section(target, path, checkpoint_key, counts or {})


def spectrum_section(target: Any, path: str, checkpoint_key: str, counts: dict[str, float | None]) -> None:
    """The Hessian spectrum with d/2, rank(H)/2, rank(J)/2 and λ̂ on the index axis."""
    if not st.toggle("Hessian spectrum at w*", value=bool(ui.held(K_SPECTRUM, False)), key=K_SPECTRUM,
                     help="Exact for d ≤ 2 500, else Lanczos plus a randomized count of the flat "
                     "directions."):
        return
    spec = spectrum_of(path, checkpoint_key, _target=target)
    if spec.eigenvalues is not None:
        ev = pd.DataFrame({"index": range(1, spec.dim + 1), "eigenvalue": spec.eigenvalues})
    else:
        k = len(spec.top_eigenvalues)
        top = pd.DataFrame({"index": range(1, k + 1), "eigenvalue": spec.top_eigenvalues})
        bottom = pd.DataFrame({"index": range(spec.dim, spec.dim - len(spec.bottom_eigenvalues), -1),
                               "eigenvalue": spec.bottom_eigenvalues})
        ev = pd.concat([top, bottom], ignore_index=True)
    marks = {"d/2": spec.dim / 2, "rank(H)/2": spec.hessian_rank_half, **counts}
    cols = st.columns(3)
    cols[0].metric("near-zero eigenvalues", "unknown" if spec.near_zero_count is None
                   else f"{spec.near_zero_count:,} / {spec.dim:,}",
                   help=f"|μ| ≤ {spec.tolerance:.3g} ({spec.count_method}).")
    cols[1].metric("rank(H)/2", "unknown" if spec.hessian_rank_half is None
                   else f"{spec.hessian_rank_half:,.1f}", help="The count of curved directions, halved.")
    cols[2].metric("largest μ", f"{float(spec.top_eigenvalues[0]):.4g}", help="The steepest curvature at w*.")
    ui.show_figure(plots_planes.spectrum_figure(ev, dim=spec.dim, tolerance=spec.tolerance, counts=marks),
                   key="landscape.fig.spectrum", height=420)
    st.caption(ui.plain(spec.note))
    ui.teaching_note(SPECTRUM_TEACHING, title="Why a Hessian count misjudges λ")


# ----------------------------------------------------------------------------- Trajectories page
@st.cache_data(max_entries=16, show_spinner="Evaluating the loss between checkpoints…")
def checkpoint_path_of(path: str, stamp: float, _target: Any) -> dict[str, Any]:
    """The loss along the segments between consecutive checkpoints and the checkpoints'
    coordinates on the plane of their top two principal components (centred at the last)."""
    saved = list_checkpoints(path)
    if len(saved) < 3:
        raise ValueError("the line between checkpoints needs at least 3 saved checkpoints")
    vectors = checkpoint_vectors(_target, saved)
    labels = [p.stem for p in saved]
    line = path_losses(_target, vectors, labels, points=9)
    plane = pca_plane(_target, vectors, origin=vectors[-1], what="checkpoints")
    coords, _ = plane.project(vectors)
    pts = pd.DataFrame({"checkpoint": [p.name for p in saved], "x": coords[:, 0].numpy(),
                        "y": coords[:, 1].numpy()})
    return {"line": line, "points": pts, "a_label": plane.a_label, "b_label": plane.b_label}


def trajectory_section(path: str, table: pd.DataFrame, target_loader: Any) -> None:
    """The Trajectories page's checkpoint line and training path (λ̂ of each checkpoint as colour).

    ``target_loader(path)`` builds the model's target (data and architecture) once.
    """
    st.subheader("Checkpoints on one landscape")
    if not st.toggle("Show the loss between checkpoints", value=bool(ui.held("landscape.traj.on", False)),
                     key="landscape.traj.on",
                     help="L_n along the straight lines between consecutive checkpoints, and the "
                     "training path on the plane of its principal components."):
        return
    try:
        target = target_loader(path)
        saved = list_checkpoints(path)
        stamp = max((p.stat().st_mtime for p in saved), default=0.0)
        estimate = cost_of(path, "trajectory", _target=target) * 8 * max(len(saved) - 1, 0)
        if estimate > ASK_ABOVE_S and st.session_state.get(K_CONFIRMED) != (path, "trajectory"):
            st.info(f"The lines between the {len(saved)} checkpoints need about {estimate:,.0f} s of "
                    "full-data losses here.", icon=":material/timer:")
            st.button(f"Compute them (~{estimate:,.0f} s)", key="landscape.traj.confirm",
                      on_click=lambda: st.session_state.__setitem__(K_CONFIRMED, (path, "trajectory")))
            return
        out = checkpoint_path_of(path, stamp, _target=target)
    except ValueError as exc:
        ui.user_error(ui.plain(str(exc)))
        return
    pts = out["points"]
    if "checkpoint" in table and "llc_mean" in table:
        pts = pts.merge(table[["checkpoint", "step", "llc_mean"]], on="checkpoint", how="left")
    else:
        pts = pts.assign(step=range(len(pts)), llc_mean=float("nan"))
    pts = pts.assign(step=pts["step"].fillna(pd.Series(range(len(pts)))))
    left, right = st.columns(2, gap="medium")
    with left:
        ui.show_figure(plots_planes.checkpoint_line_figure(out["line"]), key="landscape.fig.line", height=380)
    with right:
        ui.show_figure(plots_planes.training_path_figure(pts, color="llc_mean", a_label=out["a_label"],
                                                         b_label=out["b_label"]),
                       key="landscape.fig.path", height=380)
    st.caption(
        "Left: a bump between two checkpoints is a barrier on the straight line; training went around "
        "it (or the two lie in different basins). A flat line means the two are connected by a valley. "
        "Right: the checkpoints on the plane of their top two principal components (centred at the last), "
        "coloured by λ̂: watch λ̂ change where the path turns."
    )
