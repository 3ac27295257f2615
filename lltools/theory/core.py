"""Exact and model-free values of the learning coefficient λ (primer §4).

Closed forms
------------
- :func:`monomial_llc` — a monomial Π w_i^(k_i): λ = min_i 1/k_i, m = #argmins.
- :func:`newton_polyhedron_llc` — λ = 1/t where the diagonal (t, …, t) meets the boundary
  of the Newton polyhedron Γ₊; exact for non-degenerate polynomials (checked where
  feasible).  :func:`newton_polyhedron_2d` returns drawing data for the 2-D case.
- :func:`deep_linear_llc` — Aoyagi's λ and θ for deep linear networks, exactly as in the
  primer (which corrects a typo of seed 004); biases add H^(1)/2.
- :func:`quadratic_network_llc` — Cullen et al. (2026) for two-layer quadratic networks,
  with the primer's validity limits.
- :func:`jacobian_rank_llc` — λ = rank(J)/2 for minimally singular models.

Model-free references
---------------------
- :func:`volume_scaling` — V(ε) = Vol{L − L(w*) < ε} ∝ ε^λ, slope of log V vs log ε.
- :func:`tempered_expectation_2d` — the exact finite-nβ target T = nβ·(E_p[L] − L(w*)) for
  p ∝ exp(−nβ L − (γ/2)‖w − w*‖²) on a 2-D potential, by quadrature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linprog, minimize
from torch import Tensor

__all__ = [
    "JacobianRankResult",
    "NewtonPolygon2D",
    "NewtonResult",
    "QuadraticLLC",
    "VolumeScaling",
    "deep_linear_llc",
    "jacobian_rank_llc",
    "monomial_llc",
    "newton_polyhedron_2d",
    "newton_polyhedron_llc",
    "quadratic_network_llc",
    "tempered_expectation_2d",
    "volume_scaling",
]

Terms = dict[tuple[int, ...], float]


# ============================================================================ monomials
def monomial_llc(exponents: Sequence[int]) -> tuple[float, int]:
    """λ and multiplicity of the monomial potential L(w) = Π_i w_i^(k_i) at w* = 0.

    ``exponents`` are the powers k_i as they appear in L itself (so x²y⁴ is ``(2, 4)``).
    With a flat prior near 0 (primer §4)

        λ = min_{i : k_i > 0} 1/k_i,      m = #{i : k_i = max_j k_j}.

    Zero exponents (variables that do not appear) are ignored.

    Raises
    ------
    ValueError
        If an exponent is negative or not an integer, all exponents are 0 (a constant
        potential), or some exponent is odd: then L changes sign at 0 and w* = 0 is not a
        local minimum, so λ is not defined.
    """
    ks = [_as_int(k, "exponent") for k in exponents]
    if any(k < 0 for k in ks):
        raise ValueError(f"exponents must be non-negative integers, got {tuple(ks)}")
    positive = [k for k in ks if k > 0]
    if not positive:
        raise ValueError("at least one exponent must be positive (a constant has no λ)")
    odd = [k for k in positive if k % 2]
    if odd:
        raise ValueError(
            f"odd exponent {odd[0]}: the monomial changes sign at 0, so w* = 0 is not a local minimum"
        )
    k_max = max(positive)
    return 1.0 / k_max, positive.count(k_max)


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(value)


# ============================================================================ Newton polyhedra
@dataclass(frozen=True)
class NewtonResult:
    """The Newton-polyhedron value of λ for a polynomial potential.

    Attributes
    ----------
    llc : float
        λ = 1/t (``inf`` is never returned; a polynomial with a constant term is refused).
    multiplicity : int
        m = codimension of the face of Γ₊ whose relative interior contains (t, …, t).
    t : float
        The Newton distance: the diagonal meets ∂Γ₊ at (t, …, t).
    vertices : tuple of tuple of int
        Vertices of Γ₊ (the exponent vectors that are extreme).
    exact : bool or None
        ``True`` when f was shown to be non-degenerate (then λ = 1/t and m are exact),
        ``False`` when a degenerate face in the closure of the hit face was found (then
        the true λ is typically smaller), ``None`` when non-degeneracy could not be decided.
    note : str
        A plain-language statement of the above.
    face : tuple of tuple of int
        The exponent vectors lying on the face hit by the diagonal.
    degenerate_faces : tuple of tuple of tuple of int
        Compact faces whose face polynomial has a singular zero in the torus (R*)^d.
    """

    llc: float
    multiplicity: int
    t: float
    vertices: tuple[tuple[int, ...], ...]
    exact: bool | None
    note: str
    face: tuple[tuple[int, ...], ...] = ()
    degenerate_faces: tuple[tuple[tuple[int, ...], ...], ...] = ()


def newton_polyhedron_llc(terms: Terms) -> NewtonResult:
    """λ = 1/t from the Newton polyhedron of f(w) = Σ_α c_α w^α at w* = 0.

    Γ₊ = conv(supp f) + R^d_{≥0}.  The Newton distance t is found by linear programming,

        minimise t  s.t.  (t, …, t) = Σ_j a_j v_j + s,  a ≥ 0,  Σ_j a_j = 1,  s ≥ 0,

    over the support points v_j; the multiplicity m is the codimension of the minimal face
    of Γ₊ containing (t, …, t) (found by one more LP: the support points and coordinate
    directions that can appear with positive weight).

    For f non-degenerate — no face polynomial f_F of a compact face F has a zero with
    ∇f_F = 0 in the torus (R*)^d — λ = 1/t and m are exact (Varchenko; Lin 2011).  The
    check is exact for 1-dimensional faces (edges: a univariate polynomial must have no
    repeated non-zero real root), which settles every 2-D polynomial, and is a numerical
    search for higher-dimensional faces (d ≤ 6).  A polynomial whose terms all have
    positive coefficients and even exponents is non-degenerate in any dimension.

    Example: (x − y)² = x² − 2xy + y² gives t = 1 (λ = 1) but is degenerate on its
    edge — the true λ is 1/2 — so ``exact=False``.

    Parameters
    ----------
    terms : dict
        ``{exponent tuple: coefficient}``; zero coefficients are ignored.

    Raises
    ------
    ValueError
        For an empty polynomial, mixed tuple lengths, negative exponents, or a non-zero
        constant term (then f(0) ≠ 0; subtract f(w*) first).
    """
    points, coeffs = _support(terms)
    d = points.shape[1]
    t = _newton_distance(points)
    in_face, directions = _hit_face(points, t)
    face_pts = points[in_face]
    face_dim = _face_dimension(face_pts, directions, d)
    multiplicity = d - face_dim
    vertices = _vertices(points)
    exact, note, degenerate = _degeneracy(points, coeffs, set(np.flatnonzero(in_face).tolist()))
    return NewtonResult(
        llc=1.0 / t,
        multiplicity=int(multiplicity),
        t=float(t),
        vertices=tuple(tuple(int(x) for x in v) for v in vertices),
        exact=exact,
        note=note,
        face=tuple(tuple(int(x) for x in v) for v in face_pts),
        degenerate_faces=degenerate,
    )


def _support(terms: Terms) -> tuple[np.ndarray, np.ndarray]:
    items = [(tuple(k), float(v)) for k, v in terms.items() if float(v) != 0.0]
    if not items:
        raise ValueError("the polynomial is zero: every point is a minimum and λ = 0")
    lengths = {len(k) for k, _ in items}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError("all exponent tuples must have the same positive length")
    points = np.array([[_as_int(e, "exponent") for e in k] for k, _ in items], dtype=np.int64)
    if (points < 0).any():
        raise ValueError("exponents must be non-negative")
    if (points.sum(axis=1) == 0).any():
        raise ValueError("the polynomial has a constant term: subtract f(w*) so that f(w*) = 0")
    return points, np.array([v for _, v in items])


def _newton_distance(points: np.ndarray) -> float:
    """min t with (t, …, t) ∈ conv(points) + R^d_{≥0} (one LP), snapped to a close rational."""
    k, d = points.shape
    # variables: t, a_1..a_k, s_1..s_d
    c = np.zeros(1 + k + d)
    c[0] = 1.0
    a_eq = np.zeros((d + 1, 1 + k + d))
    a_eq[:d, 0] = 1.0
    a_eq[:d, 1 : 1 + k] = -points.T
    a_eq[:d, 1 + k :] = -np.eye(d)
    a_eq[d, 1 : 1 + k] = 1.0
    b_eq = np.zeros(d + 1)
    b_eq[d] = 1.0
    res = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * (1 + k + d), method="highs")
    if res.status != 0:  # pragma: no cover - the LP is always feasible and bounded
        raise RuntimeError(f"Newton-distance LP failed: {res.message}")
    t = float(res.x[0])
    snapped = Fraction(t).limit_denominator(10**6)
    if abs(float(snapped) - t) < 1e-8 * max(1.0, t):
        t = float(snapped)
    return t


def _hit_face(points: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Support points and coordinate directions that lie in the minimal face containing (t,…,t).

    One homogenised LP: variables (a', s', τ, y_a, y_s) with Σ_j a'_j v_j + s' = τ·p,
    Σ a' = τ, y ≤ a', y ≤ s', 0 ≤ y ≤ 1, 0 ≤ τ ≤ 10⁶; maximise Σ y.  Every index that can be
    positive in some representation of p reaches y = 1 (representations form a convex set
    and τ rescales), and only those do.
    """
    k, d = points.shape
    n = k + d + 1 + k + d
    ia, is_, it, iya, iys = 0, k, k + d, k + d + 1, 2 * k + d + 1
    a_eq = np.zeros((d + 1, n))
    a_eq[:d, ia:is_] = points.T
    a_eq[:d, is_:it] = np.eye(d)
    a_eq[:d, it] = -t
    a_eq[d, ia:is_] = 1.0
    a_eq[d, it] = -1.0
    a_ub = np.zeros((k + d, n))
    a_ub[:k, iya:iys] = np.eye(k)
    a_ub[:k, ia:is_] = -np.eye(k)
    a_ub[k:, iys:] = np.eye(d)
    a_ub[k:, is_:it] = -np.eye(d)
    c = np.zeros(n)
    c[iya:] = -1.0
    bounds = [(0, None)] * (k + d) + [(0, 1e6)] + [(0, 1)] * (k + d)
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(k + d), A_eq=a_eq, b_eq=np.zeros(d + 1), bounds=bounds)
    if res.status != 0:  # pragma: no cover
        raise RuntimeError(f"face LP failed: {res.message}")
    y = res.x[iya:]
    return y[:k] > 0.5, y[k:] > 0.5


