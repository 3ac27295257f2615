"""Closed-form and model-free λ values (primer §4)."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import pairwise, product

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from lltools.targets.expressions import parse_expression
from lltools.theory.closed_forms import deep_linear_llc, monomial_llc
from lltools.theory.networks import quadratic_network_llc
from lltools.theory.newton import newton_polyhedron_2d, newton_polyhedron_llc
from lltools.theory.numeric import jacobian_rank_llc, volume_scaling
from lltools.theory.quadrature import MAX_QUADRATURE_NBETA, tempered_expectation_2d


def poly(text: str) -> dict[tuple[int, ...], float]:
    p = parse_expression(text).polynomial
    assert p is not None
    return p


def fn(text: str):
    return parse_expression(text).fn


# ============================================================================ monomials


@pytest.mark.parametrize(
    ("exponents", "expected"),
    [((2, 4), (0.25, 1)), ((2, 2), (0.5, 2)), ((4, 4, 2), (0.25, 2)), ((0, 2), (0.5, 1)), ((6,), (1 / 6, 1))],
)
def test_monomial_llc(exponents, expected):
    lam, m = monomial_llc(exponents)
    assert lam == pytest.approx(expected[0]) and m == expected[1]


@pytest.mark.parametrize("bad", [(0, 0), (3, 2), (-2, 2), (2.5, 2)])
def test_monomial_llc_refuses(bad):
    with pytest.raises(ValueError):
        monomial_llc(bad)


# ============================================================================ Newton polyhedra


@pytest.mark.parametrize(
    ("text", "llc", "m"),
    [
        ("x**2 * y**4", 1 / 4, 1),
        ("x**2 + y**2", 1.0, 1),
        ("x**4 + y**4", 1 / 2, 1),
        ("x**2 + y**4", 3 / 4, 1),
        ("x**2 * y**2", 1 / 2, 2),
        ("x**2", 1 / 2, 1),  # y absent: the face {x = 2} is non-compact, codimension 1
        ("x**2*y**2 + x**6 + y**6", 1 / 2, 2),  # the diagonal hits the vertex (2, 2)
        ("w1**2 + w2**4 + w3**6", 1 / 2 + 1 / 4 + 1 / 6, 1),  # 3-D: t = 12/11
        ("w1**2 * w2**2 * w3**2", 1 / 2, 3),
        ("w1**2 * w2**2 + w3**4", 3 / 4, 2),  # independent parts add: λ = 1/2 + 1/4, m = 2 + 1 − 1
        ("w1**2 + w2**2 + w3**2 + w4**2", 2.0, 1),  # regular: d/2
    ],
)
def test_newton_values(text, llc, m):
    r = newton_polyhedron_llc(poly(text))
    assert r.llc == pytest.approx(llc, abs=1e-9)
    assert r.multiplicity == m
    assert r.t == pytest.approx(1 / llc, abs=1e-9)


@pytest.mark.parametrize(("a", "b"), list(product([2, 4, 6, 8], repeat=2)))
def test_newton_sums_of_independent_terms_add(a, b):
    """x^a + y^b: the diagonal meets x/a + y/b = 1 at t = ab/(a+b), so λ = 1/a + 1/b."""
    r = newton_polyhedron_llc({(a, 0): 1.0, (0, b): 2.0})
    assert r.llc == pytest.approx(1 / a + 1 / b, abs=1e-9) and r.exact is True


@pytest.mark.parametrize("k", [(2, 4), (4, 2, 6), (2, 2, 4, 4), (8, 2)])
def test_newton_agrees_with_monomial_rule(k):
    r = newton_polyhedron_llc({k: 1.0})
    assert (r.llc, r.multiplicity) == pytest.approx(monomial_llc(k))


@pytest.mark.parametrize(
    "text",
    [
        "(x - y)**2",  # Newton 1, true 1/2
        "(x**2 - y**3)**2",  # cusp: degenerate edge
        "(w1 - w2)**2 + w3**2",  # degenerate edge inside a 2-face (3-D)
        "(w1*w2 - w3**2)**2",  # degenerate compact edge in 3-D
        "(w1 + w2 + w3)**2 + w1**4 + w2**4 + w3**4",  # Newton 3/2, true 1
    ],
)
def test_newton_detects_degeneracy(text):
    r = newton_polyhedron_llc(poly(text))
    assert r.exact is False
    assert "degenerate" in r.note and r.degenerate_faces


def test_newton_degenerate_example_value():
    r = newton_polyhedron_llc(poly("(x - y)**2"))
    assert r.llc == pytest.approx(1.0)  # while the true λ is 1/2 (a regular direction in 1 of 2 dims)
    assert r.degenerate_faces == (((0, 2), (1, 1), (2, 0)),)


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("x**2 + 3*x*y + y**2", True),  # indefinite: simple real roots, non-degenerate as a polynomial
        ("x**2 + x*y + y**2", True),  # positive definite
        ("x**2 + x*y**2 + y**4", True),  # edge polynomial 1 + u + u², u = x/y²: no real roots
        ("w1**2 + w2**4 + w3**6 + w1*w2**2", None),  # same edge, but a 2-face can only be searched
        ("w1**4 + w2**4 + w3**4", True),
    ],
)
def test_newton_nondegenerate(text, exact):
    assert newton_polyhedron_llc(poly(text)).exact is exact


def test_newton_refuses_bad_input():
    with pytest.raises(ValueError, match="constant term"):
        newton_polyhedron_llc({(0, 0): 1.0, (2, 0): 1.0})
    with pytest.raises(ValueError, match="zero"):
        newton_polyhedron_llc({(2, 0): 0.0})
    with pytest.raises(ValueError):
        newton_polyhedron_llc({(2, 0): 1.0, (1,): 1.0})


def test_newton_vertices():
    r = newton_polyhedron_llc(poly("x**4 + x**3*y**3 + x**2*y**2 + y**6 + x**5"))
    # (3,3) is dominated by (2,2); (5,0) by (4,0); the rest are vertices.
    assert r.vertices == ((0, 6), (2, 2), (4, 0))


def test_newton_polygon_2d_drawing_data():
    g = newton_polyhedron_2d(poly("x**2 + y**4"))
    assert g.vertices == ((0, 4), (2, 0))
    assert g.hit == pytest.approx((4 / 3, 4 / 3)) and g.hit_face == ((0, 4), (2, 0))
    assert g.llc == pytest.approx(0.75) and g.support == ((0, 4), (2, 0))
    g = newton_polyhedron_2d(poly("x**2 * y**4"))
    assert g.vertices == ((2, 4),) and g.hit == pytest.approx((4.0, 4.0)) and g.hit_face == ((2, 4),)
    g = newton_polyhedron_2d(poly("x**4 + x**2*y**2 + y**6"))
    assert g.hit == pytest.approx((2.0, 2.0)) and g.hit_face == ((2, 2),) and g.multiplicity == 2
    with pytest.raises(ValueError):
        newton_polyhedron_2d(poly("w1**2 + w2**2 + w3**2"))


# ============================================================================ deep linear networks


@pytest.mark.parametrize(
    ("widths", "rank", "expected"),
    [
        ((1, 1, 1), 0, 0.5),
        ((5, 3, 5), 0, 6.5),
        ((5, 4, 5), 0, 8.0),
        ((6, 4, 5), 2, 12.0),
        ((10, 20, 20, 10), 10, 50.0),
    ],
)
def test_deep_linear_primer_values(widths, rank, expected):
    lam, _ = deep_linear_llc(widths, rank)
    assert lam == expected


def _aoyagi_typo(widths, rank):
    """Seed 004's printed formula (middle term over 4ℓ) — must NOT match the primer values."""
    h = list(widths)[::-1]
    m = [x - rank for x in h]
    order = sorted(range(len(m)), key=lambda i: m[i])
    for size in range(2, len(m) + 1):
        s, rest, ell = order[:size], order[size:], size - 1
        tot = sum(m[i] for i in s)
        mn = min((m[i] for i in rest), default=math.inf)
        if max(m[i] for i in s) < mn and tot >= ell * max(m[i] for i in s) and tot < ell * mn:
            break
    big = -(-tot // ell)
    a = tot - (big - 1) * ell
    return (
        (-(rank**2) + rank * (h[0] + h[-1])) / 2
        + (big * a + (big - 1) * tot) / (4 * ell)
        - sum(m[i] ** 2 for i in s) / 4
    )


def test_the_seed_typo_would_fail_these_checks():
    assert _aoyagi_typo((1, 1, 1), 0) == -0.125  # the primer's warning
    assert _aoyagi_typo((5, 3, 5), 0) != deep_linear_llc((5, 3, 5), 0)[0]


def _rrr(m_in: int, h: int, n_out: int, r: int) -> tuple[Fraction, int]:
    """Reduced-rank regression, Aoyagi & Watanabe (2005), written independently of Aoyagi (2024)."""
    mm, hh, nn = m_in, h, n_out  # M inputs, H hidden, N outputs in the paper
    if mm + hh < nn + r:
        return Fraction(hh * mm - hh * r + nn * r, 2), 1
    if nn + hh < mm + r:
        return Fraction(hh * nn - hh * r + mm * r, 2), 1
    if mm + nn < hh + r:
        return Fraction(mm * nn, 2), 1
    base = 2 * (hh + r) * (mm + nn) - (mm - nn) ** 2 - (hh + r) ** 2
    if (mm + hh + nn + r) % 2 == 0:
        return Fraction(base, 8), 1
    return Fraction(base + 1, 8), 2


def test_deep_linear_two_layers_is_reduced_rank_regression():
    checked = 0
    for m_in, h, n_out in product(range(1, 8), repeat=3):
        for r in range(0, min(m_in, h, n_out) + 1):
            lam, theta = deep_linear_llc((m_in, h, n_out), r)
            ref_lam, ref_m = _rrr(m_in, h, n_out, r)
            assert lam == float(ref_lam), (m_in, h, n_out, r)
            assert theta == ref_m, (m_in, h, n_out, r)
            checked += 1
    assert checked > 800


def test_deep_linear_single_layer_is_regular():
    for d_in, d_out in product(range(1, 6), repeat=2):
        for r in range(min(d_in, d_out) + 1):
            assert deep_linear_llc((d_in, d_out), r) == (d_in * d_out / 2, 1)


def test_deep_linear_scalar_chains_match_newton():
    """x ↦ abx, r = 0 has K = (ab)² -> λ = 1/2, m = 2; three factors: m = 3."""
    assert deep_linear_llc((1, 1, 1), 0) == (0.5, 2)
    assert deep_linear_llc((1, 1, 1, 1), 0) == (0.5, 3)
    nr = newton_polyhedron_llc({(2, 2, 2): 1.0})
    assert (nr.llc, nr.multiplicity) == (0.5, 3)


def test_deep_linear_bias_and_validation():
    lam, theta = deep_linear_llc((6, 4, 5), 2, bias=True)
    assert (lam, theta) == (12.0 + 5 / 2, deep_linear_llc((6, 4, 5), 2)[1])
    with pytest.raises(ValueError):
        deep_linear_llc((3, 2, 3), 3)
    with pytest.raises(ValueError):
        deep_linear_llc((3,), 0)
    with pytest.raises(ValueError):
        deep_linear_llc((3, 0, 3), 0)


def test_deep_linear_bounded_by_regular_value():
    for widths in [(4, 3, 2, 5), (2, 7, 7, 2), (8, 4, 1), (3, 3, 3, 3, 3)]:
        d = sum(a * b for a, b in pairwise(widths))
        for r in range(min(widths) + 1):
            lam, theta = deep_linear_llc(widths, r)
            assert 0 < lam <= d / 2 and theta >= 1
    # the primer: 8-4-1 with r = 1 has λ = 4 = d_in/2
    assert deep_linear_llc((8, 4, 1), 1)[0] == 4.0


# ============================================================================ rank of the Jacobian


class _FakeTarget:
    """Just what jacobian_rank_llc needs: w_star and outputs(w)."""

    def __init__(self, w_star, outputs):
        self.w_star = w_star
        self._outputs = outputs

    def outputs(self, w):
        return self._outputs(w)


def test_jacobian_rank_of_a_linear_map():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(30, 3, generator=g, dtype=torch.float64) @ torch.randn(
        3, 8, generator=g, dtype=torch.float64
    )
    res = jacobian_rank_llc(_FakeTarget(torch.zeros(8), lambda w: a @ w))
    assert (res.rank, res.llc, res.dim, res.n_outputs) == (3, 1.5, 8, 30)
    assert res.singular_values[2] > 1e3 * res.tol > res.singular_values[3]


def test_jacobian_rank_of_a_bilinear_model():
    x = torch.linspace(-1, 1, 20, dtype=torch.float64)

    def outputs(w):
        return w[0] * w[1] * x

    assert jacobian_rank_llc(_FakeTarget(torch.zeros(2), outputs)).rank == 0
    assert jacobian_rank_llc(_FakeTarget(torch.tensor([1.0, 2.0]), outputs)).rank == 1


def test_jacobian_rank_uses_float64_via_to():
    class WithTo(_FakeTarget):
        def to(self, device=None, dtype=None):
            return WithTo(self.w_star.to(dtype=dtype), self._outputs)

    res = jacobian_rank_llc(
        WithTo(torch.zeros(3, dtype=torch.float32), lambda w: torch.stack([w[0], 2 * w[0]]))
    )
    assert res.dtype == "torch.float64" and res.rank == 1


def test_jacobian_rank_refuses():
    with pytest.raises(TypeError, match="outputs"):
        jacobian_rank_llc(object())
    big = _FakeTarget(torch.zeros(10), lambda w: w.repeat(1000))
    with pytest.raises(ValueError, match=r"too large|entries"):
        jacobian_rank_llc(big, max_entries=50_000)
    with pytest.raises(ValueError):
        jacobian_rank_llc(big, max_outputs=999)


# ============================================================================ quadratic networks


def _quadratic_target(d, p, k, k_eff=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3 * d * (d + 1), d, generator=g, dtype=torch.float64)
    w = torch.randn(d, k, generator=g, dtype=torch.float64)
    v = torch.randn(p, k, generator=g, dtype=torch.float64)
    if k_eff is not None:  # stage-II: the inactive units are switched off entirely
        w[:, k_eff:] = 0.0
        v[:, k_eff:] = 0.0

    def outputs(theta):
        wm = theta[: d * k].reshape(d, k)
        vm = theta[d * k :].reshape(p, k)
        return (x @ wm) ** 2 @ vm.T

    return _FakeTarget(torch.cat([w.flatten(), v.flatten()]), outputs)


@pytest.mark.parametrize(
    ("d", "p", "k", "k_eff", "regime", "formula", "valid"),
    [
        (3, 2, 6, None, "generic", 6.0, True),
        (3, 1, 6, None, "generic", 3.0, True),
        (4, 2, 3, None, "non-degenerate", 7.5, True),
        (5, 2, 4, None, "non-degenerate", 12.0, True),
        (3, 3, 4, None, "non-degenerate", 10.0, False),  # K(d+p-1) = 20 > p·d(d+1)/2 = 18
        (4, 3, 5, None, "non-degenerate", 15.0, False),  # equality 30 = 30 is already invalid
        (3, 1, 2, None, "non-degenerate", 3.0, False),  # p = 1
        (4, 3, 6, 2, "stage-II", 6.0, True),
        (2, 1, 2, None, "non-degenerate", 2.0, False),  # issue 12: the two old functions disagreed
        (3, 6, 5, None, "non-degenerate", 20.0, False),
        (4, 5, 6, None, "non-degenerate", 24.0, False),  # was marked valid; the rank gives 23.5
    ],
)
def test_quadratic_network_truth_is_the_rank(d, p, k, k_eff, regime, formula, valid):
    """ONE function: λ = rank(J)/2 at a generic teacher; the Cullen et al. formula beside it,
    valid exactly when it equals the rank (checked against an independent Jacobian here)."""
    q = quadratic_network_llc(d, p, k, K_eff=k_eff)
    numeric = jacobian_rank_llc(_quadratic_target(d, p, k, k_eff)).llc
    assert (q.regime, q.formula, q.valid) == (regime, formula, valid)
    assert q.llc == numeric
    if not valid:
        assert numeric < q.formula and "Cullen et al. formula" in q.note


def test_quadratic_network_validation():
    with pytest.raises(ValueError):
        quadratic_network_llc(0, 2, 3)
    with pytest.raises(ValueError):
        quadratic_network_llc(3, 2, 3, K_eff=4)
    # modular addition, p = 53: d = 2p, stage-II with K_eff units
    q = quadratic_network_llc(106, 53, 1024, K_eff=10)
    assert q.formula == 10 * (3 * 53 - 1) / 2 and q.llc is None and q.valid is None  # too large to check


# ============================================================================ volume scaling


def _fit_slope(eps, frac):
    return float(np.polyfit(np.log(eps), np.log(frac), 1)[0])


@pytest.mark.parametrize(("text", "llc"), [("x**2 + y**2", 1.0), ("x**4 + y**4", 0.5)])
def test_volume_scaling_exact_power_laws(text, llc):
    """In the box [-1,1]², V(ε) is exactly c·ε^λ for ε ≤ 1, so only Monte Carlo error remains."""
    vs = volume_scaling(fn(text), torch.zeros(2), num_samples=200_000, seed=1)
    assert vs.table["in_fit"].sum() >= 5
    assert 0 < vs.stderr < 0.05
    assert abs(vs.llc - llc) < 4 * vs.stderr + 1e-3, (vs.llc, vs.stderr)
    if text == "x**2 + y**2":  # V(ε) = πε/4 of the box
        rows = vs.table[vs.table["in_fit"]]
        np.testing.assert_allclose(rows["fraction"], np.pi * rows["epsilon"] / 4, rtol=0.2)


def test_volume_scaling_x2y4():
    """V(ε) = 2ε^{1/4} − ε^{1/2} exactly (fraction of [-1,1]²): compare with its slope on the fit window."""
    vs = volume_scaling(fn("x**2 * y**4"), torch.zeros(2), num_samples=200_000, seed=2)
    rows = vs.table[vs.table["in_fit"]]
    eps = rows["epsilon"].to_numpy()
    expected = _fit_slope(eps, 2 * eps**0.25 - eps**0.5)
    assert abs(expected - 0.25) < 0.01  # the window is small enough for the power law
    assert abs(vs.llc - expected) < 4 * vs.stderr + 1e-3, (vs.llc, vs.stderr, expected)
    assert abs(vs.llc - 0.25) < 0.03


def test_volume_scaling_distinguishes_the_builtins():
    slopes = [
        volume_scaling(fn(t), torch.zeros(2), num_samples=50_000).llc
        for t in ("x**2 + y**2", "x**4 + y**4", "x**2 * y**4")
    ]
    assert slopes[0] > slopes[1] > slopes[2] > 0


# ============================================================================ tempered expectation


@pytest.mark.parametrize(
    ("nbeta", "gamma"), [(1.0, 0.0), (100.0, 0.0), (1e6, 0.0), (10.0, 1.0), (50.0, 30.0)]
)
def test_tempered_quadratic_closed_form(nbeta, gamma):
    t = tempered_expectation_2d(fn("x**2 + y**2"), nbeta, gamma, num_points=401)
    assert t == pytest.approx(2 * nbeta / (2 * nbeta + gamma), rel=1e-6)


@pytest.mark.parametrize("nbeta", [1.0, 1e3, 1e6])
def test_tempered_quartic_is_one_half_without_localisation(nbeta):
    assert tempered_expectation_2d(fn("x**4 + y**4"), nbeta, 0.0, num_points=401) == pytest.approx(
        0.5, rel=1e-6
    )


def test_tempered_quartic_homogeneity():
    """Degree-k homogeneous potentials: T(nβ, γ) = T(1, γ·nβ^(−2/k))."""
    f = fn("x**4 + y**4")
    a = tempered_expectation_2d(f, 400.0, 2.0, num_points=401)
    b = tempered_expectation_2d(f, 1.0, 2.0 * 400.0 ** (-0.5), num_points=401)
    assert a == pytest.approx(b, rel=1e-6) and a < 0.5


def _x2y4_reference(nbeta: float, gamma: float) -> float:
    """Integrate x out analytically: given y, x is Gaussian with precision a = 2nβy⁴ + γ."""

    def a(y):
        return 2 * nbeta * y**4 + gamma

    num = quad(lambda y: math.exp(-gamma * y * y / 2) * a(y) ** -0.5 * nbeta * y**4 / a(y), -np.inf, np.inf)[
        0
    ]
    den = quad(lambda y: math.exp(-gamma * y * y / 2) * a(y) ** -0.5, -np.inf, np.inf)[0]
    return num / den


@pytest.mark.parametrize(("nbeta", "gamma"), [(10.0, 1.0), (1e4, 1.0), (300.0, 5.0)])
def test_tempered_x2y4_against_one_dimensional_reference(nbeta, gamma):
    t = tempered_expectation_2d(fn("x**2 * y**4"), nbeta, gamma, num_points=401)
    assert t == pytest.approx(_x2y4_reference(nbeta, gamma), abs=2e-5)


@pytest.mark.slow
def test_tempered_x2y4_scaling_and_primer_approximation():
    f = fn("x**2 * y**4")
    t1 = tempered_expectation_2d(f, 1e4, 1.0, num_points=401)
    t2 = tempered_expectation_2d(f, 8e4, 2.0, num_points=401)  # same nβ/γ³
    assert t1 == pytest.approx(t2, abs=1e-5)
    assert t1 == pytest.approx(0.25 - 0.142 * (1 / 1e4) ** 0.25, abs=2e-3)
    assert (
        0.24 - 1e-3 < tempered_expectation_2d(f, 4e4, 1.0, num_points=401) < 0.25
    )  # within ~0.01 of 1/4 at nβ = 4·10⁴


def test_tempered_refuses_improper_densities():
    with pytest.raises(ValueError, match="normalisable"):
        tempered_expectation_2d(fn("x**2 * y**4"), 100.0, 0.0)
    with pytest.raises(ValueError):
        tempered_expectation_2d(fn("x**2 + y**2"), 0.0, 1.0)
    with pytest.raises(ValueError, match="2 variables"):
        tempered_expectation_2d(fn("w1**2 + w2**2 + w3**2"), 10.0, 1.0)


def test_tempered_refuses_nbeta_beyond_resolution():
    """At the largest accepted nβ the result is still right (T = 2nβ/(2nβ+γ) for x² + y²);
    beyond it (where 10³⁰⁰ used to give 0) the call refuses instead of answering wrongly."""
    t = tempered_expectation_2d(fn("x**2 + y**2"), MAX_QUADRATURE_NBETA, 1.0, num_points=401)
    assert t == pytest.approx(1.0, abs=1e-9)
    for nbeta in (10 * MAX_QUADRATURE_NBETA, 1e300):
        with pytest.raises(ValueError, match="beyond what the quadrature resolves"):
            tempered_expectation_2d(fn("x**2 + y**2"), nbeta, 1.0)


def test_tempered_off_origin_centre():
    t = tempered_expectation_2d(
        fn("(x - 1)**2 + (y + 2)**2 + 5"), 10.0, 1.0, num_points=401, w_star=[1.0, -2.0]
    )
    assert t == pytest.approx(20 / 21, rel=1e-6)


def _brute_force_2d(points: list[tuple[int, int]]) -> float:
    """Newton distance in 2-D without an LP: best single point or two-point segment on the diagonal."""
    best = min(max(p) for p in points)
    for (a1, a2), (b1, b2) in product(points, repeat=2):
        denom = (a2 - a1) - (b2 - b1)
        if denom == 0:
            continue
        s = (a2 - a1) / denom
        if 0 <= s <= 1:
            best = min(best, a1 + s * (b1 - a1))
    return best


def test_newton_random_2d_supports_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(60):
        k = int(rng.integers(1, 6))
        pts = {tuple(int(e) for e in rng.integers(0, 9, size=2)) for _ in range(k)} - {(0, 0)}
        if not pts:
            continue
        r = newton_polyhedron_llc({p: float(rng.uniform(0.5, 2.0)) for p in pts})
        t = _brute_force_2d(sorted(pts))
        assert r.t == pytest.approx(t, abs=1e-9), pts
        at_vertex = any(v[0] == v[1] and abs(v[0] - t) < 1e-9 for v in r.vertices)
        assert r.multiplicity == (2 if at_vertex else 1), pts
