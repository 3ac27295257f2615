"""The Hessian of the full-data loss L_n at w*: its spectrum and the count of flat directions.

Why it is here (primer §1, §4): near a *regular* minimum all d Hessian eigenvalues are
positive and λ = d/2.  A singular model has near-zero eigenvalues, and the naive count
"Hessian rank / 2" is what one might guess λ to be.  It is not: directions where the loss
grows only quartically (or along a curve) are counted as flat by the Hessian but still
cost volume, so λ ≥ rank(H)/2 — and at a zero-loss minimum of an MSE model H = JᵀJ/n,
so rank(H)/2 = rank(J)/2 exactly, while λ can be larger (deep linear networks, Aoyagi).

Two paths, both on Hessian-vector products v ↦ H v from ``torch.func`` (forward-over-reverse
on the scalar L_n(w), float64):

- **exact** (d ≤ ``max_exact_dim``): the full Hessian (d HVPs, vectorised) and ``eigh``;
  the near-zero count is exact at the stated tolerance;
- **Lanczos** (larger d): ``steps`` Lanczos iterations with full reorthogonalisation give the
  top and bottom Ritz values (extreme eigenvalues converge first).  Lanczos cannot see
  multiplicities, so the near-zero count comes from a **randomized range sketch**: Y = H Ω
  for k Gaussian probes, Q an orthonormal basis of range(Y), and the eigenvalues of QᵀHQ.
  When rank(Y) < k the range of H is inside span(Q) (with probability 1), so those are all
  the non-zero eigenvalues and the count is determined; past ``max_probes`` it is ``None``.

Tolerance: an eigenvalue is "near zero" when |μ| ≤ ``tolerance`` =
``rtol``·max|μ| (default rtol = 1e-6), stated in every result.

Loss convention: that of the target (NetworkTarget's ``"mse"`` is ½‖y − f‖² averaged over
samples, so a linear model y ≈ Wx has H = XᵀX/n per output, not 2XᵀX/n).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.func import grad, jvp, vmap

from lltools.targets.base import Target
from lltools.targets.reduction import reduced_target

__all__ = [
    "DEFAULT_RTOL",
    "MAX_EXACT_DIM",
    "MAX_PROBES",
    "HessianSpectrum",
    "hessian_matrix",
    "hessian_spectrum",
    "hvp_function",
    "lanczos",
    "sketch_rank",
]

#: Relative tolerance of "near zero": |μ| ≤ DEFAULT_RTOL·max|μ|.
DEFAULT_RTOL = 1e-6
#: Largest d for which the full Hessian is formed and diagonalised (d² float64 values).
MAX_EXACT_DIM = 2500
#: HVPs evaluated at once when the full Hessian is built (and per sketch block).
HVP_BLOCK = 64
#: Most random probes of the range sketch (the count is unknown past rank ≈ this).
MAX_PROBES = 2048


@dataclass(frozen=True)
class HessianSpectrum:
    """Extreme eigenvalues of the Hessian of L_n at w*, and the near-zero count.

    Attributes
    ----------
    dim : int
        d.
    method : {"exact", "lanczos"}
    top_eigenvalues : numpy.ndarray, shape (k,)
        The largest eigenvalues, descending.
    bottom_eigenvalues : numpy.ndarray, shape (k,)
        The smallest eigenvalues, ascending (negative ones mean w* is not a minimum).
    tolerance : float
        Absolute threshold of "near zero" (``rtol``·max|μ|).
    rtol : float
    near_zero_count : int or None
        Eigenvalues with |μ| ≤ tolerance: exact for the exact method, from the range sketch
        after Lanczos (``None`` when the rank exceeded ``max_probes``).
    count_method : str
        How the count was obtained.
    top_vectors, bottom_vectors : Tensor, shape (k, d)
        Unit eigenvectors (Ritz vectors) of the eigenvalues above, same order.
    eigenvalues : numpy.ndarray or None, shape (d,)
        The whole spectrum, descending (exact method only).
    residuals : numpy.ndarray, shape (2k,)
        ‖H y − μ y‖ of the top then bottom pairs (0 up to rounding for the exact method).
    steps : int
        Lanczos iterations (d for the exact method).
    note : str
        One plain-language sentence: method, tolerance, what the count means.
    """

    dim: int
    method: str
    top_eigenvalues: np.ndarray
    bottom_eigenvalues: np.ndarray
    tolerance: float
    rtol: float
    near_zero_count: int | None
    count_method: str
    top_vectors: Tensor = field(repr=False)
    bottom_vectors: Tensor = field(repr=False)
    eigenvalues: np.ndarray | None = field(default=None, repr=False)
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    steps: int = 0
    note: str = ""

    @property
    def hessian_rank(self) -> int | None:
        """d − near_zero_count (``None`` when the count is unknown)."""
        return None if self.near_zero_count is None else self.dim - self.near_zero_count

    @property
    def hessian_rank_half(self) -> float | None:
        """rank(H)/2: the "count the curved directions" guess for λ."""
        rank = self.hessian_rank
        return None if rank is None else rank / 2

    @property
    def negative_count(self) -> int | None:
        """Eigenvalues below −tolerance (exact method only)."""
        if self.eigenvalues is None:
            return None
        return int((self.eigenvalues < -self.tolerance).sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the eigenvalues as lists, counts, tolerance, d/2 and rank(H)/2."""
        return {
            "dim": self.dim,
            "d_half": self.dim / 2,
            "method": self.method,
            "top_eigenvalues": [float(v) for v in self.top_eigenvalues],
            "bottom_eigenvalues": [float(v) for v in self.bottom_eigenvalues],
            "near_zero_count": self.near_zero_count,
            "count_method": self.count_method,
            "tolerance": self.tolerance,
            "rtol": self.rtol,
            "hessian_rank": self.hessian_rank,
            "hessian_rank_half": self.hessian_rank_half,
            "negative_count": self.negative_count,
            "steps": self.steps,
            "max_residual": float(self.residuals.max()) if self.residuals.size else None,
            "note": self.note,
        }


