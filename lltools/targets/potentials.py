"""Analytic toy potentials as :class:`~lltools.targets.base.FunctionTarget` objects (primer §4).

Three built-ins with known λ, and any user expression accepted by the safe parser of
:mod:`lltools.targets.expressions`.  The centre is always the origin, w* = 0.

=================  =====================  =====  ===  ==========
name               alias                  λ      m    needs γ>0
=================  =====================  =====  ===  ==========
``x**2 + y**2``    ``quadratic``          1      1    no
``x**4 + y**4``    ``quartic``            1/2    1    no
``x**2 * y**4``    ``x2y4``               1/4    1    yes
=================  =====================  =====  ===  ==========

Why m = 1 for x²y⁴: its Newton polyhedron is the single vertex (2, 4) plus the positive
orthant; the diagonal (t, t) first meets it at t = 4 on the horizontal edge y = 4 (not at
the vertex, which would need t = 2 and t = 4 at once), a face of codimension 1, so
λ = 1/4 with m = 1 — equivalently the monomial rule λ = min(1/2, 1/4) with one argmin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lltools.targets.base import FunctionTarget
from lltools.targets.expressions import CompiledExpression, ExpressionError, parse_expression

__all__ = [
    "ALIASES",
    "BUILTIN_POTENTIALS",
    "DEFAULT_SAMPLER",
    "BuiltinPotential",
    "domain_warnings",
    "find_builtin",
    "potential_target",
    "sampler_defaults",
]

#: Sampler settings for a potential without a preset of its own (a typed expression): nβ, γ,
#: ε, chains, draws, burn-in, as ``estimate`` takes them.
DEFAULT_SAMPLER: dict[str, float | int] = {
    "nbeta": 100.0, "gamma": 1.0, "epsilon": 1e-3, "chains": 8, "draws": 2000, "burnin": 500,
}


@dataclass(frozen=True)
class BuiltinPotential:
    """A built-in toy potential with its exact learning coefficient.

    Attributes
    ----------
    name : str
        The canonical expression, also the registry key.
    expression : str
        The expression parsed by :func:`lltools.targets.expressions.parse_expression`.
    llc : float
        The exact λ at w* = 0 (primer §4).
    multiplicity : int
        m, the power of log in V(ε) ∝ ε^λ (−log ε)^(m−1).
    description : str
        A short plain-language description.
    needs_gamma : bool
        Whether localisation γ > 0 is required (non-compact minima: without γ the chains
        drift along the valley and the tempered density is not normalisable).
    aliases : tuple of str
    sampler : tuple of (str, float) pairs
        This potential's preset, overriding :data:`DEFAULT_SAMPLER` (see
        :func:`sampler_defaults`): chosen so the first run with seed 0 is healthy under the
        one health rule (R-hat ≤ 1.01, ESS ≥ 100, acceptance ≥ 0.9) in a few seconds, with λ̂
        within 2 SEM of T(nβ, γ) (``tests/workflows/test_presets.py``).
    """

    name: str
    expression: str
    llc: float
    multiplicity: int
    description: str
    needs_gamma: bool
    aliases: tuple[str, ...] = ()
    sampler: tuple[tuple[str, float], ...] = ()


BUILTIN_POTENTIALS: dict[str, BuiltinPotential] = {
    p.name: p
    for p in (
        BuiltinPotential(
            name="x**2 + y**2",
            expression="x**2 + y**2",
            llc=1.0,
            multiplicity=1,
            description=(
                "A round bowl: a regular minimum, so λ = d/2 = 1. For every nβ with γ = 0 the "
                "exact tempered expectation nβ·E[L] equals 1."
            ),
            needs_gamma=False,
            aliases=("quadratic",),
        ),
        BuiltinPotential(
            name="x**4 + y**4",
            expression="x**4 + y**4",
            llc=0.5,
            multiplicity=1,
            description=(
                "A flat-bottomed bowl: quartic in both directions, so each coordinate "
                "contributes 1/4 and λ = 1/2 < d/2. With γ = 0, nβ·E[L] = 1/2 for every nβ."
            ),
            needs_gamma=False,
            aliases=("quartic",),
            # Flat bottom: ε = 1e-3 barely moves the chains (R-hat 1.03); 3e-3 keeps acceptance 0.99.
            sampler=(("epsilon", 3e-3), ("chains", 16), ("draws", 3000)),
        ),
        BuiltinPotential(
            name="x**2 * y**4",
            expression="x**2 * y**4",
            llc=0.25,
            multiplicity=1,
            description=(
                "Two crossing valleys: zero along both axes, so the minimum is not isolated and "
                "γ > 0 is required. λ = 1/4 at the origin, approached only slowly as nβ grows "
                "(T ≈ 1/4 − 0.142·(γ³/nβ)^(1/4))."
            ),
            needs_gamma=True,
            aliases=("x2y4",),
            # Along the valleys only γ pulls chains home, over ~2/(εγ) steps: a larger ε and
            # more draws (ε = 1e-3 with 2000 draws gives R-hat 1.07).
            sampler=(("epsilon", 5e-3), ("chains", 16), ("draws", 4000)),
        ),
    )
}
"""The built-in potentials, keyed by their canonical expression."""

ALIASES: dict[str, str] = {alias: p.name for p in BUILTIN_POTENTIALS.values() for alias in p.aliases}
"""Short names -> registry keys."""

_LOCAL_MIN_RADII = (1e-3, 1e-2, 1e-1)
_NUM_RANDOM_DIRECTIONS = 32


def sampler_defaults(spec: str) -> dict[str, float | int]:
    """The default sampler settings of a potential: a built-in's preset, else :data:`DEFAULT_SAMPLER`.

    Returns ``{"nbeta", "gamma", "epsilon", "chains", "draws", "burnin"}`` (a new dict).
    """
    builtin = find_builtin(spec)
    return {**DEFAULT_SAMPLER, **dict(builtin.sampler if builtin else ())}


def find_builtin(spec: str) -> BuiltinPotential | None:
    """The built-in potential named by ``spec`` (a key, an alias, or the key up to spaces)."""
    key = spec.strip()
    if key in BUILTIN_POTENTIALS:
        return BUILTIN_POTENTIALS[key]
    if key.lower() in ALIASES:
        return BUILTIN_POTENTIALS[ALIASES[key.lower()]]
    compact = "".join(key.split())
    for potential in BUILTIN_POTENTIALS.values():
        if "".join(potential.name.split()) == compact:
            return potential
    return None


def potential_target(
    spec: str, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> FunctionTarget:
    """A :class:`FunctionTarget` for a built-in potential or a user expression, centred at w* = 0.

    Parameters
    ----------
    spec : str
        A built-in name or alias (``"quadratic"``, ``"quartic"``, ``"x2y4"``,
        ``"x**2 * y**4"``) or any expression accepted by
        :func:`~lltools.targets.expressions.parse_expression`.
    device, dtype
        Where w* lives; the potential is evaluated in the dtype of the chains.

    Returns
    -------
    FunctionTarget
        With the extra attributes ``expression`` (:class:`CompiledExpression`), ``builtin``
        (:class:`BuiltinPotential` or ``None``) and ``needs_gamma``.  The target carries
        only what it is: its λ comes from :func:`lltools.theory.record.theory_for`.
        ``warnings`` holds :func:`domain_warnings` ("w* is not a local minimum: ...",
        "L is undefined near w*: ...").

    Raises
    ------
    ExpressionError
        If the expression is refused by the parser or its value at w* = 0 is not finite
        (e.g. ``log(x)``).
    """
    builtin = find_builtin(spec)
    compiled = parse_expression(builtin.expression if builtin else spec)
    warnings = domain_warnings(compiled)
    target = FunctionTarget(
        compiled.fn,
        torch.zeros(compiled.dim, device=device, dtype=dtype),
        name=builtin.name if builtin else compiled.text,
        warnings=warnings,
    )
    target.expression = compiled  # type: ignore[attr-defined]
    target.builtin = builtin  # type: ignore[attr-defined]
    target.needs_gamma = builtin.needs_gamma if builtin else False  # type: ignore[attr-defined]
    return target


def domain_warnings(compiled: CompiledExpression) -> list[str]:
    """The domain checks shared by the CLI, the Toy and the Learn pages (empty when w* = 0 is fine).

    - "L is undefined near w*" — NaN or ±inf at probe points around 0 (``x**0.5``,
      ``log(x)``, ``sqrt(x)``): the sampler would leave the domain.
    - "w* is not a local minimum" — a non-zero gradient at 0, or a probe point with a lower
      value (``x**3 + y**3``): λ is not defined there and the chains drift away.

    Raises
    ------
    ExpressionError
        If the value at w* = 0 itself is not finite.
    """
    f0 = _value_at_origin(compiled)
    undefined = _undefined_warnings(compiled)
    return undefined if undefined else _local_minimum_warnings(compiled, f0)


def _probes(d: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    random_dirs = rng.normal(size=(_NUM_RANDOM_DIRECTIONS, d))
    random_dirs /= np.linalg.norm(random_dirs, axis=1, keepdims=True)
    dirs = np.vstack([np.eye(d), -np.eye(d), random_dirs])
    return np.concatenate([r * dirs for r in _LOCAL_MIN_RADII])


def _undefined_warnings(compiled: CompiledExpression) -> list[str]:
    probes = _probes(compiled.dim)
    with torch.no_grad():
        values = compiled.fn(torch.as_tensor(probes, dtype=torch.float64)).numpy()
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size == 0:
        return []
    i = bad[0]
    point = ", ".join(f"{n}={x:.3g}" for n, x in zip(compiled.variables, probes[i], strict=True))
    return [
        f"L is undefined near w*: f({point}) = {values[i]} — the potential must be finite around w* "
        "(e.g. not x**0.5 or log(x) at 0); λ is not defined there"
    ]


def _value_at_origin(compiled: CompiledExpression) -> float:
    with torch.no_grad():
        value = float(compiled.fn(torch.zeros(1, compiled.dim, dtype=torch.float64))[0])
    if not math.isfinite(value):
        raise ExpressionError(
            f"the potential is {value} at w* = 0 (it must be finite there, e.g. not log(x))",
            token=None,
            column=None,
        )
    return value


def _local_minimum_warnings(compiled: CompiledExpression, f0: float) -> list[str]:
    """Gradient at 0 and deterministic probes (axes and random directions at a few radii)."""
    d = compiled.dim
    names = compiled.variables
    origin = torch.zeros(1, d, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(compiled.fn(origin).sum(), origin, allow_unused=True)
    if grad is not None:
        g = grad[0].detach()
        gnorm = float(torch.linalg.vector_norm(g))
        # A non-finite gradient (a cone such as sqrt(x**2 + y**2)) is left to the probes.
        if math.isfinite(gnorm) and gnorm > 1e-6 * (1.0 + abs(f0)):
            shown = ", ".join(f"∂/∂{n} = {float(v):.4g}" for n, v in zip(names, g, strict=True) if v != 0)
            return [f"w* is not a local minimum: the gradient at w* = 0 is not zero ({shown or gnorm})"]
    probes = _probes(d)
    with torch.no_grad():
        values = compiled.fn(torch.as_tensor(probes, dtype=torch.float64)).numpy()
    tol = 1e-12 + 1e-9 * abs(f0)
    lower = np.flatnonzero(values < f0 - tol)
    if lower.size == 0:
        return []
    i = lower[np.argmin(values[lower])]
    point = ", ".join(f"{n}={x:.3g}" for n, x in zip(names, probes[i], strict=True))
    return [
        f"w* is not a local minimum: f({point}) = {values[i]:.4g} < f(w*) = {f0:.4g}; "
        "the sampler will drift to lower values and λ̂ may be negative"
    ]
