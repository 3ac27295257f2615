"""Shared helpers for the benchmark scripts (scripts, not tests; not part of the package).

Every script takes ``--quick`` (a small smoke version), ``--threads`` (torch intra-op
threads; default: torch's own choice) and ``--out`` (CSV path), prints a header describing
the machine (CPU model, cores, load average, torch/devinterp versions, date) and a table.

Timing notes
------------
- Wall time is what a user waits for; it is reported together with the process CPU time,
  which is far less sensitive to other processes on a shared machine.  When the 1-minute
  load average exceeds the number of cores the header says so: treat the wall-clock
  numbers as lower bounds for throughput, and re-run on a quiet machine.
- On a loaded machine, torch's OpenMP threads wait for each other at every parallel
  region; ``--threads 1`` is then often faster than 2.
- CUDA timings synchronise before reading the clock.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import itertools
import math
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------------------- machine
def cpu_model() -> str:
    """The CPU model name from ``lscpu`` (or /proc/cpuinfo)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def devinterp_version() -> str | None:
    """The version of the importable devinterp (honours a prepended ``sys.path``)."""
    try:
        import devinterp  # noqa: F401
    except ImportError:
        return None
    from importlib import metadata

    try:
        import devinterp as _d

        # A --target install next to the package has its own dist-info.
        here = Path(_d.__file__).resolve().parent.parent
        for info in here.glob("devinterp-*.dist-info"):
            return info.name.removeprefix("devinterp-").removesuffix(".dist-info")
        return metadata.version("devinterp")
    except metadata.PackageNotFoundError:
        return "unknown"


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (math.nan, math.nan, math.nan)


def machine_info() -> dict[str, Any]:
    """CPU model, cores, load, torch/devinterp versions, threads, GPU and date."""
    cores = os.cpu_count() or 1
    load = load_average()
    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cores": cores,
        "load_avg_1m": round(load[0], 2),
        "loaded": bool(load[0] > cores),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    version = devinterp_version()
    if version is not None:
        info["devinterp"] = version
    return info


def print_header(title: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Print the machine description (and a load warning); return it."""
    info = machine_info()
    if extra:
        info.update(extra)
    print(f"== {title}")
    for key, value in info.items():
        print(f"   {key}: {value}")
    if info["loaded"]:
        print(f"   NOTE: load average {info['load_avg_1m']} > {info['cores']} cores — the machine is "
              "shared/loaded; wall-clock throughput is pessimistic, compare CPU-time columns.")
    print()
    return info


# ---------------------------------------------------------------------------- arguments
def base_parser(description: str, default_out: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small smoke version (seconds)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / default_out, help="CSV output path")
    return parser


def setup_threads(threads: int | None) -> None:
    """``--threads N``: torch's intra-op threads, and lltools' thread policy fixed to N
    (``LLTOOLS_THREADS``); without it lltools picks threads from the work per step."""
    if threads is not None:
        torch.set_num_threads(max(1, threads))
        os.environ["LLTOOLS_THREADS"] = str(max(1, threads))


def devices(include_cuda: bool = True) -> list[str]:
    """"cpu", plus "cuda" when a GPU is present (CUDA rows are skipped cleanly otherwise).

    ``LLTOOLS_BENCH_DEVICES=cuda`` (comma-separated) restricts the rows, e.g. to CUDA only in
    ``benchmarks/gpu_check.sh``.
    """
    found = ["cpu"] + (["cuda"] if include_cuda and torch.cuda.is_available() else [])
    wanted = [d.strip() for d in os.environ.get("LLTOOLS_BENCH_DEVICES", "").split(",") if d.strip()]
    return [d for d in found if d in wanted] if wanted else found


def sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------- timing
@dataclass
class Timing:
    wall: float
    cpu: float


def timed(fn: Callable[[], Any], device: str | torch.device = "cpu") -> tuple[Any, Timing]:
    """Run ``fn`` once; its result and wall/process-CPU seconds (CUDA synchronised)."""
    sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    sync(device)
    return result, Timing(time.perf_counter() - w0, time.process_time() - c0)


# ---------------------------------------------------------------------------- output
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return "" if value is None else str(value)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    """A plain fixed-width table of ``rows`` (dicts) on stdout."""
    if not rows:
        print("(no rows)")
        return
    columns = list(columns or rows[0].keys())
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    print()


def write_csv(rows: Iterable[dict[str, Any]], path: Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``rows`` (plus the machine ``info`` as extra columns) to ``path``."""
    rows = [dict(r) for r in rows]
    if info:
        for r in rows:
            for k in ("date", "cpu_model", "cores", "load_avg_1m", "torch", "torch_threads", "gpu",
                      "devinterp"):
                if k in info:
                    r.setdefault(k, info[k])
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")
    return path


# ---------------------------------------------------------------------------- memory
def rss_bytes() -> int:
    """Resident set size of this process (VmRSS in /proc/self/status), bytes (0 if unknown)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------------------- networks
def mlp(sizes: Sequence[int], *, seed: int = 0, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]`` with ``activation``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def synthetic_regression(
    n: int, d_in: int, *, seed: int = 0, noise: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs N(0, I) (n, d_in) and targets y = sin(x·a) + 0.5·tanh(x·b) + noise, shape (n, 1)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=gen)
    a = torch.randn(d_in, generator=gen) / math.sqrt(d_in)
    b = torch.randn(d_in, generator=gen) / math.sqrt(d_in)
    y = torch.sin(x @ a) + 0.5 * torch.tanh(x @ b) + noise * torch.randn(n, generator=gen)
    return x, y[:, None]


def train_mlp(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 600, lr: float = 3e-3
) -> float:
    """Full-batch Adam on ½‖y − f(x)‖² (the lltools "mse") with a learning rate decaying
    100-fold, so that w* is close to a local minimum; returns the final loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for i in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * (0.01 ** (i / max(1, steps - 1)))
        opt.zero_grad()
        loss = 0.5 * ((model(x) - y) ** 2).sum(dim=1).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(0.5 * ((model(x) - y) ** 2).sum(dim=1).mean())
