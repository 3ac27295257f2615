"""Explicit device and dtype resolution (CUDA when present, else CPU; float32 default) and the
CPU thread policy (:func:`thread_count`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_DTYPES = {
    "float32": torch.float32,
    "float": torch.float32,
    "fp32": torch.float32,
    "float64": torch.float64,
    "double": torch.float64,
    "fp64": torch.float64,
}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto" -> CUDA if available else CPU; "cuda" without a GPU is an error."""
    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'auto'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; use 'cpu', 'cuda' or 'auto'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None = None) -> torch.dtype:
    """``None`` -> float32; accepts "float32"/"float64" (and aliases) or a torch dtype."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"unsupported dtype {dtype}; use float32 or float64")
        return dtype
    key = str(dtype).lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use float32 or float64")
    return _DTYPES[key]


def device_name(device: torch.device) -> str:
    """A human-readable device description, e.g. 'cpu (16 threads)' or the GPU's name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


#: Environment override of the intra-op thread count (a positive integer).
THREADS_ENV = "LLTOOLS_THREADS"
#: Older name of :data:`THREADS_ENV`, still read.
_LEGACY_THREADS_ENV = "LLTOOLS_TORCH_THREADS"
#: Work per step (≈ multiply-adds, see :func:`step_work`) that repays one more thread.  Below
#: it a step is too small to split: on a busy 2-core machine a 75-parameter network at 8
#: chains × batch 500 (work ≈ 3·10⁵) ran ~10× faster on one thread than on two.
WORK_PER_THREAD = 2**23
#: Elementwise operations per parameter in one step (noise hash, update, acceptance): the
#: work of a potential's step, and what a data target adds to its matrix products.
ELEMENTWISE_OPS = 64


#: Matrix-product precisions a network target can evaluate in (its ``precision``
#: argument): full fp32, or bf16 products with fp32
#: parameters, noise and accumulation (mixed precision, opt-in).
MATMUL_PRECISIONS = ("fp32", "bf16")


def fast_bf16_matmul(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware: a CUDA GPU that supports bf16,
    or a CPU reporting AVX-512 BF16 or AMX (``/proc/cpuinfo`` flags).  Elsewhere bf16
    products are emulated and slower than fp32."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def step_work(num_chains: int, dim: int, rows: int = 0) -> float:
    """Work of one SGLD step ≈ C · d · (rows + :data:`ELEMENTWISE_OPS`) multiply-adds.

    ``rows`` is the number of data rows one chain's gradient reads (its minibatch size, or
    n for full-batch gradients; 0 for a potential): a dense network costs about d
    multiply-adds per row.
    """
    return float(num_chains) * float(dim) * float(rows + ELEMENTWISE_OPS)


def _threads_override() -> int | None:
    for name in (THREADS_ENV, _LEGACY_THREADS_ENV):
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        if value.isdigit() and int(value) > 0:
            return int(value)
        warnings.warn(f"lltools: ignoring {name}={value!r} (expected a positive integer)",
                      RuntimeWarning, stacklevel=3)
    return None


def thread_count(
    work_per_step: float | None = None,
    *,
    ceiling: int | None = None,
    shared: bool = False,
    cpu_count: int | None = None,
) -> int:
    """Intra-op torch threads for CPU sampling: the one thread policy of lltools.

    ``LLTOOLS_THREADS`` (a positive integer) overrides everything.  Otherwise the ceiling is
    ``ceiling`` if given, else the machine's cores — a quarter of them (at least one) when
    ``shared`` (the dashboard, whose sessions already run in parallel; over-subscribed OpenMP
    threads made small-network sampling ~25× slower on a loaded 2-core machine).  Within
    it, a step gets one thread per :data:`WORK_PER_THREAD` of ``work_per_step``
    (:func:`step_work`): small steps run on one thread, where thread hand-offs would cost
    more than they save.  ``work_per_step=None`` returns the ceiling.

    Returns
    -------
    int, >= 1
    """
    override = _threads_override()
    if override is not None:
        return override
    if ceiling is None:
        cores = cpu_count or os.cpu_count() or 1
        ceiling = max(1, cores // 4) if shared else cores
    ceiling = max(1, int(ceiling))
    if work_per_step is None:
        return ceiling
    return int(min(ceiling, max(1, work_per_step // WORK_PER_THREAD)))


@contextmanager
def threads_for_step(work_per_step: float, device: torch.device | str = "cpu") -> Iterator[int]:
    """Run a block with :func:`thread_count` intra-op threads for steps of ``work_per_step``.

    The ceiling is torch's thread count on entry (so ``OMP_NUM_THREADS``, a caller's
    ``torch.set_num_threads`` and the dashboard's cap are never exceeded); the count on entry
    is restored on exit unless someone else changed it meanwhile.  CUDA devices: no change.
    Yields the thread count in force.
    """
    before = torch.get_num_threads()
    if torch.device(device).type != "cpu":
        yield before
        return
    threads = thread_count(work_per_step, ceiling=before)
    if threads != before:
        torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        if threads != before and torch.get_num_threads() == threads:
            torch.set_num_threads(before)
