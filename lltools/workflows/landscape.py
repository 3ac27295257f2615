"""A loss landscape of a target: the plane, its grid, and the SGLD chains projected on it.

The maths is in :mod:`lltools.theory.planes` (directions, evaluation, projection) and
:mod:`lltools.theory.hessian`; this workflow adds what needs a run: SGLD positions for a
``pca`` plane or a chains overlay (an ordinary :func:`~lltools.workflows.estimate.estimate_stream`
run with ``record_positions=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from lltools.sampling.driver import last_item
from lltools.targets.base import Target
from lltools.theory.hessian import HessianSpectrum
from lltools.theory.planes import (
    Plane,
    build_plane,
    default_span,
    evaluate_plane,
    project_positions,
)
from lltools.workflows.estimate import estimate_stream

__all__ = ["LandscapeResult", "landscape", "sample_positions"]


@dataclass(frozen=True)
class LandscapeResult:
    """A plane through w* and the loss on it.

    Attributes
    ----------
    table : DataFrame
        Columns ``a, b, loss`` (the grid).
    plane : Plane
    span : (a_min, a_max, b_min, b_max)
    chains : DataFrame or None
        Projected SGLD positions: ``chain, step, x, y, distance``.
    """

    table: pd.DataFrame
    plane: Plane
    span: tuple[float, float, float, float]
    chains: pd.DataFrame | None = None


def sample_positions(target: Target, **settings: Any) -> tuple[Tensor, Tensor]:
    """SGLD positions around w*: ``(positions (C, T, d), steps (T,))`` of the draws.

    ``settings`` are those of :func:`lltools.workflows.estimate.estimate` (nβ, γ, ε, chains,
    draws, burnin, batch_size, seed, …); positions are recorded for any d (thinned by the
    driver's cap on stored values).
    """
    result = last_item(estimate_stream(target, record_positions=True, **settings)).result
    trace = result.trace
    if trace.positions is None or trace.position_steps is None:
        raise ValueError("the run recorded no positions")
    keep = trace.position_steps >= trace.num_burnin
    return trace.positions[:, keep], trace.position_steps[keep]


def landscape(
    target: Target,
    kind: str = "random",
    *,
    grid: int = 101,
    span: float | Sequence[float] | None = None,
    seed: int = 0,
    positions: Tensor | None = None,
    position_steps: Tensor | None = None,
    spectrum: HessianSpectrum | None = None,
    w_from: Tensor | None = None,
    w_to: Tensor | None = None,
) -> LandscapeResult:
    """Build the plane of ``kind`` through w*, evaluate L_n on a ``grid``², project chains.

    Parameters
    ----------
    target : Target
    kind : str
        One of :data:`lltools.theory.planes.PLANES`.
    grid : int
        Points per side.
    span : float or (a_min, a_max, b_min, b_max), optional
        Default :func:`lltools.theory.planes.default_span` of the kind.
    positions : Tensor, shape (C, T, d), optional
        SGLD positions (:func:`sample_positions`): the ``pca`` plane's points and the
        chains overlay of any plane.
    spectrum, w_from, w_to : optional
        See :func:`lltools.theory.planes.build_plane`.
    """
    points = None
    if positions is not None:
        positions = torch.as_tensor(positions).to(target.w_star)
        points = positions.reshape(-1, positions.shape[-1])
    plane = build_plane(target, kind, seed=seed, points=points, spectrum=spectrum, w_from=w_from, w_to=w_to)
    chains = None if positions is None else project_positions(plane, positions, position_steps)
    resolved = default_span(kind, chains) if span is None else span
    table = evaluate_plane(target, plane, grid=grid, span=resolved)
    a_lo, a_hi, b_lo, b_hi = (float(table["a"].min()), float(table["a"].max()),
                              float(table["b"].min()), float(table["b"].max()))
    return LandscapeResult(table, plane, (a_lo, a_hi, b_lo, b_hi), chains)
