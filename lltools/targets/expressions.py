"""A safe parser for user-typed potentials such as ``"x**2 * y**4"`` (primer §4).

Nothing the user types is ever passed to ``eval``, ``exec`` or ``sympify``.  The text is
checked character by character, parsed with ``ast.parse(text, mode="eval")`` and walked
with an allow-list of node types:

- numbers (``int`` / ``float`` literals, finite), the names of the variables and ``pi``;
- ``+ - * / **`` and unary ``+ -``;
- calls ``sin cos tan exp log sqrt abs tanh`` of exactly one positional argument.

Everything else (attribute access such as ``x.__class__``, indexing, lambdas,
comprehensions, comparisons, strings, ``import`` ...) raises :class:`ExpressionError`, which
names the offending token and its 1-based column.

Variables are either ``x, y`` (d = 2, even if only ``x`` appears) or ``w1 .. wd``
(d = the largest index used, at most 64); the two families cannot be mixed.

The accepted tree is turned into a small intermediate form (sums and products are
flattened, so ``w1 + w2 + ... + w64`` is wide rather than deep), constants are folded in
Python floats (overflow, ``1/0``, ``log(0)`` are refused), and compiled into a tree of
closures over torch operations: ``fn(w)`` maps a tensor of shape ``(C, d)`` to ``(C,)`` and
is differentiable by autograd.  When the expression is a polynomial with non-negative
integer powers its expanded coefficients are returned as well (used for the Newton
polyhedron value of λ, :mod:`lltools.theory`).

Limits (bad input is refused fast, never hangs): at most 2000 characters, printable ASCII
only, bracket nesting at most 50, expression-tree depth at most 100 after flattening,
constant exponents finite with |exponent| ≤ 64, polynomial expansion at most 2000 terms.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "FUNCTIONS",
    "MAX_DIM",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NESTING",
    "MAX_POLY_TERMS",
    "CompiledExpression",
    "ExpressionError",
    "parse_expression",
]

MAX_LENGTH = 2000
"""Longest accepted expression, in characters."""
MAX_NESTING = 50
"""Deepest accepted bracket nesting."""
MAX_TREE_DEPTH = 100
"""Deepest accepted expression tree (after flattening sums and products)."""
MAX_EXPONENT = 64
"""Largest accepted |constant exponent|."""
MAX_DIM = 64
"""Largest accepted number of variables (``w1 .. w64``)."""
MAX_POLY_TERMS = 2000
"""Above this many terms the polynomial expansion is abandoned (``polynomial=None``)."""
_MAX_POLY_WORK = 4_000_000  # largest (term pairs × d) of one polynomial product

FUNCTIONS: dict[str, tuple[Callable[[float], float], Callable[[Tensor], Tensor]]] = {
    "sin": (math.sin, torch.sin),
    "cos": (math.cos, torch.cos),
    "tan": (math.tan, torch.tan),
    "exp": (math.exp, torch.exp),
    "log": (math.log, torch.log),
    "sqrt": (math.sqrt, torch.sqrt),
    "abs": (abs, torch.abs),
    "tanh": (math.tanh, torch.tanh),
}
"""Allowed functions: name -> (float version for constant folding, torch version)."""

CONSTANTS: dict[str, float] = {"pi": math.pi}

_W_NAME = re.compile(r"w([1-9][0-9]*)")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_XY = ("x", "y")

_OPERATOR_TOKENS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.BitXor: "^",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Not: "not",
    ast.Invert: "~",
}

_NODE_KINDS: dict[type, str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Slice: "slice",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "comprehension",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.IfExp: "conditional expression",
    ast.Tuple: "tuple",
    ast.List: "list",
    ast.Dict: "dict",
    ast.Set: "set",
    ast.NamedExpr: "assignment expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Starred: "starred argument",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


# ---------------------------------------------------------------------------- errors
class ExpressionError(ValueError):
    """An expression was refused.

    Attributes
    ----------
    token : str or None
        The offending piece of text (``None`` when the whole input is at fault).
    column : int or None
        1-based column of ``token`` in the input.
    """

    def __init__(self, message: str, *, token: str | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.token = token
        self.column = column


def _error(what: str, token: str, column: int, hint: str = "") -> ExpressionError:
    """Build an :class:`ExpressionError` whose message reads ``"<what> '<token>' at column c"``."""
    message = f"{what} {token!r} at column {column}"
    if hint:
        message += f"; {hint}"
    return ExpressionError(message, token=token, column=column)


# ---------------------------------------------------------------------------- intermediate form
@dataclass(frozen=True)
class _Const:
    value: float


@dataclass(frozen=True)
class _Var:
    index: int


@dataclass(frozen=True)
class _Sum:
    terms: tuple[tuple[bool, _Node], ...]  # (negate, term); constants folded into `const`
    const: float


@dataclass(frozen=True)
class _Prod:
    factors: tuple[tuple[bool, _Node], ...]  # (divide, factor); constants folded into `const`
    const: float


@dataclass(frozen=True)
class _Pow:
    base: _Node
    exponent: _Node


@dataclass(frozen=True)
class _Neg:
    operand: _Node


@dataclass(frozen=True)
class _Call:
    name: str
    arg: _Node


_Node = _Const | _Var | _Sum | _Prod | _Pow | _Neg | _Call

# Public names of the intermediate form, read by lltools.theory.series (exact Taylor polynomials).
Const, Var, Sum, Prod, Pow, Neg, Call = _Const, _Var, _Sum, _Prod, _Pow, _Neg, _Call
Node = _Node


# ---------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class CompiledExpression:
    """A parsed, checked and compiled expression.

    Attributes
    ----------
    text : str
        The input, stripped of surrounding whitespace.
    variables : tuple of str
        Variable names in coordinate order: ``("x", "y")`` or ``("w1", ..., "wd")``.
    dim : int
        Number of parameters d.
    fn : callable
        ``fn(w)`` with ``w`` of shape ``(C, d)`` (any leading shape) returns the value of
        the expression at each row, shape ``(C,)``; differentiable by autograd.
    polynomial : dict or None
        Expanded coefficients ``{(k_1, ..., k_d): c}`` of Σ c·Π w_i^{k_i} when the
        expression is a polynomial with non-negative integer powers (at most
        :data:`MAX_POLY_TERMS` terms); ``None`` otherwise.  ``{}`` is the zero polynomial.
    node : Node
        The checked intermediate form (for exact Taylor polynomials, :mod:`lltools.theory.series`).
    """

    text: str
    variables: tuple[str, ...]
    dim: int
    fn: Callable[[Tensor], Tensor] = field(compare=False, repr=False)
    polynomial: dict[tuple[int, ...], float] | None = field(default=None, compare=False)
    node: _Node | None = field(default=None, compare=False, repr=False)

    def __call__(self, w: Tensor) -> Tensor:
        return self.fn(w)

    @property
    def is_polynomial(self) -> bool:
        return self.polynomial is not None


# ---------------------------------------------------------------------------- public entry
def parse_expression(text: str, variables: Sequence[str] | None = None) -> CompiledExpression:
    """Parse, check and compile an expression of the parameters.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"x**2 * y**4"`` or ``"w1**2 + sin(w2)**2"``.
    variables : sequence of str, optional
        Explicit variable names in coordinate order (then d = ``len(variables)``).  By
        default they are inferred: ``x, y`` give d = 2; ``w1 .. wk`` give d = the largest
        index k used.

    Returns
    -------
    CompiledExpression

    Raises
    ------
    ExpressionError
        For anything outside the allowed grammar or limits; the message names the
        offending token and its 1-based column.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, got {type(text).__name__}")
    _check_characters(text)
    stripped = text.strip()
    if not stripped:
        raise ExpressionError("empty expression", token=None, column=None)
    _check_nesting(text)
    tree = _parse(text)
    names = _resolve_variables(tree, text, variables)
    node = _Builder(text, names).build(tree.body, 0)
    fn = _compile(node)
    polynomial = _polynomial(node, len(names))
    return CompiledExpression(
        text=stripped, variables=tuple(names), dim=len(names), fn=fn, polynomial=polynomial, node=node
    )


