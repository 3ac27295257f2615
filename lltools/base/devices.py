"""Explicit device and dtype resolution (CUDA when present, else CPU; float32 default)."""

from __future__ import annotations

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


def server_thread_count(cpu_count: int | None = None) -> int:
    """Intra-op torch threads for a multi-session server (the dashboard).

    Sessions already run in parallel, so each computation gets a share of the cores: one
    thread on small machines (2 cores), a quarter of the cores on larger ones.  Over-
    subscribed OpenMP threads made small-network sampling ~25× slower on a loaded 2-core
    machine.  ``LLTOOLS_TORCH_THREADS`` overrides.
    """
    import os

    override = os.environ.get("LLTOOLS_TORCH_THREADS")
    if override and override.isdigit() and int(override) > 0:
        return int(override)
    cores = cpu_count or os.cpu_count() or 1
    return max(1, cores // 4)
