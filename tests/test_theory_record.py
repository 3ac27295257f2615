"""One theory record everywhere: JSON, CLI summary, work budget, shared domain checks (issue 12, 14)."""

from __future__ import annotations

import itertools
import json
import time
from types import SimpleNamespace

import pytest
from test_cli import run_cli

from lltools.cli.output import theory_lines
from lltools.targets.expressions import parse_expression
from lltools.targets.potentials import domain_warnings, potential_target
from lltools.theory.record import TheoryRecord, card_theory, theory_for

SMALL = ("--chains", "2", "--draws", "50", "--burnin", "10", "--json", "--no-progress", "--device", "cpu")


def test_json_carries_the_record_and_the_quadrature_error():
    """(x + y)⁴: λ = 1/4 exactly (y → y − x gives y⁴); the old code said 1/2 "exact"."""
    out = json.loads(run_cli("estimate", "--potential", "(x + y)**4", "--nbeta", "100", *SMALL).stdout)
    assert out["theory_llc"] == 0.25
    assert out["theory"] == {
        "llc": 0.25,
        "multiplicity": 1,
        "exact": True,
        "method": "Newton polygon, adapted coordinates",
        "note": out["theory"]["note"],
    }
    assert "y → y − x" in out["theory"]["note"]
    assert out["expected_llc"] is not None and 0 <= out["expected_llc_error"] <= 1e-6 * out["expected_llc"]


def test_json_for_a_degenerate_valley_is_right_not_a_caveated_wrong_number():
    """(x − y)²: issue 12 saw theory_llc = 1.0 in the JSON; the truth is 1/2, and T at nβ = 1000,
    γ = 1 is 2000/4001 (rank-one quadratic)."""
    out = json.loads(run_cli("estimate", "--potential", "(x - y)**2", "--nbeta", "1000", *SMALL).stdout)
    assert out["theory_llc"] == 0.5 and out["theory"]["exact"]
    assert out["expected_llc"] == pytest.approx(2000 / 4001, rel=1e-8)


def test_summary_prints_the_caveat_when_not_exact():
    base = {"expected_llc": None, "expected_llc_error": None, "theory_llc": None}
    exact = SimpleNamespace(theory=TheoryRecord(0.25, 1, True, "Newton polygon", "exact: …"), **base)
    assert "exact, m = 1; Newton polygon" in theory_lines(exact)[0]
    stated = SimpleNamespace(
        theory=TheoryRecord(1.5, None, False, "model card", "stated by the model card"), **base
    )
    assert theory_lines(stated) == ["theory λ    1.5000   (NOT exact: stated by the model card)"]
    unknown = SimpleNamespace(
        theory=TheoryRecord(None, None, False, "Taylor polynomial", "unknown: why"), **base
    )
    assert theory_lines(unknown) == ["theory λ    unknown   (unknown: why)"]
    approx = SimpleNamespace(theory=None, theory_llc=None, expected_llc=0.4, expected_llc_error=0.01)
    (line,) = theory_lines(approx)
    assert line.startswith("approx. T   0.4000 ± 0.01") and "APPROXIMATE" in line
    precise = SimpleNamespace(theory=None, theory_llc=None, expected_llc=0.4, expected_llc_error=1e-9)
    assert theory_lines(precise)[0].startswith("exact T     0.400000")


def test_cli_summary_says_unknown_for_a_non_polynomial_branch():
    proc = run_cli(
        "estimate",
        "--potential",
        "(y - sin(x))**2",
        "--chains",
        "2",
        "--draws",
        "50",
        "--burnin",
        "10",
        "--no-progress",
        "--device",
        "cpu",
    )
    assert proc.returncode == 0, proc.stderr
    assert "theory λ    unknown" in proc.stdout


def test_work_budget_stops_a_cpu_bomb():
    """Issue 14 item 3: (w1² + … + w6²)² + Σ_{i<j} 0.01·w_i³·w_j took 47 s in the degeneracy
    search; now the budget (here 1 s) stops it: "degeneracy not checked", not exact."""
    text = (
        "("
        + "+".join(f"w{i}**2" for i in range(1, 7))
        + ")**2 + "
        + " + ".join(f"0.01*w{i}**3*w{j}" for i, j in itertools.combinations(range(1, 7), 2))
    )
    target = potential_target(text)
    start = time.monotonic()
    record = theory_for(target, budget_s=1.0)
    assert time.monotonic() - start < 4.0
    assert not record.exact and "not checked" in record.note


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("x**0.5 + y**2", "L is undefined near w*"),
        ("sqrt(x) + y**2", "L is undefined near w*"),
        ("log(1 + x) - x + y**2", "w* is not a local minimum"),  # −x²/2 + …
        ("x**3 + y**3", "w* is not a local minimum"),
    ],
)
def test_domain_checks_are_shared(text, flag):
    """One function for the CLI, Toy and Learn: the CLI warns before sampling, the record says
    λ is not defined, and Learn → Newton refuses (issue 12 saw "λ = 0.667, exact? yes")."""
    (warning,) = domain_warnings(parse_expression(text))
    assert warning.startswith(flag)
    record = theory_for(potential_target(text))
    assert record.llc is None and "not defined" in record.note
    from dashboard.views.learn import newton_view

    with pytest.raises(ValueError, match=flag.replace("*", r"\*")):
        newton_view(text)
    proc = run_cli("estimate", "--potential", text, *SMALL)
    assert f"warning: {flag}" in proc.stderr


def test_learn_newton_view_shows_each_coordinate_change():
    from dashboard.views.learn import newton_view

    view = newton_view("(y - x**2)**2 + x**6")
    assert [s.change for s in view.steps] == ["y → y + x^2", ""]
    assert view.llc == pytest.approx(2 / 3) and view.exact and view.t == 1.5


# ---------------------------------------------------------------------------- model cards (issue 11)
def test_card_theory_deep_linear_is_exact_aoyagi():
    card = {"architecture": {"kind": "deep_linear", "widths": [8, 6, 6, 4]}, "data": {"rank": 2}}
    record = card_theory(card, "checkpoints/teacher.safetensors")
    assert record.llc == 13.5 and record.exact and record.label == "exact λ (Aoyagi)"
    assert "teacher w* you selected" in record.note


def test_card_theory_quadratic_is_a_reference_never_exact():
    arch = {"kind": "quadratic", "d": 46, "width": 64, "p": 23}
    card = {"architecture": arch, "theory": {"source": "paper"}}
    record = card_theory(card, "checkpoints/step_06000.safetensors")
    assert record.llc == 2176.0 and not record.exact
    assert record.label == "Cullen et al. formula" and not record.label.startswith("exact")


def test_card_theory_unknown_architecture_and_hostile_cards():
    for card in [{"architecture": {"kind": "mlp"}}, {"architecture": ["x"]}, {},
                 {"architecture": {"kind": "quadratic", "d": "x"}},
                 {"architecture": {"kind": "deep_linear", "widths": "ab"}, "data": {"rank": 2}}]:
        record = card_theory(card)
        assert record.llc is None and not record.exact and not record.label.startswith("exact")


def test_label_says_exact_only_when_exact():
    assert TheoryRecord(0.5, 1, True, "closed form", "").label == "exact λ"
    assert TheoryRecord(0.5, 1, False, "Newton polyhedron", "").label == "theory λ (not exact)"
    assert TheoryRecord(2176.0, None, False, "model card", "").label == "paper λ (not exact)"