# ---------------------------------------------------------------------------- HVPs
def scalar_loss(target: Target) -> Callable[[Tensor], Tensor]:
    """L_n as a function of one parameter vector (d,) -> scalar (full data, differentiable)."""

    def loss(w: Tensor) -> Tensor:
        return target.loss(w[None, :], None)[0]

    return loss


def hvp_function(target: Target, w: Tensor | None = None) -> Callable[[Tensor], Tensor]:
    """v ↦ H v at ``w`` (default w*), H the Hessian of L_n, by ``torch.func`` forward-over-reverse.

    ``v`` has shape (d,) or (k, d) (k products at once, vectorised).  Evaluated in the
    target's dtype: pass a float64 target for exact checks.
    """
    loss = scalar_loss(target)
    point = (target.w_star if w is None else w).detach()
    g = grad(loss)

    def one(v: Tensor) -> Tensor:
        return jvp(g, (point,), (v,))[1]

    batched = vmap(one)

    def hvp(v: Tensor) -> Tensor:
        if v.ndim == 1:
            return one(v)
        try:
            return batched(v)
        except (RuntimeError, NotImplementedError):  # an op without a batching rule
            return torch.stack([one(row) for row in v])

    return hvp


def hessian_matrix(target: Target, w: Tensor | None = None, *, block: int = HVP_BLOCK) -> Tensor:
    """The full Hessian (d, d) of L_n at ``w`` (default w*), symmetrised, from blocks of HVPs."""
    hvp = hvp_function(target, w)
    d = target.dim
    eye = torch.eye(d, dtype=target.dtype, device=target.device)
    cols = [hvp(eye[i : i + block]) for i in range(0, d, block)]
    h = torch.cat(cols).T
    return 0.5 * (h + h.T)


