"""Loss landscapes of a Target on planes (and lines) through parameter space.

A plane is ``origin + a·u + b·v``: a grid of (a, b) is just more parameter vectors, so it is
evaluated with the target's own batched full-data loss L_n (the same ``Target.loss`` the
sampler uses), in chunks sized by :mod:`lltools.base.memory`.  Directions:

- ``random`` — filter-normalised Gaussian directions (Li et al. 2018, "Visualizing the loss
  landscape of neural nets"): each filter (row of a weight matrix, output channel of a
  convolution) of the direction is rescaled to the norm of the same filter of w*; 1-D
  parameters (biases, norms) get no direction; filters of w* that are zero keep a unit-norm
  random direction (else a zero teacher would have no plane at all);
- ``hessian`` / ``flat`` — the top two / the two flattest (smallest |μ|) Hessian
  eigenvectors (:mod:`lltools.theory.hessian`);
- ``pca`` — the top two principal components of given parameter vectors (SGLD draws, or
  the checkpoints of a training run): orthonormal;
- ``checkpoints`` — the line from one checkpoint to another plus a filter-normalised random
  direction orthogonal to it, of the same length.

A flat direction of the plane is a direction in which L does not grow: a degenerate
direction of w*.  But a plane is two directions out of d: it can look like a regular bowl
while most of the other d − 2 directions are flat — that is what λ sees and a plane hides.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from lltools.base import memory
from lltools.targets.base import Target
from lltools.targets.checkpoints import load_checkpoint
from lltools.targets.reduction import reduced_target
from lltools.theory.hessian import HessianSpectrum, hessian_spectrum

__all__ = [
    "PLANES",
    "Plane",
    "build_plane",
    "checkpoint_plane",
    "checkpoint_vectors",
    "default_span",
    "evaluate_plane",
    "filter_normalized_direction",
    "hessian_plane",
    "line_losses",
    "path_losses",
    "pca_directions",
    "pca_plane",
    "plane_chunk",
    "project_positions",
    "random_plane",
    "seconds_per_point",
]

#: The plane kinds (CLI ``--plane`` and the app's selector).
PLANES: tuple[str, ...] = ("random", "hessian", "flat", "pca", "checkpoints")
#: Most grid points evaluated in one batched call (small batches stay in cache).
PLANE_CHUNK = 256
#: Largest grid side accepted.
MAX_GRID = 401


@dataclass(frozen=True)
class Plane:
    """The plane ``origin + a·u + b·v`` in parameter space.

    Attributes
    ----------
    origin, u, v : Tensor, shape (d,)
        The point at (0, 0) and the two directions (independent, not necessarily orthogonal).
    kind : str
        One of :data:`PLANES`.
    a_label, b_label : str
        Axis titles.
    note : str
        How the directions were chosen, in one sentence.
    """

    origin: Tensor
    u: Tensor
    v: Tensor
    kind: str
    a_label: str = "a"
    b_label: str = "b"
    note: str = ""

    @property
    def dim(self) -> int:
        return int(self.origin.numel())

    def points(self, a: Tensor, b: Tensor) -> Tensor:
        """Parameter vectors (N, d) at coordinates ``a``, ``b`` (N,)."""
        a = torch.as_tensor(a, dtype=self.origin.dtype, device=self.origin.device).reshape(-1, 1)
        b = torch.as_tensor(b, dtype=self.origin.dtype, device=self.origin.device).reshape(-1, 1)
        return self.origin[None, :] + a * self.u[None, :] + b * self.v[None, :]

    def project(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Least-squares coordinates of parameter vectors in the plane.

        Parameters
        ----------
        w : Tensor, shape (N, d)

        Returns
        -------
        coords : Tensor, shape (N, 2)
            (a, b) of the closest point of the plane (exactly the coordinates of points
            that lie on it).
        distance : Tensor, shape (N,)
            ‖w − closest point‖: how far off the plane each vector is.
        """
        basis = torch.stack([self.u, self.v]).to(torch.float64)  # (2, d)
        rel = torch.as_tensor(w).to(torch.float64).reshape(-1, self.dim) - self.origin.to(torch.float64)
        gram = basis @ basis.T
        coords = torch.linalg.solve(gram, basis @ rel.T).T  # (N, 2)
        distance = (rel - coords @ basis).norm(dim=1)
        return coords, distance


