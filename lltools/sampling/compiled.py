"""Optional fast paths for the sampling loop: compiled SGLD steps, and when to use them.

Fused potential step
--------------------
For a target without data (an analytic potential) one SGLD step is ~40 small elementwise
operations on (C, d) tensors: the counter-based normal draw (:mod:`lltools.base.rng`, ~30 integer
and float ops per number), the gradient, the update, the MALA acceptance and the divergence
bookkeeping.  Eager PyTorch runs each one as a separate pass over memory with a fresh
allocation.  :class:`FusedPotentialStep` traces the *same* computation — the same
counter-based noise (:func:`lltools.base.rng.normal_chain_minor`), the same kernel maths
(:func:`lltools.sampling.kernel.propose` and :func:`~lltools.sampling.kernel.settle`, which
the eager step calls too) and the potential's own loss (``Target.traceable_loss``),
differentiated with ``torch.func.grad_and_value`` — and lets ``torch.compile`` (inductor: C++/OpenMP on CPU,
Triton on CUDA) fuse it into a few loops.  It is a drop-in replacement for
:func:`lltools.sampling.sgld.step` (same signature, same state and info), numerically the same chains
up to floating-point rounding of the fused arithmetic (``tests/sampling/test_compiled.py`` checks
``allclose`` over whole runs, divergence included).

For minibatch targets (``Target.kernel_kind == "minibatch"``, e.g. a network with a
``batch_size``) :class:`FusedNetworkStep` compiles the whole step as well: the gather of each
chain's rows of ``target.data`` (indices from the target's own ``sample_batch``), the
per-chain loss and gradient as ``vmap(grad_and_value(target.chain_loss))``, the update,
the acceptance (with its second gradient) and the bookkeeping.  For other data targets
:class:`FusedDataStep` keeps the target's own ``loss_and_grad`` and compiles the elementwise
rest — the counter-based noise for every parameter of every chain (about 30 integer
operations per number in eager mode), the update, the acceptance and the divergence
bookkeeping — which in eager mode costs more than the gradient itself for a 10k-parameter MLP.

When they are used
------------------
Compiling costs seconds per new shape (5–35 s cold on a 2-core CPU; ~0.3–2 s once inductor's
on-disk cache has the graph), so by default (``fused=None`` and ``LLTOOLS_FUSED`` unset) the
run loop compiles only where it pays: :func:`should_fuse` estimates the eager run time from
the work C·d·steps and picks the compiled step for potentials and networks when the time it
should save (by the measured speed-ups) is at least :data:`AUTO_MIN_SECONDS_SAVED`.  Short
interactive runs stay eager (and bit-for-bit reproducible across batch compositions, which
the compiled kernel guarantees only up to rounding).  ``fused=True`` / ``LLTOOLS_FUSED=1``
forces it on, ``fused=False`` / ``LLTOOLS_FUSED=0`` off.  When compilation is unavailable (no
C++ compiler, an unsupported expression, an old torch) the first call falls back to the
eager kernel with a warning.

On CUDA the default inductor mode is used (no CUDA graphs): the run loop keeps the previous
step's position (``position_now``) alive across the next call, which CUDA-graph output
buffers would overwrite.

The host-allocator tweak for large CPU batches is :func:`lltools.base.memory.tune_host_allocator`.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import time
import types
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lltools.base import memory, rng
from lltools.sampling import compile_cache, kernel, sgld
from lltools.sampling.sgld import SGLDInfo, SGLDParams, SGLDState
from lltools.targets.base import Target

logger = logging.getLogger("lltools")

#: Environment switch for the fused step ("1"/"true"/"on" enables it by default).
FUSED_ENV = "LLTOOLS_FUSED"
def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------- fused step
def supports_fused(target: Target) -> bool:
    """Whether :class:`FusedPotentialStep` applies: a target without data (a potential)."""
    return target.kernel_kind == "potential"


def compile_available() -> bool:
    """Whether ``torch.compile`` exists and, on CPU, a C++ compiler is on the PATH."""
    if not hasattr(torch, "compile"):
        return False
    cxx = os.environ.get("CXX")
    return bool((cxx and shutil.which(cxx)) or shutil.which("g++") or shutil.which("clang++"))


def _potential_kernel(
    loss_fn: Callable[[Tensor], Tensor],
    w_t: Tensor,
    centre_t: Tensor,
    loss: Tensor,
    grad_t: Tensor,
    loss_init: Tensor,
    diverged_at: Tensor,
    keys: Tensor,
    epsilon: Tensor,
    gamma: Tensor,
    nbeta: Tensor,
    word: Tensor,
    step: Tensor,
    threshold: Tensor,
    compute_acceptance: bool,
    moment_t: Tensor | None = None,
    rmsprop: tuple[Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, ...]:
    """:func:`lltools.sampling.sgld.step` for a target without data, chain-minor.

    Positions, centres and gradients come *transposed*, shape (d, C) contiguous, so every
    elementwise loop runs along the chains (for d = 2 a row-major (C, d) layout leaves the
    vector lanes mostly empty); the maths is :func:`lltools.sampling.kernel.propose` and
    :func:`~lltools.sampling.kernel.settle` with ``param_dim=CHAIN_MINOR``.  ``word`` is
    :func:`lltools.base.rng.step_word` of this step's noise stream and ``step`` the step
    index, both 0-d int64 tensors, so a compiled version does not specialise on them.
    Per-chain vectors are (C,).

    ``moment_t`` (d, C) and ``rmsprop`` (``SGLDParams.rmsprop``) are the RMSProp second
    moment and the per-chain sampler codes, decay and stabiliser (None when every chain is
    plain SGLD).

    Returns ``(w_t, loss, grad_t, diverged_at)`` of the new state, the info ``(loss,
    acceptance)`` and the new ``moment_t``.
    """
    noise = rng.normal_chain_minor(keys, word, w_t.shape[0], w_t.dtype)
    moment_t, precond = kernel.precondition(moment_t, grad_t, nbeta, rmsprop, param_dim=kernel.CHAIN_MINOR)
    w_new, grad_u = kernel.propose(w_t, centre_t, grad_t, noise, epsilon, gamma, nbeta, precond=precond,
                                   param_dim=kernel.CHAIN_MINOR)

    # Differentiate with respect to each coordinate row (C,) separately: the gradient then
    # comes out chain-minor as well (through w.t() it would be materialised as (C, d)).
    def total(*rows: Tensor) -> tuple[Tensor, Tensor]:
        value = loss_fn(torch.stack(rows, dim=1))
        return value.sum(), value

    rows = tuple(w_new.unbind(0))
    grads, (_, loss_new) = torch.func.grad_and_value(
        total, argnums=tuple(range(len(rows))), has_aux=True
    )(*rows)
    grad_new = torch.stack(grads, dim=0)
    out = kernel.settle(w_t, w_new, centre_t, loss, loss_new, grad_u, grad_new, loss_init, diverged_at,
                        epsilon, gamma, nbeta, step, threshold, compute_acceptance=compute_acceptance,
                        check_new_loss=True, precond=precond, param_dim=kernel.CHAIN_MINOR)
    return (*out, moment_t)


def _chain_minor(x: Tensor) -> Tensor:
    """``x`` (C, d) as a contiguous (d, C) tensor (a free view when it already is one)."""
    x_t = x.t()
    return x_t if x_t.is_contiguous() else x_t.contiguous()


def _update_kernel(
    w: Tensor, centre: Tensor, grad: Tensor, keys: Tensor, epsilon: Tensor, gamma: Tensor,
    nbeta: Tensor, word: Tensor, moment: Tensor | None = None,
    rmsprop: tuple[Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """The proposal of :func:`lltools.sampling.sgld.step` on (C, d) tensors: ``(w_new, ∇U(w),
    V, G)`` (V, G: the RMSProp second moment and preconditioner, :func:`kernel.precondition`)."""
    noise = rng.normal_from_word(keys, word, w.shape[1], w.dtype)
    moment, precond = kernel.precondition(moment, grad, nbeta, rmsprop)
    w_new, grad_u = kernel.propose(w, centre, grad, noise, epsilon, gamma, nbeta, precond=precond)
    return w_new, grad_u, moment, precond


def _finish_kernel(
    w: Tensor, w_new: Tensor, centre: Tensor, loss: Tensor, loss_new: Tensor, grad_u: Tensor,
    grad_new: Tensor, loss_init: Tensor, diverged_at: Tensor, epsilon: Tensor, gamma: Tensor,
    nbeta: Tensor, step: Tensor, threshold: Tensor, compute_acceptance: bool,
    precond: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:func:`lltools.sampling.kernel.settle` for a data target on (C, d) tensors: acceptance
    and divergence bookkeeping, ``(w, loss, grad, diverged_at)`` and the info ``(loss,
    acceptance)``, exactly as ``sgld.step`` builds them."""
    return kernel.settle(w, w_new, centre, loss, loss_new, grad_u, grad_new, loss_init, diverged_at,
                         epsilon, gamma, nbeta, step, threshold, compute_acceptance=compute_acceptance,
                         check_new_loss=False, precond=precond)


