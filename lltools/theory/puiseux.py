"""Exact λ of a polynomial in two variables: Newton polygon in adapted coordinates (primer §7).

For an analytic f ≥ 0 on the plane with f(0) = 0, λ = 1/h where h, the *height*, is the
Newton distance of f in *adapted* coordinates (Varchenko 1976; Phong, Stein & Sturm 1999;
Ikromov & Müller 2011).  The Newton distance d is where the diagonal a = b meets the
boundary of the Newton polygon Γ₊ = conv(supp f) + R²_{≥0}; the face it meets is the
*principal face*.  Coordinates are adapted when

- the principal face is a vertex or an unbounded ray, or
- it is a compact edge whose edge polynomial has no non-zero real root of multiplicity
  greater than d.  (When the edge's slope ratio is not an integer this always holds.)

Otherwise the edge polynomial is c·x^A·y^B·(y − r·x^q)^n·(…) with n > d and q a positive
integer (or the same with x and y exchanged), r rational, and the change y → y + r·x^q —
polynomial, with Jacobian 1, so λ and m do not change — raises d.  This is the
Newton–Puiseux step along the repeated root; it is repeated until the coordinates are
adapted.  Then λ = 1/d, and m = 2 when the principal face is a vertex or an edge whose
polynomial has a real root of multiplicity exactly d (Ikromov & Müller's ν = 1; e.g.
(x² − y²)², which is u²v² in rotated coordinates), else m = 1.

All arithmetic is exact (:class:`fractions.Fraction`); SymPy factors the edge polynomials
over Q.  When the repeated root is irrational, or the steps do not end within the work
budget (a non-polynomial branch of the zero set, e.g. (y − sin x)²), the answer is
"unknown" — never a number labelled exact.  A polynomial that is exactly p^e·g near 0 with
p smooth at 0 and g(0) ≠ 0 (a curved valley of any shape) is settled by the analytic change
Y = p: λ = 1/e, m = 1.

Truncated Taylor series (``known_degree=D``: the terms of degree > D are unknown) are
handled by requiring, at every step, that no term of degree > D could touch the principal
face: min(κ₁, κ₂)·(D + 1) > d for the face's normal κ (κ₁ + κ₂ = 1).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["PlaneResult", "PlaneStep", "WorkBudgetExceeded", "plane_llc", "polygon_vertices"]

Poly2 = dict[tuple[int, int], Fraction]


class WorkBudgetExceeded(RuntimeError):
    """Raised internally when the work budget is spent."""


@dataclass(frozen=True)
class PlaneStep:
    """One coordinate system of the algorithm and its Newton polygon.

    Attributes
    ----------
    support : tuple of (int, int)
        Exponents of the (known) terms in these coordinates.
    vertices : tuple of (int, int)
        Vertices of Γ₊ by increasing first coordinate.
    distance : Fraction
        Newton distance d (the diagonal meets ∂Γ₊ at (d, d)).
    face : tuple of (int, int)
        The principal face: one vertex, or the two end-points of an edge; for a ray, its vertex.
    face_kind : {"vertex", "edge", "ray"}
    change : str
        The coordinate change applied after this step ("" for the last step).
    shift : (bool, int, Fraction) or None
        The same change as data: ``(swap, q, r)`` for y → y + r·x^q (x → x + r·y^q when
        ``swap``); the new function is f(x, y + r·x^q).
    """

    support: tuple[tuple[int, int], ...]
    vertices: tuple[tuple[int, int], ...]
    distance: Fraction
    face: tuple[tuple[int, int], ...]
    face_kind: str
    change: str = ""
    shift: tuple[bool, int, Fraction] | None = None


@dataclass(frozen=True)
class PlaneResult:
    """The exact λ of a polynomial in two variables, or "unknown".

    Attributes
    ----------
    llc : Fraction or None
        λ = 1/h, or ``None`` when the algorithm could not decide.
    multiplicity : int or None
    exact : bool
        ``True`` exactly when ``llc`` is proven.
    method : str
    note : str
    steps : tuple of PlaneStep
        Every coordinate system visited (for teaching: the polygon after each change).
    """

    llc: Fraction | None
    multiplicity: int | None
    exact: bool
    method: str
    note: str
    steps: tuple[PlaneStep, ...] = ()


# ---------------------------------------------------------------------------- polygon
def polygon_vertices(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Vertices of Γ₊ = conv(points) + R²_{≥0}, by increasing a (decreasing b)."""
    best: dict[int, int] = {}
    for a, b in points:
        if a not in best or b < best[a]:
            best[a] = b
    pts = sorted(best.items())
    chain: list[tuple[int, int]] = []
    for p in pts:
        if chain and p[1] >= chain[-1][1]:
            continue  # dominated: not below the previous point
        while len(chain) >= 2:
            (a0, b0), (a1, b1) = chain[-2], chain[-1]
            # keep a strictly convex lower-left chain: drop chain[-1] if it is on/above a0→p
            cross = (a1 - a0) * (p[1] - b0) - (b1 - b0) * (p[0] - a0)
            if cross <= 0:
                chain.pop()
            else:
                break
        chain.append(p)
    return chain


