"""One theory record for every target: λ, its multiplicity, whether it is exact, how, and why.

:func:`theory_for` is the single entry point used by the workflows, the CLI and the
dashboard.  A target carries only what it *is* (an expression, a built-in's registry entry,
a deep-linear teacher's widths, a model card); the value of λ is computed here, under a
work budget: past it the answer is "degeneracy not checked" / unknown, never a hang.

========================  ==============================================  ======
target                    method                                          exact
========================  ==============================================  ======
built-in potential        closed form (primer §4)                         yes
polynomial in x, y        Newton polygon in adapted coordinates           yes, or unknown
analytic in x, y          Taylor polynomial + the same                    yes, or unknown
polynomial, d ≥ 3         Newton polyhedron (non-degeneracy checked)      when proven
deep linear teacher       Aoyagi (2024)                                   yes
model card                the card's stated value                         no
========================  ==============================================  ======
"""

from __future__ import annotations

import contextlib
import functools
import time
import weakref
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from lltools.targets.expressions import CompiledExpression
from lltools.theory.closed_forms import deep_linear_llc
from lltools.theory.networks import quadratic_network_llc
from lltools.theory.newton import newton_polyhedron_llc
from lltools.theory.puiseux import PlaneResult, plane_llc
from lltools.theory.quadrature import TemperedExpectation, tempered_expectation
from lltools.theory.series import NotExpandable, is_polynomial_tree, taylor_polynomial

__all__ = [
    "DEFAULT_BUDGET_S",
    "TheoryRecord",
    "card_theory",
    "expression_theory",
    "finite_nbeta_target",
    "plane_result",
    "theory_for",
]

DEFAULT_BUDGET_S = 3.0
"""Seconds of work allowed for one λ (past it: "degeneracy not checked", unknown)."""

_TAYLOR_DEGREES = (8, 12, 16, 24)
_NOT_MINIMUM = ("not a local minimum", "undefined near w*")


@dataclass(frozen=True)
class TheoryRecord:
    """What theory says about λ at w*.

    Attributes
    ----------
    llc : float or None
        λ, or ``None`` when unknown (or undefined: w* is not a minimum).
    multiplicity : int or None
        m, the power of log in V(ε) ∝ ε^λ (−log ε)^(m−1), when known.
    exact : bool
        ``True`` only when ``llc`` (and ``multiplicity``) are proven.
    method : str
        How the value was obtained (e.g. "Newton polygon, adapted coordinates").
    note : str
        A plain-language statement of the above, with the caveat when not exact.
    """

    llc: float | None
    multiplicity: int | None
    exact: bool
    method: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        """``{llc, multiplicity, exact, method, note}`` (JSON-ready)."""
        return asdict(self)

    @property
    def label(self) -> str:
        """What to call the value beside λ̂: "exact λ" only when it is exact (e.g. "exact λ (Aoyagi)"),
        else the method's name (e.g. "Cullen et al. formula") or "theory λ (not exact)"."""
        if self.exact:
            return _EXACT_LABELS.get(self.method, "exact λ")
        return _INEXACT_LABELS.get(self.method, "theory λ (not exact)")

    @property
    def caveat(self) -> str | None:
        """The one-line caveat to print beside λ when it is not exact (``None`` when exact)."""
        return None if self.exact else self.note


_EXACT_LABELS = {"Aoyagi (2024)": "exact λ (Aoyagi)"}
_INEXACT_LABELS = {
    "Cullen et al. formula": "Cullen et al. formula",
    "model card": "paper λ (not exact)",
    "no closed form": "closed-form λ",
}


def _unknown(note: str, method: str = "none") -> TheoryRecord:
    return TheoryRecord(None, None, False, method, note)


# ---------------------------------------------------------------------------- expressions
def plane_result(compiled: CompiledExpression, *, budget_s: float = DEFAULT_BUDGET_S) -> PlaneResult | None:
    """The adapted-coordinates computation for an expression in two variables (steps included).

    ``None`` when the expression has no exact Taylor polynomial at 0 (then see
    :func:`expression_theory` for the reason).
    """
    return _plane_within(compiled, budget_s)[1]