_KERNEL_IDS = itertools.count()


def _fresh_copy(src: Callable[..., Any]) -> Callable[..., Any]:
    """A new function object *with its own, privately named code object* for ``src``.

    torch.compile keeps its cache (and its recompile limit) per code object, and its
    "automatic dynamic" memory per code *name*: a private copy per target keeps one
    target's recompilations (new chain count, dtype) from exhausting another's budget, and
    keeps constants of one potential (an exponent 4 where another had 2) from being turned
    into symbols for the next.
    """
    name = f"{src.__name__}_{next(_KERNEL_IDS)}"
    code = src.__code__.replace(co_name=name, co_qualname=name)
    return types.FunctionType(code, src.__globals__, name, src.__defaults__, src.__closure__)


class _Kernel:
    """One kernel function, compiled with ``torch.compile`` unless unavailable, falling back
    to the eager function (with a warning) if compilation fails on a call."""

    def __init__(self, fn: Callable[..., Any], *, compile: bool, dynamic: bool | None,
                 options: dict[str, Any] | None = None) -> None:
        self.eager = fn
        self.fn: Callable[..., Any] = fn
        self.compiled = False
        self.fallback_reason: str | None = None
        self.compile_seconds = 0.0
        self._seen: set[tuple[Any, ...]] = set()
        if compile:
            if not compile_available():
                self._fallback("torch.compile or a C++ compiler is not available")
            else:
                self.fn = torch.compile(_fresh_copy(fn), dynamic=dynamic, fullgraph=True, options=options)
                self.compiled = True

    def _fallback(self, reason: str) -> None:
        self.fallback_reason = reason
        self.compiled = False
        self.fn = self.eager
        warnings.warn(f"lltools: fused SGLD step unavailable ({reason}); using the eager step",
                      RuntimeWarning, stacklevel=4)

    def __call__(self, key: tuple[Any, ...], *args: Any, sig: str | None = None) -> Any:
        """``self.fn(*args)``, compiling on the first call per ``key``; ``sig``
        (:func:`lltools.sampling.compile_cache.signature`) is where the compile time is
        remembered and announced under."""
        first = self.compiled and key not in self._seen
        start = time.perf_counter() if first else 0.0
        if first:
            logger.info("compiling the fused SGLD step for %s (once per shape)", key)
            if sig is not None:
                _announce_compile(sig)
        try:
            out = self.fn(*args)
        except Exception as exc:  # compilation failures surface on the first call
            if not self.compiled:
                raise
            message = str(exc).splitlines()[0][:200] if str(exc) else ""
            self._fallback(f"{type(exc).__name__}: {message}")
            out = self.fn(*args)
        if first:
            self._seen.add(key)
            seconds = time.perf_counter() - start
            self.compile_seconds += seconds
            if sig is not None and self.compiled:
                _COMPILE_TOTALS[sig] = _COMPILE_TOTALS.get(sig, 0.0) + seconds
                compile_cache.record(sig, _COMPILE_TOTALS[sig])
        return out


