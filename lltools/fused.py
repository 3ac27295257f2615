"""Optional fast paths for the sampling loop: a compiled SGLD step for potentials, and a
host-allocator tweak for large CPU batches.

Fused potential step
--------------------
For a target without data (an analytic potential) one SGLD step is ~40 small elementwise
operations on (C, d) tensors: the counter-based normal draw (:mod:`lltools.rng`, ~30 integer
and float ops per number), the gradient, the update, the MALA acceptance and the divergence
bookkeeping.  Eager PyTorch runs each one as a separate pass over memory with a fresh
allocation.  :class:`FusedPotentialStep` traces the *same* computation — the same
:func:`lltools.rng.normal_from_word`, :func:`lltools.sgld.potential_grad`,
:func:`lltools.sgld.mala_acceptance` and the potential's own ``loss``, differentiated with
``torch.func.grad_and_value`` — and lets ``torch.compile`` (inductor: C++/OpenMP on CPU,
Triton on CUDA) fuse it into a few loops.  It is a drop-in replacement for
:func:`lltools.sgld.step` (same signature, same state and info), numerically the same chains
up to floating-point rounding of the fused arithmetic (``tests/test_fused.py`` checks
``allclose`` over whole runs, divergence included).

It is **opt-in**: ``run_chunks(..., fused=True)`` (also through ``estimate``/``sweep``
keyword arguments) or ``LLTOOLS_FUSED=1``.  Compiling costs seconds (more under load), so it
pays off only for long or wide runs; and eager results are bit-for-bit reproducible across
batch compositions, which the compiled kernel guarantees only up to rounding.  When
compilation is unavailable (no C++ compiler, an unsupported expression, an old torch) the
first call falls back to the eager kernel with a warning.

On CUDA the default inductor mode is used (no CUDA graphs): the run loop keeps the previous
step's position (``position_now``) alive across the next call, which CUDA-graph output
buffers would overwrite.

Host allocator
--------------
Out-of-place ops on ~0.5–1 MB CPU tensors (65 536 chains × 2 floats) sit right at glibc's
mmap threshold, so every temporary is a fresh ``mmap`` and its first touch page-faults.
:func:`tune_host_allocator` raises ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to 1 GiB once
per process (Linux/glibc only; a no-op elsewhere), so temporaries are recycled from the heap.
The cost: up to 1 GiB of freed heap may stay mapped to the process instead of being handed
back to the OS immediately.  Disable with ``LLTOOLS_MALLOPT=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import itertools
import logging
import os
import sys
import threading
import time
import types
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lltools import rng, sgld
from lltools.sgld import SGLDInfo, SGLDParams, SGLDState
from lltools.target import FunctionTarget, Target

logger = logging.getLogger("lltools")

#: Environment switch for the fused step ("1"/"true"/"on" enables it by default).
FUSED_ENV = "LLTOOLS_FUSED"
#: Environment switch for the allocator tweak ("0"/"false"/"off" disables it).
MALLOPT_ENV = "LLTOOLS_MALLOPT"

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_ALLOCATOR_BYTES = 1 << 30

_allocator_lock = threading.Lock()
_allocator_tuned: bool | None = None  # None: not tried yet


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------- allocator
def tune_host_allocator(device: torch.device | str = "cpu") -> bool:
    """Raise glibc's mmap and trim thresholds to 1 GiB, once per process (CPU runs only).

    Returns True when the thresholds are (now or already) set; False on CUDA devices,
    non-Linux systems, non-glibc C libraries, when ``LLTOOLS_MALLOPT=0``, or if ``mallopt``
    refuses.  Never raises.
    """
    global _allocator_tuned
    if torch.device(device).type != "cpu":
        return False
    if _allocator_tuned is not None:
        return _allocator_tuned
    with _allocator_lock:
        if _allocator_tuned is not None:
            return _allocator_tuned
        ok = False
        if _env_flag(MALLOPT_ENV) is not False and sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = getattr(libc, "mallopt", None)
                if mallopt is not None:
                    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                    mallopt.restype = ctypes.c_int
                    ok = bool(mallopt(_M_MMAP_THRESHOLD, _ALLOCATOR_BYTES)) and bool(
                        mallopt(_M_TRIM_THRESHOLD, _ALLOCATOR_BYTES)
                    )
            except (OSError, AttributeError, TypeError):  # pragma: no cover - exotic libc
                ok = False
        _allocator_tuned = ok
        return ok


# ---------------------------------------------------------------------------- fused step
def supports_fused(target: Target) -> bool:
    """Whether :class:`FusedPotentialStep` applies: a target without data (a potential)."""
    return not target.has_data


def compile_available() -> bool:
    """Whether ``torch.compile`` exists and, on CPU, a C++ compiler is on the PATH."""
    import shutil

    if not hasattr(torch, "compile"):
        return False
    cxx = os.environ.get("CXX")
    return bool((cxx and shutil.which(cxx)) or shutil.which("g++") or shutil.which("clang++"))


def _potential_kernel(
    loss_fn: Callable[[Tensor], Tensor],
    w: Tensor,
    centre: Tensor,
    loss: Tensor,
    grad: Tensor,
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
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The body of :func:`lltools.sgld.step` for a target without data, on plain tensors.

    ``word`` is :func:`lltools.rng.step_word` of this step's noise stream and ``step`` the
    step index, both 0-d int64 tensors, so a compiled version does not specialise on them.
    Returns ``(w, loss, grad, diverged_at)`` of the new state and the info ``(loss,
    acceptance)``.
    """
    params = SGLDParams(epsilon, gamma, nbeta)
    grad_u = sgld.potential_grad(grad, w, centre, params)
    noise = rng.normal_from_word(keys, word, w.shape[1], w.dtype)
    eps = epsilon[:, None]
    w_new = w - 0.5 * eps * grad_u + torch.sqrt(eps) * noise

    def total(x: Tensor) -> tuple[Tensor, Tensor]:
        value = loss_fn(x)
        return value.sum(), value

    grad_new, (_, loss_new) = torch.func.grad_and_value(total, has_aux=True)(w_new)
    if compute_acceptance:
        u = sgld.potential(loss, w, centre, params)
        u_new = sgld.potential(loss_new, w_new, centre, params)
        grad_u_new = sgld.potential_grad(grad_new, w_new, centre, params)
        acceptance = sgld.mala_acceptance(w, w_new, u, u_new, grad_u, grad_u_new, epsilon)
    else:
        acceptance = torch.full_like(loss, float("nan"))

    excess = nbeta * (loss - loss_init)
    bad = (
        ~torch.isfinite(loss)
        | (excess > threshold)
        | ~torch.isfinite(w_new).all(dim=1)
        | ~torch.isfinite(loss_new)
    )
    newly = bad & (diverged_at < 0)
    diverged = torch.where(newly, step, diverged_at)
    dead = diverged >= 0
    nan = torch.full_like(loss, float("nan"))
    info_loss = torch.where(dead, nan, loss)
    info_acc = torch.where(dead, nan, acceptance)
    dead_col = dead[:, None]
    w_out = torch.where(dead_col, centre, w_new)
    loss_out = torch.where(dead, loss_init, loss_new)
    grad_out = torch.where(dead_col, torch.zeros_like(grad_new), grad_new)
    return w_out, loss_out, grad_out, diverged, info_loss, info_acc