def _face_dimension(face_pts: np.ndarray, directions: np.ndarray, d: int) -> int:
    rows = [face_pts[1:] - face_pts[0]] if len(face_pts) > 1 else []
    rows.append(np.eye(d)[directions])
    stacked = np.vstack([r for r in rows if len(r)]) if any(len(r) for r in rows) else np.zeros((0, d))
    return int(np.linalg.matrix_rank(stacked.astype(float))) if len(stacked) else 0


def _vertices(points: np.ndarray) -> np.ndarray:
    """Vertices of Γ₊: support points not in conv(other points) + R^d_{≥0}."""
    keep = []
    for i, v in enumerate(points):
        others = np.delete(points, i, axis=0)
        if (others <= v).all(axis=1).any():  # dominated by a single other point
            continue
        keep.append(i)
    candidates = points[keep]
    if len(candidates) > 300:  # LP elimination would be slow; report the non-dominated set
        return candidates
    verts = []
    for i, v in enumerate(candidates):
        others = np.delete(candidates, i, axis=0)
        if len(others) == 0 or not _in_polyhedron(others, v):
            verts.append(v)
    out = np.array(verts, dtype=np.int64).reshape(-1, points.shape[1])
    return out[np.lexsort(out.T[::-1])]


def _in_polyhedron(points: np.ndarray, v: np.ndarray) -> bool:
    k = len(points)
    res = linprog(
        np.zeros(k),
        A_ub=points.T.astype(float),
        b_ub=v.astype(float),
        A_eq=np.ones((1, k)),
        b_eq=[1.0],
        bounds=[(0, None)] * k,
        method="highs",
    )
    return res.status == 0