# ---------------------------------------------------------------------------- pre-parse checks
def _check_characters(text: str) -> None:
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression too long ({len(text)} characters; the limit is {MAX_LENGTH})",
            token=None,
            column=None,
        )
    for i, ch in enumerate(text):
        if not (" " <= ch <= "~"):
            raise _error("unsupported character", ch, i + 1, "use printable ASCII on one line")


def _check_nesting(text: str) -> None:
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise _error(
                    "brackets nested too deeply:", ch, i + 1, f"at most {MAX_NESTING} levels are allowed"
                )
        elif ch in ")]}":
            depth = max(depth - 1, 0)


def _parse(text: str) -> ast.Expression:
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal" warnings for '1x'
            warnings.simplefilter("ignore")
            return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        column = int(exc.offset) if exc.offset else 1
        column = min(max(column, 1), max(len(text), 1))
        raise _error("unsupported syntax", _token_at(text, column - 1), column) from None
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        raise ExpressionError(
            f"expression could not be parsed ({type(exc).__name__})", token=None, column=None
        ) from None


def _token_at(text: str, index: int) -> str:
    """The identifier, number or operator run starting at ``index``."""
    if index >= len(text):
        return "end of input"
    rest = text[index:]
    patterns = (r"[A-Za-z_][A-Za-z0-9_]*", r"[0-9.]+(?:[eE][+-]?[0-9]+)?", r"\*\*|//|<<|>>|[^\sA-Za-z0-9_]")
    for pattern in patterns:
        m = re.match(pattern, rest)
        if m:
            return m.group(0)
    return rest[:1]


