"""The SGLD kernel: pure ``init`` / ``step`` functions over all chains at once (primer §2).

Every chain c carries its own hyperparameters ε_c, γ_c, nβ_c (tensors of shape (C,)), so
a whole grid of settings is just more chains in one batched computation.  The update is

    w ← w − (ε/2)·[ nβ·∇L_B(w) + γ·(w − w*) ] + N(0, ε·I)

i.e. a Langevin step on the localised tempered potential
U(w) = nβ·L(w) + (γ/2)‖w − w*‖² with step size ε.  The maths — U, ∇U, the update, the MALA
acceptance, the divergence mask — is :mod:`lltools.sampling.kernel`, shared with the
compiled steps of :mod:`lltools.sampling.compiled`; this module holds the state types and
the eager step, which evaluates the target through its :class:`~lltools.targets.base.Target`
contract.

Alongside each step the kernel reports the MALA acceptance probability of the proposal
(primer §3) — SGLD never rejects; the number is a step-size health signal.  It is computed
with the *same* minibatch at both ends of the proposal (exact for potentials, which have no
minibatch), and only on steps where it is asked for, because for data targets it costs a
second gradient evaluation.

Each chain also has a sampler (``SGLDParams.sampler``, per-chain codes of
:data:`lltools.sampling.kernel.SAMPLER_NAMES`): plain SGLD, or RMSProp-preconditioned SGLD,
whose running second moment V rides in the state (``SGLDState.moment``).  A grid can mix
them: one batched run compares both samplers across ε × γ × nβ.  ``sampler=None`` (the
default) means every chain is plain SGLD and runs the original code path.

A chain whose loss or position becomes non-finite, or whose nβ·(L − L(w*)) exceeds
``divergence_threshold``, is marked diverged at that step: it is frozen at w*, its later
losses are NaN, and estimators exclude it.  No step ever synchronises with the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from lltools.base import rng
from lltools.sampling import kernel
from lltools.targets.base import Target


class SGLDParams(NamedTuple):
    """Per-chain hyperparameters, each a Tensor of shape (C,).

    ``sampler`` holds int64 sampler codes (:data:`lltools.sampling.kernel.SGLD`,
    :data:`~lltools.sampling.kernel.RMSPROP`), or is None: every chain plain SGLD.  With it
    come the RMSProp decay α (``rms_decay``) and stabiliser δ (``rms_delta``), per chain.
    """

    epsilon: Tensor
    gamma: Tensor
    nbeta: Tensor
    sampler: Tensor | None = None
    rms_decay: Tensor | None = None
    rms_delta: Tensor | None = None

    @property
    def rmsprop(self) -> tuple[Tensor, Tensor, Tensor] | None:
        """``(sampler codes, α, δ)`` for the kernel, or None when every chain is plain SGLD."""
        if self.sampler is None or self.rms_decay is None or self.rms_delta is None:
            return None
        return self.sampler, self.rms_decay, self.rms_delta

    @property
    def num_chains(self) -> int:
        return int(self.epsilon.shape[0])

    @property
    def sampler_codes(self) -> Tensor:
        """The per-chain sampler codes, shape (C,) int64 (zeros when ``sampler`` is None)."""
        if self.sampler is None:
            return torch.zeros(self.num_chains, dtype=torch.int64, device=self.epsilon.device)
        return self.sampler

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> SGLDParams:
        """The same params on ``device``, ε/γ/nβ in ``dtype`` (the sampler codes stay int64)."""
        def move(x: Tensor | None) -> Tensor | None:
            if x is None:
                return None
            return x.to(device=device, dtype=torch.int64 if x is self.sampler else dtype)

        return SGLDParams(*(move(x) for x in self))

    def take(self, index: slice | Tensor) -> SGLDParams:
        """The params of the chains ``index`` (a slice or an index tensor)."""
        return SGLDParams(*(None if x is None else x[index] for x in self))

    @staticmethod
    def cat(parts: Sequence[SGLDParams]) -> SGLDParams:
        """The chains of ``parts`` in order, as one :class:`SGLDParams` (plain-SGLD parts of a
        mix get code 0 and the default α, δ)."""
        fields = [torch.cat([getattr(p, k) for p in parts]) for k in ("epsilon", "gamma", "nbeta")]
        if all(p.sampler is None for p in parts):
            return SGLDParams(*fields)
        rms = [p if p.sampler is not None else p.with_rmsprop_defaults() for p in parts]
        extra = [torch.cat([getattr(p, k).to(fields[0].device) for p in rms])
                 for k in ("sampler", "rms_decay", "rms_delta")]
        return SGLDParams(*fields, *extra)

    def with_rmsprop_defaults(self) -> SGLDParams:
        """These params with explicit sampler codes (0 where None) and α, δ (defaults where None)."""
        def full(value: float) -> Tensor:
            return torch.full_like(self.epsilon, value)

        return SGLDParams(
            self.epsilon, self.gamma, self.nbeta, self.sampler_codes,
            full(kernel.RMSPROP_DECAY) if self.rms_decay is None else self.rms_decay,
            full(kernel.RMSPROP_DELTA) if self.rms_delta is None else self.rms_delta,
        )


class SGLDState(NamedTuple):
    """Everything a step needs; immutable (each step returns a new state)."""

    w: Tensor  # (C, d) current positions
    centre: Tensor  # (C, d) localisation centres w*
    loss: Tensor  # (C,) L(w) cached for targets without data (else unused)
    grad: Tensor  # (C, d) ∇L(w) cached for targets without data (else unused)
    loss_init: Tensor  # (C,) L_n(w*), the reference loss
    diverged_at: Tensor  # (C,) int64 step of divergence, -1 while healthy
    keys: Tensor  # (C,) int64 per-chain random keys
    step: int  # index of the next step
    moment: Tensor | None = None  # (C, d) RMSProp second moment V (None: no RMSProp chain)
    mask: Tensor | None = None  # (C, d) 1 where a restricted chain moves, 0: stays at w* (None: all)
    noise: rng.NormalBlocks | None = None  # the run's noise drawn ahead in blocks (None: per step)


class SGLDInfo(NamedTuple):
    """What one step reports, per chain."""

    loss: Tensor  # (C,) L_B(w_t): the draw's loss (NaN once diverged)
    acceptance: Tensor  # (C,) MALA acceptance of w_t -> w_{t+1} (NaN if not computed)


def make_params(
    epsilon: float | Sequence[float] | Tensor,
    gamma: float | Sequence[float] | Tensor,
    nbeta: float | Sequence[float] | Tensor,
    num_chains: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    sampler: str | Sequence[str] | Sequence[int] | Tensor | None = None,
    rmsprop_decay: float | Sequence[float] | Tensor = kernel.RMSPROP_DECAY,
    rmsprop_delta: float | Sequence[float] | Tensor = kernel.RMSPROP_DELTA,
) -> SGLDParams:
    """Broadcast scalars or per-chain sequences to an :class:`SGLDParams` of shape (C,).

    ``sampler`` is "sgld" (the default, also None) or "rmsprop", or one per chain (names or
    codes).  When every chain is plain SGLD the params carry ``sampler=None``, so the step
    is the original one, bit for bit.  ``rmsprop_decay`` α ∈ [0, 1) and ``rmsprop_delta``
    δ > 0 (scalars or per chain) set RMSProp's V ← αV + (1−α)(nβ∇L)², G = 1/(√V + δ).

    Raises ``ValueError`` for non-positive ε or nβ, negative γ, an unknown sampler, α
    outside [0, 1), δ ≤ 0, or a length that is neither 1 nor ``num_chains``.
    """

    def as_chain_tensor(value: Any, name: str) -> Tensor:
        t = torch.as_tensor(value, dtype=dtype, device=device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(num_chains).clone()
        if t.shape != (num_chains,):
            raise ValueError(f"{name} must be a scalar or have {num_chains} entries, got {t.numel()}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} must be finite")
        return t

    codes = sampler_codes(sampler, num_chains, device=device)
    params = SGLDParams(
        epsilon=as_chain_tensor(epsilon, "epsilon"),
        gamma=as_chain_tensor(gamma, "gamma"),
        nbeta=as_chain_tensor(nbeta, "nbeta"),
    )
    if codes is not None:
        decay = as_chain_tensor(rmsprop_decay, "rmsprop_decay")
        delta = as_chain_tensor(rmsprop_delta, "rmsprop_delta")
        if ((decay < 0) | (decay >= 1)).any():
            raise ValueError("rmsprop_decay (α) must be in [0, 1)")
        if (delta <= 0).any():
            raise ValueError("rmsprop_delta (δ) must be > 0")
        params = SGLDParams(*params[:3], codes, decay, delta)
    if (params.epsilon <= 0).any():
        raise ValueError("epsilon (step size) must be > 0")
    if (params.nbeta <= 0).any():
        raise ValueError("nbeta (inverse temperature nβ) must be > 0")
    if (params.gamma < 0).any():
        raise ValueError("gamma (localisation strength) must be >= 0")
    return params


def sampler_codes(
    sampler: str | Sequence[str] | Sequence[int] | Tensor | None, num_chains: int, *,
    device: torch.device | str | None = None,
) -> Tensor | None:
    """Per-chain sampler codes (C,) int64 from a name, names or codes; None when every chain
    is plain SGLD.  ``ValueError`` (one line) for an unknown name or a wrong length."""
    if sampler is None:
        return None
    if isinstance(sampler, str):
        sampler = [sampler]
    if isinstance(sampler, Tensor):
        codes = sampler.to(dtype=torch.int64).reshape(-1).tolist()
    else:
        codes = [kernel.sampler_code(s) if isinstance(s, str) else int(s) for s in sampler]
    if any(c not in (kernel.SGLD, kernel.RMSPROP) for c in codes):
        raise ValueError(f"sampler codes must be {kernel.SGLD} (sgld) or {kernel.RMSPROP} (rmsprop)")
    if len(codes) == 1:
        codes = codes * num_chains
    if len(codes) != num_chains:
        raise ValueError(f"sampler must be one name or have {num_chains} entries, got {len(codes)}")
    if all(c == kernel.SGLD for c in codes):
        return None
    return torch.tensor(codes, dtype=torch.int64, device=device)


def init(
    target: Target,
    params: SGLDParams,
    keys: Tensor,
    centre: Tensor | None = None,
    mask: Tensor | None = None,
) -> SGLDState:
    """Start every chain at its centre w* (default: the target's ``w_star``).

    Parameters
    ----------
    target : Target
    params : SGLDParams, each (C,)
    keys : Tensor, shape (C,), int64 — per-chain random keys (:func:`lltools.base.rng.chain_keys`)
    centre : Tensor, shape (d,) or (C, d), optional — per-chain centres (e.g. checkpoints)
    mask : Tensor, shape (C, d), bool or 0/1, optional — per-chain weight restrictions
        (:mod:`lltools.targets.restrictions`): a chain moves only where its mask is 1; the
        other coordinates stay at its centre, so it samples the restricted posterior
    """
    num_chains = params.num_chains
    if centre is None:
        centre = target.w_star
    if centre.ndim == 1:
        centre = centre[None, :].expand(num_chains, -1)
    if centre.shape != (num_chains, target.dim):
        raise ValueError(
            f"centre must have shape ({num_chains}, {target.dim}), got {tuple(centre.shape)}"
        )
    centre = centre.to(device=target.device, dtype=target.dtype).contiguous()
    loss_init = target.full_loss(centre).detach()
    if target.has_data:
        loss = loss_init.clone()
        grad = torch.zeros_like(centre)
    else:
        loss, grad = target.loss_and_grad(centre, None)
    return SGLDState(
        w=centre.clone(),
        centre=centre,
        loss=loss,
        grad=grad,
        loss_init=loss_init,
        diverged_at=torch.full((num_chains,), -1, dtype=torch.int64, device=centre.device),
        keys=keys.to(centre.device),
        step=0,
        moment=None if params.sampler is None else torch.zeros_like(centre),
        mask=None if mask is None else _as_mask(mask, centre),
    )


def _as_mask(mask: Tensor, centre: Tensor) -> Tensor:
    if mask.shape != centre.shape:
        raise ValueError(f"mask must have shape {tuple(centre.shape)}, got {tuple(mask.shape)}")
    return mask.to(device=centre.device, dtype=centre.dtype).contiguous()


def step(
    state: SGLDState,
    target: Target,
    params: SGLDParams,
    *,
    compute_acceptance: bool = True,
    divergence_threshold: float = 1e4,
) -> tuple[SGLDState, SGLDInfo]:
    """One SGLD step for every chain; returns the new state and this step's info.

    The draw's loss reported is L_B(w_t) at the position *before* the move, on this step's
    minibatch B_t (as devinterp records it).  For targets without data the loss and gradient
    at the new position are computed once and reused by the next step, so a potential costs
    one gradient evaluation per step with the acceptance included.
    """
    t = state.step
    w, centre = state.w, state.centre
    if target.has_data:
        batch = target.sample_batch(state.keys, t)
        loss, grad = target.loss_and_grad(w, batch)
    else:
        batch = None
        loss, grad = state.loss, state.grad

    if state.noise is not None:
        noise = state.noise.at(t)
    else:
        noise = rng.normal(state.keys, t, rng.STREAM_NOISE, w.shape[1], w.dtype)
    if state.mask is not None:  # a restricted chain: no drift and no noise off its slice
        grad, noise = grad * state.mask, noise * state.mask
    moment, precond = kernel.precondition(state.moment, grad, params.nbeta, params.rmsprop)
    w_new, grad_u = kernel.propose(w, centre, grad, noise, params.epsilon, params.gamma, params.nbeta,
                                   precond=precond)
    if compute_acceptance or not target.has_data:
        loss_new, grad_new = target.loss_and_grad(w_new, batch)
        if state.mask is not None:
            grad_new = grad_new * state.mask
    else:
        loss_new, grad_new = state.loss, state.grad
    w_out, loss_out, grad_out, diverged_at, info_loss, info_acc = kernel.settle(
        w, w_new, centre, loss, loss_new, grad_u, grad_new, state.loss_init, state.diverged_at,
        params.epsilon, params.gamma, params.nbeta, torch.full_like(state.diverged_at, t),
        divergence_threshold, compute_acceptance=compute_acceptance, check_new_loss=not target.has_data,
        precond=precond,
    )
    new_state = SGLDState(w=w_out, centre=centre, loss=loss_out, grad=grad_out, loss_init=state.loss_init,
                          diverged_at=diverged_at, keys=state.keys, step=t + 1, moment=moment,
                          mask=state.mask, noise=state.noise)
    return new_state, SGLDInfo(loss=info_loss, acceptance=info_acc)