# ---------------------------------------------------------------------------- non-degeneracy
def _degeneracy(
    points: np.ndarray, coeffs: np.ndarray, hit: set[int]
) -> tuple[bool | None, str, tuple[tuple[tuple[int, ...], ...], ...]]:
    d = points.shape[1]
    exact_note = "exact: the polynomial is non-degenerate, so λ = 1/t (Newton polyhedron)"
    if d == 1 or ((coeffs > 0).all() and (points % 2 == 0).all()):
        return True, exact_note, ()
    faces = _compact_faces(points)
    if faces is None:
        note = "Newton polyhedron value; exact only if the polynomial is non-degenerate (not checked)"
        return None, note, ()
    degenerate: list[frozenset[int]] = []
    undecided = False
    for face in faces:
        status = _face_degenerate(points[sorted(face)], coeffs[sorted(face)])
        if status is None:
            undecided = True
        elif status:
            degenerate.append(face)
    as_tuple = tuple(tuple(tuple(int(x) for x in points[j]) for j in sorted(f)) for f in degenerate)
    names = _variable_names(d)
    touching = [f for f in degenerate if f <= hit]
    if touching:
        poly = _format_poly(points[sorted(touching[0])], coeffs[sorted(touching[0])], names)
        return (
            False,
            f"degenerate: the face polynomial {poly} vanishes with zero gradient in the torus, "
            "so λ is typically smaller than the Newton value 1/t (e.g. (x−y)²: 1/t = 1, true λ = 1/2)",
            as_tuple,
        )
    if degenerate:
        poly = _format_poly(points[sorted(degenerate[0])], coeffs[sorted(degenerate[0])], names)
        return (
            None,
            f"Newton polyhedron value; the face polynomial {poly} is degenerate but does not touch "
            "the face hit by the diagonal — exact only if that does not matter",
            as_tuple,
        )
    if undecided:
        return None, "Newton polyhedron value; exact if the polynomial is non-degenerate (not proven)", ()
    return True, exact_note, ()


def _compact_faces(points: np.ndarray) -> list[frozenset[int]] | None:
    """Point sets (indices) of the compact faces of Γ₊ with ≥ 2 support points, or None if too big.

    Facets come from the convex hull of the support plus v + R·e_i: exactly the hull
    facets whose outward normal is ≤ 0 componentwise are facets of Γ₊.  Faces are the
    non-empty intersections of facet point sets; a face is compact when, for every axis i,
    some facet containing it has a positive inner normal component u_i.
    """
    k, d = points.shape
    if d > 6 or k > 200:
        return None
    from scipy.spatial import ConvexHull, QhullError

    big = float(points.max()) + 1.0
    extra = (points[:, None, :] + big * np.eye(d)[None, :, :]).reshape(-1, d)
    cloud = np.vstack([points, extra]).astype(float)
    try:
        hull = ConvexHull(cloud)
    except (QhullError, ValueError):  # pragma: no cover - the cloud is full-dimensional
        return None
    normals: list[np.ndarray] = []
    sets: list[frozenset[int]] = []  # one entry per facet (facets may share a point set)
    for eq in np.unique(np.round(hull.equations, 9), axis=0):
        n, off = eq[:d], eq[d]
        if (n > 1e-9).any():
            continue
        on = np.abs(points @ n + off) < 1e-7
        members = frozenset(np.flatnonzero(on).tolist())
        if members:
            sets.append(members)
            normals.append(-n)
    faces: set[frozenset[int]] = set(sets)
    frontier = list(faces)
    faces_of_facets = list(faces)
    while frontier:
        nxt = []
        for f in frontier:
            for s in faces_of_facets:
                g = f & s
                if g and g not in faces:
                    faces.add(g)
                    nxt.append(g)
        frontier = nxt
    compact = []
    for f in faces:
        if len(f) < 2:
            continue
        u = np.array([normals[i] for i, s in enumerate(sets) if f <= s])
        if (u > 1e-9).any(axis=0).all():
            compact.append(f)
    return sorted(compact, key=lambda f: (len(f), sorted(f)))


def _face_degenerate(pts: np.ndarray, cs: np.ndarray) -> bool | None:
    """Does the face polynomial Σ c_j w^{v_j} have a zero with zero gradient in (R*)^d?"""
    if (cs > 0).all() and (pts % 2 == 0).all():
        return False
    diffs = pts[1:] - pts[0]
    if np.linalg.matrix_rank(diffs.astype(float)) == 1:
        return _edge_degenerate(pts, cs)
    return _numeric_degenerate(pts, cs)