# ---------------------------------------------------------------------------- variables
def _allowed_hint(names: Sequence[str] | None) -> str:
    variables = ", ".join(names) if names is not None else f"x, y, w1..w{MAX_DIM}"
    return "allowed: " + ", ".join([variables, *CONSTANTS, *FUNCTIONS])


def _resolve_variables(tree: ast.Expression, text: str, variables: Sequence[str] | None) -> list[str]:
    used = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Name)), key=lambda n: n.col_offset)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for n in used:
        if id(n) in called and n.id not in FUNCTIONS:
            hint = "allowed functions: " + ", ".join(FUNCTIONS)
            raise _error("unknown function", n.id, n.col_offset + 1, hint)
    if variables is not None:
        names = _validate_explicit(variables)
        for n in used:
            if n.id not in names and n.id not in FUNCTIONS and n.id not in CONSTANTS:
                raise _error("unknown name", n.id, n.col_offset + 1, _allowed_hint(names))
        return names
    family: str | None = None
    first: ast.Name | None = None
    max_index = 0
    for n in used:
        if n.id in FUNCTIONS or n.id in CONSTANTS:
            continue
        m = _W_NAME.fullmatch(n.id)
        if n.id in _XY:
            kind = "xy"
        elif m is not None and int(m.group(1)) <= MAX_DIM:
            kind = "w"
            max_index = max(max_index, int(m.group(1)))
        elif m is not None:
            raise _error("variable index too large", n.id, n.col_offset + 1, f"at most w{MAX_DIM}")
        else:
            raise _error("unknown name", n.id, n.col_offset + 1, _allowed_hint(None))
        if family is None:
            family, first = kind, n
        elif kind != family:
            assert first is not None
            raise _error(
                "cannot mix x, y with w1..wd:",
                n.id,
                n.col_offset + 1,
                f"'{first.id}' was used first",
            )
    if family == "w":
        return [f"w{i}" for i in range(1, max_index + 1)]
    return list(_XY)  # x, y — also the default for constant expressions