#: Wall seconds this process spent compiling each step signature (all its kernels and flags).
_COMPILE_TOTALS: dict[str, float] = {}
#: Compiles expected to take at least this long are announced on stderr before they start.
ANNOUNCE_COMPILE_SECONDS = 3.0


def _kind_of(sig: str) -> str:
    return sig.split("|", 1)[0]


def expected_compile_seconds(sig: str) -> float:
    """What compiling the step ``sig`` should cost: what it took here last time
    (:mod:`lltools.sampling.compile_cache`), else the cold figure of its kind
    (:data:`COMPILE_SECONDS`)."""
    known = compile_cache.expected_seconds(sig)
    return known if known is not None else COMPILE_SECONDS.get(_kind_of(sig), AUTO_MIN_SECONDS_SAVED)


def _announce_compile(sig: str) -> None:
    if sig in _COMPILE_TOTALS:  # another flag of a step already announced in this process
        return
    seconds = expected_compile_seconds(sig)
    if seconds >= ANNOUNCE_COMPILE_SECONDS:
        kind, _name, chains, dim = sig.split("|")[:4]
        memory.announce(f"compiling the {kind} sampling step ({chains[2:]} chains × {dim[2:]} parameters; "
                        f"about {seconds:.0f} s, once — later runs of this shape reuse the on-disk cache)")


