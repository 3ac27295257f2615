"""Closed forms of λ: monomials and deep linear networks (Aoyagi) — primer §4.

- :func:`monomial_llc` — a monomial Π w_i^(k_i): λ = min_i 1/k_i, m = #argmins.
- :func:`deep_linear_llc` — Aoyagi's λ and θ for deep linear networks, exactly as in the
  primer (which corrects a typo of seed 004); biases add H^(1)/2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

__all__ = ["deep_linear_llc", "monomial_llc"]


def monomial_llc(exponents: Sequence[int]) -> tuple[float, int]:
    """λ and multiplicity of the monomial potential L(w) = Π_i w_i^(k_i) at w* = 0.

    ``exponents`` are the powers k_i as they appear in L itself (so x²y⁴ is ``(2, 4)``).
    With a flat prior near 0 (primer §4)

        λ = min_{i : k_i > 0} 1/k_i,      m = #{i : k_i = max_j k_j}.

    Zero exponents (variables that do not appear) are ignored.

    Raises
    ------
    ValueError
        If an exponent is negative or not an integer, all exponents are 0 (a constant
        potential), or some exponent is odd: then L changes sign at 0 and w* = 0 is not a
        local minimum, so λ is not defined.
    """
    ks = [_as_int(k, "exponent") for k in exponents]
    if any(k < 0 for k in ks):
        raise ValueError(f"exponents must be non-negative integers, got {tuple(ks)}")
    positive = [k for k in ks if k > 0]
    if not positive:
        raise ValueError("at least one exponent must be positive (a constant has no λ)")
    odd = [k for k in positive if k % 2]
    if odd:
        raise ValueError(
            f"odd exponent {odd[0]}: the monomial changes sign at 0, so w* = 0 is not a local minimum"
        )
    k_max = max(positive)
    return 1.0 / k_max, positive.count(k_max)


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(value)

# ============================================================================ deep linear networks
def deep_linear_llc(widths: Sequence[int], rank: int, bias: bool = False) -> tuple[float, int]:
    """Aoyagi's λ and multiplicity θ for a deep linear network (primer §4).

    ``widths`` are written input → hidden … → output, ``(d_in, h_1, …, d_out)``; internally
    they are reversed to Aoyagi's output-first H^(1), …, H^(L+1) (H^(1) = output dim,
    H^(L+1) = input dim).  With excess widths M_s = H^(s) − r, the unique index set S
    (|S| = ℓ + 1 ≥ 2) satisfies max_S M < min_{∉S} M, Σ_S M ≥ ℓ·max_S M and
    Σ_S M < ℓ·min_{∉S} M.  With M = ⌈Σ_S M_s / ℓ⌉ and a = Σ_S M_s − (M − 1)ℓ,

        λ = (−r² + r(H^(1) + H^(L+1)))/2 + (M·a + (M − 1)·Σ_S M_s)/4 − ¼ Σ_S M_s²,
        θ = a(ℓ − a) + 1.

    (Seed 004 prints the middle term over 4ℓ — a typo.)  Biases on every layer add
    H^(1)/2 to λ and leave θ unchanged.  This is the minimum over true parameters: the
    LLC at a w* whose every layer has rank exactly r.

    Parameters
    ----------
    widths : sequence of int
        Layer widths, input first; at least two (one linear layer).
    rank : int
        r = rank of the true end-to-end matrix, 0 ≤ r ≤ min(widths).
    bias : bool
        Whether every layer has a bias.

    Returns
    -------
    (λ, θ) : (float, int)
    """
    hs = [_as_int(h, "width") for h in widths]
    if len(hs) < 2:
        raise ValueError("widths needs at least an input and an output width")
    if any(h < 1 for h in hs):
        raise ValueError(f"widths must be positive, got {tuple(hs)}")
    r = _as_int(rank, "rank")
    if not 0 <= r <= min(hs):
        raise ValueError(f"rank must lie in [0, min(widths) = {min(hs)}], got {r}")
    h_out_first = hs[::-1]
    excess = [h - r for h in h_out_first]
    subset = _aoyagi_subset(excess)
    ell = len(subset) - 1
    total = sum(excess[i] for i in subset)
    m_big = -(-total // ell)  # ceil
    a = total - (m_big - 1) * ell
    lam = Fraction(-(r**2) + r * (h_out_first[0] + h_out_first[-1]), 2)
    lam += Fraction(m_big * a + (m_big - 1) * total, 4)
    lam -= Fraction(sum(excess[i] ** 2 for i in subset), 4)
    if bias:
        lam += Fraction(h_out_first[0], 2)
    theta = a * (ell - a) + 1
    return float(lam), int(theta)


def _aoyagi_subset(excess: Sequence[int]) -> list[int]:
    """The unique S of Aoyagi (2024): a set of smallest excess widths meeting the three conditions."""
    order = sorted(range(len(excess)), key=lambda i: excess[i])
    for size in range(2, len(excess) + 1):
        chosen = order[:size]
        rest = order[size:]
        ell = size - 1
        max_s = max(excess[i] for i in chosen)
        min_rest = min((excess[i] for i in rest), default=math.inf)
        total = sum(excess[i] for i in chosen)
        if max_s < min_rest and total >= ell * max_s and total < ell * min_rest:
            return chosen
    raise AssertionError(f"no Aoyagi index set for excess widths {list(excess)}")  # pragma: no cover