def _validate_explicit(variables: Sequence[str]) -> list[str]:
    names = list(variables)
    if not names:
        raise ExpressionError("variables must name at least one variable")
    if len(names) > MAX_DIM:
        raise ExpressionError(f"at most {MAX_DIM} variables, got {len(names)}")
    if len(set(names)) != len(names):
        raise ExpressionError("variable names must be distinct")
    for name in names:
        if (
            not isinstance(name, str)
            or not _IDENTIFIER.fullmatch(name)
            or name.startswith("_")
            or name in FUNCTIONS
            or name in CONSTANTS
        ):
            raise ExpressionError(f"invalid variable name {name!r}", token=str(name))
    return names


# ---------------------------------------------------------------------------- AST -> IR
class _Builder:
    """Walks the allow-listed AST, folds constants, and returns the intermediate form."""

    def __init__(self, text: str, names: Sequence[str]) -> None:
        self.text = text
        self.index = {name: i for i, name in enumerate(names)}

    # -- helpers
    def _segment(self, node: ast.AST) -> str:
        seg = ast.get_source_segment(self.text, node) or type(node).__name__
        return seg if len(seg) <= 40 else seg[:37] + "..."

    def _col(self, node: ast.AST) -> int:
        return int(getattr(node, "col_offset", 0)) + 1

    def _operator_column(self, node: ast.BinOp, token: str) -> int:
        lo = getattr(node.left, "end_col_offset", node.col_offset) or node.col_offset
        hi = getattr(node.right, "col_offset", len(self.text))
        pos = self.text.find(token, lo, hi)
        return (pos if pos >= 0 else node.col_offset) + 1

    def _refuse(self, node: ast.AST) -> ExpressionError:
        if isinstance(node, ast.Attribute):
            token = "." + node.attr
            end = getattr(node, "end_col_offset", None)
            col = (end - len(node.attr)) if end is not None else node.col_offset + 1
            return _error("unsupported syntax", token, col, "attribute access is not allowed")
        if isinstance(node, ast.Compare):
            hint = "comparisons are not allowed"
            return _error("unsupported syntax", self._segment(node), self._col(node), hint)
        kind = _NODE_KINDS.get(type(node))
        if isinstance(node, ast.Constant):
            kind = f"{type(node.value).__name__} constant"
        hint = f"{kind} is not allowed" if kind else "not allowed"
        return _error("unsupported syntax", self._segment(node), self._col(node), hint)

    def _fold(self, node: ast.AST, compute: Callable[[], float]) -> _Const:
        try:
            value = compute()
        except ZeroDivisionError:
            raise _error("division by zero in", self._segment(node), self._col(node)) from None
        except OverflowError:
            raise _error("number overflows in", self._segment(node), self._col(node)) from None
        except (ValueError, TypeError):
            what = "undefined value (math domain error) in"
            raise _error(what, self._segment(node), self._col(node)) from None
        if isinstance(value, complex) or not math.isfinite(value):
            raise _error("number overflows or is undefined in", self._segment(node), self._col(node))
        return _Const(float(value))

    # -- the walk
    def build(self, node: ast.AST, depth: int) -> _Node:
        if depth > MAX_TREE_DEPTH:
            raise _error(
                "expression nested too deeply:",
                self._segment(node),
                self._col(node),
                f"at most {MAX_TREE_DEPTH} levels",
            )
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, depth)
        if isinstance(node, ast.BinOp):
            return self._binop(node, depth)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise self._refuse(node)

    def _constant(self, node: ast.Constant) -> _Const:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._refuse(node)
        return self._fold(node, lambda: float(value))

    def _name(self, node: ast.Name) -> _Node:
        if node.id in CONSTANTS:
            return _Const(CONSTANTS[node.id])
        if node.id in FUNCTIONS:
            hint = f"write {node.id}(...)"
            raise _error("function used without an argument:", node.id, self._col(node), hint)
        if node.id not in self.index:  # pragma: no cover - guarded by _resolve_variables
            raise _error("unknown name", node.id, self._col(node))
        return _Var(self.index[node.id])

    def _unary(self, node: ast.UnaryOp, depth: int) -> _Node:
        if not isinstance(node.op, ast.USub | ast.UAdd):
            token = _OPERATOR_TOKENS.get(type(node.op), type(node.op).__name__)
            raise _error("unsupported operator", token, self._col(node))
        # Collapse chains of unary signs iteratively (``- - - x`` is not deep).
        negate = False
        operand: ast.AST = node
        while isinstance(operand, ast.UnaryOp) and isinstance(operand.op, ast.USub | ast.UAdd):
            negate ^= isinstance(operand.op, ast.USub)
            operand = operand.operand
        inner = self.build(operand, depth + 1)
        if not negate:
            return inner
        if isinstance(inner, _Const):
            return _Const(-inner.value)
        return _Neg(inner)

    def _binop(self, node: ast.BinOp, depth: int) -> _Node:
        op = type(node.op)
        if op in (ast.Add, ast.Sub):
            return self._chain(node, depth, (ast.Add, ast.Sub), ast.Sub)
        if op in (ast.Mult, ast.Div):
            return self._chain(node, depth, (ast.Mult, ast.Div), ast.Div)
        if op is ast.Pow:
            return self._power(node, depth)
        token = _OPERATOR_TOKENS.get(op, op.__name__)
        hint = "use ** for powers" if op is ast.BitXor else ""
        raise _error("unsupported operator", token, self._operator_column(node, token), hint)

    def _chain(self, node: ast.BinOp, depth: int, ops: tuple[type, ...], inverse: type) -> _Node:
        """Flatten a left-deep chain ``a ± b ± c ...`` (or ``a */ b */ c``) without recursion."""
        items: list[tuple[bool, ast.AST]] = []
        current: ast.AST = node
        while isinstance(current, ast.BinOp) and isinstance(current.op, ops):
            items.append((isinstance(current.op, inverse), current.right))
            current = current.left
        items.append((False, current))
        items.reverse()
        built = [(flag, self.build(child, depth + 1), child) for flag, child in items]
        is_sum = inverse is ast.Sub
        const = 0.0 if is_sum else 1.0
        rest: list[tuple[bool, _Node]] = []
        for flag, sub, child in built:
            if isinstance(sub, _Const):
                c = sub.value
                if is_sum:
                    const = self._fold(node, lambda c=c, acc=const, f=flag: acc - c if f else acc + c).value
                else:
                    if flag and c == 0.0:
                        raise _error("division by zero in", self._segment(child), self._col(child))
                    const = self._fold(node, lambda c=c, acc=const, f=flag: acc / c if f else acc * c).value
            else:
                rest.append((flag, sub))
        if not rest:
            return _Const(const)
        if is_sum:
            if const == 0.0 and len(rest) == 1 and not rest[0][0]:
                return rest[0][1]
            return _Sum(tuple(rest), const)
        if const == 1.0 and len(rest) == 1 and not rest[0][0]:
            return rest[0][1]
        return _Prod(tuple(rest), const)

    def _power(self, node: ast.BinOp, depth: int) -> _Node:
        base = self.build(node.left, depth + 1)
        exponent = self.build(node.right, depth + 1)
        if isinstance(exponent, _Const):
            e = exponent.value
            if not math.isfinite(e) or abs(e) > MAX_EXPONENT:
                token = self._segment(node.right)
                column = self._col(node.right)
                raise ExpressionError(
                    f"exponent {token} too large at column {column} (|exponent| must be ≤ {MAX_EXPONENT})",
                    token=token,
                    column=column,
                )
            if isinstance(base, _Const):
                b = base.value
                return self._fold(node, lambda: math.pow(b, e))
            if e == 1.0:
                return base
        return _Pow(base, exponent)

    def _call(self, node: ast.Call, depth: int) -> _Node:
        if not isinstance(node.func, ast.Name):
            raise self._refuse(node.func)
        name = node.func.id
        if name not in FUNCTIONS:
            raise _error("unknown function", name, self._col(node.func), _allowed_hint(None))
        if node.keywords:
            kw = node.keywords[0]
            hint = f"{name} takes exactly one argument"
            raise _error("unsupported keyword argument", kw.arg or "**", self._col(kw), hint)
        if len(node.args) != 1:
            hint = f"{name} takes exactly one argument"
            raise _error("wrong number of arguments to", name, self._col(node.func), hint)
        (arg_node,) = node.args
        if isinstance(arg_node, ast.Starred):
            raise self._refuse(arg_node)
        arg = self.build(arg_node, depth + 1)
        if isinstance(arg, _Const):
            scalar_fn = FUNCTIONS[name][0]
            value = arg.value
            return self._fold(node, lambda: scalar_fn(value))
        return _Call(name, arg)