# ---------------------------------------------------------------------------- directions
def _parameter_shapes(target: Target) -> list[torch.Size]:
    shapes = getattr(target, "param_shapes", None)
    return list(shapes) if shapes else [torch.Size([target.dim])]


def filter_normalized_direction(target: Target, *, seed: int = 0, w: Tensor | None = None) -> Tensor:
    """A Gaussian direction (d,) rescaled filter by filter to the norms of ``w`` (default w*).

    Filters are the slices along the first axis of every parameter with ≥ 2 axes (Li et
    al. 2018); 1-D parameters get 0; a filter whose weights are all zero keeps a unit-norm
    random direction.  A target without parameter shapes (a potential) is one filter.
    """
    centre = (target.w_star if w is None else w).detach()
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    direction = torch.randn(centre.numel(), generator=gen, dtype=torch.float64)
    ref = centre.to(torch.float64).cpu()
    out = torch.zeros_like(direction)
    start = 0
    shapes = _parameter_shapes(target)
    for shape in shapes:
        size = math.prod(shape)
        if len(shape) >= 2 or len(shapes) == 1:
            rows = shape[0] if len(shape) >= 2 else 1
            d = direction[start : start + size].reshape(rows, -1)
            r = ref[start : start + size].reshape(rows, -1)
            d_norm = d.norm(dim=1, keepdim=True).clamp_min(1e-300)
            r_norm = r.norm(dim=1, keepdim=True)
            scale = torch.where(r_norm > 0, r_norm, torch.ones_like(r_norm))
            out[start : start + size] = (d / d_norm * scale).reshape(-1)
        start += size
    return out.to(device=centre.device, dtype=centre.dtype)


def random_plane(target: Target, *, seed: int = 0) -> Plane:
    """Two filter-normalised random directions through w* (Li et al. 2018)."""
    u = filter_normalized_direction(target, seed=seed)
    v = filter_normalized_direction(target, seed=seed + 1)
    return Plane(
        target.w_star.detach(), u, v, "random", "a (random direction 1)", "b (random direction 2)",
        f"two Gaussian directions, filter-normalised to w* (Li et al. 2018), seed {seed}",
    )


def hessian_plane(target: Target, spectrum: HessianSpectrum | None = None, *, flat: bool = False) -> Plane:
    """The plane of the top two (``flat=False``) or the two flattest Hessian eigenvectors."""
    spectrum = spectrum if spectrum is not None else hessian_spectrum(target, top=4)
    vectors = spectrum.bottom_vectors if flat else spectrum.top_vectors
    values = spectrum.bottom_eigenvalues if flat else spectrum.top_eigenvalues
    if vectors.shape[0] < 2:
        raise ValueError("a Hessian plane needs at least 2 parameters")
    if flat:
        order = np.argsort(np.abs(values))
        values = values[order]
        vectors = vectors[torch.as_tensor(order.copy())]
    u, v = (vectors[i].to(device=target.device, dtype=target.dtype) for i in (0, 1))
    which = "flattest" if flat else "top"
    return Plane(
        target.w_star.detach(), u, v, "flat" if flat else "hessian",
        f"a (Hessian eigenvector, μ = {values[0]:.3g})", f"b (Hessian eigenvector, μ = {values[1]:.3g})",
        f"the {which} two unit Hessian eigenvectors at w* ({spectrum.method})",
    )


def pca_directions(points: Tensor, *, k: int = 2) -> tuple[Tensor, np.ndarray]:
    """The top ``k`` principal directions (k, d) of ``points`` (N, d), orthonormal rows, and
    the fraction of the variance each explains."""
    x = torch.as_tensor(points).to(torch.float64).reshape(points.shape[0], -1)
    if x.shape[0] < 2:
        raise ValueError("principal components need at least 2 parameter vectors")
    x = x - x.mean(dim=0, keepdim=True)
    _, sv, vh = torch.linalg.svd(x, full_matrices=False)
    total = float((sv**2).sum())
    if total <= 0:
        raise ValueError("the parameter vectors are all equal: no principal components")
    k = min(k, vh.shape[0])
    return vh[:k], (sv[:k] ** 2 / total).cpu().numpy()


