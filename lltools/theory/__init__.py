"""Exact and numerical references for λ, one concept per module (docs/theory.md).

- :mod:`~lltools.theory.record` — ``TheoryRecord`` and ``theory_for(target)``: the one entry point.
- :mod:`~lltools.theory.puiseux` — exact λ in two variables (Newton polygon, adapted coordinates).
- :mod:`~lltools.theory.newton` — the Newton polyhedron in any dimension (non-degenerate case).
- :mod:`~lltools.theory.series` — exact Taylor polynomials from the parsed expression tree.
- :mod:`~lltools.theory.closed_forms` — monomials, deep linear networks (Aoyagi).
- :mod:`~lltools.theory.networks` — quadratic networks: rank(J)/2 and the Cullen et al. formula.
- :mod:`~lltools.theory.numeric` — Jacobian rank, volume scaling.
- :mod:`~lltools.theory.quadrature` — T(nβ, γ) by adaptive cubature with an error estimate.
- :mod:`~lltools.theory.training` — grokking severity, geometric complexity.
- :mod:`~lltools.theory.hessian` — the Hessian spectrum at w* (exact / Lanczos) and its near-zero count.
- :mod:`~lltools.theory.planes` — loss planes and lines through parameter space, chains projected.

Layering: theory sits above :mod:`lltools.targets` (it reads targets; targets never import it).
"""