def _principal(vertices: list[tuple[int, int]]) -> tuple[Fraction, str, tuple[tuple[int, int], ...]]:
    """(d, kind, face) for the Newton polygon with these vertices."""
    a0, b0 = vertices[0]
    if a0 >= b0:
        return Fraction(a0), ("vertex" if a0 == b0 else "ray"), ((a0, b0),)
    ak, bk = vertices[-1]
    if bk >= ak:
        return Fraction(bk), ("vertex" if ak == bk else "ray"), ((ak, bk),)
    for (a, b), (c, e) in itertools.pairwise(vertices):
        if a == b:
            return Fraction(a), "vertex", ((a, b),)
        if a < b and c > e:
            s = Fraction(b - a, (c - a) - (e - b))
            return a + s * (c - a), "edge", ((a, b), (c, e))
        if c == e:
            return Fraction(c), "vertex", ((c, e),)
    raise AssertionError("the diagonal must meet the Newton polygon")  # pragma: no cover


# ---------------------------------------------------------------------------- the algorithm
def plane_llc(
    terms: Mapping[tuple[int, int], Fraction | int],
    *,
    known_degree: int | None = None,
    max_steps: int = 40,
    deadline: float | None = None,
    max_terms: int = 20_000,
) -> PlaneResult:
    """λ and m of f(x, y) = Σ c_ab x^a y^b at 0, exactly, or "unknown".

    Parameters
    ----------
    terms : mapping
        ``{(a, b): c}`` with exact (rational) coefficients; no constant term.
    known_degree : int, optional
        The terms are a Taylor polynomial known only up to total degree D (terms of degree
        > D of the function are unknown); ``None`` for an exact polynomial.
    max_steps : int
        Largest number of coordinate changes.
    deadline : float, optional
        ``time.monotonic()`` value past which the work stops with "unknown".
    max_terms : int
        Largest polynomial carried (growth from the changes is refused beyond it).

    Returns
    -------
    PlaneResult
    """
    f: Poly2 = {(int(a), int(b)): Fraction(c) for (a, b), c in terms.items() if c != 0}
    if known_degree is not None:
        f = {k: v for k, v in f.items() if k[0] + k[1] <= known_degree}
    if not f:
        return PlaneResult(
            None, None, False, "Newton polygon", "no non-zero term of low enough degree is known"
        )
    if (0, 0) in f:
        raise ValueError("the polynomial has a constant term: subtract f(w*) first")
    steps: list[PlaneStep] = []
    original = dict(f)
    try:
        for _ in range(max_steps + 1):
            _check(deadline)
            vertices = polygon_vertices(list(f))
            d, kind, face = _principal(vertices)
            step = PlaneStep(tuple(sorted(f)), tuple(vertices), d, face, kind)
            if known_degree is not None and not _determined(kind, face, d, known_degree):
                steps.append(step)
                return _unknown(
                    steps,
                    f"the Taylor polynomial of degree {known_degree} does not determine the principal face "
                    f"(terms of higher degree could change it); λ ≤ 1/{_fmt(d)} in these coordinates",
                    method="Taylor polynomial + Newton polygon",
                )
            change, n_max = _change_needed(f, kind, face, d) if kind == "edge" else (None, 0)
            if change is None:
                steps.append(step)
                return _adapted(steps, d, kind, known_degree, n_max)
            if change == "irrational":
                steps.append(step)
                return _unknown(
                    steps,
                    "the principal edge polynomial has a repeated irrational root (needs an algebraic "
                    f"coordinate change); λ ≤ 1/{_fmt(d)}",
                )
            swap, q, r = change
            moved, other = ("x", "y") if swap else ("y", "x")
            coef = "" if abs(r) == 1 else f"{_fmt(abs(r))}·"
            label = f"{moved} → {moved} {'+' if r > 0 else '−'} {coef}{other}" + (f"^{q}" if q != 1 else "")
            steps.append(PlaneStep(step.support, step.vertices, d, face, kind, label, (swap, q, r)))
            f = _substitute(f, swap, q, r, known_degree, max_terms, deadline)
        crossing = _normal_crossings(original) if known_degree is None else None
        if crossing is not None:
            return PlaneResult(
                crossing[0], crossing[1], True, "factorisation (normal crossings)", crossing[2], tuple(steps)
            )
        return _unknown(
            steps,
            f"still not adapted after {max_steps} coordinate changes (the zero set has a branch that is "
            f"not a polynomial curve); λ ≤ 1/{_fmt(steps[-1].distance)}",
        )
    except WorkBudgetExceeded:
        return _unknown(steps, "degeneracy not checked: the work budget ran out")