def _edge_degenerate(pts: np.ndarray, cs: np.ndarray) -> bool:
    """Exact test on a 1-dimensional face: points v0 + k·δ (δ primitive), f_F = w^{v0}·P(w^δ).

    As w ranges over the torus, u = w^δ ranges over R* (δ primitive has an odd entry), and
    ∇f_F ∝ P'(u) there, so f_F is degenerate iff P has a repeated non-zero real root.
    """
    order = np.lexsort(pts.T[::-1])
    pts, cs = pts[order], cs[order]
    span = pts[-1] - pts[0]
    g = math.gcd(*[abs(int(x)) for x in span])
    delta = span // g
    coeffs = np.zeros(g + 1)
    for v, c in zip(pts, cs, strict=True):
        k = round(float(np.dot(v - pts[0], delta)) / float(np.dot(delta, delta)))
        coeffs[k] += c
    roots = np.roots(coeffs[::-1])
    roots = roots[np.abs(roots) > 1e-12]
    for i, r in enumerate(roots):
        scale = 1.0 + abs(r)
        if abs(r.imag) > 1e-4 * scale:
            continue
        close = np.abs(np.delete(roots, i) - r) < 1e-4 * scale
        if close.any():
            return True
    return False


def _numeric_degenerate(pts: np.ndarray, cs: np.ndarray) -> bool | None:
    """Multistart search for a singular zero of a face polynomial on the torus (heuristic).

    Writes w_i = σ_i·exp(z_i) and minimises (f² + Σ_i (w_i ∂_i f)²) / (Σ_j |c_j w^{v_j}|)²,
    which is scale-free and vanishes exactly at singular zeros.  Returns True when a zero
    is found, None otherwise (absence is not a proof).
    """
    d = pts.shape[1]
    rng = np.random.default_rng(0)
    signs = np.array(np.meshgrid(*[[1.0, -1.0]] * d)).reshape(d, -1).T
    if len(signs) > 16:
        signs = signs[rng.choice(len(signs), 16, replace=False)]
    ptsf = pts.astype(float)

    def objective(z: np.ndarray, sigma: np.ndarray) -> float:
        logs = ptsf @ z
        mono = np.exp(logs - logs.max()) * np.prod(sigma[None, :] ** pts, axis=1) * cs
        f = mono.sum()
        grad = ptsf.T @ mono
        denom = np.abs(mono).sum() ** 2
        return float((f * f + grad @ grad) / denom)

    for sigma in signs:
        for _ in range(4):
            z0 = rng.normal(size=d)
            res = minimize(objective, z0, args=(sigma,), method="BFGS", options={"gtol": 1e-14})
            if res.fun < 1e-12:
                return True
    return None


def _variable_names(d: int) -> list[str]:
    return ["x", "y"] if d == 2 else [f"w{i + 1}" for i in range(d)]


def _format_poly(pts: np.ndarray, cs: np.ndarray, names: Sequence[str]) -> str:
    parts = []
    for v, c in zip(pts, cs, strict=True):
        mono = "*".join(
            n if e == 1 else f"{n}**{e}" for n, e in zip(names, (int(x) for x in v), strict=True) if e
        )
        coef = f"{c:g}"
        parts.append(mono if coef == "1" else f"-{mono}" if coef == "-1" else f"{coef}*{mono}")
    return " + ".join(parts).replace("+ -", "- ")


# ---------------------------------------------------------------------------- 2-D drawing data
@dataclass(frozen=True)
class NewtonPolygon2D:
    """Geometry of a 2-D Newton polygon for drawing.

    Attributes
    ----------
    support : tuple of (int, int)
        All exponent pairs of the polynomial.
    vertices : tuple of (int, int)
        Vertices of Γ₊ in order of increasing first coordinate (the lower-left boundary;
        Γ₊ continues with a vertical ray up from the first vertex and a horizontal ray to
        the right from the last one).
    hit : (float, float)
        The point (t, t) where the diagonal meets the boundary.
    hit_face : tuple of (int, int)
        The vertex, or the two end-points of the edge, containing ``hit``; for a hit on
        one of the two rays it is the ray's vertex.
    llc, multiplicity, t, exact, note
        As in :class:`NewtonResult`.
    """

    support: tuple[tuple[int, int], ...]
    vertices: tuple[tuple[int, int], ...]
    hit: tuple[float, float]
    hit_face: tuple[tuple[int, int], ...]
    llc: float
    multiplicity: int
    t: float
    exact: bool | None
    note: str


def newton_polyhedron_2d(terms: Terms) -> NewtonPolygon2D:
    """Drawing data for the Newton polygon of a polynomial in two variables.

    See :func:`newton_polyhedron_llc` for the mathematics (λ = 1/t).
    """
    result = newton_polyhedron_llc(terms)
    points, _ = _support(terms)
    if points.shape[1] != 2:
        raise ValueError(f"newton_polyhedron_2d needs a polynomial in 2 variables, got {points.shape[1]}")
    verts = sorted(result.vertices)
    t = result.t
    on_face = [v for v in verts if v in set(result.face)]
    hit_face = (on_face[0],) if len(on_face) == 1 else (on_face[0], on_face[-1])
    return NewtonPolygon2D(
        support=tuple(sorted((int(p[0]), int(p[1])) for p in points)),
        vertices=tuple((int(v[0]), int(v[1])) for v in verts),
        hit=(t, t),
        hit_face=tuple((int(v[0]), int(v[1])) for v in hit_face),
        llc=result.llc,
        multiplicity=result.multiplicity,
        t=t,
        exact=result.exact,
        note=result.note,
    )


