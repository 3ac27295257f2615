"""The SGLD kernel maths, written once: potential, its gradient, the Langevin update, the MALA
acceptance and the divergence mask (primer §2–§3).

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
"""

from __future__ import annotations

import torch
from torch import Tensor

#: ``param_dim`` of chain-major (C, d) tensors.
CHAIN_MAJOR = 1
#: ``param_dim`` of chain-minor (d, C) tensors.
CHAIN_MINOR = 0


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
    w: Tensor, grad_u: Tensor, noise: Tensor, epsilon: Tensor, *, param_dim: int = CHAIN_MAJOR
) -> Tensor:
    """The SGLD proposal w' = w − (ε/2)·∇U(w) + √ε·ξ with ξ ~ N(0, I), the layout of ``w``."""
    eps = per_chain(epsilon, param_dim)
    return w - 0.5 * eps * grad_u + torch.sqrt(eps) * noise


def mala_log_ratio(
    w: Tensor, w_new: Tensor, u: Tensor, u_new: Tensor, grad_u: Tensor, grad_u_new: Tensor,
    epsilon: Tensor, *, param_dim: int = CHAIN_MAJOR,
) -> Tensor:
    """log of the MALA acceptance ratio of the Langevin proposal w → w' (primer §3), shape (C,):

        U(w) − U(w') + [‖w' − w + (ε/2)g‖² − ‖w − w' + (ε/2)g'‖²] / (2ε)

    with g = ∇U(w), g' = ∇U(w').  The bracket is evaluated as (a−b)·(a+b) to avoid
    cancelling two O(d) norms.
    """
    half_eps = 0.5 * per_chain(epsilon, param_dim)
    diff = 2.0 * (w_new - w) + half_eps * (grad_u - grad_u_new)  # a − b
    total = half_eps * (grad_u + grad_u_new)  # a + b
    log_q_ratio = (diff * total).sum(dim=param_dim) / (2.0 * epsilon)
    return u - u_new + log_q_ratio


def mala_acceptance(
    w: Tensor, w_new: Tensor, u: Tensor, u_new: Tensor, grad_u: Tensor, grad_u_new: Tensor,
    epsilon: Tensor, *, param_dim: int = CHAIN_MAJOR,
) -> Tensor:
    """MALA acceptance probability min(1, exp(:func:`mala_log_ratio`)), shape (C,); NaN → 0."""
    log_a = mala_log_ratio(w, w_new, u, u_new, grad_u, grad_u_new, epsilon, param_dim=param_dim)
    return torch.nan_to_num(torch.exp(torch.clamp(log_a, max=0.0)), nan=0.0)


def divergence_mask(
    loss: Tensor, w_new: Tensor, loss_init: Tensor, nbeta: Tensor, threshold: float | Tensor, *,
    loss_new: Tensor | None = None, param_dim: int = CHAIN_MAJOR,
) -> Tensor:
    """Which chains diverge on this step, bool (C,): a non-finite loss or new position, an
    excess nβ·(L − L(w*)) above ``threshold``, or (when given) a non-finite loss at w'."""
    excess = nbeta * (loss - loss_init)
    bad = ~torch.isfinite(loss) | (excess > threshold) | ~torch.isfinite(w_new).all(dim=param_dim)
    if loss_new is not None:
        bad = bad | ~torch.isfinite(loss_new)
    return bad


def propose(
    w: Tensor, centre: Tensor, grad_loss: Tensor, noise: Tensor, epsilon: Tensor, gamma: Tensor,
    nbeta: Tensor, *, param_dim: int = CHAIN_MAJOR,
) -> tuple[Tensor, Tensor]:
    """The first half of a step: ``(w', ∇U(w))`` from ∇L(w) and this step's noise ξ."""
    grad_u = potential_grad(grad_loss, w, centre, nbeta, gamma, param_dim=param_dim)
    return langevin_update(w, grad_u, noise, epsilon, param_dim=param_dim), grad_u


def settle(
    w: Tensor, w_new: Tensor, centre: Tensor, loss: Tensor, loss_new: Tensor, grad_u: Tensor,
    grad_new: Tensor, loss_init: Tensor, diverged_at: Tensor, epsilon: Tensor, gamma: Tensor,
    nbeta: Tensor, step: Tensor, threshold: float | Tensor, *, compute_acceptance: bool,
    check_new_loss: bool, param_dim: int = CHAIN_MAJOR,
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
        acceptance = mala_acceptance(w, w_new, u, u_new, grad_u, grad_u_new, epsilon, param_dim=param_dim)
    else:
        acceptance = torch.full_like(loss, float("nan"))
    bad = divergence_mask(loss, w_new, loss_init, nbeta, threshold,
                          loss_new=loss_new if check_new_loss else None, param_dim=param_dim)
    newly = bad & (diverged_at < 0)
    diverged = torch.where(newly, step, diverged_at)
    dead = diverged >= 0
    nan = torch.full_like(loss, float("nan"))
    dead_p = per_chain(dead, param_dim)
    return (
        torch.where(dead_p, centre, w_new),
        torch.where(dead, loss_init, loss_new),
        torch.where(dead_p, torch.zeros_like(grad_new), grad_new),
        diverged,
        torch.where(dead, nan, loss),
        torch.where(dead, nan, acceptance),
    )