def _loss_callable(target: Target) -> Callable[[Tensor], Tensor]:
    """The batched loss to trace: a :class:`FunctionTarget`'s plain ``fn`` (stable identity,
    so the compiled kernel is re-used across copies of the target), else ``target.loss``."""
    fn = getattr(target, "fn", None)
    if isinstance(target, FunctionTarget) and callable(fn):
        return functools.partial(_function_loss, fn)
    return target.loss


def _function_loss(fn: Callable[[Tensor], Tensor], w: Tensor) -> Tensor:
    """:meth:`FunctionTarget.loss` without the argument checks (done by ``init``)."""
    out = fn(w)
    if out.shape != (w.shape[0],):
        out = out.expand(w.shape[0]) if out.numel() == 1 else out.reshape(w.shape[0])
    return out


_KERNEL_IDS = itertools.count()


def _fresh_kernel() -> Callable[..., Any]:
    """A new function object *with its own code object* for :func:`_potential_kernel`.

    torch.compile keeps its cache (and its recompile limit) per code object, and its
    "automatic dynamic" memory per code *name*: a privately named copy per target keeps one
    target's recompilations (new chain count, dtype) from exhausting another's budget, and
    keeps constants of one potential (an exponent 4 where another had 2) from being turned
    into symbols for the next.
    """
    src = _potential_kernel
    name = f"{src.__name__}_{next(_KERNEL_IDS)}"
    code = src.__code__.replace(co_name=name, co_qualname=name)
    return types.FunctionType(code, src.__globals__, name, src.__defaults__, src.__closure__)