# ---------------------------------------------------------------------------- IR -> torch closures
def _compile(node: _Node) -> Callable[[Tensor], Tensor]:
    inner = _closure(node)

    def fn(w: Tensor) -> Tensor:
        if not w.is_floating_point():
            w = w.to(torch.get_default_dtype())
        out = inner(w)
        if w.requires_grad and not out.requires_grad:  # a constant: keep it differentiable (grad 0)
            out = out + 0.0 * w.sum(-1)
        return out

    return fn


def _closure(node: _Node) -> Callable[[Tensor], Tensor]:
    if isinstance(node, _Const):
        value = node.value
        # Built in float64 and cast, so a constant beyond the chains' dtype becomes inf, not an error.
        return lambda w: w.new_full(w.shape[:-1], value, dtype=torch.float64).to(w.dtype)
    if isinstance(node, _Var):
        i = node.index
        return lambda w: w[..., i]
    if isinstance(node, _Neg):
        f = _closure(node.operand)
        return lambda w: -f(w)
    if isinstance(node, _Call):
        torch_fn = FUNCTIONS[node.name][1]
        f = _closure(node.arg)
        return lambda w: torch_fn(f(w))
    if isinstance(node, _Pow):
        return _pow_closure(node)
    if isinstance(node, _Sum):
        return _sum_closure(node)
    return _prod_closure(node)


