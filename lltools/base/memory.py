"""Size runs to the device's memory before allocating anything: split or refuse.

Every run estimates its bytes (trace buffers + working tensors [+ activations for
networks]) and compares them with what the device can give: free CUDA memory, or a share
of available host RAM.  When all chains do not fit at once, :func:`chain_batch_size` picks
the largest chain batch whose temporaries fit next to the resident traces and state, and the
run loop steps the chains batch by batch (announced with :func:`announce`).  When not even
that fits, :class:`MemoryBudgetError` says the estimate, the limit, and what to change.
:func:`tune_host_allocator` keeps glibc from mapping a fresh page for every CPU temporary.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from typing import Any

import torch

logger = logging.getLogger("lltools")


class MemoryBudgetError(ValueError):
    """A run was refused because its estimated memory exceeds the device's budget."""


#: Fraction of available memory a run may claim.
BUDGET_FRACTION = 0.6


def _cgroup_available_bytes() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 or v1), or None if unlimited.

    A container's limit is often far below the host's ``MemAvailable``: a run sized by
    ``MemAvailable`` alone passes the check and is then killed by the OOM killer.
    """
    pairs = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
             ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))
    for limit_file, usage_file in pairs:
        try:
            with open(limit_file) as fh:
                raw = fh.read().strip()
            if raw == "max":
                return None
            limit = int(raw)
            with open(usage_file) as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit >= 2**60:  # v1's "unlimited"
            return None
        return max(0, limit - usage)
    return None


def _host_available_bytes() -> int:
    available = _meminfo_available_bytes()
    cgroup = _cgroup_available_bytes()
    return available if cgroup is None else min(available, cgroup)


def _meminfo_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


def available_bytes(device: torch.device | str) -> int:
    """Bytes a run may use on ``device`` (``BUDGET_FRACTION`` of what is free)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * BUDGET_FRACTION)
    override = os.environ.get("LLTOOLS_MEMORY_LIMIT_BYTES")
    if override:
        try:
            limit = float(override)
        except ValueError:
            limit = float("nan")
        if not (0 < limit < 2**62):
            raise ValueError(
                f"LLTOOLS_MEMORY_LIMIT_BYTES must be a positive number of bytes, got {override!r}"
            )
        return int(limit)
    return int(_host_available_bytes() * BUDGET_FRACTION)


def format_bytes(num: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(num) < 1024 or unit == "PiB":
            return f"{num:.1f} {unit}"
        num /= 1024
    return f"{num:.1f} PiB"


def check_fits(estimate: float, device: torch.device | str, *, what: str, suggestion: str) -> None:
    """Raise :class:`MemoryBudgetError` if ``estimate`` bytes exceed the device budget."""
    limit = available_bytes(device)
    if estimate > limit:
        raise MemoryBudgetError(
            f"{what} needs about {format_bytes(estimate)} but only {format_bytes(limit)} "
            f"is available on {torch.device(device)}; {suggestion}"
        )


#: Working (C, d) tensors of one step when all chains step at once (state + temporaries).
WORKING_VECTORS = 10
#: (C, d) tensors held for every chain when the step runs in chain batches: the centres, and
#: the old and new positions and gradients.
STATE_VECTORS = 5


def announce(message: str, *, stream: Any = None) -> None:
    """Tell the user how a run was split: log ``message`` on the ``lltools`` logger and print
    it to stderr (or ``stream``)."""
    logger.info(message)
    print(f"lltools: {message}", file=stream or sys.stderr, flush=True)


def chain_batch_size(
    num_chains: int,
    dim: int,
    num_recorded: int,
    *,
    itemsize: int,
    device: torch.device | str,
    position_values: int = 0,
    extra_per_chain: int = 0,
    budget: int | None = None,
    suggestion: str = "use fewer chains or draws, more thinning, or a smaller batch size.",
) -> int:
    """The largest number of chains one step can process at once on ``device``.

    All C chains at once need :func:`sampling_bytes`.  When that is over the budget
    (:func:`available_bytes`, or ``budget``), the step can run in chain batches of B: the
    traces, positions and :data:`STATE_VECTORS` (C, d) tensors stay resident for every chain,
    and the temporaries — the other ``WORKING_VECTORS − STATE_VECTORS`` (B, d) tensors and the
    target's ``extra_per_chain`` bytes (a network's activations) — exist for one batch at a time:

        B = ⌊(budget − resident) / ((WORKING_VECTORS − STATE_VECTORS)·d·itemsize + extra)⌋

    Returns C when everything fits, else 1 ≤ B < C.

    Raises
    ------
    MemoryBudgetError
        When even one chain at a time does not fit (the traces and state alone are too big);
        the message has the estimate, the budget and ``suggestion``.
    """
    limit = available_bytes(device) if budget is None else int(budget)
    everything = sampling_bytes(num_chains, dim, num_recorded, itemsize=itemsize,
                                position_values=position_values, extra_per_chain=extra_per_chain)
    if everything <= limit:
        return num_chains
    resident = (2 * num_chains * num_recorded + STATE_VECTORS * num_chains * dim + position_values) * itemsize
    per_chain = (WORKING_VECTORS - STATE_VECTORS) * dim * itemsize + extra_per_chain
    batch = (limit - resident) // max(per_chain, 1)
    if batch < 1:
        raise MemoryBudgetError(
            f"sampling {num_chains} chains × {num_recorded} recorded steps × {dim} parameters "
            f"(even stepping one chain at a time) needs about {format_bytes(resident + per_chain)} "
            f"but only {format_bytes(limit)} is available on {torch.device(device)}; {suggestion}"
        )
    return int(min(batch, num_chains))


def sampling_bytes(
    num_chains: int,
    dim: int,
    num_recorded: int,
    *,
    itemsize: int,
    position_values: int = 0,
    extra_per_chain: int = 0,
) -> int:
    """Bytes for a sampling run with every chain stepping at once: 2 trace buffers (C, T),
    :data:`WORKING_VECTORS` (C, d) tensors, positions, and ``extra_per_chain`` per chain."""
    traces = 2 * num_chains * num_recorded * itemsize
    working = WORKING_VECTORS * num_chains * dim * itemsize
    return traces + working + position_values * itemsize + num_chains * extra_per_chain


# ---------------------------------------------------------------------------- host allocator
# Out-of-place ops on ~0.5–1 MB CPU tensors (65 536 chains × 2 floats) sit right at glibc's
# mmap threshold, so every temporary is a fresh ``mmap`` and its first touch page-faults.
# :func:`tune_host_allocator` raises ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to 1 GiB once
# per process (Linux/glibc only; a no-op elsewhere), so temporaries are recycled from the heap.
# The cost: up to 1 GiB of freed heap may stay mapped to the process instead of being handed
# back to the OS immediately.  Disable with ``LLTOOLS_MALLOPT=0``.

#: Environment switch for the allocator tweak ("0"/"false"/"off" disables it).
MALLOPT_ENV = "LLTOOLS_MALLOPT"

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_ALLOCATOR_BYTES = 1 << 30

_allocator_lock = threading.Lock()
_allocator_tuned: bool | None = None  # None: not tried yet


def _mallopt_enabled() -> bool:
    value = os.environ.get(MALLOPT_ENV, "").strip().lower()
    return value == "" or value in ("1", "true", "yes", "on")


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
        if _mallopt_enabled() and sys.platform.startswith("linux"):
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