class FusedPotentialStep:
    """A compiled drop-in for :func:`lltools.sgld.step` on a target without data.

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
    compiled : bool
        Whether the compiled kernel is in use (False after a fallback).
    compile_seconds : float
        Wall time of the calls that triggered compilation (first call per shape and flag).
    fallback_reason : str or None
        Why compilation was abandoned, if it was.
    """

    def __init__(self, target: Target, *, compile: bool = True, dynamic: bool | None = None) -> None:
        if not supports_fused(target):
            raise ValueError("the fused step applies only to targets without data (potentials)")
        self._loss_fn = _loss_callable(target)
        self.dynamic = dynamic
        self.fallback_reason: str | None = None
        self.compile_seconds = 0.0
        self._seen: set[tuple[Any, ...]] = set()
        self._kernel: Callable[..., Any] = _potential_kernel
        self.compiled = False
        if compile:
            if not compile_available():
                self._fallback("torch.compile or a C++ compiler is not available")
            else:
                self._kernel = torch.compile(_fresh_kernel(), dynamic=dynamic, fullgraph=True)
                self.compiled = True

    def _fallback(self, reason: str) -> None:
        self.fallback_reason = reason
        self.compiled = False
        self._kernel = _potential_kernel
        warnings.warn(f"lltools: fused SGLD step unavailable ({reason}); using the eager step",
                      RuntimeWarning, stacklevel=3)

    def __call__(
        self,
        state: SGLDState,
        target: Target,
        params: SGLDParams,
        *,
        compute_acceptance: bool = True,
        divergence_threshold: float = 1e4,
    ) -> tuple[SGLDState, SGLDInfo]:
        """One step for every chain; the same contract as :func:`lltools.sgld.step`."""
        t = state.step
        device = state.w.device
        word = torch.tensor(rng.step_word(t, rng.STREAM_NOISE), dtype=torch.int64, device=device)
        step_t = torch.tensor(t, dtype=torch.int64, device=device)
        threshold = torch.tensor(divergence_threshold, dtype=state.w.dtype, device=device)
        args = (
            self._loss_fn, state.w, state.centre, state.loss, state.grad, state.loss_init,
            state.diverged_at, state.keys, params.epsilon, params.gamma, params.nbeta,
            word, step_t, threshold, bool(compute_acceptance),
        )
        key = (tuple(state.w.shape), state.w.dtype, device, bool(compute_acceptance))
        first = self.compiled and key not in self._seen
        start = time.perf_counter() if first else 0.0
        try:
            out = self._kernel(*args)
        except Exception as exc:  # compilation failures surface on the first call
            if not self.compiled:
                raise
            message = str(exc).splitlines()[0][:200] if str(exc) else ""
            self._fallback(f"{type(exc).__name__}: {message}")
            out = self._kernel(*args)
        if first:
            self._seen.add(key)
            self.compile_seconds += time.perf_counter() - start
        w_out, loss_out, grad_out, diverged, info_loss, info_acc = out
        new_state = SGLDState(
            w=w_out,
            centre=state.centre,
            loss=loss_out,
            grad=grad_out,
            loss_init=state.loss_init,
            diverged_at=diverged,
            keys=state.keys,
            step=t + 1,
        )
        return new_state, SGLDInfo(loss=info_loss, acceptance=info_acc)


_STEP_CACHE: weakref.WeakKeyDictionary[Any, FusedPotentialStep] = weakref.WeakKeyDictionary()


def fused_step_for(target: Target) -> FusedPotentialStep:
    """A :class:`FusedPotentialStep` for ``target``, cached per loss function (a
    :class:`FunctionTarget`'s ``fn``, shared by its copies), so repeated runs re-use the
    compiled kernels."""
    fn = getattr(target, "fn", None)
    owner = fn if isinstance(target, FunctionTarget) and callable(fn) else target
    try:
        step = _STEP_CACHE.get(owner)
    except TypeError:  # not weak-referenceable
        return FusedPotentialStep(target)
    if step is None:
        step = FusedPotentialStep(target)
        _STEP_CACHE[owner] = step
    return step


StepFn = Callable[..., tuple[SGLDState, SGLDInfo]]


def select_step(target: Target, fused: bool | None = None) -> StepFn:
    """The step function the run loop should use.

    ``fused=None`` reads ``LLTOOLS_FUSED`` (off when unset).  The fused step is used only
    for targets without data; otherwise, or when off, :func:`lltools.sgld.step`.
    """
    if fused is None:
        fused = bool(_env_flag(FUSED_ENV))
    if fused and supports_fused(target):
        return fused_step_for(target)
    return sgld.step
