"""The safe expression parser: values, gradients, polynomial expansion, refusals, fuzzing."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lltools.targets.expressions import (
    MAX_LENGTH,
    CompiledExpression,
    ExpressionError,
    parse_expression,
)

# ---------------------------------------------------------------------------- values


def _points(d: int, n: int = 7, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=torch.float64) * 2.0 - 0.5


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("x**2 + y**2", lambda x, y: x**2 + y**2),
        ("x**2 * y**4", lambda x, y: x**2 * y**4),
        ("3*x - y/2 + 1", lambda x, y: 3 * x - y / 2 + 1),
        ("-x**2", lambda x, y: -(x**2)),  # ** binds tighter than unary minus, as in Python
        ("(-x)**2", lambda x, y: x**2),
        ("2**-1 * x", lambda x, y: 0.5 * x),
        ("x**y", lambda x, y: x**y),
        ("sin(x)*cos(y) + tan(x/3)", lambda x, y: np.sin(x) * np.cos(y) + np.tan(x / 3)),
        ("exp(-x) + tanh(y) + abs(x - y)", lambda x, y: np.exp(-x) + np.tanh(y) + np.abs(x - y)),
        ("sqrt(x**2 + y**2 + 1) + log(1 + x**2)", lambda x, y: np.sqrt(x**2 + y**2 + 1) + np.log(1 + x**2)),
        ("pi * x", lambda x, y: math.pi * x),
        ("x / y / 2", lambda x, y: x / y / 2),
        ("1 - x - y - 1", lambda x, y: -x - y),
    ],
)
def test_values_match_numpy(text, reference):
    c = parse_expression(text)
    w = _points(2).abs() + 0.1  # positive, so x**y is real
    got = c.fn(w).numpy()
    x, y = w[:, 0].numpy(), w[:, 1].numpy()
    np.testing.assert_allclose(got, reference(x, y), rtol=1e-12, atol=1e-12)
    assert got.shape == (7,)


def test_shapes_dtype_and_leading_dims():
    c = parse_expression("x**2 + 2*y")
    w32 = torch.ones(5, 2)
    assert c.fn(w32).dtype == torch.float32 and c.fn(w32).shape == (5,)
    assert c.fn(torch.ones(3, 4, 2, dtype=torch.float64)).shape == (3, 4)
    assert c.fn(torch.ones(2, 2, dtype=torch.int64)).dtype == torch.get_default_dtype()
    const = parse_expression("2*3 + 1")
    assert torch.equal(const.fn(torch.zeros(4, 2)), torch.full((4,), 7.0))


def test_gradients_by_autograd():
    c = parse_expression("x**2 * y**4 + sin(x)")
    w = torch.tensor([[0.3, -1.2], [2.0, 0.5]], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(c.fn(w).sum(), w)
    x, y = w.detach()[:, 0], w.detach()[:, 1]
    expected = torch.stack((2 * x * y**4 + torch.cos(x), 4 * x**2 * y**3), dim=1)
    torch.testing.assert_close(g, expected)


def test_constant_expression_is_differentiable_with_zero_gradient():
    c = parse_expression("5")
    w = torch.zeros(3, 2, requires_grad=True)
    (g,) = torch.autograd.grad(c.fn(w).sum(), w)
    assert torch.equal(g, torch.zeros(3, 2))


# ---------------------------------------------------------------------------- variables


@pytest.mark.parametrize(
    ("text", "variables", "dim"),
    [
        ("x", ("x", "y"), 2),
        ("y**2", ("x", "y"), 2),
        ("7", ("x", "y"), 2),
        ("w1", ("w1",), 1),
        ("w3**2 + w1", ("w1", "w2", "w3"), 3),
        ("w64", tuple(f"w{i}" for i in range(1, 65)), 64),
    ],
)
def test_variable_inference(text, variables, dim):
    c = parse_expression(text)
    assert c.variables == variables and c.dim == dim


def test_explicit_variables():
    c = parse_expression("a**2 + b", variables=["a", "b", "c"])
    assert c.dim == 3 and c.polynomial == {(2, 0, 0): 1.0, (0, 1, 0): 1.0}
    with pytest.raises(ExpressionError, match="unknown name 'x' at column 1"):
        parse_expression("x + a", variables=["a"])
    for bad in (["sin"], ["__class__"], ["a", "a"], [], ["1x"]):
        with pytest.raises(ExpressionError):
            parse_expression("1", variables=bad)


def test_w_family_evaluates_the_right_coordinates():
    c = parse_expression("w1 + 10*w3")
    w = torch.tensor([[1.0, 2.0, 3.0]])
    assert c.fn(w).item() == pytest.approx(31.0)


# ---------------------------------------------------------------------------- polynomials


@pytest.mark.parametrize(
    ("text", "poly"),
    [
        ("(x + y)**2", {(2, 0): 1.0, (1, 1): 2.0, (0, 2): 1.0}),
        ("(x - y)**2", {(2, 0): 1.0, (1, 1): -2.0, (0, 2): 1.0}),
        ("x**2 * y**4", {(2, 4): 1.0}),
        ("x/2 + 3", {(1, 0): 0.5, (0, 0): 3.0}),
        ("x - x", {}),
        ("-(w1*w2 - w3**2)**2", {(2, 2, 0): -1.0, (1, 1, 2): 2.0, (0, 0, 4): -1.0}),
        ("(x + 1)**3", {(3, 0): 1.0, (2, 0): 3.0, (1, 0): 3.0, (0, 0): 1.0}),
        ("x**2.0", {(2, 0): 1.0}),
    ],
)
def test_polynomial_expansion(text, poly):
    assert parse_expression(text).polynomial == poly


@pytest.mark.parametrize("text", ["sin(x)", "x**0.5", "x**-2", "1/x", "x**y", "x/(y+1)", "abs(x)"])
def test_non_polynomials(text):
    assert parse_expression(text).polynomial is None


def test_polynomial_agrees_with_the_compiled_function():
    c = parse_expression("(x - 2*y + 1)**4 * (x + y)**2 - 3*x*y")
    w = _points(2)
    by_poly = sum(coef * w[:, 0] ** i * w[:, 1] ** j for (i, j), coef in c.polynomial.items())
    torch.testing.assert_close(c.fn(w), by_poly)


def test_polynomial_term_cap():
    # (x+y+1)**n has (n+1)(n+2)/2 terms: n = 61 -> 1953 (kept), n = 62 -> 2016 (> 2000, dropped)
    assert len(parse_expression("(x + y + 1)**61").polynomial) == 1953
    assert parse_expression("(x + y + 1)**62").polynomial is None
    start = time.perf_counter()
    assert parse_expression("(" + "+".join(f"w{i}" for i in range(1, 65)) + ")**64").polynomial is None
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "token", "column", "fragment"),
    [
        ("import os", "import", 1, "unsupported syntax 'import' at column 1"),
        ("x.__class__", ".__class__", 2, "attribute access"),
        ("().__class__.__bases__[0]", None, None, "unsupported syntax"),
        ("__import__('os').system('ls')", "__import__", 1, "unknown function '__import__' at column 1"),
        ("x + z", "z", 5, "unknown name 'z' at column 5; allowed: x, y, w1..w64"),
        ("x**999999", "999999", 4, "exponent 999999 too large at column 4"),
        ("x**-100", "-100", 4, "exponent -100 too large"),
        ("x**(10**3)", "10**3", 5, "exponent 10**3 too large at column 5"),
        ("10**400", "400", 5, "exponent 400 too large"),
        ("1e400", "1e400", 1, "overflows"),
        ("1e300 * 1e300 * x", None, 1, "overflows"),
        ("1/0", "0", 3, "division by zero"),
        ("log(0) + x", "log(0)", 1, "math domain"),
        ("(-8)**(1/3)", None, 1, "math domain"),
        ("x[0]", "x[0]", 1, "indexing"),
        ("lambda: 1", "lambda: 1", 1, "lambda"),
        ("[x for x in y]", None, 1, "comprehension"),
        ("x < y", "x < y", 1, "comparison"),
        ("x if y else 1", None, 1, "conditional"),
        ("'abc'", "'abc'", 1, "str constant"),
        ("True + x", "True", 1, "bool constant"),
        ("2j * x", "2j", 1, "complex constant"),
        ("x ^ 2", "^", 3, "use ** for powers"),
        ("x // 2", "//", 3, "unsupported operator '//'"),
        ("x % 2", "%", 3, None),
        ("not x", "not", 1, None),
        ("sin(x, y)", "sin", 1, "exactly one argument"),
        ("sin(x=1)", "x", 5, "keyword"),
        ("sin", "sin", 1, "without an argument"),
        ("foo(x)", "foo", 1, "unknown function"),
        ("x + w1", "w1", 5, "cannot mix"),
        ("w65", "w65", 1, "at most w64"),
        ("w0", "w0", 1, "unknown name"),
        ("x +", None, None, "unsupported syntax"),
        ("(x", None, None, "unsupported syntax"),
        ("x\ny", "\n", 2, "unsupported character"),
        ("x + é", "é", 5, "unsupported character"),
        ("(x:=1)", None, 2, "assignment"),
        ("f'{x}'", None, 1, "f-string"),
        ("*x", None, None, None),
    ],
)
def test_refusals_name_token_and_column(text, token, column, fragment):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    err = info.value
    if token is not None:
        assert err.token == token
    if column is not None:
        assert err.column == column
        assert f"column {column}" in str(err)
    if fragment is not None:
        assert fragment in str(err)


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_empty_is_refused(text):
    with pytest.raises(ExpressionError):
        parse_expression(text)


def test_long_input_refused_fast():
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match="too long"):
        parse_expression("x+" * 5000 + "x")  # 10 kB
    assert time.perf_counter() - start < 0.05
    parse_expression("+".join(["x"] * ((MAX_LENGTH + 1) // 2)))  # just under the limit is fine


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("(" * 51 + "x" + ")" * 51, "brackets nested too deeply"),
        ("(" * 5000 + "x" + ")" * 5000, "too long"),
        ("x" + "**x" * 300, "nested too deeply"),
        ("sin(" * 49 + "x" + ")" * 49 + "+" + "-(" * 40 + "x" + ")" * 40, None),  # 49 deep: fine
    ],
)
def test_nesting_limits(text, fragment):
    start = time.perf_counter()
    if fragment is None:
        assert parse_expression(text).dim == 2
    else:
        with pytest.raises(ExpressionError, match=fragment):
            parse_expression(text)
    assert time.perf_counter() - start < 0.5


def test_long_flat_sums_and_unary_chains_are_not_deep():
    c = parse_expression("+".join(f"w{i}**2" for i in range(1, 65)))
    assert c.dim == 64 and len(c.polynomial) == 64
    c = parse_expression("-" * 1001 + "x")
    assert c.fn(torch.tensor([[2.0, 0.0]])).item() == -2.0


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        parse_expression("x.y")


# ---------------------------------------------------------------------------- fuzzing

_ATOMS = [
    "x", "y", "w1", "w2", "w64", "w65", "z", "pi", "0", "1", "2", "0.5", "1e308", "1e-308", "999999",
    "64", "65", "-64", "__class__", "__import__", "os", "eval", "exec", "open", "'s'", "True", "None",
    "...", "1j", "lambda", "import", "self", "sin", "exp", "log", "sqrt", "abs", "tanh", "cos", "tan",
]  # fmt: skip
_OPS = ["+", "-", "*", "/", "**", "//", "%", "@", "^", ".", ",", "<", "==", " and ", " if ", ":", "="]


@st.composite
def _grammar_like(draw) -> str:
    """Mostly-valid expressions with hostile atoms, deep nesting and huge exponents mixed in."""
    depth = draw(st.integers(0, 5))

    def expr(level: int) -> str:
        choice = draw(st.integers(0, 6 if level < depth else 0))
        if choice == 0:
            return draw(st.sampled_from(_ATOMS))
        if choice in (1, 2):
            return f"{expr(level + 1)}{draw(st.sampled_from(_OPS))}{expr(level + 1)}"
        if choice == 3:
            return f"({expr(level + 1)})"
        if choice == 4:
            fn = draw(
                st.sampled_from(["sin", "cos", "exp", "log", "sqrt", "abs", "tanh", "tan", "x", "getattr"])
            )
            return f"{fn}({expr(level + 1)})"
        if choice == 5:
            exponent = draw(st.sampled_from(["2", "64", "65", "1e9", "-3", "0.5", "x", "(2**6)"]))
            return f"{expr(level + 1)}**{exponent}"
        return draw(st.sampled_from(["-", "+", "not ", "~"])) + expr(level + 1)

    text = expr(0)
    wrap = draw(st.integers(0, 3))
    if wrap == 1:
        n = draw(st.integers(40, 70))
        text = "(" * n + text + ")" * n
    elif wrap == 2:
        text = text + "**" + draw(st.sampled_from(["99999", "1e400", "(10**400)", "-70"]))
    elif wrap == 3:
        text = text * draw(st.integers(1, 20))
    return text


@st.composite
def _valid_like(draw) -> str:
    """Expressions from the allowed grammar only (so that most parse and get evaluated)."""
    depth = draw(st.integers(0, 6))

    def expr(level: int) -> str:
        choice = draw(st.integers(0, 4 if level < depth else 0))
        if choice == 0:
            return draw(st.sampled_from(["x", "y", "pi", "0", "1", "2.5", "1e30", "1e-30", "x", "y"]))
        if choice == 1:
            return f"{expr(level + 1)} {draw(st.sampled_from(['+', '-', '*', '/']))} {expr(level + 1)}"
        if choice == 2:
            e = draw(st.one_of(st.integers(-70, 70).map(str), st.sampled_from(["0.5", "y", "(x+1)"])))
            return f"({expr(level + 1)})**{e}"
        if choice == 3:
            fn = draw(st.sampled_from(["sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh"]))
            return f"{fn}({expr(level + 1)})"
        return "-" + expr(level + 1)

    return expr(0)


_any_text = st.one_of(
    _valid_like(),
    st.text(max_size=60),
    st.text(alphabet=st.sampled_from(list("xyw123()+-*/.e ^_,[]'\"")), max_size=80),
    _grammar_like(),
    st.builds(
        lambda n, s: s * n, st.integers(1, 3000), st.sampled_from(["(", "-", "x**", "sin(", "x+", "1"])
    ),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_any_text)
def test_fuzz_never_crashes_or_hangs(text):
    start = time.perf_counter()
    try:
        c = parse_expression(text)
    except ExpressionError as err:
        assert str(err)
        assert err.column is None or err.column >= 1
    else:
        assert isinstance(c, CompiledExpression)
        w = torch.linspace(-2.0, 2.0, 3 * c.dim, dtype=torch.float32).reshape(3, c.dim)
        out = c.fn(w)
        assert out.shape == (3,) and out.dtype == torch.float32
        # Every value is a float: finite, or NaN/±inf (e.g. log of a negative, 1/0 at a point).
        assert not torch.is_complex(out)
    assert time.perf_counter() - start < 2.0