@functools.lru_cache(maxsize=256)
def _plane_within(compiled: CompiledExpression, budget_s: float) -> tuple[TheoryRecord, PlaneResult | None]:
    """:func:`_plane` memoised per expression (text, variables) and budget: pages and the CLI
    ask for λ, T and the drawing of the same expression; a spent budget is not spent twice."""
    return _plane(compiled, time.monotonic() + budget_s)


def finite_nbeta_target(
    compiled: CompiledExpression, nbeta: float, gamma: float, *, budget_s: float = DEFAULT_BUDGET_S
) -> TemperedExpectation:
    """T(nβ, γ) of a 2-D expression at w* = 0, integrated in the adapted coordinates of
    :func:`plane_result` when it found Jacobian-1 changes (a curved valley becomes straight).

    The one function behind ``expected_llc`` in the CLI/JSON and T on every dashboard page.

    Raises
    ------
    ValueError
        As :func:`lltools.theory.quadrature.tempered_expectation`.
    """
    result = plane_result(compiled, budget_s=budget_s) if compiled.dim == 2 else None
    shifts = [s.shift for s in result.steps if s.shift is not None] if result is not None else []
    usable = [(swap, q, float(r)) for swap, q, r in shifts] if len(shifts) <= 3 else []
    return tempered_expectation(compiled.fn, nbeta, gamma, shifts=usable)


def _plane(compiled: CompiledExpression, deadline: float) -> tuple[TheoryRecord, PlaneResult | None]:
    node = compiled.node
    if node is None:  # pragma: no cover - every parsed expression carries its tree
        return _unknown("no expression tree"), None
    if is_polynomial_tree(node):
        try:
            tp = taylor_polynomial(node, compiled.dim, None, deadline=deadline)
        except NotExpandable as exc:
            return _unknown(f"unknown: degeneracy not checked ({exc})", "Newton polygon"), None
        terms = {k: v for k, v in tp.terms.items() if any(k)}
        if not terms:
            return TheoryRecord(0.0, 1, True, "constant", "exact: a constant potential — λ = 0"), None
        result = plane_llc(terms, deadline=deadline)  # type: ignore[arg-type]
        return _from_plane(result), result
    last: tuple[TheoryRecord, PlaneResult | None] = (_unknown("unknown"), None)
    for degree in _TAYLOR_DEGREES:
        try:
            tp = taylor_polynomial(node, compiled.dim, degree, deadline=deadline)
        except NotExpandable as exc:
            return _unknown(f"unknown: no exact Taylor polynomial at w* ({exc})", "Taylor polynomial"), None
        terms = {k: v for k, v in tp.terms.items() if any(k)}
        if not terms:
            continue
        result = plane_llc(terms, known_degree=degree, deadline=deadline)  # type: ignore[arg-type]
        last = (_from_plane(result), result)
        if result.exact or "does not determine" not in result.note:
            return last
    return last


def _from_plane(result: PlaneResult) -> TheoryRecord:
    if result.llc is None:
        return _unknown(result.note, result.method)
    return TheoryRecord(float(result.llc), result.multiplicity, result.exact, result.method, result.note)


