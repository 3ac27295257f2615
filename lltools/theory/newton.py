"""The Newton polyhedron of a polynomial at w* = 0 and its value λ = 1/t (primer §4, §7).

- :func:`newton_polyhedron_llc` — λ = 1/t where the diagonal (t, …, t) meets the boundary
  of Γ₊, in any dimension; exact for non-degenerate polynomials (checked where feasible,
  within a work budget).
- :func:`newton_polyhedron_2d` — drawing data for the 2-D case.

In two variables the exact value for *every* polynomial (degenerate ones included) is
:func:`lltools.theory.puiseux.plane_llc` (adapted coordinates).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.optimize import linprog, minimize
from scipy.spatial import ConvexHull, QhullError

from lltools.theory.closed_forms import _as_int
from lltools.theory.series import as_fraction

__all__ = ["NewtonPolygon2D", "NewtonResult", "Terms", "newton_polyhedron_2d", "newton_polyhedron_llc"]

Terms = dict[tuple[int, ...], Any]


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


def newton_polyhedron_llc(terms: Terms, *, deadline: float | None = None) -> NewtonResult:
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
    deadline : float, optional
        ``time.monotonic()`` value past which the degeneracy search stops: the result then
        says "degeneracy not checked" (``exact=None``) — a work budget against CPU bombs.

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
    exact, note, degenerate = _degeneracy(points, coeffs, set(np.flatnonzero(in_face).tolist()), deadline)
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
    points: np.ndarray, coeffs: np.ndarray, hit: set[int], deadline: float | None = None
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
        if deadline is not None and time.monotonic() > deadline:
            return None, "Newton polyhedron value; degeneracy not checked (the work budget ran out)", ()
        status = _face_degenerate(points[sorted(face)], coeffs[sorted(face)], deadline)
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


def _face_degenerate(pts: np.ndarray, cs: np.ndarray, deadline: float | None = None) -> bool | None:
    """Does the face polynomial Σ c_j w^{v_j} have a zero with zero gradient in (R*)^d?"""
    if (cs > 0).all() and (pts % 2 == 0).all():
        return False
    diffs = pts[1:] - pts[0]
    if np.linalg.matrix_rank(diffs.astype(float)) == 1:
        return _edge_degenerate(pts, cs)
    return _numeric_degenerate(pts, cs, deadline)


def _edge_degenerate(pts: np.ndarray, cs: np.ndarray) -> bool:
    """Exact test on a 1-dimensional face: points v0 + k·δ (δ primitive), f_F = w^{v0}·P(w^δ).

    As w ranges over the torus, u = w^δ ranges over R* (δ primitive has an odd entry), and
    ∇f_F ∝ P'(u) there, so f_F is degenerate iff P has a repeated non-zero real root —
    decided exactly: the coefficients are read as rationals and P's square-free
    factorisation over Q (SymPy) is searched for a repeated factor with a real root.
    """
    order = np.lexsort(pts.T[::-1])
    pts, cs = pts[order], cs[order]
    span = pts[-1] - pts[0]
    g = math.gcd(*[abs(int(x)) for x in span])
    delta = span // g
    coeffs: dict[int, Fraction] = {}
    for v, c in zip(pts, cs, strict=True):
        k = round(float(np.dot(v - pts[0], delta)) / float(np.dot(delta, delta)))
        coeffs[k] = coeffs.get(k, Fraction(0)) + as_fraction(float(c))
    import sympy  # heavy; only needed for edges

    u = sympy.Symbol("u")
    poly = sympy.Poly({(k,): sympy.Rational(c.numerator, c.denominator) for k, c in coeffs.items() if c}, u)
    for factor, mult in poly.sqf_list()[1]:
        if mult >= 2 and any(r != 0 for r in sympy.real_roots(factor)):
            return True
    return False


def _numeric_degenerate(pts: np.ndarray, cs: np.ndarray, deadline: float | None = None) -> bool | None:
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
            if deadline is not None and time.monotonic() > deadline:
                return None
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
