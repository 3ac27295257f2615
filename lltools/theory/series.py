"""Exact Taylor polynomials at w* = 0 of a parsed expression, in rational arithmetic.

Built from the parser's own tree (:mod:`lltools.targets.expressions`), never from user text.
Constants become fractions: a float written by the user is taken as the decimal it prints as
(``0.1`` → 1/10), and a folded constant such as ``1/3`` is snapped to the small rational it
rounds from.  Functions are expanded by their Maclaurin series where the expansion point
gives rational coefficients (sin, cos, tan, tanh, exp at 0; log at 1; sqrt and fractional
powers at a rational perfect power); anything else raises :class:`NotExpandable`, and
``abs``/``sqrt``/fractional powers at 0 raise it too (not analytic there).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from lltools.targets import expressions as ex

__all__ = ["NotExpandable", "TaylorPolynomial", "as_fraction", "is_polynomial_tree", "taylor_polynomial"]

Terms = dict[tuple[int, ...], Fraction]


class NotExpandable(ValueError):
    """The expression has no exact rational Taylor polynomial at 0 (or it is too big)."""


@dataclass(frozen=True)
class TaylorPolynomial:
    """Σ c_α w^α with exact coefficients.

    Attributes
    ----------
    terms : dict
        ``{exponent tuple: Fraction}``, zero coefficients dropped, constant term included.
    degree : int or None
        The terms are exact up to this total degree (higher ones are unknown); ``None`` when
        ``terms`` is the whole function (a polynomial).
    """

    terms: Terms
    degree: int | None


def as_fraction(value: float) -> Fraction:
    """A float as the rational it most plausibly stands for (decimal, or a small fraction)."""
    if not math.isfinite(value):
        raise NotExpandable(f"constant {value} is not finite")
    decimal = Fraction(repr(float(value)))
    small = Fraction(value).limit_denominator(10**6)
    if small != decimal and abs(float(small) - value) <= 4 * math.ulp(value):
        return small
    return decimal


def is_polynomial_tree(node: ex.Node) -> bool:
    """Whether the tree is a polynomial (divisions only by constants, powers by integers ≥ 0)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ex.Call):
            return False
        if isinstance(n, ex.Pow):
            e = n.exponent
            if not (isinstance(e, ex.Const) and e.value >= 0 and float(e.value).is_integer()):
                return False
            stack.append(n.base)
        elif isinstance(n, ex.Prod):
            for div, f in n.factors:
                if div and not isinstance(f, ex.Const):
                    return False
                stack.append(f)
        elif isinstance(n, ex.Sum):
            stack.extend(t for _, t in n.terms)
        elif isinstance(n, ex.Neg):
            stack.append(n.operand)
    return True


def taylor_polynomial(
    node: ex.Node, dim: int, degree: int | None, *, deadline: float | None = None, max_terms: int = 20_000
) -> TaylorPolynomial:
    """The Taylor polynomial of ``node`` at 0 up to total degree ``degree`` (``None``: all of it).

    Raises
    ------
    NotExpandable
        When no exact expansion exists (see the module notes), when ``degree`` is ``None``
        but the tree is not a polynomial, or past ``max_terms`` terms or the ``deadline``.
    """
    if degree is None and not is_polynomial_tree(node):
        raise NotExpandable("not a polynomial")
    builder = _Builder(dim, degree, deadline, max_terms)
    terms = builder.build(node)
    return TaylorPolynomial({k: v for k, v in terms.items() if v != 0}, degree)