def expression_theory(
    compiled: CompiledExpression, *, warnings: list[str] | None = None, budget_s: float = DEFAULT_BUDGET_S
) -> TheoryRecord:
    """λ at w* = 0 of a parsed expression (see the module table), within ``budget_s`` seconds.

    ``warnings`` are the target's domain warnings (:func:`lltools.targets.potentials.domain_warnings`):
    when w* is not a minimum, or L is undefined near it, λ is not defined.
    """
    for w in warnings or []:
        if any(flag in w for flag in _NOT_MINIMUM):
            return _unknown(f"λ is not defined: {w}")
    deadline = time.monotonic() + budget_s
    if compiled.dim == 1:
        return _one_variable(compiled, deadline)
    if compiled.dim == 2:
        return _plane_within(compiled, budget_s)[0]
    node = compiled.node
    if node is None or not is_polynomial_tree(node):
        return _unknown(
            "unknown: not a polynomial, and exact λ is implemented for non-polynomials only in 2 variables"
        )
    try:
        tp = taylor_polynomial(node, compiled.dim, None, deadline=deadline)
    except NotExpandable as exc:
        return _unknown(f"unknown: degeneracy not checked ({exc})", "Newton polyhedron")
    terms = {k: float(v) for k, v in tp.terms.items() if any(k)}
    if not terms:
        return TheoryRecord(0.0, 1, True, "constant", "exact: a constant potential — λ = 0")
    res = newton_polyhedron_llc(terms, deadline=deadline)
    if res.exact is True:
        return TheoryRecord(
            res.llc, res.multiplicity, True, "Newton polyhedron", "exact: " + _strip(res.note)
        )
    if res.exact is False:
        return _unknown(f"unknown: {res.note}; λ ≤ 1/t = {res.llc:.6g}", "Newton polyhedron")
    return TheoryRecord(
        res.llc,
        res.multiplicity,
        False,
        "Newton polyhedron",
        f"not exact: {res.note} — λ = 1/t only if the polynomial is non-degenerate (in general λ ≤ 1/t)",
    )


def _strip(note: str) -> str:
    return note.removeprefix("exact: ")


def _one_variable(compiled: CompiledExpression, deadline: float) -> TheoryRecord:
    node = compiled.node
    assert node is not None
    degree = None if is_polynomial_tree(node) else 24
    try:
        tp = taylor_polynomial(node, 1, degree, deadline=deadline)
    except NotExpandable as exc:
        return _unknown(f"unknown: no exact Taylor polynomial at w* ({exc})", "Taylor polynomial")
    orders = sorted(k[0] for k in tp.terms if k[0] > 0)
    if not orders:
        if degree is None:
            return TheoryRecord(0.0, 1, True, "constant", "exact: a constant potential — λ = 0")
        return _unknown(f"unknown: flat to order {degree} at w*", "Taylor polynomial")
    k = orders[0]
    return TheoryRecord(
        float(Fraction(1, k)),
        1,
        True,
        "lowest order",
        f"exact: the lowest power at w* is w^{k}, so λ = 1/{k}",
    )


# ---------------------------------------------------------------------------- any target
_CACHE: weakref.WeakKeyDictionary[Any, TheoryRecord] = weakref.WeakKeyDictionary()


def theory_for(target: Any, *, budget_s: float = DEFAULT_BUDGET_S) -> TheoryRecord:
    """The theory record of a target (cached per target object).

    Dispatch: a built-in potential's registry entry; a user expression (``target.expression``);
    a deep-linear teacher (``target.deep_linear = (widths, rank, bias)``); else the value a
    model card states (``target.theory_llc``, not exact); else unknown.
    """
    try:
        cached = _CACHE.get(target)
    except TypeError:
        cached = None
    if cached is not None:
        return cached
    record = _compute(target, budget_s)
    with contextlib.suppress(TypeError):
        _CACHE[target] = record
    return record


