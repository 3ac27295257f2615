"""Refuse runs that would not fit, before allocating anything.

Every run estimates its bytes (trace buffers + working tensors [+ activations for
networks]) and compares them with what the device can give: free CUDA memory, or a share
of available host RAM.  Over the limit, :class:`MemoryBudgetError` says the estimate, the
limit, and what to change.
"""

from __future__ import annotations

import os

import torch


class MemoryBudgetError(ValueError):
    """A run was refused because its estimated memory exceeds the device's budget."""


#: Fraction of available memory a run may claim.
BUDGET_FRACTION = 0.6


def _host_available_bytes() -> int:
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


def sampling_bytes(
    num_chains: int,
    dim: int,
    num_recorded: int,
    *,
    itemsize: int,
    position_values: int = 0,
    extra_per_chain: int = 0,
) -> int:
    """Bytes for a sampling run: 2 trace buffers (C, T), ~10 working (C, d) tensors, positions."""
    traces = 2 * num_chains * num_recorded * itemsize
    working = 10 * num_chains * dim * itemsize
    return traces + working + position_values * itemsize + num_chains * extra_per_chain