class _Builder:
    def __init__(self, dim: int, degree: int | None, deadline: float | None, max_terms: int) -> None:
        self.dim, self.degree, self.deadline, self.max_terms = dim, degree, deadline, max_terms
        self.zero = (0,) * dim

    # -- arithmetic on truncated series
    def const(self, c: Fraction) -> Terms:
        return {self.zero: c} if c else {}

    def add(self, a: Terms, b: Terms, sign: int = 1) -> Terms:
        out = dict(a)
        for k, v in b.items():
            out[k] = out.get(k, Fraction(0)) + sign * v
        return {k: v for k, v in out.items() if v}

    def mul(self, a: Terms, b: Terms) -> Terms:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise NotExpandable("work budget spent")
        if len(a) * len(b) > 50 * self.max_terms:
            raise NotExpandable("expansion too large")
        out: Terms = {}
        cap = self.degree
        for ka, va in a.items():
            da = sum(ka)
            for kb, vb in b.items():
                if cap is not None and da + sum(kb) > cap:
                    continue
                k = tuple(x + y for x, y in zip(ka, kb, strict=True))
                out[k] = out.get(k, Fraction(0)) + va * vb
        if len(out) > self.max_terms:
            raise NotExpandable("expansion too large")
        return {k: v for k, v in out.items() if v}

    def power(self, a: Terms, n: int) -> Terms:
        result, square = self.const(Fraction(1)), a
        while n:
            if n & 1:
                result = self.mul(result, square)
            n >>= 1
            if n:
                square = self.mul(square, square)
        return result

    def compose(self, coeffs: list[Fraction], h: Terms) -> Terms:
        """Σ_k coeffs[k]·h^k for h without a constant term (truncated)."""
        if self.degree is None:
            raise NotExpandable("an infinite series needs a truncation degree")
        out: Terms = {}
        hk = self.const(Fraction(1))
        for k, c in enumerate(coeffs):
            if k > 0:
                hk = self.mul(hk, h)
                if not hk:
                    break
            if c:
                out = self.add(out, {m: c * v for m, v in hk.items()})
        return out

    def split(self, a: Terms) -> tuple[Fraction, Terms]:
        c0 = a.get(self.zero, Fraction(0))
        return c0, {k: v for k, v in a.items() if k != self.zero}

    def real_power(self, a: Terms, p: Fraction) -> Terms:
        """a^p for rational p via the binomial series at a rational perfect power a(0) > 0."""
        c0, h = self.split(a)
        if c0 <= 0:
            raise NotExpandable(
                "a fractional or negative power of something that vanishes at w* is not analytic"
            )
        base = _rational_power(c0, p)
        if not h:
            return self.const(base)
        n = (self.degree or 0) + 1
        coeffs, b = [], Fraction(1)
        for k in range(n):
            coeffs.append(b / c0**k)
            b = b * (p - k) / (k + 1)
        return {k: base * v for k, v in self.compose(coeffs, h).items()}

    # -- the walk
    def build(self, node: ex.Node) -> Terms:
        if isinstance(node, ex.Const):
            return self.const(as_fraction(node.value))
        if isinstance(node, ex.Var):
            k = [0] * self.dim
            k[node.index] = 1
            return {tuple(k): Fraction(1)}
        if isinstance(node, ex.Neg):
            return {k: -v for k, v in self.build(node.operand).items()}
        if isinstance(node, ex.Sum):
            out = self.const(as_fraction(node.const))
            for neg, term in node.terms:
                out = self.add(out, self.build(term), -1 if neg else 1)
            return out
        if isinstance(node, ex.Prod):
            acc = self.const(as_fraction(node.const))
            for div, factor in node.factors:
                f = self.build(factor)
                acc = self.mul(acc, self.real_power(f, Fraction(-1)) if div else f)
            return acc
        if isinstance(node, ex.Pow):
            if not isinstance(node.exponent, ex.Const):
                raise NotExpandable("a power with a variable exponent")
            e = as_fraction(node.exponent.value)
            base = self.build(node.base)
            if e.denominator == 1 and e >= 0:
                return self.power(base, int(e))
            return self.real_power(base, e)
        if isinstance(node, ex.Call):
            return self.call(node.name, self.build(node.arg))
        raise NotExpandable(f"unsupported node {type(node).__name__}")  # pragma: no cover

    def call(self, name: str, a: Terms) -> Terms:
        c0, h = self.split(a)
        n = (self.degree or 0) + 1
        if name == "sqrt":
            return self.real_power(a, Fraction(1, 2))
        if name == "abs":
            if c0 == 0:
                raise NotExpandable("abs(·) of something that vanishes at w* is not analytic there")
            return a if c0 > 0 else {k: -v for k, v in a.items()}
        if name == "log":
            if c0 != 1:
                raise NotExpandable("log(c + …) has a rational expansion only at c = 1")
            return self.compose([Fraction(0)] + [Fraction((-1) ** (k + 1), k) for k in range(1, n)], h)
        if c0 != 0:
            raise NotExpandable(f"{name}(c + …) with c ≠ 0 has no rational expansion")
        return self.compose(_maclaurin(name, n), h)


def _rational_power(c: Fraction, p: Fraction) -> Fraction:
    if p.denominator == 1:
        return c ** int(p)
    roots = []
    for part in (c.numerator, c.denominator):
        r = round(part ** (1.0 / p.denominator))
        found = next((s for s in (r - 1, r, r + 1) if s >= 0 and s**p.denominator == part), None)
        if found is None:
            raise NotExpandable(f"{c}^{p} is irrational")
        roots.append(found)
    return Fraction(roots[0], roots[1]) ** p.numerator


@cache
def _maclaurin(name: str, n: int) -> list[Fraction]:
    """The first n Maclaurin coefficients of sin, cos, exp, tan or tanh (exact)."""
    if name == "exp":
        return [Fraction(1, math.factorial(k)) for k in range(n)]
    if name == "sin":
        return [Fraction((-1) ** (k // 2), math.factorial(k)) if k % 2 else Fraction(0) for k in range(n)]
    if name == "cos":
        return [Fraction(0) if k % 2 else Fraction((-1) ** (k // 2), math.factorial(k)) for k in range(n)]
    if name in ("tan", "tanh"):
        # tan = sin/cos by series division; tanh(t) = −i·tan(i t) flips the sign of every other term
        s, c = _maclaurin("sin", n), _maclaurin("cos", n)
        out: list[Fraction] = []
        for k in range(n):
            out.append(s[k] - sum((c[j] * out[k - j] for j in range(1, k + 1)), Fraction(0)))
        if name == "tanh":
            out = [v * (-1) ** (k // 2) for k, v in enumerate(out)]
        return out
    raise NotExpandable(f"no series for {name}")