# ============================================================================ deep linear networks
def deep_linear_llc(widths: Sequence[int], rank: int, bias: bool = False) -> tuple[float, int]:
    """Aoyagi's λ and multiplicity θ for a deep linear network (primer §4).

    ``widths`` are written input → hidden … → output, ``(d_in, h_1, …, d_out)``; internally
    they are reversed to Aoyagi's output-first H^(1), …, H^(L+1) (H^(1) = output dim,
    H^(L+1) = input dim).  With excess widths M_s = H^(s) − r, the unique index set S
    (|S| = ℓ + 1 ≥ 2) satisfies max_S M < min_{∉S} M, Σ_S M ≥ ℓ·max_S M and
    Σ_S M < ℓ·min_{∉S} M.  With M = ⌈Σ_S M_s / ℓ⌉ and a = Σ_S M_s − (M − 1)ℓ,

        λ = (−r² + r(H^(1) + H^(L+1)))/2 + (M·a + (M − 1)·Σ_S M_s)/4 − ¼ Σ_S M_s²,
        θ = a(ℓ − a) + 1.

    (Seed 004 prints the middle term over 4ℓ — a typo.)  Biases on every layer add
    H^(1)/2 to λ and leave θ unchanged.  This is the minimum over true parameters: the
    LLC at a w* whose every layer has rank exactly r.

    Parameters
    ----------
    widths : sequence of int
        Layer widths, input first; at least two (one linear layer).
    rank : int
        r = rank of the true end-to-end matrix, 0 ≤ r ≤ min(widths).
    bias : bool
        Whether every layer has a bias.

    Returns
    -------
    (λ, θ) : (float, int)
    """
    hs = [_as_int(h, "width") for h in widths]
    if len(hs) < 2:
        raise ValueError("widths needs at least an input and an output width")
    if any(h < 1 for h in hs):
        raise ValueError(f"widths must be positive, got {tuple(hs)}")
    r = _as_int(rank, "rank")
    if not 0 <= r <= min(hs):
        raise ValueError(f"rank must lie in [0, min(widths) = {min(hs)}], got {r}")
    h_out_first = hs[::-1]
    excess = [h - r for h in h_out_first]
    subset = _aoyagi_subset(excess)
    ell = len(subset) - 1
    total = sum(excess[i] for i in subset)
    m_big = -(-total // ell)  # ceil
    a = total - (m_big - 1) * ell
    lam = Fraction(-(r**2) + r * (h_out_first[0] + h_out_first[-1]), 2)
    lam += Fraction(m_big * a + (m_big - 1) * total, 4)
    lam -= Fraction(sum(excess[i] ** 2 for i in subset), 4)
    if bias:
        lam += Fraction(h_out_first[0], 2)
    theta = a * (ell - a) + 1
    return float(lam), int(theta)


def _aoyagi_subset(excess: Sequence[int]) -> list[int]:
    """The unique S of Aoyagi (2024): a set of smallest excess widths meeting the three conditions."""
    order = sorted(range(len(excess)), key=lambda i: excess[i])
    for size in range(2, len(excess) + 1):
        chosen = order[:size]
        rest = order[size:]
        ell = size - 1
        max_s = max(excess[i] for i in chosen)
        min_rest = min((excess[i] for i in rest), default=math.inf)
        total = sum(excess[i] for i in chosen)
        if max_s < min_rest and total >= ell * max_s and total < ell * min_rest:
            return chosen
    raise AssertionError(f"no Aoyagi index set for excess widths {list(excess)}")  # pragma: no cover


# ============================================================================ quadratic networks
@dataclass(frozen=True)
class QuadraticLLC:
    """Cullen et al. (2026) λ for a two-layer quadratic network f(x) = V σ(Wᵀx), σ(t) = t².

    Attributes
    ----------
    llc : float
        The paper's value.
    regime : {"generic", "non-degenerate", "stage-II"}
    valid : bool
        Whether the value is expected to equal rank(J)/2 (primer §4 limits).
    note : str
        The reason, in plain language.
    """

    llc: float
    regime: Literal["generic", "non-degenerate", "stage-II"]
    valid: bool
    note: str


def quadratic_network_llc(d: int, p: int, K: int, K_eff: int | None = None) -> QuadraticLLC:
    """λ for a bias-free two-layer quadratic network (seed 003, Thms 4.1, 4.2, 5.5; primer §4).

    - K ≥ d(d+1)/2 (generic):        λ = p·d(d+1)/4
    - K < d(d+1)/2 (non-degenerate): λ = K(d + p − 1)/2
    - stage-II, K_eff active units:  λ = K_eff(d + p − 1)/2

    Validity: the generic value is the output-capped rank p·d(d+1)/2 halved, and agrees
    with rank(J)/2 at random true parameters (also for p = 1).  The other two agree only
    for p ≥ 2 and K(d + p − 1) < p·d(d+1)/2 (K_eff in place of K for stage-II); for p = 1
    the rank is lower (the set of rank-K symmetric matrices has dimension
    Kd − K(K−1)/2), and beyond the bound the output space caps the rank.  All three
    assume data rich enough that Q ↦ outputs is injective (e.g. ≥ d(d+1)/2 generic
    inputs; one-hot modular-addition inputs see only part of Q).

    Parameters
    ----------
    d : int
        Input dimension.
    p : int
        Number of outputs.
    K : int
        Hidden width.
    K_eff : int, optional
        Number of active units of a stage-II solution (1 ≤ K_eff ≤ K); selects stage-II.
    """
    d, p, K = (_as_int(v, n) for v, n in ((d, "d"), (p, "p"), (K, "K")))
    if min(d, p, K) < 1:
        raise ValueError(f"d, p and K must be positive, got d={d}, p={p}, K={K}")
    sym = d * (d + 1) // 2
    if K_eff is not None:
        k_eff = _as_int(K_eff, "K_eff")
        if not 1 <= k_eff <= K:
            raise ValueError(f"K_eff must lie in [1, K={K}], got {k_eff}")
        return _restricted(k_eff, d, p, sym, "stage-II", f"K_eff = {k_eff} active units")
    if sym <= K:  # generic
        return QuadraticLLC(
            llc=p * d * (d + 1) / 4,
            regime="generic",
            valid=True,
            note=(
                f"K = {K} ≥ d(d+1)/2 = {sym}: the features span Sym(d), every output is free, "
                "λ = p·d(d+1)/4 = rank(J)/2 with the output space fully used"
            ),
        )
    return _restricted(K, d, p, sym, "non-degenerate", f"width K = {K} < d(d+1)/2 = {sym}")


def _restricted(
    k: int, d: int, p: int, sym: int, regime: Literal["non-degenerate", "stage-II"], what: str
) -> QuadraticLLC:
    llc = k * (d + p - 1) / 2
    if p < 2:
        return QuadraticLLC(
            llc, regime, False, f"{what}: not valid for p = 1 (rank-K symmetric matrices lose K(K−1)/2 dims)"
        )
    if k * (d + p - 1) >= p * sym:
        return QuadraticLLC(
            llc,
            regime,
            False,
            f"{what}: K(d+p−1) = {k * (d + p - 1)} ≥ p·d(d+1)/2 = {p * sym}, the output space caps the "
            f"rank; expect at most {p * sym / 2:g}",
        )
    return QuadraticLLC(llc, regime, True, f"{what}: λ = K(d+p−1)/2 (p ≥ 2 and K(d+p−1) < p·d(d+1)/2)")


# ============================================================================ rank of the Jacobian
@dataclass(frozen=True)
class JacobianRankResult:
    """λ = rank(J)/2 at w* for a minimally singular model (primer §4).

    Attributes
    ----------
    llc : float
        rank / 2.
    rank : int
        Numerical rank of J = ∂(outputs)/∂w at w*.
    dim : int
        Number of parameters d (a regular model has rank = d, λ = d/2).
    n_outputs : int
        Number of scalar outputs (rows of J).
    singular_values : numpy.ndarray
        Singular values of J, descending.
    tol : float
        The threshold: singular values above it count toward the rank.
    dtype : str
        The floating type J was computed in.
    """

    llc: float
    rank: int
    dim: int
    n_outputs: int
    singular_values: np.ndarray = field(repr=False)
    tol: float
    dtype: str


def jacobian_rank_llc(
    target: Any,
    *,
    rtol: float | None = None,
    max_outputs: int = 200_000,
    max_entries: int = 20_000_000,
) -> JacobianRankResult:
    """λ = rank(J)/2, with J the Jacobian of the model's outputs on the data at w*.

    ``target`` must provide ``target.w_star`` (d,) and ``target.outputs(w)`` mapping a
    parameter vector of shape (d,) to the model's outputs on the full dataset (any
    shape).  The target is moved to float64 with ``target.to(dtype=torch.float64)`` when
    it has that method.  J (n_outputs × d) is computed with ``torch.func.jacrev`` in
    chunks of outputs, falling back to ``torch.autograd.functional.jacobian``.

    The rank counts singular values σ_i > rtol·σ_max, with the default
    rtol = max(n_outputs, d)·ε_machine (NumPy's ``matrix_rank`` convention, with ε of the
    target's own weights' dtype, so float32 rounding of stored weights is not counted).

    Raises
    ------
    TypeError
        If the target has no ``outputs`` method.
    ValueError
        If n_outputs > ``max_outputs`` or n_outputs·d > ``max_entries`` (J would be too
        large to form and decompose).
    """
    if not callable(getattr(target, "outputs", None)):
        raise TypeError(
            "jacobian_rank_llc needs target.outputs(w) -> the model's outputs on the data at w (d,)"
        )
    t64 = target.to(dtype=torch.float64) if callable(getattr(target, "to", None)) else target
    w = t64.w_star.detach().to(torch.float64)
    d = int(w.numel())
    with torch.no_grad():
        n_out = int(t64.outputs(w).numel())
    if n_out > max_outputs or n_out * d > max_entries:
        raise ValueError(
            f"the Jacobian would be {n_out} outputs × {d} parameters = {n_out * d:,} entries "
            f"(limits: {max_outputs:,} outputs, {max_entries:,} entries); use fewer data points"
        )
    jac = _jacobian(lambda v: t64.outputs(v).reshape(-1), w, n_out)
    sv = torch.linalg.svdvals(jac).cpu().numpy() if jac.numel() else np.zeros(0)
    # The weights' own precision bounds what counts as a non-zero singular value: float32
    # rounding of stored weights must not be counted as rank.
    source_dtype = getattr(getattr(target, "w_star", None), "dtype", jac.dtype)
    eps = float(torch.finfo(source_dtype if source_dtype.is_floating_point else jac.dtype).eps)
    rel = rtol if rtol is not None else max(n_out, d) * eps
    tol = float(rel * sv[0]) if sv.size else 0.0
    rank = int((sv > tol).sum()) if sv.size and sv[0] > 0 else 0
    return JacobianRankResult(
        llc=rank / 2, rank=rank, dim=d, n_outputs=n_out, singular_values=sv, tol=tol, dtype=str(jac.dtype)
    )


def _jacobian(fn: Callable[[Tensor], Tensor], w: Tensor, n_out: int) -> Tensor:
    """J (n_out, d) by reverse mode, vectorised over output chunks (bounded memory)."""
    chunk = max(1, min(n_out, 4_000_000 // max(w.numel(), 1)))
    try:
        jac = torch.func.jacrev(fn, chunk_size=chunk)(w)
    except (RuntimeError, NotImplementedError):  # e.g. ops without vmap support
        jac = torch.autograd.functional.jacobian(fn, w)
    return jac.reshape(n_out, w.numel()).detach()


# ============================================================================ volume scaling
@dataclass(frozen=True)
class VolumeScaling:
    """Model-free λ from V(ε) = Vol{w in box : L(w) − L(w*) < ε} ≈ c·ε^λ (primer §4).

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``epsilon``, ``fraction`` (V(ε) as a fraction of the box), ``count`` and
        ``in_fit`` (whether the row was used for the slope).
    llc : float
        Slope of log V against log ε over the fitted rows (NaN if fewer than 3).
    stderr : float
        Its standard error from 10 independent batches of the samples (batch means).
    num_samples : int
    radius : float
    """

    table: pd.DataFrame
    llc: float
    stderr: float
    num_samples: int
    radius: float


def volume_scaling(
    fn: Callable[[Tensor], Tensor],
    w_star: Tensor | Sequence[float],
    *,
    radius: float = 1.0,
    num_samples: int = 200_000,
    eps_grid: Sequence[float] | np.ndarray | None = None,
    seed: int = 0,
    min_count: int = 200,
    max_fraction: float = 0.05,
) -> VolumeScaling:
    """Estimate λ as the small-ε slope of log V(ε) against log ε (primer §4).

    Draw w uniformly in the box w* + [−radius, radius]^d, compute ΔL = L(w) − L(w*) and
    V(ε) = fraction with ΔL < ε.  The slope is an ordinary least-squares fit over the rows
    with at least ``min_count`` samples below ε (enough to estimate V) and V(ε) ≤
    ``max_fraction`` (small ε, where the power law holds).  A multiplicity m > 1 adds a
    (−log ε)^(m−1) factor that biases the slope in any finite window.

    Parameters
    ----------
    fn : callable
        Batched potential, ``(C, d)`` -> ``(C,)``.
    w_star : Tensor or sequence, shape (d,)
    radius : float
        Half-width of the box.
    num_samples : int
    eps_grid : array, optional
        The ε values; default 40 log-spaced values between the 20th smallest ΔL and the
        median ΔL.
    seed : int
    min_count, max_fraction : int, float
        Fit-window rules (see above).
    """
    centre = torch.as_tensor(w_star, dtype=torch.float64).reshape(-1)
    d = int(centre.numel())
    if num_samples < 1000:
        raise ValueError("num_samples must be at least 1000")
    gen = torch.Generator().manual_seed(int(seed))
    delta = torch.empty(num_samples, dtype=torch.float64)
    with torch.no_grad():
        base = float(fn(centre[None, :]).reshape(-1)[0])
        for start in range(0, num_samples, 50_000):
            stop = min(start + 50_000, num_samples)
            u = torch.rand(stop - start, d, generator=gen, dtype=torch.float64)
            delta[start:stop] = fn(centre + radius * (2.0 * u - 1.0)).reshape(-1) - base
    dl = delta.numpy()
    dl = np.where(np.isnan(dl), np.inf, dl)
    if eps_grid is None:
        ordered = np.sort(dl[dl > 0])
        if len(ordered) < 40:
            raise ValueError("too few samples with L > L(w*) to build an ε grid")
        eps = np.geomspace(ordered[min(20, len(ordered) - 1)], ordered[len(ordered) // 2], 40)
    else:
        eps = np.sort(np.asarray(eps_grid, dtype=float))
    counts = np.searchsorted(np.sort(dl), eps, side="left")
    fraction = counts / num_samples
    in_fit = (counts >= min_count) & (fraction <= max_fraction) & (eps > 0)
    table = pd.DataFrame({"epsilon": eps, "fraction": fraction, "count": counts, "in_fit": in_fit})
    if in_fit.sum() < 3:
        return VolumeScaling(table, float("nan"), float("nan"), num_samples, float(radius))
    slope = _loglog_slope(eps[in_fit], fraction[in_fit])
    batches = np.array_split(dl, 10)
    slopes = []
    for b in batches:
        fb = np.searchsorted(np.sort(b), eps[in_fit], side="left") / len(b)
        ok = fb > 0
        if ok.sum() >= 3:
            slopes.append(_loglog_slope(eps[in_fit][ok], fb[ok]))
    stderr = float(np.std(slopes, ddof=1) / math.sqrt(len(slopes))) if len(slopes) >= 3 else float("nan")
    return VolumeScaling(table, slope, stderr, num_samples, float(radius))


def _loglog_slope(eps: np.ndarray, frac: np.ndarray) -> float:
    x, y = np.log(eps), np.log(frac)
    return float(np.polyfit(x, y, 1)[0])


# ============================================================================ tempered expectation
#: Above this nβ the quadrature's grid can no longer resolve the posterior (float64): refused.
MAX_QUADRATURE_NBETA = 1e15


def tempered_expectation_2d(
    fn: Callable[[Tensor], Tensor],
    nbeta: float,
    gamma: float,
    *,
    half_width: float | None = None,
    num_points: int = 801,
    w_star: Sequence[float] | Tensor | None = None,
) -> float:
    """The exact finite-nβ target T = nβ·(E_p[L] − L(w*)) on a 2-D potential, by quadrature.

    p(w) ∝ exp(−nβ·(L(w) − L(w*)) − (γ/2)‖w − w*‖²) (primer §2 with α = 0).  This is what
    an unbiased sampler reproduces at finite nβ; λ is its nβ → ∞ limit.  Closed forms:
    L = x² + y² gives T = 2nβ/(2nβ + γ); L = x⁴ + y⁴ with γ = 0 gives T = 1/2.

    The integral uses a tensor grid of ``num_points`` nodes per axis, w = w* + s·sinh(u)
    with u uniform, integrated by the trapezoidal rule in u (spectrally accurate for smooth
    integrands).  The map resolves every scale from s to ``half_width`` with constant
    relative spacing: s is 10⁻⁶ × the smallest radius (over 360 directions) at which
    nβ·ΔL + γr²/2 reaches 1, fine enough for the thin ridges of x²y⁴ along the axes
    (width ~ (nβ)^(−1/2)/y²) up to nβ/γ³ ≈ 10¹⁴.  By default ``half_width`` is 1.5× the
    largest radius at which nβ·ΔL + γr²/2 first stays above 50 (density < e⁻⁵⁰ beyond).
    Checked against the closed forms above and a 1-D reference for x²y⁴ to ~1e-11.

    Raises
    ------
    ValueError
        If nβ ≤ 0 or γ < 0, nβ > :data:`MAX_QUADRATURE_NBETA` (the posterior is then too
        narrow for float64 and the quadrature silently collapses, e.g. to 0 at nβ = 10³⁰⁰), or
        if the density is not normalisable (γ = 0 and a valley that never rises, e.g. x²y⁴).
    """
    if not nbeta > 0 or not gamma >= 0 or not math.isfinite(nbeta) or not math.isfinite(gamma):
        raise ValueError(f"need nbeta > 0 and gamma ≥ 0, got nbeta={nbeta}, gamma={gamma}")
    if nbeta > MAX_QUADRATURE_NBETA:
        raise ValueError(
            f"nbeta={nbeta:g} is beyond what the quadrature resolves (at most {MAX_QUADRATURE_NBETA:g}); "
            "at such nβ the finite-nβ target equals λ to many digits"
        )
    centre = torch.zeros(2, dtype=torch.float64) if w_star is None else torch.as_tensor(w_star).double()
    if centre.shape != (2,):
        raise ValueError(f"tempered_expectation_2d needs a 2-D w_star, got shape {tuple(centre.shape)}")
    with torch.no_grad():
        try:
            base = float(fn(centre[None, :]).reshape(-1)[0])
        except (IndexError, RuntimeError) as exc:
            raise ValueError(f"tempered_expectation_2d needs a potential of 2 variables ({exc})") from None
        if not math.isfinite(base):
            raise ValueError(f"the potential is {base} at w*")

        def energy(w: Tensor) -> tuple[Tensor, Tensor]:
            delta = fn(w).reshape(-1) - base
            r2 = ((w - centre) ** 2).sum(-1)
            return nbeta * delta + 0.5 * gamma * r2, delta

        small, wide = _radial_scales(energy, centre)
        hw = float(half_width) if half_width is not None else 1.5 * wide
        s = min(small * 1e-6, hw)
        u_max = math.asinh(hw / s)
        u = torch.linspace(-u_max, u_max, int(num_points), dtype=torch.float64)
        axis = s * torch.sinh(u)
        weight = s * torch.cosh(u)
        weight[0] *= 0.5
        weight[-1] *= 0.5
        n = len(u)
        log_mass = torch.empty(n, n, dtype=torch.float64)
        values = torch.empty_like(log_mass)
        rows = max(1, 200_000 // n)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            gx = (centre[0] + axis[start:stop])[:, None].expand(stop - start, n)
            gy = (centre[1] + axis)[None, :].expand(stop - start, n)
            e, delta = energy(torch.stack((gx.reshape(-1), gy.reshape(-1)), dim=1))
            log_w = torch.log(weight[start:stop, None] * weight[None, :])
            log_mass[start:stop] = -e.reshape(stop - start, n) + log_w
            values[start:stop] = delta.reshape(stop - start, n)
        log_mass = torch.where(torch.isfinite(log_mass), log_mass, torch.full_like(log_mass, -math.inf))
        mass = torch.exp(log_mass - log_mass.max())
        values = torch.where(mass > 0, values, torch.zeros_like(values))
        return float(nbeta * (mass * values).sum() / mass.sum())


def _radial_scales(energy: Callable[[Tensor], tuple[Tensor, Tensor]], centre: Tensor) -> tuple[float, float]:
    """(smallest radius where U reaches 1, largest radius beyond which U stays > 50) over 360 rays."""
    radii = torch.logspace(-12, 8, 201, dtype=torch.float64)
    angles = torch.arange(360, dtype=torch.float64) * (2 * math.pi / 360)
    dirs = torch.stack((torch.cos(angles), torch.sin(angles)), dim=1)
    pts = centre + radii[:, None, None] * dirs[None, :, :]  # (R, A, 2)
    e, _ = energy(pts.reshape(-1, 2))
    u = e.reshape(len(radii), len(angles))
    u = torch.where(torch.isnan(u), torch.full_like(u, math.inf), u)
    low = u < 50.0  # (R, A)
    if low[-1].any():
        raise ValueError(
            "the tempered density is not normalisable: the potential stays low out to r = 1e8 "
            "(use gamma > 0 for potentials with non-compact minima such as x**2 * y**4)"
        )
    last_low = torch.where(low.any(0), (low * torch.arange(1, len(radii) + 1)[:, None]).argmax(0), 0)
    wide = float(radii[torch.clamp(last_low.max() + 1, max=len(radii) - 1)])
    reach = u >= 1.0
    first = torch.where(reach.any(0), reach.to(torch.int64).argmax(0), len(radii) - 1)
    small = float(radii[first.min()])
    return small, wide