def _pow_closure(node: _Pow) -> Callable[[Tensor], Tensor]:
    base = _closure(node.base)
    if isinstance(node.exponent, _Const):
        e = node.exponent.value
        exponent: int | float = int(e) if e.is_integer() else e
        return lambda w: torch.pow(base(w), exponent)
    exp_fn = _closure(node.exponent)
    return lambda w: torch.pow(base(w), exp_fn(w))


def _sum_closure(node: _Sum) -> Callable[[Tensor], Tensor]:
    parts = [(neg, _closure(t)) for neg, t in node.terms]
    const = node.const

    def f(w: Tensor) -> Tensor:
        neg0, f0 = parts[0]
        acc = -f0(w) if neg0 else f0(w)
        for neg, g in parts[1:]:
            acc = acc - g(w) if neg else acc + g(w)
        return acc + const if const != 0.0 else acc

    return f


def _prod_closure(node: _Prod) -> Callable[[Tensor], Tensor]:
    parts = [(div, _closure(t)) for div, t in node.factors]
    const = node.const

    def f(w: Tensor) -> Tensor:
        div0, f0 = parts[0]
        acc = 1.0 / f0(w) if div0 else f0(w)
        for div, g in parts[1:]:
            acc = acc / g(w) if div else acc * g(w)
        return acc * const if const != 1.0 else acc

    return f


