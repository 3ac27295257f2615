"""The SGLD kernel maths, written once: potential, its gradient, the Langevin update, the MALA
acceptance, the divergence mask (primer §2–§3) and the RMSProp preconditioner (primer §7).

Every step — the eager :func:`lltools.sampling.sgld.step` and each compiled step of
:mod:`lltools.sampling.compiled` — obtains the loss and gradient its own way (a backward
pass, ``torch.func`` inside a compiled graph, a minibatch gather) and then calls
:func:`propose` and :func:`settle` here, so the update is stated in one place.

Layouts
-------
Position-like tensors (w, w*, ∇L, noise) are either chain-major, shape ``(C, d)``
(``param_dim=1``, the eager layout), or chain-minor, shape ``(d, C)`` (``param_dim=0``, the
layout the compiled potential kernel uses so its loops run along the chains).  Per-chain
vectors (ε, γ, nβ, losses, step indices) are always shape ``(C,)``; :func:`per_chain` lifts
them to broadcast against either layout.  All functions are pure and never synchronise with
the host.

Samplers
--------
Each chain runs one of two samplers, chosen by a per-chain code (``SGLDParams.sampler``):

- :data:`SGLD` (0): plain SGLD, w' = w − (ε/2)·∇U(w) + N(0, ε·I);
- :data:`RMSPROP` (1): RMSProp-preconditioned SGLD (pSGLD; Li et al. 2016, as in
  Hitchcock & Hoogland 2025, App. D.3).  Per chain and coordinate a running second moment

      V ← α·V + (1 − α)·(nβ·∇L_B(w))²          (the localisation term γ(w − w*) excluded)

  gives the diagonal preconditioner G = 1/(√V + δ), frozen for the step, and

      w' = w − (ε/2)·G ⊙ ∇U(w) + N(0, ε·G).

  Its MALA health signal is the acceptance of that proposal with G fixed: the forward
  density is N(w − (ε/2)G∇U(w), εG), so the Gaussian norms are G⁻¹-weighted (see
  :func:`mala_log_ratio`).  V starts at 0 and is updated *before* the step, so √V ≥
  √(1−α)·|nβ∇L_B| and the drift per coordinate is at most ε/(2√(1−α)) (= 5ε at α = 0.99):
  a stiff direction cannot make the drift blow up, unlike plain SGLD.

  Bias: pSGLD drops the Γ = ∇·G correction term, so where G follows the state it samples
  ∝ e^(−U)/G rather than e^(−U).  With minibatch noise V is dominated by the gradient noise
  and settles; without it (potentials, full-batch networks) V tracks the state over its
  window W = 1/(1−α) and λ̂ is biased upward unless W ≫ the chain's decorrelation time
  (tests/sampling/test_rmsprop.py: +29 % at α = 0.99, +5 % at α = 0.9999 on a Gaussian).

  Note on scale: devinterp's ``rmsprop_sgld`` accumulates V from ∇L_B *without* nβ.  With
  the same α the two samplers coincide under ε_devinterp = ε/nβ and δ_devinterp = δ/nβ.

With G ≡ 1 every formula reduces, bit for bit, to plain SGLD's (multiplying by 1.0 and
taking √(ε·1) are exact), so a chain's numbers do not depend on which samplers share its
batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: ``param_dim`` of chain-major (C, d) tensors.
CHAIN_MAJOR = 1
#: ``param_dim`` of chain-minor (d, C) tensors.
CHAIN_MINOR = 0

#: Sampler codes (per-chain ``SGLDParams.sampler`` values) and their names.
SGLD = 0
RMSPROP = 1
SAMPLER_NAMES = ("sgld", "rmsprop")
#: RMSProp decay α of the running second moment (devinterp's and torch's default).
RMSPROP_DECAY = 0.99
#: RMSProp stabiliser δ in G = 1/(√V + δ): caps G at 1/δ where the gradient vanishes.
RMSPROP_DELTA = 0.1


def sampler_code(name: str) -> int:
    """The code of a sampler name ("sgld" or "rmsprop"); ``ValueError`` (one line) otherwise."""
    key = str(name).strip().lower()
    if key not in SAMPLER_NAMES:
        raise ValueError(f"unknown sampler {name!r}: choose one of {', '.join(SAMPLER_NAMES)}")
    return SAMPLER_NAMES.index(key)


def sampler_name(code: int) -> str:
    """The name of a sampler code."""
    return SAMPLER_NAMES[int(code)]


def per_chain(x: Tensor, param_dim: int = CHAIN_MAJOR) -> Tensor:
    """A per-chain vector (C,) shaped to broadcast against position tensors: (C, 1) for the
    chain-major layout, (C,) unchanged for the chain-minor one."""
    return x[:, None] if param_dim == CHAIN_MAJOR else x


def potential(
    loss: Tensor, w: Tensor, centre: Tensor, nbeta: Tensor, gamma: Tensor, *, param_dim: int = CHAIN_MAJOR
) -> Tensor:
    """U(w) = nβ·L(w) + (γ/2)‖w − w*‖², shape (C,).

    ``loss``, ``nbeta``, ``gamma`` are (C,); ``w``, ``centre`` (C, d) or (d, C) per ``param_dim``.
    """
    return nbeta * loss + 0.5 * gamma * ((w - centre) ** 2).sum(dim=param_dim)


def potential_grad(
    grad_loss: Tensor, w: Tensor, centre: Tensor, nbeta: Tensor, gamma: Tensor, *,
    param_dim: int = CHAIN_MAJOR,
) -> Tensor:
    """∇U(w) = nβ·∇L(w) + γ·(w − w*), the layout of ``w``."""
    return per_chain(nbeta, param_dim) * grad_loss + per_chain(gamma, param_dim) * (w - centre)


def langevin_update(
    w: Tensor, grad_u: Tensor, noise: Tensor, epsilon: Tensor, *, precond: Tensor | None = None,
    param_dim: int = CHAIN_MAJOR,
) -> Tensor:
    """The SGLD proposal w' = w − (ε/2)·∇U(w) + √ε·ξ with ξ ~ N(0, I), the layout of ``w``.

    With a diagonal preconditioner ``precond`` G (the layout of ``w``; 1 for plain-SGLD
    chains) the proposal is w' = w − (ε/2)·G ⊙ ∇U(w) + √(ε·G) ⊙ ξ.
    """
    eps = per_chain(epsilon, param_dim)
    if precond is None:
        return w - 0.5 * eps * grad_u + torch.sqrt(eps) * noise
    return w - 0.5 * eps * (precond * grad_u) + torch.sqrt(eps * precond) * noise


def rmsprop_moment(
    moment: Tensor, grad_loss: Tensor, nbeta: Tensor, decay: Tensor, *, param_dim: int = CHAIN_MAJOR,
) -> Tensor:
    """The running second moment V ← α·V + (1 − α)·(nβ·∇L)², the layout of ``grad_loss``.

    Only the gradient of nβ·L enters (not the localisation term γ(w − w*)); ``nbeta`` and
    the decay α are per chain, (C,).
    """
    g = per_chain(nbeta, param_dim) * grad_loss
    a = per_chain(decay, param_dim)
    return a * moment + (1.0 - a) * (g * g)


def preconditioner(
    moment: Tensor, sampler: Tensor, delta: Tensor, *, param_dim: int = CHAIN_MAJOR
) -> Tensor:
    """G per chain and coordinate: 1/(√V + δ) for RMSProp chains, exactly 1 for SGLD chains.

    ``moment`` (C, d) or (d, C); ``sampler`` (C,) integer codes; ``delta`` (C,).
    """
    rms = per_chain(sampler == RMSPROP, param_dim)
    g = 1.0 / (torch.sqrt(moment) + per_chain(delta, param_dim))
    return torch.where(rms, g, torch.ones_like(moment))


def precondition(
    moment: Tensor | None, grad_loss: Tensor, nbeta: Tensor,
    rmsprop: tuple[Tensor, Tensor, Tensor] | None, *, param_dim: int = CHAIN_MAJOR,
) -> tuple[Tensor | None, Tensor | None]:
    """This step's ``(V, G)`` from the previous V (``moment``) and ∇L_B(w).

    ``rmsprop`` is ``(sampler codes, decay α, stabiliser δ)``, each (C,)
    (``SGLDParams.rmsprop``), or None when every chain is plain SGLD: then ``(moment, None)``
    is returned and the step is the unchanged plain-SGLD one.
    """
    if rmsprop is None:
        return moment, None
    if moment is None:
        raise ValueError("an RMSProp chain needs its second moment in the state (sgld.init makes it)")
    sampler, decay, delta = rmsprop
    new_moment = rmsprop_moment(moment, grad_loss, nbeta, decay, param_dim=param_dim)
    return new_moment, preconditioner(new_moment, sampler, delta, param_dim=param_dim)


def mala_log_ratio(
    w: Tensor, w_new: Tensor, u: Tensor, u_new: Tensor, grad_u: Tensor, grad_u_new: Tensor,
    epsilon: Tensor, *, precond: Tensor | None = None, param_dim: int = CHAIN_MAJOR,
) -> Tensor:
    """log of the MALA acceptance ratio of the Langevin proposal w → w' (primer §3), shape (C,):

        U(w) − U(w') + [‖w' − w + (ε/2)g‖² − ‖w − w' + (ε/2)g'‖²] / (2ε)

    with g = ∇U(w), g' = ∇U(w').  The bracket is evaluated as (a−b)·(a+b) to avoid
    cancelling two O(d) norms.

    With a frozen diagonal preconditioner G (``precond``) the proposal is
    N(w − (ε/2)Gg, εG) and the norms are G⁻¹-weighted: with a = w' − w + (ε/2)Gg and
    b = w − w' + (ε/2)Gg', Σ(a−b)(a+b)/G = Σ[2(w' − w) + (ε/2)G(g − g')]·(ε/2)(g + g'), so G
    is never divided by.
    """
    half_eps = 0.5 * per_chain(epsilon, param_dim)
    drift_diff = grad_u - grad_u_new if precond is None else precond * (grad_u - grad_u_new)
    diff = 2.0 * (w_new - w) + half_eps * drift_diff  # (a − b), G⁻¹-weighted below
    total = half_eps * (grad_u + grad_u_new)  # a + b
    log_q_ratio = (diff * total).sum(dim=param_dim) / (2.0 * epsilon)
    return u - u_new + log_q_ratio


def mala_acceptance(
    w: Tensor, w_new: Tensor, u: Tensor, u_new: Tensor, grad_u: Tensor, grad_u_new: Tensor,
    epsilon: Tensor, *, precond: Tensor | None = None, param_dim: int = CHAIN_MAJOR,
) -> Tensor:
    """MALA acceptance probability min(1, exp(:func:`mala_log_ratio`)), shape (C,); NaN → 0."""
    log_a = mala_log_ratio(w, w_new, u, u_new, grad_u, grad_u_new, epsilon, precond=precond,
                           param_dim=param_dim)
    return torch.nan_to_num(torch.exp(torch.clamp(log_a, max=0.0)), nan=0.0)


def divergence_mask(
    loss: Tensor, w_new: Tensor, loss_init: Tensor, nbeta: Tensor, threshold: float | Tensor, *,
    loss_new: Tensor | None = None, param_dim: int = CHAIN_MAJOR,
) -> Tensor:
    """Which chains diverge on this step, bool (C,): a non-finite loss or new position, an
    excess nβ·(L − L(w*)) above ``threshold``, or (when given) a non-finite loss at w'."""
    excess = nbeta * (loss - loss_init)
    # A row sum is non-finite when any entry is (or when finite entries overflow it, ~1e38:
    # a chain that far out has diverged anyway): one pass over (C, d) instead of the four of
    # isfinite-then-all.
    bad = ~torch.isfinite(loss) | (excess > threshold) | ~torch.isfinite(w_new.sum(dim=param_dim))
    if loss_new is not None:
        bad = bad | ~torch.isfinite(loss_new)
    return bad


def propose(
    w: Tensor, centre: Tensor, grad_loss: Tensor, noise: Tensor, epsilon: Tensor, gamma: Tensor,
    nbeta: Tensor, *, precond: Tensor | None = None, param_dim: int = CHAIN_MAJOR,
) -> tuple[Tensor, Tensor]:
    """The first half of a step: ``(w', ∇U(w))`` from ∇L(w) and this step's noise ξ
    (preconditioned by G where ``precond`` is given, :func:`precondition`)."""
    grad_u = potential_grad(grad_loss, w, centre, nbeta, gamma, param_dim=param_dim)
    return langevin_update(w, grad_u, noise, epsilon, precond=precond, param_dim=param_dim), grad_u


def settle(
    w: Tensor, w_new: Tensor, centre: Tensor, loss: Tensor, loss_new: Tensor, grad_u: Tensor,
    grad_new: Tensor, loss_init: Tensor, diverged_at: Tensor, epsilon: Tensor, gamma: Tensor,
    nbeta: Tensor, step: Tensor, threshold: float | Tensor, *, compute_acceptance: bool,
    check_new_loss: bool, precond: Tensor | None = None, param_dim: int = CHAIN_MAJOR,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The second half of a step: MALA acceptance, divergence bookkeeping and the new state.

    Parameters
    ----------
    w, w_new, centre, grad_u, grad_new : Tensor, (C, d) or (d, C)
        Old and proposed positions, centres, ∇U(w) and ∇L(w') (or the carried gradient when
        the loss at w' was not evaluated).
    loss, loss_new, loss_init : Tensor, (C,)
        L_B(w), L_B(w') (or the carried loss) and L_n(w*).
    diverged_at : Tensor, (C,) int64
        Step of each chain's divergence, −1 while healthy.
    epsilon, gamma, nbeta : Tensor, (C,)
    step : Tensor, int64, 0-d or (C,)
        This step's index.
    threshold : float or 0-d Tensor
        Excess nβ·(L − L(w*)) above which a chain diverges.
    compute_acceptance : bool
        Whether ``loss_new``/``grad_new`` are at w' and the acceptance is wanted (else NaN).
    check_new_loss : bool
        Also count a non-finite L(w') as a divergence (targets without data, whose L(w')
        is always evaluated).
    precond : Tensor, optional
        This step's frozen preconditioner G (:func:`precondition`), for the acceptance.

    Returns
    -------
    tuple of Tensor
        ``(w, loss, grad, diverged_at)`` of the new state — dead chains frozen at w* with the
        reference loss and a zero gradient — and the info ``(loss, acceptance)``, NaN for
        dead chains.
    """
    if compute_acceptance:
        u = potential(loss, w, centre, nbeta, gamma, param_dim=param_dim)
        u_new = potential(loss_new, w_new, centre, nbeta, gamma, param_dim=param_dim)
        grad_u_new = potential_grad(grad_new, w_new, centre, nbeta, gamma, param_dim=param_dim)
        acceptance = mala_acceptance(w, w_new, u, u_new, grad_u, grad_u_new, epsilon, precond=precond,
                                     param_dim=param_dim)
    else:
        acceptance = torch.full_like(loss, float("nan"))
    bad = divergence_mask(loss, w_new, loss_init, nbeta, threshold,
                          loss_new=loss_new if check_new_loss else None, param_dim=param_dim)
    newly = bad & (diverged_at < 0)
    diverged = torch.where(newly, step, diverged_at)
    dead = diverged >= 0
    nan = torch.full_like(loss, float("nan"))
    if w_new.device.type == "cpu" and not torch.compiler.is_compiling() and not bool(dead.any()):
        # Every chain alive (the usual case): no (C, d) copies to freeze the dead ones.  Same
        # values; on CPU the check costs no device sync.
        return w_new, loss_new, grad_new, diverged, loss, acceptance
    dead_p = per_chain(dead, param_dim)
    return (
        torch.where(dead_p, centre, w_new),
        torch.where(dead, loss_init, loss_new),
        grad_new.masked_fill(dead_p, 0.0),  # one pass, no (C, d) zeros
        diverged,
        torch.where(dead, nan, loss),
        torch.where(dead, nan, acceptance),
    )
