"""Files of the run store: layout constants, atomic writes, JSON/Parquet, writer processes.

Every file is written under a temporary name in the same directory (``.tmp-*``), fsynced and
moved into place with :func:`os.replace`, so a reader sees either the old or the new file,
never half of one; readers ignore ``.tmp-*`` names.  No pickle anywhere: JSON and Parquet only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

#: Bumped when the on-disk layout changes incompatibly.
FORMAT_VERSION = 1
#: Environment variable naming the data directory.
HOME_ENV = "LLTOOLS_HOME"
RUNS_DIR = "runs"
MANIFEST = "manifest.json"
CHAINS_FILE = "chains.parquet"
CHUNK_PATTERN = re.compile(r"^chunk-(\d{6,})\.parquet$")
TMP_PREFIX = ".tmp-"
KINDS = ("estimate", "sweep", "trajectory")
#: Stored statuses (``stopped``: ended early on request, with the summary of its draws so far),
#: plus ``incomplete`` (derived: ``running`` but the writer is gone) and ``corrupt``.
STATUSES = ("running", "complete", "stopped", "failed", "incomplete", "corrupt")
#: A ``running`` run written on another host counts as incomplete after this much silence.
REMOTE_STALE_S = 3600.0
#: Default minimum seconds between two flushes of the same run (the last one always flushes).
DEFAULT_FLUSH_INTERVAL_S = 1.0

TRACE_COLUMNS = ("chain", "setting", "step", "loss", "acceptance")
CHAIN_COLUMNS = (
    "chain", "setting", "chain_in_setting", "epsilon", "gamma", "nbeta", "loss_init", "diverged_at",
)  # fmt: skip
TRACE_SCHEMA = pa.schema(
    [
        ("chain", pa.int32()),
        ("setting", pa.int32()),
        ("step", pa.int64()),
        ("loss", pa.float64()),
        ("acceptance", pa.float64()),
    ]
)

class RunStoreError(ValueError):
    """A user-facing store error (unknown id, refused operation); one line, no traceback."""


# ----------------------------------------------------------------------------- small helpers
def default_root() -> Path:
    """The data directory: ``$LLTOOLS_HOME`` if set, else ``~/.lltools``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".lltools"


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_run_id() -> str:
    """A run id, sortable by creation time and unique across processes.

    ``YYYYmmddTHHMMSS.ffffff-<pid>-<8 random hex>``, e.g. ``20261123T214012.123456-4821-3fa9c1d2``.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
    return f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: NaN/inf -> None, numpy/torch scalars -> Python, else str."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # 0-d torch tensor
        return jsonable(value.item())
    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict(orient="records")]
    return str(value)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort; not all systems allow it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}.{secrets.token_hex(3)}")


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write ``path`` atomically: ``write(file)`` into a temp name, fsync, ``os.replace``."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically write ``data`` as JSON (strict: no NaN)."""
    text = json.dumps(jsonable(data), indent=1, allow_nan=False)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_parquet(path: Path, table: pa.Table) -> str:
    """Atomically write a Parquet file; returns the SHA-256 (hex) of the bytes written."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    atomic_write(path, lambda fh: fh.write(data))
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of ``pid`` from /proc, or None off Linux."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` (to tell a live writer from a recycled pid), where known."""
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether process ``pid`` still runs (zombies and recycled pids count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, start = stat
    if state in ("Z", "X"):
        return False
    return start_ticks is None or start == start_ticks


def versions() -> dict[str, str]:
    """Versions of what produced a run."""
    try:
        own = metadata.version("lltools")
    except metadata.PackageNotFoundError:
        own = "unknown"
    out = {
        "lltools": own,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
    }
    out["torch"] = torch.__version__
    return out


def describe_exception(exc: BaseException) -> str:
    """``Type: first line of the message`` (just ``Type`` when there is no message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__

