"""Exact λ in two variables: Newton polygon in adapted coordinates (primer §7; issue 12).

Every case states its hand derivation.  Notation: Γ₊ is the Newton polygon, d the Newton
distance (the diagonal meets ∂Γ₊ at (d, d)), λ = 1/d in adapted coordinates, m = 2 when the
principal face is a vertex (or an edge whose polynomial has a real root of multiplicity
exactly d), else 1.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lltools.targets.expressions import parse_expression
from lltools.theory.puiseux import plane_llc, polygon_vertices
from lltools.theory.record import expression_theory
from lltools.theory.series import taylor_polynomial


def lam(text: str) -> tuple[float | None, int | None, bool, str]:
    r = expression_theory(parse_expression(text))
    return r.llc, r.multiplicity, r.exact, r.note


def check(text: str, llc: Fraction, m: int) -> None:
    got, mult, exact, note = lam(text)
    assert exact, note
    assert got == pytest.approx(float(llc), abs=1e-15) and mult == m, (text, got, mult, note)


# ---------------------------------------------------------------------------- monomials
def test_monomials():
    """x²y⁴: the single point (2, 4); Γ₊ = [2, ∞) × [4, ∞), the diagonal enters it at (4, 4)
    on the horizontal ray y = 4 (not a vertex): λ = 1/4, m = 1 (= min(1/2, 1/4), one argmin).
    x²y²: the point (2, 2) is on the diagonal — a vertex — so λ = 1/2, m = 2.
    x⁶ (in the plane, y free): the diagonal meets the vertical ray above (6, 0) at (6, 6):
    λ = 1/6, m = 1.  x·y: the vertex (1, 1): λ = 1, m = 2 (V(ε) ∝ ε·log(1/ε))."""
    check("x**2 * y**4", Fraction(1, 4), 1)
    check("x**2 * y**2", Fraction(1, 2), 2)
    check("x**6", Fraction(1, 6), 1)
    check("3*x**4*y**4", Fraction(1, 4), 2)


def test_sums_of_monomials():
    """x⁴ + y⁶: the edge from (4, 0) to (0, 6) is a/4 + b/6 = 1; on the diagonal
    d(1/4 + 1/6) = 1, d = 12/5: λ = 5/12 (= 1/4 + 1/6), m = 1.  Its edge polynomial
    x⁴ + y⁶ has no real root besides 0 (adapted).  x² + y⁴: d(1/2 + 1/4) = 1, λ = 3/4."""
    check("x**4 + y**6", Fraction(5, 12), 1)
    check("x**2 + y**4", Fraction(3, 4), 1)
    check("0.5*x**2 + 2*y**2", Fraction(1), 1)


def test_non_degenerate_polygons():
    """x⁶ + x²y² + y⁶: vertices (6, 0), (2, 2), (0, 6); the diagonal hits the vertex (2, 2):
    λ = 1/2, m = 2.  x⁴ + x²y² + y⁴: edge from (4, 0) to (0, 4) through (2, 2), edge polynomial
    u⁴ + u² + 1 (u = y/x) has no real root: adapted, d = 2, λ = 1/2, m = 1.
    x² + xy + y² (positive definite): edge polynomial u² + u + 1, no real root, λ = 1."""
    check("x**6 + x**2*y**2 + y**6", Fraction(1, 2), 2)
    check("x**4 + x**2*y**2 + y**4", Fraction(1, 2), 1)
    check("x**2 + x*y + y**2", Fraction(1), 1)


@pytest.mark.parametrize(
    ("text", "llc", "m"),
    [
        # (x + y)^k: edge polynomial (1 + u)^k, root −1 of multiplicity k > d = k/2; y → y − x
        # gives y^k: λ = 1/k (issue 12: the old code said 1/2 for k = 4 and 1/3 for k = 6).
        ("(x + y)**2", Fraction(1, 2), 1),
        ("(x + y)**4", Fraction(1, 4), 1),
        ("(x + y)**6", Fraction(1, 6), 1),
        ("(x - y)**8", Fraction(1, 8), 1),
        # other slopes, rational coefficients: (x − y/3)^4 → y → y + 3x gives (−u/3)^4 ∝ y^4
        ("(x - y/3)**4", Fraction(1, 4), 1),
        ("(2*x + 3*y)**4", Fraction(1, 4), 1),
        ("(0.5*x - 0.25*y)**6", Fraction(1, 6), 1),
        # a degenerate principal edge plus a higher term: (x − y)^4 + x^8, y → y + x gives
        # y^4 + x^8: d(1/8 + 1/4) = 1, λ = 3/8 (issue 12: truth 3/8, the old code said 1/2)
        ("(x - y)**4 + x**8", Fraction(3, 8), 1),
        ("(x - y)**2 + x**4", Fraction(3, 4), 1),
        # two transversal lines each squared: u²v² after a linear change — the edge polynomial
        # (u² − 1)² has two real roots of multiplicity 2 = d: adapted, λ = 1/2, m = 2
        ("(x**2 - y**2)**2", Fraction(1, 2), 2),
        ("(x - y)**2 * (x + 2*y)**4", Fraction(1, 4), 1),
    ],
)
def test_powers_of_linear_forms(text, llc, m):
    """(a·x + b·y)^k is u^k in rotated coordinates (Jacobian ≠ 0): λ = 1/k, m = 1; see the cases."""
    check(text, llc, m)


def test_curved_valleys():
    """(y − x²)² + x⁶ = y² − 2x²y + x⁴ + x⁶: the principal edge is (0, 2)–(4, 0) (through
    (2, 1)), a/4 + b/2 = 1, d = 4/3; its polynomial (u − 1)², u = y/x², has the root 1 with
    multiplicity 2 > 4/3; y → y + x² (Jacobian 1) gives y² + x⁶: d(1/2 + 1/6) = 1, λ = 2/3.
    (y − x²)² alone → y²: λ = 1/2.
    (x − y²)² + y⁸ (the other orientation): x → x + y², then x² + y⁸, λ = 1/2 + 1/8 = 5/8.
    (y − x − x²)² needs two steps (y → y + x, then y → y + x²): λ = 1/2."""
    check("(y - x**2)**2 + x**6", Fraction(2, 3), 1)
    check("(y - x**2)**2", Fraction(1, 2), 1)
    check("(x - y**2)**2 + y**8", Fraction(5, 8), 1)
    check("(y - x - x**2)**2", Fraction(1, 2), 1)
    check("(y - x**2)**2 + x**4 * (y - x**2)**2 + x**10", Fraction(1, 2) + Fraction(1, 10), 1)


def test_curved_valleys_that_are_not_polynomial_graphs():
    """A rotated parabola p = v − u² (u = 0.8x − 0.6y, v = 0.6x + 0.8y) squared: its zero set
    y = φ(x) is an infinite power series, so the Newton–Puiseux steps never end; but f = p² with
    p smooth at 0 (∇p(0) = (0.6, 0.8)), and the analytic change Y = p (Jacobian ≠ 0) gives Y²:
    λ = 1/2, m = 1.  Likewise (y − x − x²y)² (p = y(1 − x²) − x, the graph y = x/(1 − x²))."""
    check("(0.6*x + 0.8*y - (0.8*x - 0.6*y)**2)**2", Fraction(1, 2), 1)
    check("(y - x - x**2*y)**2", Fraction(1, 2), 1)


def test_cusps():
    """y² − x³ is not ≥ 0, so take its square: (y² − x³)² has the edge (0, 4)–(6, 0),
    a/6 + b/4 = 1, d = 12/5; the slope ratio 3/2 is not an integer, so the root of
    (u − 1)², u = x³/y², has multiplicity 2 ≤ d and the coordinates are adapted: λ = 5/12.
    (y² − x³)² + x⁷ adds a point above that edge: still 5/12.  y⁴ + x⁶ + 0·…: 5/12 too."""
    check("(y**2 - x**3)**2", Fraction(5, 12), 1)
    check("(y**2 - x**3)**2 + x**7", Fraction(5, 12), 1)
    check("(y**3 - x**2)**2", Fraction(5, 12), 1)


def test_analytic_expressions_by_taylor_polynomial():
    """sin(x)² + sin(y)² = x² + y² + O(|w|⁴): the principal edge (2, 0)–(0, 2) has normal
    (1/2, 1/2), and every unknown term of degree ≥ 9 lies above it (9/2 > 1): λ = 1, exact.
    1 − cos(x) + y⁴ = x²/2 + y⁴ − …: λ = 1/2 + 1/4 = 3/4.  exp(x) − 1 − x + (y − x)²: the
    Taylor polynomial x²/2 + x³/6 + (y − x)²: edge (2, 0)–(0, 2), polynomial x²/2 + (y − x)²
    has no real root: λ = 1.  (sin(x) − y)⁴ + x⁸: y → y + x gives (y + x³/6 − …)⁴ + x⁸, the
    edge (0, 4)–(8, 0), a/8 + b/4 = 1, d = 8/3; the x³ corrections (e.g. x³y³: 3/8 + 3/4 > 1)
    lie above it, and so does every term of degree ≥ 9 (normal (1/3, 2/3): 9/3 > 8/3): λ = 3/8."""
    check("sin(x)**2 + sin(y)**2", Fraction(1), 1)
    check("1 - cos(x) + y**4", Fraction(3, 4), 1)
    check("exp(x) - 1 - x + (y - x)**2", Fraction(1), 1)
    check("(sin(x) - y)**4 + x**8", Fraction(3, 8), 1)
    check("log(1 + x**2) + tanh(y)**2", Fraction(1), 1)


def test_unknown_is_never_a_wrong_number():
    """(y − sin x)²: the zero set y = sin x is not a polynomial curve, every Taylor polynomial
    leaves the principal face undetermined (the true λ is 1/2): "unknown", no number.
    abs(x) + y² is not analytic at 0: unknown."""
    for text in ("(y - sin(x))**2", "abs(x) + y**2"):
        llc, m, exact, note = lam(text)
        assert llc is None and m is None and not exact and note.startswith("unknown"), (text, note)


def test_multiplicity_from_a_vertex_after_a_change():
    """(x − y)²·y²: y → y + x gives y²(y + x)² = x²y² + 2xy³ + y⁴: vertices (2, 2), (0, 4);
    the diagonal meets the vertex (2, 2): λ = 1/2, m = 2 — two transversal lines, squared.
    Already in the original coordinates the principal face is the vertex (2, 2)."""
    check("(x - y)**2 * y**2", Fraction(1, 2), 2)


def test_polygon_vertices_and_steps():
    assert polygon_vertices([(2, 4)]) == [(2, 4)]
    assert polygon_vertices([(4, 0), (2, 1), (0, 2), (3, 3)]) == [(0, 2), (4, 0)]
    assert polygon_vertices([(6, 0), (2, 2), (0, 6), (1, 5)]) == [(0, 6), (2, 2), (6, 0)]
    tp = taylor_polynomial(parse_expression("(x + y)**4").node, 2, None)  # type: ignore[arg-type]
    res = plane_llc({k: v for k, v in tp.terms.items() if any(k)})  # type: ignore[misc]
    assert [s.change for s in res.steps] == ["y → y − x", ""]
    assert res.steps[0].distance == 2 and res.steps[1].distance == 4 and res.llc == Fraction(1, 4)


# ---------------------------------------------------------------------------- rotations
_ROTATION_FAMILIES = ["x**2 * y**4", "x**4 + y**6", "x**2 + y**4", "x**2 * y**2", "(x - y)**4 + x**8", "y**2"]


def _rotate(text: str, t: Fraction) -> str:
    """L(Rw) for the rotation with cos = (1 − t²)/(1 + t²), sin = 2t/(1 + t²) (rational entries)."""
    c = (1 - t * t) / (1 + t * t)
    s = 2 * t / (1 + t * t)
    xr = f"(({c.numerator}/{c.denominator})*x - ({s.numerator}/{s.denominator})*y)"
    yr = f"(({s.numerator}/{s.denominator})*x + ({c.numerator}/{c.denominator})*y)"
    return text.replace("x", "X").replace("y", yr).replace("X", xr)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=st.sampled_from(_ROTATION_FAMILIES),
    t=st.fractions(min_value=Fraction(-3), max_value=Fraction(3), max_denominator=7),
)
def test_lambda_is_rotation_invariant(family, t):
    """λ and m of L(Rw) equal those of L(w) for rotations R with rational entries
    (Pythagorean: cos = (1 − t²)/(1 + t²), sin = 2t/(1 + t²)), so the algebra stays exact."""
    base = expression_theory(parse_expression(family))
    rotated = expression_theory(parse_expression(_rotate(family, t)))
    assert base.exact and rotated.exact, rotated.note
    assert (rotated.llc, rotated.multiplicity) == (base.llc, base.multiplicity)