class _FusedStepBase:
    """What the fused steps share: their kernels' compile state and timing."""

    _kernels: tuple[_Kernel, ...] = ()

    @property
    def compiled(self) -> bool:
        """Whether every kernel is (still) compiled."""
        return all(k.compiled for k in self._kernels)

    @property
    def compile_seconds(self) -> float:
        """Wall time of the calls that triggered compilation (first call per shape and flag)."""
        return sum(k.compile_seconds for k in self._kernels)

    @property
    def fallback_reason(self) -> str | None:
        """Why compilation was abandoned, if it was."""
        return next((k.fallback_reason for k in self._kernels if k.fallback_reason), None)


def _scalars(state: SGLDState, divergence_threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """0-d tensors for this step's noise word, its index and the threshold (so a compiled
    kernel does not specialise on them)."""
    t, device = state.step, state.w.device
    return (
        torch.tensor(rng.step_word(t, rng.STREAM_NOISE), dtype=torch.int64, device=device),
        torch.tensor(t, dtype=torch.int64, device=device),
        torch.tensor(divergence_threshold, dtype=state.w.dtype, device=device),
    )


def _signature(target: Target, state: SGLDState) -> str:
    """:func:`lltools.sampling.compile_cache.signature` of this step."""
    num_chains, dim = state.w.shape
    return compile_cache.signature(target.kernel_kind, target.name, num_chains, dim, state.w.dtype,
                                   state.w.device)


def _next_state(state: SGLDState, w: Tensor, loss: Tensor, grad: Tensor, diverged_at: Tensor,
                centre: Tensor | None = None, moment: Tensor | None = None) -> SGLDState:
    """The state after one step: new position, loss, gradient, divergence steps and RMSProp
    moment; the centres (``centre`` when given, e.g. as a chain-minor view), reference
    losses and keys carried over."""
    return SGLDState(w=w, centre=state.centre if centre is None else centre, loss=loss, grad=grad,
                     loss_init=state.loss_init, diverged_at=diverged_at, keys=state.keys,
                     step=state.step + 1, moment=moment)


class FusedPotentialStep(_FusedStepBase):
    """A compiled drop-in for :func:`lltools.sampling.sgld.step` on a target without data.

    The whole step — noise, update, the potential's loss and gradient at the new point,
    acceptance, divergence — is one compiled kernel, laid out chain-minor.

    Parameters
    ----------
    target : Target
        A potential (``has_data`` False); its loss is traced into the kernel.
    compile : bool
        False runs the same kernel eagerly (a reference for tests and the fallback).
    dynamic : bool, optional
        Passed to ``torch.compile``: None (default) compiles for the first chain count and
        recompiles once, shape-generic, when another appears; True is shape-generic at once.

    Attributes
    ----------
    compiled, compile_seconds, fallback_reason
        See :class:`_FusedStepBase`.
    """

    def __init__(self, target: Target, *, compile: bool = True, dynamic: bool | None = None) -> None:
        if not supports_fused(target):
            raise ValueError("FusedPotentialStep applies only to targets without data (potentials)")
        self._loss_fn = target.traceable_loss()
        self._kernel = _Kernel(_potential_kernel, compile=compile, dynamic=dynamic)
        self._kernels = (self._kernel,)

    def __call__(
        self,
        state: SGLDState,
        target: Target,
        params: SGLDParams,
        *,
        compute_acceptance: bool = True,
        divergence_threshold: float = 1e4,
    ) -> tuple[SGLDState, SGLDInfo]:
        """One step for every chain; the same contract as :func:`lltools.sampling.sgld.step`."""
        word, step_t, threshold = _scalars(state, divergence_threshold)
        centre_t = _chain_minor(state.centre)
        key = (tuple(state.w.shape), state.w.dtype, state.w.device, bool(compute_acceptance),
               params.sampler is not None)
        moment_t = None if state.moment is None else _chain_minor(state.moment)
        w_out, loss_out, grad_out, diverged, info_loss, info_acc, moment_out = self._kernel(
            key, self._loss_fn, _chain_minor(state.w), centre_t, state.loss, _chain_minor(state.grad),
            state.loss_init, state.diverged_at, state.keys, params.epsilon, params.gamma,
            params.nbeta, word, step_t, threshold, bool(compute_acceptance), moment_t, params.rmsprop,
            sig=_signature(target, state),
        )
        # (C, d) views of the chain-minor buffers: the next call finds them already laid out.
        new_state = _next_state(state, w_out.t(), loss_out, grad_out.t(), diverged, centre=centre_t.t(),
                                moment=None if moment_out is None else moment_out.t())
        return new_state, SGLDInfo(loss=info_loss, acceptance=info_acc)


class FusedDataStep(_FusedStepBase):
    """A drop-in for :func:`lltools.sampling.sgld.step` on a target with data (a network).

    The minibatch and the loss gradients stay the target's own (eager ``loss_and_grad``);
    the elementwise rest — the counter-based normal draw for every parameter of every chain,
    the update, the MALA acceptance and the divergence bookkeeping — runs as two compiled
    kernels.  For a 10k-parameter MLP at 64 chains that rest costs ~3× the gradient in
    eager mode (the noise hash alone is ~30 integer operations per parameter).

    Parameters and attributes as :class:`FusedPotentialStep`.
    """

    def __init__(self, *, compile: bool = True, dynamic: bool | None = None) -> None:
        self._update = _Kernel(_update_kernel, compile=compile, dynamic=dynamic)
        self._finish = _Kernel(_finish_kernel, compile=compile, dynamic=dynamic)
        self._kernels = (self._update, self._finish)

    def __call__(
        self,
        state: SGLDState,
        target: Target,
        params: SGLDParams,
        *,
        compute_acceptance: bool = True,
        divergence_threshold: float = 1e4,
    ) -> tuple[SGLDState, SGLDInfo]:
        """One step for every chain; the same contract as :func:`lltools.sampling.sgld.step`."""
        if not target.has_data:
            raise ValueError("FusedDataStep applies to targets with data; use FusedPotentialStep")
        word, step_t, threshold = _scalars(state, divergence_threshold)
        w = state.w
        batch = target.sample_batch(state.keys, state.step)
        loss, grad = target.loss_and_grad(w, batch)
        key = (tuple(w.shape), w.dtype, w.device, params.sampler is not None)
        sig = _signature(target, state)
        w_new, grad_u, moment, precond = self._update(key, w, state.centre, grad, state.keys, params.epsilon,
                                                      params.gamma, params.nbeta, word, state.moment,
                                                      params.rmsprop, sig=sig)
        if compute_acceptance:
            loss_new, grad_new = target.loss_and_grad(w_new, batch)
        else:
            loss_new, grad_new = state.loss, state.grad
        w_out, loss_out, grad_out, diverged, info_loss, info_acc = self._finish(
            (*key, bool(compute_acceptance)), w, w_new, state.centre, loss, loss_new, grad_u,
            grad_new, state.loss_init, state.diverged_at, params.epsilon, params.gamma,
            params.nbeta, step_t, threshold, bool(compute_acceptance), precond, sig=sig,
        )
        new_state = _next_state(state, w_out, loss_out, grad_out, diverged, moment=moment)
        return new_state, SGLDInfo(loss=info_loss, acceptance=info_acc)


def _network_kernel(
    chain_loss: Callable[..., Tensor], w: Tensor, centre: Tensor, loss_prev: Tensor,
    grad_prev: Tensor, loss_init: Tensor, diverged_at: Tensor, keys: Tensor, data: tuple[Tensor, ...],
    batch: Tensor, epsilon: Tensor, gamma: Tensor, nbeta: Tensor, word: Tensor,
    step: Tensor, threshold: Tensor, compute_acceptance: bool, moment: Tensor | None = None,
    rmsprop: tuple[Tensor, Tensor, Tensor] | None = None,
) -> tuple[Tensor, ...]:
    """A whole minibatch SGLD step: gather each chain's rows of every data array, per-chain
    loss and gradient (``vmap(grad_and_value(chain_loss))``), proposal, acceptance,
    bookkeeping; the new RMSProp moment last."""
    value_and_grad = torch.func.vmap(torch.func.grad_and_value(chain_loss))
    rows = tuple(array[batch] for array in data)
    grad, loss = value_and_grad(w, *rows)
    w_new, grad_u, moment, precond = _update_kernel(w, centre, grad, keys, epsilon, gamma, nbeta, word,
                                                    moment, rmsprop)
    if compute_acceptance:
        grad_new, loss_new = value_and_grad(w_new, *rows)
    else:
        loss_new, grad_new = loss_prev, grad_prev
    out = _finish_kernel(w, w_new, centre, loss, loss_new, grad_u, grad_new, loss_init, diverged_at,
                         epsilon, gamma, nbeta, step, threshold, compute_acceptance, precond)
    return (*out, moment)


#: Inductor options for the whole-network kernel (none).  The heap corruption once seen here
#: (``free(): invalid next size``, benchmarks/repro_fused_mlp_abort.py) came from inductor
#: folding the noise's ``arange · φ₆₄`` into overflowing index arithmetic; it is fixed where
#: the counters are made (:func:`lltools.base.rng.pair_words`), so SIMD stays on.
NETWORK_COMPILE_OPTIONS: dict[str, Any] = {}


def _is_minibatch(target: Target) -> bool:
    """A target sampled on minibatches of row indices whose per-chain loss can be traced
    whole (``kernel_kind == "minibatch"``, e.g. a network with a ``batch_size``); full-batch
    networks evaluate in row chunks and stay eager."""
    return target.kernel_kind == "minibatch"


class FusedNetworkStep(_FusedStepBase):
    """A compiled drop-in for :func:`lltools.sampling.sgld.step` on a minibatch target (e.g. a
    network with a ``batch_size``).

    The minibatch indices are the target's own (``sample_batch``); the gather, the per-chain
    loss and gradient — ``vmap(grad_and_value(target.chain_loss))`` instead of a backward
    pass through the vmapped loss (the same numbers up to rounding) — and the proposal,
    acceptance and bookkeeping are one compiled graph, with the acceptance's second gradient
    inside it on the steps that need one.

    Parameters and attributes as :class:`FusedPotentialStep`.
    """

    def __init__(self, target: Target, *, compile: bool = True, dynamic: bool | None = None) -> None:
        if not _is_minibatch(target):
            raise ValueError("FusedNetworkStep applies to minibatch targets "
                             "(e.g. a network with a batch_size)")
        self._kernel = _Kernel(_network_kernel, compile=compile, dynamic=dynamic,
                               options=NETWORK_COMPILE_OPTIONS)
        self._kernels = (self._kernel,)

    def __call__(
        self,
        state: SGLDState,
        target: Target,
        params: SGLDParams,
        *,
        compute_acceptance: bool = True,
        divergence_threshold: float = 1e4,
    ) -> tuple[SGLDState, SGLDInfo]:
        """One step for every chain; the same contract as :func:`lltools.sampling.sgld.step`."""
        word, step_t, threshold = _scalars(state, divergence_threshold)
        w = state.w
        batch = target.sample_batch(state.keys, state.step)
        key = (tuple(w.shape), tuple(batch.shape), w.dtype, w.device, bool(compute_acceptance),
               params.sampler is not None)
        w_out, loss_out, grad_out, diverged, info_loss, info_acc, moment = self._kernel(
            key, target.chain_loss, w, state.centre, state.loss, state.grad,
            state.loss_init, state.diverged_at, state.keys, target.data, batch, params.epsilon,
            params.gamma, params.nbeta, word, step_t, threshold,
            bool(compute_acceptance), state.moment, params.rmsprop, sig=_signature(target, state),
        )
        new_state = _next_state(state, w_out, loss_out, grad_out, diverged, moment=moment)
        return new_state, SGLDInfo(loss=info_loss, acceptance=info_acc)


_STEP_CACHE: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_DATA_STEP: FusedDataStep | None = None


def fused_step_for(target: Target) -> FusedPotentialStep | FusedNetworkStep | FusedDataStep:
    """The fused step for ``target``, cached so that repeated runs re-use compiled kernels.

    Cached per ``target.kernel_owner``: potentials get one :class:`FusedPotentialStep` per
    loss function (a ``FunctionTarget``'s ``fn``, shared by its copies), minibatch targets
    one :class:`FusedNetworkStep` per module.  Other data targets (full-batch networks,
    custom targets): one shared :class:`FusedDataStep` (its kernels do not depend on the
    target).
    """
    global _DATA_STEP
    kind = target.kernel_kind
    if kind not in ("potential", "minibatch"):
        if _DATA_STEP is None:
            _DATA_STEP = FusedDataStep()
        return _DATA_STEP
    owner = target.kernel_owner
    make: Callable[[Target], Any] = FusedNetworkStep if kind == "minibatch" else FusedPotentialStep
    try:
        step = _STEP_CACHE.get(owner)
    except TypeError:  # not weak-referenceable
        return make(target)
    if step is None:
        step = make(target)
        _STEP_CACHE[owner] = step
    return step


StepFn = Callable[..., tuple[SGLDState, SGLDInfo]]

#: By default the compiled step is used when it is expected to save at least this long —
#: about a compile of the step on a 2-core CPU with inductor's cache cold (5–10 s; 0.3–2 s warm).
AUTO_MIN_SECONDS_SAVED = 4.0
#: ... per kernel kind: a minibatch network's whole step (forward, backward, second gradient)
#: compiles in ~25 s cold on the 2-core CPU (issue 18: 24.7 s for the 10k MLP), a full-batch
#: network's elementwise kernels in ~10 s.  Other kinds use :data:`AUTO_MIN_SECONDS_SAVED`.
COMPILE_SECONDS = {"potential": AUTO_MIN_SECONDS_SAVED, "minibatch": 25.0, "full-batch": 10.0}
#: Measured compiled ÷ eager speed-ups (benchmarks/RESULTS.md): potentials 4–8×, minibatch
#: networks 3–4×, full-batch networks (only the elementwise part compiles) 1.6×.
#: Keyed by :attr:`lltools.targets.base.Target.kernel_kind`; "custom" data targets have none.
EXPECTED_SPEEDUP = {"potential": 4.0, "minibatch": 3.0, "full-batch": 1.6}
#: Eager cost model, measured on one CPU thread (benchmarks/RESULTS.md §1–§3): a fixed cost
#: per step (dispatch of ~40 small ops) ...
EAGER_SECONDS_PER_STEP = 5e-4
#: ... which for a network step (a forward and backward pass through the module, its
#: minibatch gather, the noise) is larger: 3.7 ms CPU per step on one thread for the 10k
#: MLP, fitted with the per-value cost below to the eager step at 8 and 64 chains
#: (benchmarks/profile_network_step.py, RESULTS.md "Issue 18"; the old single constant was
#: ~7× too low for networks).  Keyed by ``kernel_kind``; others use EAGER_SECONDS_PER_STEP.
EAGER_SECONDS_PER_STEP_BY_KIND = {"minibatch": 3.7e-3, "full-batch": 3.7e-3}
#: ... plus a cost per chain × parameter × step on one thread (6.6e-8 s for x²+y² at 65 536
#: chains, 4.3e-8 s for a 10k-parameter MLP at batch 64).  A network's matrix products
#: scale with torch's CPU threads; a potential's elementwise passes (memory-bound) do not.
EAGER_SECONDS_PER_VALUE = 5e-8


def estimated_eager_seconds(target: Target, num_chains: int, num_steps_total: int) -> float:
    """Rough eager wall time of a run: steps · (fixed cost + C · d · cost per value / threads),
    threads counting only for data targets on the CPU."""
    threads = max(1, torch.get_num_threads()) if target.device.type == "cpu" and target.has_data else 1
    fixed = EAGER_SECONDS_PER_STEP_BY_KIND.get(target.kernel_kind, EAGER_SECONDS_PER_STEP)
    per_step = fixed + num_chains * target.dim * EAGER_SECONDS_PER_VALUE / threads
    return num_steps_total * per_step


def estimated_seconds_saved(target: Target, num_chains: int, num_steps_total: int) -> float:
    """Eager time × (1 − 1/expected speed-up): what compiling the step should save (0 for
    targets without a measured speed-up)."""
    speedup = EXPECTED_SPEEDUP.get(target.kernel_kind)
    if speedup is None:
        return 0.0
    return estimated_eager_seconds(target, num_chains, num_steps_total) * (1.0 - 1.0 / speedup)


def should_fuse(target: Target, num_chains: int, num_steps_total: int) -> bool:
    """The default choice: compile when it pays and is possible.

    True when the expected saving (:func:`estimated_seconds_saved`: the eager-time model of
    :func:`estimated_eager_seconds` and the measured speed-ups :data:`EXPECTED_SPEEDUP`) is
    at least what compiling this step should cost (:func:`expected_compile_seconds`: what
    it took on this machine last time, remembered next to inductor's on-disk cache, else a
    cold compile of that kind of step, :data:`COMPILE_SECONDS`), and
    ``torch.compile`` and a C++ compiler are available.  Potentials and network targets only; custom data
    targets stay eager unless asked (``fused=True``).
    """
    saved = estimated_seconds_saved(target, num_chains, num_steps_total)
    if saved <= 0.0:
        return False
    needed = expected_compile_seconds(compile_cache.signature(
        target.kernel_kind, target.name, num_chains, target.dim, target.dtype, target.device))
    if saved < needed:
        return False
    return compile_available()


def select_step(
    target: Target,
    fused: bool | None = None,
    *,
    num_chains: int | None = None,
    num_steps_total: int | None = None,
) -> StepFn:
    """The step function the run loop should use.

    ``fused=None`` reads ``LLTOOLS_FUSED``; when that is unset too, :func:`should_fuse`
    decides from the run's size (``num_chains``, ``num_steps_total``; eager when they are not
    given).  When on: :class:`FusedPotentialStep` for potentials, :class:`FusedNetworkStep`
    for minibatch networks, :class:`FusedDataStep` for other data targets; when off,
    :func:`lltools.sampling.sgld.step`.
    """
    if fused is None:
        fused = _env_flag(FUSED_ENV)
    if fused is None:
        fused = (num_chains is not None and num_steps_total is not None
                 and should_fuse(target, num_chains, num_steps_total))
    if fused:
        return fused_step_for(target)
    return sgld.step


def compile_ahead_seconds(target: Target, num_chains: int, num_steps_total: int,
                          fused: bool | None = None) -> float | None:
    """What a run of this size will spend compiling its step first, by the choice of
    :func:`select_step` (``fused``, ``LLTOOLS_FUSED``, :func:`should_fuse`) and the compile
    time remembered for it (:func:`expected_compile_seconds`); None when it runs eagerly."""
    if fused is None:
        fused = _env_flag(FUSED_ENV)
    if fused is None:
        fused = should_fuse(target, num_chains, num_steps_total)
    if not fused:
        return None
    return expected_compile_seconds(compile_cache.signature(
        target.kernel_kind, target.name, num_chains, target.dim, target.dtype, target.device))


def step_kind(step_fn: StepFn) -> str:
    """"compiled" for a fused step whose kernels are (still) compiled, else "eager"."""
    return "compiled" if getattr(step_fn, "compiled", False) else "eager"