# ---------------------------------------------------------------------------- Lanczos
def lanczos(
    matvec: Callable[[Tensor], Tensor],
    dim: int,
    steps: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor, Tensor]:
    """Lanczos with full reorthogonalisation on a symmetric operator.

    Parameters
    ----------
    matvec : callable
        v (d,) -> A v (d,).
    dim : int
        d.
    steps : int
        Iterations m ≤ d (stops early on an invariant subspace).
    seed : int
        Of the random unit start vector.

    Returns
    -------
    ritz_values : Tensor, shape (m,)
        Ascending.
    ritz_vectors : Tensor, shape (m, d)
        Unit Ritz vectors, same order.
    residuals : Tensor, shape (m,)
        ‖A y − θ y‖ = |β_m·s_m| for each pair.
    """
    steps = max(1, min(int(steps), int(dim)))
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    q = torch.randn(dim, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    q = q / q.norm()
    basis = torch.zeros(steps, dim, dtype=dtype, device=device)
    alphas: list[float] = []
    betas: list[float] = []
    beta_last = 0.0
    for j in range(steps):
        basis[j] = q
        z = matvec(q)
        alpha = float(q @ z)
        alphas.append(alpha)
        for _ in range(2):  # full reorthogonalisation, twice ("twice is enough")
            z = z - basis[: j + 1].T @ (basis[: j + 1] @ z)
        beta = float(z.norm())
        scale = max(abs(a) for a in alphas) + (max(betas) if betas else 0.0)
        if j == steps - 1 or beta <= 1e-12 * max(scale, 1e-300):
            beta_last = beta
            break
        betas.append(beta)
        q = z / beta
    m = len(alphas)
    tri = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if m > 1:
        off = torch.tensor(betas[: m - 1], dtype=torch.float64)
        tri = tri + torch.diag(off, 1) + torch.diag(off, -1)
    theta, s = torch.linalg.eigh(tri)
    vectors = (basis[:m].T.to(torch.float64) @ s.to(basis.device)).T  # (m, d)
    residuals = (beta_last * s[-1, :]).abs()
    return theta, vectors.to(dtype), residuals


# ---------------------------------------------------------------------------- range sketch
def sketch_rank(
    hvp: Callable[[Tensor], Tensor],
    dim: int,
    tolerance: float,
    *,
    max_probes: int = MAX_PROBES,
    block: int = HVP_BLOCK,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[int | None, int]:
    """The number of eigenvalues with |μ| > ``tolerance`` by a randomized range sketch.

    Probes come in blocks of b = ``block`` Gaussian vectors; each block's H Ω is orthogonalised
    against the directions already found, and its new directions (singular values above
    tolerance·(√d + √b), what the near-zero eigenvalues can contribute) join the basis Q.
    When a block adds at least 8 fewer directions than it has probes, the range of the
    eigenvalues above the tolerance is captured, and the count is that of the eigenvalues of
    QᵀHQ above it.  An eigenvalue within a factor ≈ √(d/b) of the tolerance can be missed:
    the count is reliable when the spectrum has a gap there (as at a true parameter).

    Returns
    -------
    rank : int or None
        The count, or ``None`` when ``max_probes`` probes did not exhaust the range.
    probes : int
        Hessian-vector products spent on Y (QᵀHQ costs about rank more).
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed) + 1)
    basis = torch.zeros(0, dim, dtype=dtype, device=device)  # orthonormal rows spanning range(Y)
    probes = 0
    # The directions with |μ| ≤ tolerance can put up to tolerance·σ_max(Ω) ≈ tolerance·(√d + √b)
    # into a block's singular values: below that a direction is not "new".
    cut = float(tolerance) * (math.sqrt(dim) + math.sqrt(block))
    while probes < max_probes:
        size = min(block, max_probes - probes)
        omega = torch.randn(size, dim, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
        z = hvp(omega)
        probes += size
        for _ in range(2):  # block Gram-Schmidt against what is already captured
            z = z - (z @ basis.T) @ basis
        _, sv, vh = torch.linalg.svd(z, full_matrices=False)
        new = sv > cut
        basis = torch.cat([basis, vh[new]])
        if int(new.sum()) <= size - 8:  # this block found fewer new directions than probes
            if basis.shape[0] == 0:
                return 0, probes
            hq = torch.cat([hvp(basis[i : i + block]) for i in range(0, basis.shape[0], block)])
            small = basis @ hq.T
            mu = torch.linalg.eigvalsh(0.5 * (small + small.T))
            return int((mu.abs() > tolerance).sum()), probes
    return None, probes


# ---------------------------------------------------------------------------- the spectrum
def hessian_spectrum(
    target: Target,
    *,
    top: int = 20,
    rtol: float = DEFAULT_RTOL,
    method: str = "auto",
    max_exact_dim: int = MAX_EXACT_DIM,
    steps: int | None = None,
    max_probes: int = MAX_PROBES,
    seed: int = 0,
) -> HessianSpectrum:
    """The top-k and bottom-k Hessian eigenvalues of L_n at w*, and the near-zero count.

    Parameters
    ----------
    target : Target
        Evaluated in float64 (``target.to(dtype=torch.float64)``); a model linear in its input
        is first put on its exactly equivalent small dataset
        (:func:`lltools.targets.reduction.reduced_target`).
    top : int
        k, the number of eigenvalues reported at each end (capped at d).
    rtol : float
        "Near zero" means |μ| ≤ rtol·max|μ|.
    method : {"auto", "exact", "lanczos"}
        ``auto``: exact when d ≤ ``max_exact_dim``, else Lanczos.
    steps : int, optional
        Lanczos iterations (default min(d, max(4k + 40, 80))).
    max_probes : int
        Budget of the range sketch that counts the near-zero eigenvalues after Lanczos
        (0 skips it: the count is then ``None``).
    seed : int
        Lanczos start vector and sketch probes.

    Raises
    ------
    ValueError
        An unknown method, k < 1, or a non-positive rtol.
    """
    if method not in ("auto", "exact", "lanczos"):
        raise ValueError(f"unknown method {method!r}; use auto, exact or lanczos")
    if int(top) < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    if not (rtol > 0 and math.isfinite(rtol)):
        raise ValueError(f"the relative tolerance must be a positive number, got {rtol}")
    t64 = reduced_target(target.to(dtype=torch.float64))
    d = t64.dim
    k = min(int(top), d)
    use_exact = method == "exact" or (method == "auto" and d <= max_exact_dim)
    if use_exact:
        h = hessian_matrix(t64)
        evals, evecs = torch.linalg.eigh(h)  # ascending
        evals_np = evals.cpu().numpy()
        scale = float(np.abs(evals_np).max()) if evals_np.size else 0.0
        tol = rtol * scale
        count = int((np.abs(evals_np) <= tol).sum())
        top_idx = torch.arange(d - 1, d - 1 - k, -1)
        bottom_idx = flattest_order(evals)[:k]
        resid = (h @ evecs - evecs * evals).norm(dim=0).cpu().numpy()
        return HessianSpectrum(
            dim=d, method="exact", top_eigenvalues=evals_np[top_idx.numpy()],
            bottom_eigenvalues=np.sort(evals_np[:k]), tolerance=tol, rtol=rtol,
            near_zero_count=count, count_method="exact (full eigendecomposition)",
            top_vectors=evecs[:, top_idx].T.contiguous(),
            bottom_vectors=evecs[:, bottom_idx].T.contiguous(), eigenvalues=evals_np[::-1].copy(),
            residuals=np.concatenate([resid[top_idx.numpy()], resid[bottom_idx.numpy()]]), steps=d,
            note=(f"full eigendecomposition of the {d}×{d} Hessian (float64); {count} of {d} eigenvalues "
                  f"have |μ| ≤ {tol:.3g} = {rtol:g}·max|μ|"),
        )
    n_steps = int(steps) if steps is not None else min(d, max(4 * k + 40, 80))
    hvp = hvp_function(t64)
    theta, vectors, resid = lanczos(hvp, d, n_steps, seed=seed, device=t64.device)
    m = theta.numel()
    kk = min(k, m)
    theta_np, resid_np = theta.cpu().numpy(), resid.cpu().numpy()
    top_idx = np.arange(m - 1, m - 1 - kk, -1)
    scale = float(np.abs(theta_np).max()) if m else 0.0
    tol = rtol * scale
    rank, probes = (None, 0) if max_probes <= 0 else sketch_rank(
        hvp, d, tol, max_probes=max_probes, seed=seed, device=t64.device)
    count = None if rank is None else d - rank
    if rank is not None:
        how = (f"randomized range sketch ({probes} probes found rank {rank} < probes; reliable when the "
               "spectrum has a gap at the tolerance)")
    elif max_probes > 0:
        how = f"unknown: the range sketch's {probes} probes did not exhaust rank(H)"
    else:
        how = "not computed"
    order = flattest_order(theta)[:kk]
    return HessianSpectrum(
        dim=d, method="lanczos", top_eigenvalues=theta_np[top_idx], bottom_eigenvalues=theta_np[:kk],
        tolerance=tol, rtol=rtol, near_zero_count=count, count_method=how,
        top_vectors=vectors[torch.as_tensor(top_idx.copy())], bottom_vectors=vectors[order],
        residuals=np.concatenate([resid_np[top_idx], resid_np[:kk]]), steps=m,
        note=(f"{m} Lanczos steps on Hessian-vector products (float64, full reorthogonalisation) for "
              f"the extreme eigenvalues; near-zero count (|μ| ≤ {tol:.3g} = {rtol:g}·max|μ|): {how}"),
    )


def flattest_order(evals: Tensor) -> Tensor:
    """Indices of ``evals`` by increasing |μ| (the flattest directions first)."""
    return torch.argsort(evals.abs(), stable=True)
