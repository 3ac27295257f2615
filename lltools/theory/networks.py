"""λ of a two-layer quadratic network f(x) = V σ(Wᵀx), σ(t) = t² (seed 003; primer §4).

ONE function, :func:`quadratic_network_llc`: the truth is λ = rank(J)/2 — J the Jacobian of
the outputs with respect to the parameters — at a generic teacher (or at a checkpoint, with
:func:`output_jacobian_rank`).  The closed form of Cullen et al. (2026) is shown beside it
as "Cullen et al. formula":

- K ≥ d(d+1)/2 (generic):        p·d(d+1)/4
- K < d(d+1)/2 (non-degenerate): K(d + p − 1)/2
- stage-II, K_eff active units:  K_eff(d + p − 1)/2

The formula is not a theorem outside its regime (p = 1, or when the output space caps the
rank), so its validity is decided by comparison with the rank, never by its hypotheses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev

from lltools.theory.closed_forms import _as_int

__all__ = ["QuadraticLLC", "cullen_formula", "output_jacobian_rank", "quadratic_network_llc"]

Regime = Literal["generic", "non-degenerate", "stage-II"]

#: Largest Jacobian (outputs × parameters) formed for the generic-teacher rank.
MAX_JACOBIAN_ENTRIES = 20_000_000


@dataclass(frozen=True)
class QuadraticLLC:
    """λ of a quadratic network: rank(J)/2 as the truth, the Cullen et al. formula beside it.

    Attributes
    ----------
    llc : float or None
        rank(J)/2 at a generic teacher (``None`` when J would be too large to form).
    rank : int or None
        rank(J).
    formula : float
        The Cullen et al. formula for the regime.
    regime : {"generic", "non-degenerate", "stage-II"}
    valid : bool or None
        Whether the formula equals rank(J)/2 (``None`` when the rank was not computed).
    note : str
        Plain language: the rank, the formula, and whether they agree.
    """

    llc: float | None
    rank: int | None
    formula: float
    regime: Regime
    valid: bool | None
    note: str


def cullen_formula(d: int, p: int, K: int, K_eff: int | None = None) -> tuple[float, Regime]:
    """The Cullen et al. (2026) value and its regime (see the module notes); not checked."""
    d, p, K = (_as_int(v, n) for v, n in ((d, "d"), (p, "p"), (K, "K")))
    if min(d, p, K) < 1:
        raise ValueError(f"d, p and K must be positive, got d={d}, p={p}, K={K}")
    if K_eff is not None:
        k_eff = _as_int(K_eff, "K_eff")
        if not 1 <= k_eff <= K:
            raise ValueError(f"K_eff must lie in [1, K={K}], got {k_eff}")
        return k_eff * (d + p - 1) / 2, "stage-II"
    if d * (d + 1) // 2 <= K:
        return p * d * (d + 1) / 4, "generic"
    return K * (d + p - 1) / 2, "non-degenerate"


def quadratic_network_llc(
    d: int,
    p: int,
    K: int,
    K_eff: int | None = None,
    *,
    seed: int = 0,
    max_entries: int = MAX_JACOBIAN_ENTRIES,
) -> QuadraticLLC:
    """λ = rank(J)/2 at a generic teacher, with the Cullen et al. formula and its validity.

    The teacher has Gaussian W (d × K) and V (p × K) (for stage-II, the K − K_eff inactive
    units are switched off: their columns of W and V are zero); the inputs are
    3·d(d+1) Gaussian points, so Q ↦ outputs is injective.  J is formed in float64 and its
    rank counted with NumPy's ``matrix_rank`` tolerance.

    Parameters
    ----------
    d, p, K : int
        Input dimension, outputs, hidden width.
    K_eff : int, optional
        Active units of a stage-II solution (1 ≤ K_eff ≤ K).
    seed : int
        Fixes the teacher and inputs.
    max_entries : int
        Above this many Jacobian entries the rank is not computed (``llc = None``).
    """
    formula, regime = cullen_formula(d, p, K, K_eff)
    n = 3 * d * (d + 1)
    n_params = K * (d + p)
    if n * p * n_params > max_entries:
        return QuadraticLLC(
            None,
            None,
            formula,
            regime,
            None,
            f"Cullen et al. formula ({regime}) = {formula:g}; rank(J) not computed "
            f"({n * p:,} outputs × {n_params:,} parameters is too large), so its validity is unknown",
        )
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, K, generator=g, dtype=torch.float64)
    v = torch.randn(p, K, generator=g, dtype=torch.float64)
    if K_eff is not None:
        w[:, int(K_eff) :] = 0.0
        v[:, int(K_eff) :] = 0.0

    def outputs(theta: Tensor) -> Tensor:
        wm = theta[: d * K].reshape(d, K)
        vm = theta[d * K :].reshape(p, K)
        return ((x @ wm) ** 2 @ vm.T).reshape(-1)

    jac = jacrev(outputs)(torch.cat([w.reshape(-1), v.reshape(-1)]))
    rank = int(torch.linalg.matrix_rank(jac).item())
    llc = rank / 2
    valid = abs(llc - formula) < 1e-9
    verdict = "agrees" if valid else "does NOT agree (the formula does not apply here)"
    note = (
        f"λ = rank(J)/2 = {llc:g} at a generic teacher; Cullen et al. formula ({regime}) = {formula:g}, "
        f"which {verdict}"
    )
    return QuadraticLLC(llc, rank, formula, regime, valid, note)


def output_jacobian_rank(
    module: nn.Module,
    inputs: Tensor,
    *,
    centred: bool = True,
    rtol: float | None = None,
) -> int:
    """Numerical rank of the Jacobian of the outputs on ``inputs`` w.r.t. the parameters.

    rank(J)/2 is the LLC of a minimally singular model (primer §4) — a cheap, honest
    reference beside the closed forms.

    Parameters
    ----------
    module : nn.Module
    inputs : Tensor, shape (N, ...)
    centred : bool, optional
        Project each output vector with P⊥ = I − (1/p)11ᵀ first (default), since the
        centred loss cannot see the all-ones direction.
    rtol : float, optional
        Relative singular-value cut-off (default: max(shape) · machine epsilon of float64).

    Returns
    -------
    int
        The rank, computed in float64 with an SVD.
    """

    params = {k: v.detach().double() for k, v in module.named_parameters()}
    x = inputs.double()

    def outputs(pr: dict[str, Tensor]) -> Tensor:
        out = functional_call(module, pr, (x,))
        if centred:
            out = out - out.mean(dim=-1, keepdim=True)
        return out.reshape(-1)

    jac = jacrev(outputs)(params)
    mat = torch.cat([j.reshape(j.shape[0], -1) for j in jac.values()], dim=1)
    sv = torch.linalg.svdvals(mat)
    if sv.numel() == 0:
        return 0
    tol = (rtol if rtol is not None else max(mat.shape) * torch.finfo(torch.float64).eps) * sv[0]
    return int((sv > tol).sum().item())


def _layer_factors(weights: list[Tensor], layer: int) -> tuple[Tensor, Tensor]:
    """``(A, B)``: the products of the layers above and below ``layer`` (float64)."""
    if not 0 <= layer < len(weights):
        raise ValueError(f"layer must be in 0..{len(weights) - 1}, got {layer}")
    ws = [w.detach().double() for w in weights]
    above = torch.eye(ws[-1].shape[0], dtype=torch.float64)
    for w in reversed(ws[layer + 1:]):
        above = above @ w
    below = torch.eye(ws[0].shape[1], dtype=torch.float64)
    for w in ws[:layer]:
        below = w @ below
    return above, below


def _numerical_rank(m: Tensor, rtol: float) -> int:
    s = torch.linalg.svdvals(m)
    return int((s > rtol * float(s.max())).sum()) if s.numel() and float(s.max()) > 0 else 0


def restricted_deep_linear_llc(weights: list[Tensor], layer: int, *, rtol: float | None = None) -> float:
    """Exact λ of a deep linear network restricted to one layer (primer §7).

    With every other layer held at its value, f(x) = A·W_k·B·x is linear in W_k (A the
    product of the layers above, B of those below), so the MSE loss around w* is the
    quadratic form ½ E‖A·ΔW_k·B·x‖²; for inputs of full-rank covariance its rank is
    rank(A)·rank(B) and λ_k = rank(A)·rank(B)/2 (a regular model on that slice).

    Parameters
    ----------
    weights : list of Tensor
        Layer matrices W_1 … W_L (input → output), shapes (d_1, d_0), …, (d_L, d_{L−1}).
    layer : int
        Which layer is sampled (0-based: 0 is W_1).
    rtol : float, optional
        Singular values below ``rtol``·σ_max count as zero (default: 100·dimension·the
        machine epsilon of the weights' dtype, so float32 rounding is not mistaken for rank).

    Returns
    -------
    float
        rank(A)·rank(B)/2 (A = I for the last layer, B = I for the first).
    """
    above, below = _layer_factors(weights, layer)
    if rtol is None:
        rtol = 100 * max(max(w.shape) for w in weights) * torch.finfo(weights[0].dtype).eps
    return _numerical_rank(above, rtol) * _numerical_rank(below, rtol) / 2


def restricted_deep_linear_expectation(
    weights: list[Tensor], layer: int, inputs: Tensor, nbeta: float, gamma: float
) -> float:
    """Exact E[nβ(L − L(w*))] of the localised tempered posterior restricted to one layer of
    a deep linear network at an exact minimum (noiseless teacher), for finite γ > 0.

    The restricted loss is exactly quadratic, L − L* = ½ tr(A ΔW B Σ̂ Bᵀ ΔWᵀ Aᵀ) with
    Σ̂ = XᵀX/n (the ``"mse"`` convention ½‖y − f‖², mean over samples), whose Hessian
    (B Σ̂ Bᵀ) ⊗ (AᵀA) has eigenvalues μ_a·ν_b.  The posterior ∝ exp(−nβ L − γ‖ΔW‖²/2)
    is Gaussian, so E[nβ(L − L*)] = ½ Σ_j nβ h_j / (nβ h_j + γ), which tends to
    :func:`restricted_deep_linear_llc` as γ → 0.  This is what SGLD's λ̂ estimates at finite
    γ, up to the step size's discretisation bias.
    """
    if gamma <= 0:
        raise ValueError("gamma must be > 0 (at γ = 0 use restricted_deep_linear_llc)")
    above, below = _layer_factors(weights, layer)
    x = inputs.detach().double()
    sigma = x.T @ x / x.shape[0]
    mu = torch.linalg.eigvalsh(below @ sigma @ below.T).clamp(min=0.0)
    nu = torch.linalg.eigvalsh(above.T @ above).clamp(min=0.0)
    h = torch.outer(mu, nu).reshape(-1)
    return float(0.5 * (nbeta * h / (nbeta * h + gamma)).sum())