def pca_plane(
    target: Target, points: Tensor, *, origin: Tensor | None = None, what: str = "SGLD draws"
) -> Plane:
    """The plane through ``origin`` (default w*) of the top two principal components of
    ``points`` (N, d) (orthonormal directions)."""
    dirs, share = pca_directions(points, k=2)
    if dirs.shape[0] < 2:
        raise ValueError("principal components need at least 3 distinct parameter vectors")
    centre = (target.w_star if origin is None else origin).detach()
    u, v = (dirs[i].to(device=centre.device, dtype=centre.dtype) for i in (0, 1))
    return Plane(
        centre, u, v, "pca", f"PC 1 ({share[0]:.0%} of the variance)", f"PC 2 ({share[1]:.0%})",
        f"the top two principal components of {points.shape[0]:,} {what}",
    )


def checkpoint_plane(target: Target, w_from: Tensor, w_to: Tensor, *, seed: int = 0) -> Plane:
    """``w_from + a·(w_to − w_from) + b·v``: a = 0 is one checkpoint, a = 1 the other; v is a
    filter-normalised random direction orthogonal to the line, of the same length."""
    w_from = torch.as_tensor(w_from).to(target.w_star)
    u = torch.as_tensor(w_to).to(target.w_star) - w_from
    length = float(u.norm())
    if length == 0:
        raise ValueError("the two checkpoints are identical: no line between them")
    v = filter_normalized_direction(target, seed=seed, w=w_to)
    v = v - (v @ u) / (u @ u) * u
    v = v / v.norm().clamp_min(1e-300) * length
    return Plane(
        w_from, u, v, "checkpoints", "a (0 = first checkpoint, 1 = second)", "b (random, ⟂ the line)",
        f"the line between two checkpoints (‖Δw‖ = {length:.3g}) and a random orthogonal direction",
    )


