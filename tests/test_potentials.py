"""Built-in and user potentials as Targets: registry, theory values, notes and warnings."""

from __future__ import annotations

import pytest
import torch

from lltools.targets.base import FunctionTarget
from lltools.targets.expressions import CompiledExpression, ExpressionError
from lltools.targets.potentials import ALIASES, BUILTIN_POTENTIALS, find_builtin, potential_target
from lltools.theory.closed_forms import monomial_llc
from lltools.theory.newton import newton_polyhedron_llc
from lltools.theory.record import theory_for


@pytest.mark.parametrize(
    ("spec", "name", "llc", "m", "needs_gamma"),
    [
        ("x**2 + y**2", "x**2 + y**2", 1.0, 1, False),
        ("quadratic", "x**2 + y**2", 1.0, 1, False),
        ("x**4+y**4", "x**4 + y**4", 0.5, 1, False),
        ("quartic", "x**4 + y**4", 0.5, 1, False),
        ("x**2 * y**4", "x**2 * y**4", 0.25, 1, True),
        ("X2Y4", "x**2 * y**4", 0.25, 1, True),
        ("  x**2*y**4 ", "x**2 * y**4", 0.25, 1, True),
    ],
)
def test_builtins_and_aliases(spec, name, llc, m, needs_gamma):
    t = potential_target(spec)
    assert isinstance(t, FunctionTarget)
    rec = theory_for(t)
    assert t.name == name and rec.llc == llc and rec.multiplicity == m and rec.exact
    assert t.needs_gamma is needs_gamma and t.builtin is BUILTIN_POTENTIALS[name]
    assert rec.note.startswith("exact")
    assert t.warnings == [] and t.n is None and t.dim == 2
    assert torch.equal(t.w_star, torch.zeros(2))


def test_registry_values_agree_with_the_theory_module():
    for p in BUILTIN_POTENTIALS.values():
        nr = newton_polyhedron_llc(potential_target(p.expression).expression.polynomial)
        assert (nr.llc, nr.multiplicity, nr.exact) == (p.llc, p.multiplicity, True)
        assert p.description and p.aliases
    assert monomial_llc((2, 4)) == (0.25, 1)
    assert set(ALIASES) == {"quadratic", "quartic", "x2y4"}
    assert find_builtin("x**2 + y**3") is None


def test_losses_and_gradients():
    t = potential_target("x2y4", dtype=torch.float64)
    w = torch.tensor([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]], dtype=torch.float64)
    loss, grad = t.loss_and_grad(w)
    x, y = w[:, 0], w[:, 1]
    torch.testing.assert_close(loss, x**2 * y**4)
    torch.testing.assert_close(grad, torch.stack((2 * x * y**4, 4 * x**2 * y**3), dim=1))
    assert t.w_star.dtype == torch.float64
    assert potential_target("quadratic").loss(torch.ones(4, 2)).dtype == torch.float32


@pytest.mark.parametrize(
    ("spec", "llc", "m", "note"),
    [
        ("x**2 + y**4", 0.75, 1, "exact: the coordinates are adapted"),
        ("x**2*y**2", 0.5, 2, "exact"),
        ("w1**2 + w2**4 + w3**6", 11 / 12, 1, "exact"),
        ("(x - y)**2", 0.5, 1, "exact: adapted coordinates after y → y + x"),
        ("x**2 + 0.5*y**2 + x*y", 1.0, 1, "exact"),
        ("7", 0.0, 1, "constant"),
        ("3 + x**2 + y**2", 1.0, 1, "exact"),  # the constant f(w*) is subtracted
    ],
)
def test_user_polynomials_get_newton_values(spec, llc, m, note):
    t = potential_target(spec)
    rec = theory_for(t)
    assert rec.llc == pytest.approx(llc) and rec.multiplicity == m and rec.exact
    assert note in rec.note
    assert t.warnings == [] and t.builtin is None and t.name == spec
    assert isinstance(t.expression, CompiledExpression)


@pytest.mark.parametrize(
    ("spec", "llc"), [("sin(x)**2 + y**2", 1.0), ("exp(x**2) - 1 + y**2", 1.0), ("abs(x) + abs(y)", None),
                      ("sqrt(x**2 + y**2)", None)]
)
def test_non_polynomials_by_taylor_polynomial_or_unknown(spec, llc):
    """Analytic at 0: the Taylor polynomial decides (sin²x + y² → x² + y², λ = 1); abs and a
    cone are not analytic at 0, so λ is "unknown" (never a wrong number)."""
    t = potential_target(spec)
    rec = theory_for(t)
    if llc is None:
        assert rec.llc is None and not rec.exact and "not analytic" in rec.note
    else:
        assert rec.llc == llc and rec.exact and "Taylor polynomial" in rec.method
    assert t.warnings == []  # all have a minimum at 0 (sqrt has an infinite gradient there)


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ("x + y**2", "gradient"),
        ("x**2 - y**2", "f(x=0, y=0.1) = -0.01"),
        ("x**3 + y**2", "f(x=-0.1"),
        ("x**2 + 3*x*y + y**2", "< f(w*) = 0"),  # indefinite: only a random direction finds it
        ("cos(x) + y**2", "< f(w*) = 1"),
        ("x**4 - x**2 + y**2", "< f(w*)"),
    ],
)
def test_not_a_local_minimum_warnings(spec, detail):
    t = potential_target(spec)
    assert len(t.warnings) == 1
    assert t.warnings[0].startswith("w* is not a local minimum: ")
    assert detail in t.warnings[0]
    rec = theory_for(t)
    assert rec.llc is None and not rec.exact and "not defined" in rec.note


def test_tiny_perturbations_are_not_flagged():
    assert potential_target("x**2 + y**2 + 1e-12*x").warnings == []


@pytest.mark.parametrize("spec", ["log(x)", "1/x", "x**-2 + y**2", "log(abs(x)) + y**2"])
def test_non_finite_at_w_star_is_refused(spec):
    with pytest.raises(ExpressionError, match="at w\\* = 0"):
        potential_target(spec)


@pytest.mark.parametrize("spec", ["import os", "x.__class__", "x**999999", "z**2"])
def test_parser_errors_pass_through(spec):
    with pytest.raises(ExpressionError):
        potential_target(spec)


def test_w_family_dimension():
    t = potential_target("w1**2 + w5**2")
    assert t.dim == 5 and theory_for(t).llc == 1.0  # w2..w4 are free: λ counts only w1 and w5