# ---------------------------------------------------------------------------- polynomial expansion
_Poly = dict[tuple[int, ...], float]
_MAX_POLY_DEGREE = 1_000_000  # larger exponents are not worth expanding (and could overflow)


class _NotPolynomial(Exception):
    """Internal: the expression is not (or too large to expand as) a polynomial."""


@dataclass(frozen=True)
class _Terms:
    """A polynomial as arrays: exponent rows ``exps`` (k, d) and coefficients ``coefs`` (k,)."""

    exps: np.ndarray
    coefs: np.ndarray


def _polynomial(node: _Node, dim: int) -> _Poly | None:
    try:
        terms = _expand(node, dim)
    except _NotPolynomial:
        return None
    return {
        tuple(int(e) for e in row): float(c)
        for row, c in zip(terms.exps, terms.coefs, strict=True)
        if c != 0.0
    }


def _monomial(dim: int, coef: float, index: int | None = None) -> _Terms:
    exps = np.zeros((1, dim), dtype=np.int64)
    if index is not None:
        exps[0, index] = 1
    return _Terms(exps, np.array([coef], dtype=np.float64))


def _combine(exps: np.ndarray, coefs: np.ndarray) -> _Terms:
    """Merge equal exponent rows, drop zero coefficients, enforce the caps."""
    if len(exps) > 1:
        exps, inverse = np.unique(exps, axis=0, return_inverse=True)
        coefs = np.bincount(inverse.reshape(-1), weights=coefs, minlength=len(exps))
    keep = coefs != 0.0
    exps, coefs = exps[keep], coefs[keep]
    if len(coefs) > MAX_POLY_TERMS or not np.isfinite(coefs).all():
        raise _NotPolynomial
    if len(exps) and exps.max() > _MAX_POLY_DEGREE:
        raise _NotPolynomial
    return _Terms(exps, coefs)


def _expand(node: _Node, dim: int) -> _Terms:
    if isinstance(node, _Const):
        return _monomial(dim, node.value)
    if isinstance(node, _Var):
        return _monomial(dim, 1.0, node.index)
    if isinstance(node, _Neg):
        inner = _expand(node.operand, dim)
        return _Terms(inner.exps, -inner.coefs)
    if isinstance(node, _Sum):
        parts = [_monomial(dim, node.const)]
        for neg, term in node.terms:
            t = _expand(term, dim)
            parts.append(_Terms(t.exps, -t.coefs) if neg else t)
        return _combine(np.concatenate([p.exps for p in parts]), np.concatenate([p.coefs for p in parts]))
    if isinstance(node, _Prod):
        acc = _monomial(dim, node.const)
        for div, factor in node.factors:
            if div:
                raise _NotPolynomial
            acc = _multiply(acc, _expand(factor, dim))
        return acc
    if isinstance(node, _Pow):
        if not isinstance(node.exponent, _Const):
            raise _NotPolynomial
        e = node.exponent.value
        if e < 0 or not e.is_integer():
            raise _NotPolynomial
        return _power(_expand(node.base, dim), int(e), dim)
    raise _NotPolynomial  # functions of non-constant arguments


def _multiply(a: _Terms, b: _Terms) -> _Terms:
    d = a.exps.shape[1]
    if len(a.coefs) * len(b.coefs) * max(d, 1) > _MAX_POLY_WORK:
        raise _NotPolynomial
    exps = (a.exps[:, None, :] + b.exps[None, :, :]).reshape(-1, d)
    with np.errstate(over="ignore", invalid="ignore"):
        coefs = (a.coefs[:, None] * b.coefs[None, :]).reshape(-1)
    return _combine(exps, coefs)


def _power(base: _Terms, n: int, dim: int) -> _Terms:
    result = _monomial(dim, 1.0)
    square = base
    while n:
        if n & 1:
            result = _multiply(result, square)
        n >>= 1
        if n:
            square = _multiply(square, square)
    return result