# ---------------------------------------------------------------------------- evaluation
def plane_chunk(target: Target, total: int) -> int:
    """Grid points per batched loss call: at most :data:`PLANE_CHUNK`, and what the memory
    budget (:func:`lltools.base.memory.available_bytes`) allows for the points and the
    target's working memory per chain.

    Raises
    ------
    MemoryBudgetError
        When not even one point fits.
    """
    itemsize = target.w_star.element_size()
    per_point = 3 * target.dim * itemsize + int(target.bytes_per_chain)
    memory.check_fits(per_point, target.device, what="one point of the plane",
                      suggestion="use a smaller model or a device with more memory.")
    budget = memory.available_bytes(target.device)
    return int(max(1, min(total, PLANE_CHUNK, budget // max(per_point, 1))))


def _span(span: float | Sequence[float]) -> tuple[float, float, float, float]:
    if isinstance(span, (int, float)):
        values = (-float(span), float(span), -float(span), float(span))
    else:
        values = tuple(float(s) for s in span)
        if len(values) == 2:
            values = (values[0], values[1], values[0], values[1])
    if len(values) != 4 or not all(math.isfinite(s) for s in values):
        raise ValueError(f"the range must be R or (a_min, a_max, b_min, b_max), got {span!r}")
    if not (values[0] < values[1] and values[2] < values[3]):
        raise ValueError(f"the range must be positive (R > 0, min < max), got {span!r}")
    return values  # type: ignore[return-value]


def evaluate_plane(
    target: Target,
    plane: Plane,
    *,
    grid: int = 101,
    span: float | Sequence[float] = 1.0,
) -> pd.DataFrame:
    """L_n on a ``grid`` × ``grid`` lattice of the plane.

    Parameters
    ----------
    target : Target
        Its full-data loss is evaluated (a model linear in its input on its exactly
        equivalent small dataset, :func:`lltools.targets.reduction.reduced_target`).
    plane : Plane
    grid : int
        Points per side (2 … :data:`MAX_GRID`).
    span : float or (a_min, a_max, b_min, b_max)
        R means a, b ∈ [−R, R].

    Returns
    -------
    DataFrame
        ``grid²`` rows, columns ``a, b, loss`` (``a`` varies fastest).
    """
    grid = int(grid)
    if not 2 <= grid <= MAX_GRID:
        raise ValueError(f"the grid must have 2 to {MAX_GRID} points per side, got {grid}")
    a_lo, a_hi, b_lo, b_hi = _span(span)
    a_axis = torch.linspace(a_lo, a_hi, grid, dtype=torch.float64)
    b_axis = torch.linspace(b_lo, b_hi, grid, dtype=torch.float64)
    bb, aa = torch.meshgrid(b_axis, a_axis, indexing="ij")
    a_flat, b_flat = aa.reshape(-1), bb.reshape(-1)
    evaluator = reduced_target(target)
    chunk = plane_chunk(evaluator, a_flat.numel())
    losses = torch.empty(a_flat.numel(), dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, a_flat.numel(), chunk):
            w = plane.points(a_flat[i : i + chunk], b_flat[i : i + chunk])
            losses[i : i + chunk] = evaluator.full_loss(w).to(torch.float64).cpu()
    return pd.DataFrame({"a": a_flat.numpy(), "b": b_flat.numpy(), "loss": losses.numpy()})


def line_losses(
    target: Target, w_from: Tensor, w_to: Tensor, *, points: int = 41, extend: float = 0.0
) -> pd.DataFrame:
    """L_n along the straight line from ``w_from`` (t = 0) to ``w_to`` (t = 1), t from −extend
    to 1 + extend; columns ``t, loss``."""
    if int(points) < 2:
        raise ValueError(f"a line needs at least 2 points, got {points}")
    w_from = torch.as_tensor(w_from).to(target.w_star)
    delta = torch.as_tensor(w_to).to(target.w_star) - w_from
    t = torch.linspace(-float(extend), 1.0 + float(extend), int(points), dtype=torch.float64)
    evaluator = reduced_target(target)
    chunk = plane_chunk(evaluator, t.numel())
    out = torch.empty(t.numel(), dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, t.numel(), chunk):
            tt = t[i : i + chunk].to(w_from)[:, None]
            out[i : i + chunk] = evaluator.full_loss(w_from[None, :] + tt * delta[None, :]).double().cpu()
    return pd.DataFrame({"t": t.numpy(), "loss": out.numpy()})


def path_losses(
    target: Target, vectors: Tensor, labels: Sequence[str] | None = None, *, points: int = 21
) -> pd.DataFrame:
    """L_n along the straight segments between consecutive parameter vectors (K, d).

    Returns
    -------
    DataFrame
        Columns ``segment`` (0 … K−2), ``t`` (K−1 segments laid end to end: checkpoint i at
        t = i), ``loss``, ``start``, ``end`` (the segment's labels), ``at_checkpoint``.
    """
    vectors = torch.as_tensor(vectors)
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError("a path needs at least 2 parameter vectors of shape (K, d)")
    labels = list(labels) if labels is not None else [str(i) for i in range(vectors.shape[0])]
    frames = []
    for i in range(vectors.shape[0] - 1):
        seg = line_losses(target, vectors[i], vectors[i + 1], points=points)
        if i > 0:
            seg = seg.iloc[1:]
        frames.append(seg.assign(segment=i, t=seg["t"] + i, start=labels[i], end=labels[i + 1]))
    out = pd.concat(frames, ignore_index=True)
    out["at_checkpoint"] = np.isclose(out["t"], np.round(out["t"]))
    return out[["segment", "t", "loss", "start", "end", "at_checkpoint"]]


def checkpoint_vectors(target: Target, paths: Sequence[str | Path]) -> Tensor:
    """The flat parameter vectors (K, d) of checkpoint files of ``target``'s architecture,
    validated against its exact parameter names and shapes (nothing is unpickled)."""
    names = getattr(target, "param_names", None)
    shapes = getattr(target, "param_shapes", None)
    if names is None or shapes is None:
        raise ValueError("checkpoints apply only to network targets")
    module = getattr(target, "module", None)
    expected = ({k: (tuple(v.shape), None) for k, v in module.state_dict().items()} if module is not None
                else {k: (tuple(s), None) for k, s in zip(names, shapes, strict=True)})
    rows = [target.flatten(load_checkpoint(p, expected=expected)) for p in paths]
    return torch.stack(rows).to(target.w_star)


# ---------------------------------------------------------------------------- one entry point
def build_plane(
    target: Target,
    kind: str,
    *,
    seed: int = 0,
    points: Tensor | None = None,
    spectrum: HessianSpectrum | None = None,
    w_from: Tensor | None = None,
    w_to: Tensor | None = None,
) -> Plane:
    """The plane of ``kind`` (one of :data:`PLANES`) through w*.

    ``points`` (N, d): the vectors whose principal components make a ``pca`` plane (SGLD
    draws); ``spectrum``: reuse a computed Hessian spectrum; ``w_from``/``w_to``: the two
    checkpoints of a ``checkpoints`` plane.

    Raises
    ------
    ValueError
        An unknown kind, or what that kind needs missing.
    """
    if kind == "random":
        return random_plane(target, seed=seed)
    if kind in ("hessian", "flat"):
        return hessian_plane(target, spectrum, flat=kind == "flat")
    if kind == "pca":
        if points is None:
            raise ValueError("a pca plane needs parameter vectors (SGLD draws) to take components of")
        return pca_plane(target, points)
    if kind == "checkpoints":
        if w_from is None or w_to is None:
            raise ValueError("a checkpoints plane needs two checkpoints")
        return checkpoint_plane(target, w_from, w_to, seed=seed)
    raise ValueError(f"unknown plane {kind!r}; use one of {', '.join(PLANES)}")


def project_positions(
    plane: Plane, positions: Tensor, steps: Sequence[int] | Tensor | None = None
) -> pd.DataFrame:
    """Chain positions (C, T, d) projected on the plane: columns ``chain, step, x, y,
    distance`` (``x, y`` the plane coordinates a, b; ``distance`` how far off the plane)."""
    positions = torch.as_tensor(positions)
    if positions.ndim != 3 or positions.shape[2] != plane.dim:
        raise ValueError(
            f"positions must have shape (chains, steps, {plane.dim}), got {tuple(positions.shape)}"
        )
    c, t, _ = positions.shape
    coords, dist = plane.project(positions.reshape(c * t, -1))
    step_values = np.arange(t) if steps is None else np.asarray(torch.as_tensor(steps).cpu())
    return pd.DataFrame({
        "chain": np.repeat(np.arange(c), t),
        "step": np.tile(step_values, c),
        "x": coords[:, 0].cpu().numpy(),
        "y": coords[:, 1].cpu().numpy(),
        "distance": dist.cpu().numpy(),
    })


def default_span(kind: str, coords: pd.DataFrame | None = None) -> tuple[float, float, float, float]:
    """The grid range of a plane kind: ±1 (random: Li et al.'s scale; Hessian: unit
    eigenvectors), a ∈ [−0.25, 1.25], b ∈ ±0.5 for checkpoints, and for a pca plane 1.5× the
    largest |coordinate| of the projected points (``coords`` columns ``x, y``)."""
    if kind == "checkpoints":
        return (-0.25, 1.25, -0.5, 0.5)
    if kind == "pca" and coords is not None and not coords.empty:
        r = 1.5 * float(np.nanmax(np.abs(coords[["x", "y"]].to_numpy())))
        if math.isfinite(r) and r > 0:
            return (-r, r, -r, r)
    return (-1.0, 1.0, -1.0, 1.0)


def seconds_per_point(target: Target, *, points: int = 4) -> float:
    """Measured seconds of one full-data loss evaluation (the cost of one grid point), from a
    batch of ``points`` copies of w* on the evaluator :func:`evaluate_plane` uses."""
    evaluator = reduced_target(target)
    w = evaluator.w_star[None, :].expand(int(points), -1).clone()
    with torch.no_grad():
        started = time.perf_counter()
        evaluator.full_loss(w)
    return (time.perf_counter() - started) / int(points)