def _compute(target: Any, budget_s: float) -> TheoryRecord:
    builtin = getattr(target, "builtin", None)
    expression = getattr(target, "expression", None)
    warnings = list(getattr(target, "warnings", []) or [])
    if builtin is not None:
        return TheoryRecord(
            float(builtin.llc),
            int(builtin.multiplicity),
            True,
            "closed form",
            "exact: closed form (primer §4)",
        )
    if isinstance(expression, CompiledExpression):
        return expression_theory(expression, warnings=warnings, budget_s=budget_s)
    deep = getattr(target, "deep_linear", None)
    if deep is not None:
        widths, rank, bias = deep
        try:
            lam, theta = deep_linear_llc(list(widths), int(rank), bias=bool(bias))
        except ValueError as exc:
            return _unknown(f"unknown: {exc}", "Aoyagi (2024)")
        return TheoryRecord(
            lam, theta, True, "Aoyagi (2024)", "exact: deep linear network at a rank-r teacher"
        )
    stated = getattr(target, "theory_llc", None)
    card = getattr(target, "card", None)
    source = str(((card or {}).get("theory") or {}).get("source") or "") if isinstance(card, dict) else ""
    if stated is not None and source:
        short = source if len(source) <= 160 else source[:157] + "…"
        return TheoryRecord(float(stated), None, False, "model card", f"stated by the model card: {short}")
    if stated is not None:
        return TheoryRecord(
            float(stated), None, False, "model card", "stated by the model card (not derived by lltools)"
        )
    return _unknown("no closed form for this target (compare with rank(J)/2 or volume scaling)")


# ---------------------------------------------------------------------------- model cards
def card_theory(card: dict[str, Any], checkpoint: str | None = None) -> TheoryRecord:
    """The closed form (primer §4) that applies to a sample model's card, at a checkpoint.

    Parameters
    ----------
    card : dict
        The model card (``model.json``): ``architecture.kind`` selects the closed form —
        ``deep_linear`` (Aoyagi, exact at a rank-r teacher), ``quadratic`` (the Cullen et al.
        formula, a reference checked against rank(J)/2, never exact); anything else has none.
    checkpoint : str, optional
        The checkpoint's file name (a ``teacher`` file is the true parameter itself): it only
        changes the note's wording.
    """
    arch = card.get("architecture") or {}
    arch = arch if isinstance(arch, dict) else {}
    kind = arch.get("kind")
    stated = card.get("theory") or {}
    stated = stated if isinstance(stated, dict) else {}
    source = str(stated.get("source") or "")
    teacher = checkpoint is not None and "teacher" in str(checkpoint).rsplit("/", 1)[-1]
    if kind == "deep_linear":
        value = stated.get("llc")
        data = card.get("data") or {}
        data = data if isinstance(data, dict) else {}
        if value is None and "rank" in data:
            try:
                value, _ = deep_linear_llc(arch["widths"], int(data["rank"]), bool(arch.get("bias")))
            except (ValueError, KeyError, TypeError):
                value = None
        where = (
            "This is the LLC at the teacher w* you selected (every layer of rank r)."
            if teacher
            else "It is the LLC at the teacher w* (every layer of rank r). A trained student is near a true "
            "parameter only once its loss is ≈ 0; early checkpoints are not minima, and the LLC can be "
            "larger at other true parameters."
            if checkpoint is not None
            else "It is the LLC at a teacher whose every layer has rank r."
        )
        widths = "-".join(str(w) for w in arch.get("widths", []))
        note = (
            f"Aoyagi (2024) closed form for the deep linear network {widths} with true rank "
            f"r = {data.get('rank', '?')}. {where}"
        )
        llc = None if value is None else float(value)
        return TheoryRecord(llc, None, llc is not None, "Aoyagi (2024)", note)
    if kind == "quadratic":
        try:
            q = quadratic_network_llc(int(arch["d"]), int(arch["p"]), int(arch["width"]))
        except (KeyError, ValueError, TypeError):
            return TheoryRecord(None, None, False, "Cullen et al. formula", source)
        validity = {True: "it agrees with rank(J)/2", False: "it does NOT agree with rank(J)/2",
                    None: "not checked against rank(J)/2"}[q.valid]
        note = f"Cullen et al. (2026) formula, {q.regime} regime ({validity} at a generic teacher): "
        note += f"{q.note}. " + (source if source else "")
        return TheoryRecord(float(q.formula), None, False, "Cullen et al. formula", note)
    return TheoryRecord(
        None,
        None,
        False,
        "no closed form",
        "No closed form is known for this architecture: compare λ̂ with d/2 and rank(J)/2.",
    )