def _fmt(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise WorkBudgetExceeded


def _unknown(
    steps: list[PlaneStep], why: str, method: str = "Newton polygon, adapted coordinates"
) -> PlaneResult:
    return PlaneResult(None, None, False, method, f"unknown: {why}", tuple(steps))


def _adapted(
    steps: list[PlaneStep], d: Fraction, kind: str, known_degree: int | None, n_max: int = 0
) -> PlaneResult:
    # m = 2 when the principal face is a vertex, or an edge whose polynomial has a real root of
    # multiplicity exactly d (e.g. (x² − y²)² = u²v² in rotated coordinates); else m = 1.
    m = 2 if kind == "vertex" or (kind == "edge" and n_max == d) else 1
    changes = [s.change for s in steps if s.change]
    how = "adapted coordinates after " + ", ".join(changes) if changes else "the coordinates are adapted"
    source = f"Taylor polynomial of degree {known_degree}; " if known_degree is not None else ""
    method = "Newton polygon, adapted coordinates" if changes else "Newton polygon"
    if known_degree is not None:
        method = "Taylor polynomial + " + method
    note = f"exact: {source}{how}; the diagonal meets the {kind} at ({_fmt(d)}, {_fmt(d)}), λ = {_fmt(1 / d)}"
    return PlaneResult(1 / d, m, True, method, note, tuple(steps))


def _normal(kind: str, face: tuple[tuple[int, int], ...], d: Fraction) -> tuple[Fraction, Fraction] | None:
    """A normal κ (κ₁ + κ₂ = 1) of the principal face maximising min κ, or None for a ray."""
    if kind == "ray":
        return None
    if kind == "edge":
        (a0, b0), (a1, b1) = face
        k1, k2 = Fraction(b0 - b1), Fraction(a1 - a0)
        s = k1 + k2
        return k1 / s, k2 / s
    return Fraction(1, 2), Fraction(1, 2)  # a vertex on the diagonal: (1, 1) is in its normal cone


def _determined(kind: str, face: tuple[tuple[int, int], ...], d: Fraction, degree: int) -> bool:
    """Whether no term of total degree > ``degree`` can lie on or below the principal face's line."""
    kappa = _normal(kind, face, d)
    if kappa is None:
        return False
    if kind == "vertex":
        # the vertex's normal cone may not contain (1, 1) if the vertex is off the diagonal;
        # a vertex on the diagonal (a = b = d) does contain it
        return Fraction(degree + 1, 2) > d
    return min(kappa) * (degree + 1) > d


def _change_needed(
    f: Poly2, kind: str, face: tuple[tuple[int, int], ...], d: Fraction
) -> tuple[tuple[bool, int, Fraction] | str | None, int]:
    """The Newton–Puiseux change along a real root of multiplicity > d, if any.

    The edge from (a0, b0) to (a1, b1) has g + 1 lattice points, g = gcd(Δa, Δb); its
    polynomial is x^a0·y^b1·P(u) with u = x^(Δa/g) / y^(Δb/g) (up to a monomial), and a
    root c of P of multiplicity n is the factor (x^(Δa/g) − c·y^(Δb/g))^n.

    Returns ``(change, n_max)``: ``change`` is ``None`` (adapted), ``"irrational"``, or
    ``(swap, q, r)`` meaning y → y + r·x^q (``swap`` False) or x → x + r·y^q (``swap``
    True); ``n_max`` is the largest multiplicity of a non-zero real root of P (0 if none).
    """
    import sympy  # heavy; only needed for edges

    (a0, b0), (a1, b1) = face
    da, db = a1 - a0, b0 - b1
    g = math.gcd(da, db)
    sa, sb = da // g, db // g
    level = sb * a0 + sa * b0
    coeffs = {(a - a0) // sa: c for (a, b), c in f.items() if sb * a + sa * b == level}
    u = sympy.Symbol("u")
    poly = sympy.Poly({(k,): sympy.Rational(c.numerator, c.denominator) for k, c in coeffs.items()}, u)
    n_max = 0
    change: tuple[bool, int, Fraction] | str | None = None
    for factor, mult in poly.sqf_list()[1]:
        if not [rt for rt in sympy.real_roots(factor) if rt != 0]:
            continue
        n_max = max(n_max, mult)
        if mult <= d or change is not None:
            continue
        if sa != 1 and sb != 1:  # non-integer slope ratio (cannot happen: then n ≤ d)
            change = "irrational"
            continue
        if factor.degree() != 1:
            change = "irrational"
            continue
        c0, c1 = factor.all_coeffs()[1], factor.all_coeffs()[0]
        root = Fraction(int(sympy.numer(-c0 / c1)), int(sympy.denom(-c0 / c1)))
        # root c: x^sa = c·y^sb
        # sb == 1: y = x^sa / c;  sa == 1: x = c·y^sb
        change = (False, sa, 1 / root) if sb == 1 else (True, sb, root)
    return change, n_max


def _normal_crossings(f: Poly2, max_terms: int = 400) -> tuple[Fraction, int, str] | None:
    """λ, m and a note when f is, near 0, a unit times p^a (·q^b) with p, q smooth and transversal.

    The Newton–Puiseux steps never end along a branch that is not a polynomial curve (e.g. a
    rotated parabola).  If f factors over Q as c·Π p_i^(e_i) and the factors vanishing at 0
    are one smooth curve p (∇p(0) ≠ 0) or two transversal ones, the analytic change of
    coordinates (p, q) (or (p, a transversal line)) has a non-zero Jacobian at 0, so λ and m
    are those of the monomial Y^a·Z^b: λ = min(1/a, 1/b), m = 2 when a = b (two curves), else 1.
    """
    if len(f) > max_terms:
        return None
    import sympy

    x, y = sympy.symbols("x y")
    poly = sympy.Poly({k: sympy.Rational(v.numerator, v.denominator) for k, v in f.items()}, x, y)
    through_zero = []
    for factor, exp in poly.factor_list()[1]:
        terms = dict(factor.terms())
        if terms.get((0, 0), 0) != 0:
            continue  # a unit near 0
        grad = (terms.get((1, 0), 0), terms.get((0, 1), 0))
        if grad == (0, 0):
            return None  # a singular curve through 0: not normal crossings
        through_zero.append((grad, int(exp)))
    if not through_zero or len(through_zero) > 2:
        return None
    if len(through_zero) == 2:
        (g1, e1), (g2, e2) = through_zero
        if g1[0] * g2[1] - g1[1] * g2[0] == 0:
            return None  # tangent curves
        lam = min(Fraction(1, e1), Fraction(1, e2))
        m = 2 if e1 == e2 else 1
        return (
            lam,
            m,
            (
                f"exact: f is a unit times p^{e1}·q^{e2} near 0 with p, q smooth and transversal (normal "
                f"crossings), so λ = {_fmt(lam)}, m = {m}"
            ),
        )
    ((_, e1),) = through_zero
    return (
        Fraction(1, e1),
        1,
        (
            f"exact: f is a unit times p^{e1} near 0 with p smooth (the change Y = p has a non-zero "
            f"Jacobian), so λ = 1/{e1}"
        ),
    )


def _substitute(
    f: Poly2,
    swap: bool,
    q: int,
    r: Fraction,
    known_degree: int | None,
    max_terms: int,
    deadline: float | None,
) -> Poly2:
    """f(x, y + r·x^q) (or f(x + r·y^q, y) when ``swap``), truncated to ``known_degree``."""
    out: dict[tuple[int, int], Fraction] = {}
    for (a, b), c in f.items():
        _check(deadline)
        moved, fixed = (a, b) if swap else (b, a)  # the variable being shifted has exponent `moved`
        power = Fraction(1)
        for j in range(moved + 1):
            # C(moved, j) · v^(moved−j) · (r·u^q)^j
            coef = c * math.comb(moved, j) * power
            power *= r
            e_moved, e_fixed = moved - j, fixed + q * j
            key = (e_moved, e_fixed) if swap else (e_fixed, e_moved)
            if known_degree is not None and key[0] + key[1] > known_degree:
                continue
            out[key] = out.get(key, Fraction(0)) + coef
        if len(out) > max_terms:
            raise WorkBudgetExceeded
    return {k: v for k, v in out.items() if v != 0}
