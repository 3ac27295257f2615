"""An embedded, crash-safe run store: every run is saved while it is going.

Layout under the data directory (``root=`` > ``$LLTOOLS_HOME`` > ``~/.lltools``)::

    <root>/runs/<run id>/
        manifest.json              settings, target, versions, status, heartbeat, progress, summary
        chains.parquet             one row per chain: ids, ε, γ, nβ, L(w*), diverged_at
        chunk-000000.parquet       tidy trace rows: chain, setting, step, loss, acceptance
        chunk-000001.parquet       ... one file per flush, holding only the new columns

Crash safety
------------
Every file is written under a temporary name in the same directory (``.tmp-*``), fsynced
and moved into place with :func:`os.replace`, so a reader sees either the old or the new
file, never half of one; readers ignore ``.tmp-*`` names.  A new run directory is built
under a temporary name and renamed into ``runs/`` with its manifest already inside.  The
manifest carries ``status`` (``running`` -> ``complete`` | ``failed``), the writer's pid,
host and process start time, and a heartbeat refreshed on every flush.  A ``running`` run
whose process is gone (``kill -9``, power loss) is reported as ``incomplete``; all of its
flushed chunks remain readable.

Concurrency
-----------
Each run owns its directory and only its writer ever writes there.  There is no shared
index: :meth:`RunStore.list_runs` scans the run directories, so any number of processes
(CLI runs, the app) may write into one store at once without locks.

Sampler state is not persisted, so an incomplete run cannot be continued where it stopped;
:meth:`RunStore.resume_info` gives what is needed to re-run the same settings from scratch
(same seed, hence the same chains).  No pickle anywhere: JSON and Parquet only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from lltools.sampling.driver import Trace
    from lltools.targets.base import Target

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
#: Stored statuses, plus ``incomplete`` (derived: ``running`` but the writer is gone).
STATUSES = ("running", "complete", "failed", "incomplete", "corrupt")
#: A ``running`` run written on another host counts as incomplete after this much silence.
REMOTE_STALE_S = 3600.0
#: Default minimum seconds between two flushes of the same run (the last one always flushes).
DEFAULT_FLUSH_INTERVAL_S = 1.0

TRACE_COLUMNS = ("chain", "setting", "step", "loss", "acceptance")
TRACE_SCHEMA = pa.schema(
    [
        ("chain", pa.int32()),
        ("setting", pa.int32()),
        ("step", pa.int64()),
        ("loss", pa.float64()),
        ("acceptance", pa.float64()),
    ]
)
LIST_COLUMNS = (
    "id", "created", "kind", "target", "status", "llc_mean", "llc_sem", "n_chains",
    "draws_done", "num_draws", "steps_done", "num_steps_total",
)  # fmt: skip


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


def _fsync_dir(path: Path) -> None:
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
    _fsync_dir(path.parent)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically write ``data`` as JSON (strict: no NaN)."""
    text = json.dumps(jsonable(data), indent=1, allow_nan=False)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_parquet(path: Path, table: pa.Table) -> None:
    """Atomically write a Parquet file."""
    atomic_write(path, lambda fh: pq.write_table(table, fh))


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


def effective_status(manifest: dict[str, Any]) -> str:
    """The stored status, with a dead writer's ``running`` reported as ``incomplete``."""
    status = manifest.get("status", "corrupt")
    if status != "running":
        return status
    writer = manifest.get("writer", {})
    if writer.get("host") == socket.gethostname():
        alive = pid_alive(int(writer.get("pid", -1)), writer.get("start_ticks"))
        return "running" if alive else "incomplete"
    silence = time.time() - float(manifest.get("heartbeat_unix", 0.0))
    return "running" if silence < REMOTE_STALE_S else "incomplete"


def versions() -> dict[str, str]:
    """Versions of what produced a run."""
    import lltools

    out = {
        "lltools": lltools.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
    }
    with contextlib.suppress(ImportError):
        import torch

        out["torch"] = torch.__version__
    return out


def describe_exception(exc: BaseException) -> str:
    """``Type: first line of the message`` (just ``Type`` when there is no message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def describe_target(spec: dict[str, Any]) -> str:
    """A short one-line description of a target spec for listings."""
    kind = spec.get("kind")
    if kind == "potential":
        return str(spec.get("spec"))
    if kind == "model":
        ckpt = spec.get("checkpoint")
        return f"{spec.get('path')}" + (f" @ {Path(str(ckpt)).name}" if ckpt else "")
    return str(spec.get("name") or spec.get("spec") or kind or "")


# ----------------------------------------------------------------------------- trace -> rows
def _host(x: Any) -> np.ndarray:
    """A tensor (or array) as a host numpy array; floats become float64."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        x = x.double() if x.is_floating_point() else x
        return x.numpy()
    return np.asarray(x)


def trace_rows(trace: Trace, start: int, stop: int) -> pa.Table:
    """Columns ``start:stop`` of ``trace`` as tidy rows (chain-major, then step)."""
    loss = _host(trace.loss[:, start:stop])  # (C, k)
    acceptance = _host(trace.acceptance[:, start:stop])  # (C, k)
    steps = _host(trace.steps[start:stop]).astype(np.int64)  # (k,)
    setting = _host(trace.setting_index).astype(np.int32)  # (C,)
    num_chains, k = loss.shape
    columns = [
        np.repeat(np.arange(num_chains, dtype=np.int32), k),
        np.repeat(setting, k),
        np.tile(steps, num_chains),
        loss.reshape(-1).astype(np.float64),
        acceptance.reshape(-1).astype(np.float64),
    ]
    return pa.Table.from_arrays([pa.array(c) for c in columns], schema=TRACE_SCHEMA)


def chain_rows(trace: Trace) -> pa.Table:
    """One row per chain: identifiers, hyperparameters, L(w*) and divergence step."""
    frame = pd.DataFrame(
        {
            "chain": np.arange(trace.num_chains, dtype=np.int32),
            "setting": _host(trace.setting_index).astype(np.int32),
            "chain_in_setting": _host(trace.chain_index).astype(np.int32),
            "epsilon": _host(trace.params.epsilon).astype(np.float64),
            "gamma": _host(trace.params.gamma).astype(np.float64),
            "nbeta": _host(trace.params.nbeta).astype(np.float64),
            "loss_init": _host(trace.loss_init).astype(np.float64),
            "diverged_at": _host(trace.diverged_at).astype(np.int64),
        }
    )
    return pa.Table.from_pandas(frame, preserve_index=False)


# ----------------------------------------------------------------------------- the writer
class RunWriter:
    """Appends one run's trace chunks and keeps its manifest current.

    Use :meth:`RunStore.create_run` to get one.  Not shared between processes: a run's
    directory has exactly one writer.  Also a context manager: an exception inside the
    ``with`` block marks the run failed; leaving it normally without :meth:`finish`
    marks it complete without a summary.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], flush_interval: float) -> None:
        self.path = path
        self.manifest = manifest
        self.flush_interval = float(flush_interval)
        self._written = 0  # trace columns already on disk
        self._next_chunk = 0
        self._last_flush = -math.inf
        self._diverged: bytes | None = None  # diverged_at as last written to chains.parquet
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return str(self.manifest["id"])

    @property
    def closed(self) -> bool:
        return self.manifest["status"] != "running"

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.closed:
            return
        if exc is None:
            self.finish(None)
        else:
            self.fail(describe_exception(exc))

    # .............................................................. updates
    def update(self, **fields: Any) -> None:
        """Merge extra manifest fields (e.g. ``resolved_settings``, ``target_info``) and save."""
        with self._lock:
            self._check_open()
            self.manifest.update(jsonable(fields))
            self._save_manifest()

    def append(self, trace: Trace, *, force: bool = False) -> bool:
        """Write the columns of ``trace`` not yet on disk as one chunk.

        ``trace`` is a partial (or the final) trace of the run: its columns fill left to
        right, so only columns ``[written, filled)`` are new.  Flushes are at least
        ``flush_interval`` seconds apart unless ``force`` or the trace is complete; a
        skipped flush loses nothing, since the next trace holds those columns too.

        Returns whether a chunk was written.
        """
        with self._lock:
            self._check_open()
            filled = int(trace.loss.shape[1])
            if filled < self._written:
                raise RunStoreError(
                    f"trace has {filled} columns but {self._written} are already stored"
                )
            due = force or trace.complete or self._next_chunk == 0
            due = due or time.monotonic() - self._last_flush >= self.flush_interval
            if not due:
                return False
            wrote = filled > self._written
            if wrote:
                self._write_chunk(trace, self._written, filled)
            self._write_chains(trace)
            self._record_progress(trace, filled)
            self._save_manifest()
            self._last_flush = time.monotonic()
            return wrote

    def finish(self, result: dict[str, Any] | None = None) -> None:
        """Mark the run complete and store its summary (``EstimateResult.to_dict()``)."""
        with self._lock:
            self._check_open()
            summary = jsonable(result) if result is not None else None
            self.manifest["summary"] = summary
            if isinstance(summary, dict) and summary.get("warnings"):
                self.manifest["warnings"] = list(summary["warnings"])
            self._close("complete")

    def fail(self, message: str) -> None:
        """Mark the run failed with a one-line ``message`` (the chunks stay readable)."""
        with self._lock:
            if self.closed:
                return
            self.manifest["error"] = str(message).splitlines()[0] if message else "failed"
            self._close("failed")

    # .............................................................. internals
    def _check_open(self) -> None:
        if self.closed:
            raise RunStoreError(f"run {self.run_id} is already {self.manifest['status']}")

    def _write_chunk(self, trace: Trace, start: int, stop: int) -> None:
        name = f"chunk-{self._next_chunk:06d}.parquet"
        write_parquet(self.path / name, trace_rows(trace, start, stop))
        self.manifest["chunks"].append(
            {
                "file": name,
                "first_column": start,
                "columns": stop - start,
                "first_step": int(trace.steps[start]),
                "last_step": int(trace.steps[stop - 1]),
            }
        )
        self._next_chunk += 1
        self._written = stop

    def _write_chains(self, trace: Trace) -> None:
        """Rewrite ``chains.parquet`` when it is new, a chain diverged, or the run ends."""
        diverged = _host(trace.diverged_at).tobytes()
        if diverged != self._diverged or trace.complete:
            write_parquet(self.path / CHAINS_FILE, chain_rows(trace))
            self._diverged = diverged

    def _record_progress(self, trace: Trace, filled: int) -> None:
        steps = _host(trace.steps[:filled])
        self.manifest["progress"] = {
            "steps_done": int(trace.meta.get("steps_done", int(steps[-1]) + 1 if filled else 0)),
            "num_steps_total": int(trace.num_steps_total),
            "num_burnin": int(trace.num_burnin),
            "columns_done": filled,
            "draws_done": int((steps >= trace.num_burnin).sum()),
            "num_chains": int(trace.num_chains),
            "num_settings": int(np.unique(_host(trace.setting_index)).size),
        }
        meta = {k: v for k, v in trace.meta.items() if k != "steps_done"}
        self.manifest.setdefault("trace_meta", {}).update(jsonable(meta))

    def _close(self, status: str) -> None:
        self.manifest["status"] = status
        self.manifest["finished"] = now_iso()
        self._save_manifest()

    def _save_manifest(self) -> None:
        self.manifest["heartbeat"] = now_iso()
        self.manifest["heartbeat_unix"] = time.time()
        write_json(self.path / MANIFEST, self.manifest)


# ----------------------------------------------------------------------------- reading
@dataclass
class StoredRun:
    """A run read back from the store.

    Attributes
    ----------
    id : str
    path : Path
        The run's directory.
    manifest : dict
        Everything in ``manifest.json``; ``status`` is the effective one (``incomplete``
        when the writer died).
    traces : DataFrame
        Tidy rows ``chain, setting, step, loss, acceptance`` from every flushed chunk,
        ordered by chain then step.
    chains : DataFrame
        One row per chain: ``chain, setting, chain_in_setting, epsilon, gamma, nbeta,
        loss_init, diverged_at`` (empty if nothing was flushed).
    summary : dict or None
        The finished run's result (``EstimateResult.to_dict()``), else None.
    """

    id: str
    path: Path
    manifest: dict[str, Any]
    traces: pd.DataFrame
    chains: pd.DataFrame
    summary: dict[str, Any] | None = None
    stray_files: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.manifest.get("status"))

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind"))

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.manifest.get("settings", {}))

    @property
    def target(self) -> dict[str, Any]:
        return dict(self.manifest.get("target", {}))

    @property
    def steps_done(self) -> int:
        return int(self.manifest.get("progress", {}).get("steps_done", 0))

    def to_trace(self) -> Trace:
        """The flushed part of the run as a host :class:`~lltools.sampling.driver.Trace` (float64)."""
        import torch

        from lltools.sampling.driver import Trace
        from lltools.sampling.sgld import SGLDParams

        if self.chains.empty:
            raise RunStoreError(f"run {self.id} has no flushed trace yet")
        progress = self.manifest.get("progress", {})
        steps = np.sort(self.traces["step"].unique()) if len(self.traces) else np.zeros(0, np.int64)

        def grid(column: str) -> torch.Tensor:
            wide = self.traces.pivot(index="chain", columns="step", values=column)
            wide = wide.reindex(index=self.chains["chain"], columns=steps)
            return torch.tensor(wide.to_numpy(dtype=np.float64))

        col = {k: torch.tensor(self.chains[k].to_numpy()) for k in self.chains.columns}
        return Trace(
            loss=grid("loss"),
            acceptance=grid("acceptance"),
            steps=torch.from_numpy(steps.astype(np.int64)),
            loss_init=col["loss_init"].double(),
            diverged_at=col["diverged_at"].long(),
            params=SGLDParams(col["epsilon"].double(), col["gamma"].double(), col["nbeta"].double()),
            chain_index=col["chain_in_setting"].long(),
            setting_index=col["setting"].long(),
            num_burnin=int(progress.get("num_burnin", 0)),
            num_steps_total=int(progress.get("num_steps_total", 0)),
            complete=self.status == "complete",
            meta={**self.manifest.get("trace_meta", {}), "steps_done": self.steps_done},
        )


def chunk_files(path: Path) -> list[Path]:
    """The committed chunk files of a run directory in order (temp files are skipped)."""
    found = [(int(m.group(1)), p) for p in path.iterdir() if (m := CHUNK_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def read_traces(path: Path) -> pd.DataFrame:
    """All flushed chunks of a run as one tidy frame (ordered by chain, then step)."""
    files = chunk_files(path)
    if not files:
        return TRACE_SCHEMA.empty_table().to_pandas()
    table = pa.concat_tables([pq.read_table(f, schema=TRACE_SCHEMA) for f in files])
    frame = table.to_pandas()
    return frame.sort_values(["chain", "step"], kind="stable").reset_index(drop=True)


def read_manifest(path: Path) -> dict[str, Any]:
    """A run's manifest with its effective status (``corrupt`` if unreadable)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        if not isinstance(manifest, dict):
            raise ValueError("manifest is not an object")
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        return {"id": path.name, "status": "corrupt", "error": f"unreadable manifest: {exc}"}
    manifest["stored_status"] = manifest.get("status")
    manifest["status"] = effective_status(manifest)
    return manifest


# ----------------------------------------------------------------------------- the store
class RunStore:
    """Runs saved under ``root`` (default ``$LLTOOLS_HOME`` or ``~/.lltools``).

    Parameters
    ----------
    root : str or Path, optional
        The data directory; runs live in ``root/runs/<id>/``.  Created on first write.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.runs_dir = self.root / RUNS_DIR

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # .............................................................. writing
    def create_run(
        self,
        kind: str,
        settings: dict[str, Any],
        target: dict[str, Any],
        meta: dict[str, Any] | None = None,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
    ) -> RunWriter:
        """Start a run: its directory appears in the store with status ``running``.

        Parameters
        ----------
        kind : {"estimate", "sweep", "trajectory"}
        settings : dict
            The sampler settings as requested (enough to re-run: passed back to
            ``estimate_stream`` / ``sweep_stream`` by ``runs resume``).
        target : dict
            A target spec, e.g. ``{"kind": "potential", "spec": "x**2*y**4"}`` or
            ``{"kind": "model", "path": ..., "checkpoint": ...}``.
        meta : dict, optional
            Anything else worth keeping (free-form JSON).
        flush_interval : float
            Minimum seconds between chunk flushes (0 = flush on every append).
        """
        if kind not in KINDS:
            raise RunStoreError(f"unknown run kind {kind!r}; use one of {', '.join(KINDS)}")
        manifest = self._new_manifest(kind, settings, target, meta or {})
        path = self._materialise(manifest)
        return RunWriter(path, manifest, flush_interval)

    def _new_manifest(
        self, kind: str, settings: dict[str, Any], target: dict[str, Any], meta: dict[str, Any]
    ) -> dict[str, Any]:
        pid = os.getpid()
        return jsonable(
            {
                "format": FORMAT_VERSION,
                "id": new_run_id(),
                "kind": kind,
                "status": "running",
                "created": now_iso(),
                "finished": None,
                "writer": {"pid": pid, "host": socket.gethostname(),
                           "start_ticks": process_start_ticks(pid)},
                "settings": dict(settings),
                "target": dict(target),
                "meta": dict(meta),
                "seed": settings.get("seed"),
                "device": settings.get("device"),
                "versions": versions(),
                "progress": {"steps_done": 0, "columns_done": 0, "draws_done": 0},
                "chunks": [],
                "warnings": [],
                "summary": None,
                "error": None,
            }
        )

    def _materialise(self, manifest: dict[str, Any]) -> Path:
        """Build the run directory under a temp name, then rename it into place."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        final = self.runs_dir / manifest["id"]
        staging = self.runs_dir / f"{TMP_PREFIX}{manifest['id']}"
        staging.mkdir()
        manifest["heartbeat"] = now_iso()
        manifest["heartbeat_unix"] = time.time()
        write_json(staging / MANIFEST, manifest)
        if final.exists():  # never happens with a pid + random id; refuse rather than merge
            shutil.rmtree(staging, ignore_errors=True)
            raise RunStoreError(f"run id collision: {manifest['id']}")
        os.rename(staging, final)
        _fsync_dir(self.runs_dir)
        return final

    # .............................................................. reading
    def run_dirs(self) -> list[Path]:
        """Committed run directories, oldest first (temp and trash names skipped)."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(
            p for p in self.runs_dir.iterdir() if not p.name.startswith(".") and p.is_dir()
        )

    def resolve(self, run_id: str) -> Path:
        """The directory of ``run_id``: an exact id, a unique prefix of one, or ``latest``."""
        dirs = self.run_dirs()
        if run_id == "latest" and dirs:
            return max(dirs, key=lambda p: p.name)
        matches = [p for p in dirs if p.name == run_id] or [
            p for p in dirs if run_id and p.name.startswith(run_id)
        ]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise RunStoreError(f"no run {run_id!r} in {self.runs_dir}")
        names = ", ".join(p.name for p in matches[:3])
        raise RunStoreError(f"run id {run_id!r} is ambiguous ({len(matches)} runs: {names}, ...)")

    def manifest(self, run_id: str) -> dict[str, Any]:
        """The manifest of one run (effective status), without reading its traces."""
        return read_manifest(self.resolve(run_id))

    def list_runs(self) -> pd.DataFrame:
        """One row per run, newest first: ``id, created, kind, target, status, llc_mean,
        llc_sem, n_chains, draws_done, num_draws, steps_done, num_steps_total``."""
        rows = []
        for path in self.run_dirs():
            with contextlib.suppress(FileNotFoundError):  # deleted while we looked
                rows.append(_list_row(read_manifest(path)))
        frame = pd.DataFrame(rows, columns=list(LIST_COLUMNS))
        frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
        return frame.sort_values("id", ascending=False, kind="stable").reset_index(drop=True)

    def load_run(self, run_id: str) -> StoredRun:
        """Read a run: manifest, all flushed trace chunks, per-chain table and summary."""
        path = self.resolve(run_id)
        manifest = read_manifest(path)
        traces = read_traces(path)
        chains_path = path / CHAINS_FILE
        chains = (
            pq.read_table(chains_path).to_pandas() if chains_path.exists() else pd.DataFrame()
        )
        stray = sorted(p.name for p in path.iterdir() if p.name.startswith(TMP_PREFIX))
        return StoredRun(
            id=path.name,
            path=path,
            manifest=manifest,
            traces=traces,
            chains=chains,
            summary=manifest.get("summary"),
            stray_files=stray,
        )

    # .............................................................. export / remove
    def export(self, run_id: str, out: str | Path) -> Path:
        """Write a run to ``out``: ``.parquet`` (traces + manifest in the schema metadata),
        ``.csv`` (tidy traces) or ``.json`` (manifest, chains and traces, columnar)."""
        out = Path(out)
        suffix = out.suffix.lower()
        if suffix not in (".parquet", ".pq", ".csv", ".json"):
            raise RunStoreError(f"unsupported export extension {out.suffix!r}; use .parquet, .csv or .json")
        run = self.load_run(run_id)
        if suffix == ".csv":
            atomic_write(out, lambda fh: run.traces.to_csv(fh, index=False))
        elif suffix == ".json":
            doc = {"run": run.manifest, "chains": _columnar(run.chains), "traces": _columnar(run.traces)}
            text = json.dumps(jsonable(doc), allow_nan=False)
            atomic_write(out, lambda fh: fh.write(text.encode()))
        else:
            table = pa.Table.from_pandas(run.traces, preserve_index=False)
            meta = {b"lltools.sampling.driver": json.dumps(jsonable(run.manifest), allow_nan=False).encode()}
            write_parquet(out, table.replace_schema_metadata({**(table.schema.metadata or {}), **meta}))
        return out

    def delete(self, run_id: str, *, force: bool = False) -> str:
        """Remove a run; a run still being written is refused unless ``force``."""
        path = self.resolve(run_id)
        manifest = read_manifest(path)
        if manifest["status"] == "running" and not force:
            pid = manifest.get("writer", {}).get("pid")
            raise RunStoreError(f"run {path.name} is still running (pid {pid}); stop it first")
        self._remove(path)
        return path.name

    def discard(self, run_id: str) -> str:
        """Remove an incomplete or failed run (complete and running runs are refused)."""
        path = self.resolve(run_id)
        status = read_manifest(path)["status"]
        if status not in ("incomplete", "failed", "corrupt"):
            raise RunStoreError(
                f"run {path.name} is {status}; discard removes only incomplete or failed runs"
                + (" (use delete)" if status == "complete" else "")
            )
        self._remove(path)
        return path.name

    def _remove(self, path: Path) -> None:
        """Rename out of the listing first (atomic), then delete the files."""
        trash = path.with_name(f"{TMP_PREFIX}trash-{path.name}-{secrets.token_hex(3)}")
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def clean_temp(self, max_age_s: float = 3600.0) -> list[str]:
        """Remove leftovers of crashed writers older than ``max_age_s``: staging and trash
        directories in ``runs/`` and temp files inside run directories.  Returns their names."""
        if not self.runs_dir.is_dir():
            return []
        cutoff = time.time() - max_age_s
        stale = list(self.runs_dir.glob(f"{TMP_PREFIX}*"))
        stale += [p for d in self.run_dirs() for p in d.glob(f"{TMP_PREFIX}*")]
        removed = []
        for path in stale:
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime >= cutoff:
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path.name)
        return removed

    def resume_info(self, run_id: str) -> dict[str, Any]:
        """What is needed to re-run an unfinished run from scratch.

        Sampler state is not persisted, so a run cannot continue where it stopped; the same
        settings and seed reproduce the same chains.  Returns ``id, kind, status, target,
        settings, meta, steps_done, num_steps_total, draws_done, columns_done, chunks,
        resumable`` (whether ``lltools runs resume`` can rebuild the target) and ``error``.
        """
        manifest = self.manifest(run_id)
        status = manifest["status"]
        if status == "complete":
            raise RunStoreError(f"run {manifest['id']} is complete; nothing to resume")
        progress = manifest.get("progress", {})
        target = manifest.get("target", {})
        return {
            "id": manifest["id"],
            "kind": manifest.get("kind"),
            "status": status,
            "target": target,
            "settings": manifest.get("settings", {}),
            "meta": manifest.get("meta", {}),
            "steps_done": int(progress.get("steps_done", 0)),
            "num_steps_total": progress.get("num_steps_total"),
            "draws_done": int(progress.get("draws_done", 0)),
            "columns_done": int(progress.get("columns_done", 0)),
            "chunks": len(manifest.get("chunks", [])),
            "resumable": manifest.get("kind") in ("estimate", "sweep")
            and target.get("kind") in TARGET_BUILDERS,
            "error": manifest.get("error"),
        }


def _columnar(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {c: frame[c].tolist() for c in frame.columns}


def _list_row(manifest: dict[str, Any]) -> dict[str, Any]:
    """One listing row from a manifest."""
    progress = manifest.get("progress", {})
    summary = manifest.get("summary") or {}
    settings = manifest.get("settings", {})
    num_chains = progress.get("num_chains") or summary.get("n_chains") or settings.get("chains")

    def num(value: Any) -> float:
        return float(value) if isinstance(value, int | float) else math.nan

    return {
        "id": manifest.get("id"),
        "created": manifest.get("created"),
        "kind": manifest.get("kind"),
        "target": describe_target(manifest.get("target", {})),
        "status": manifest.get("status"),
        "llc_mean": num(summary.get("llc_mean")),
        "llc_sem": num(summary.get("llc_sem")),
        "n_chains": num_chains,
        "draws_done": progress.get("draws_done", 0),
        "num_draws": settings.get("draws"),
        "steps_done": progress.get("steps_done", 0),
        "num_steps_total": progress.get("num_steps_total"),
    }


# ----------------------------------------------------------------------------- targets
def target_spec(
    potential: str | None = None, model: str | Path | None = None, checkpoint: str | Path | None = None
) -> dict[str, Any]:
    """The stored description of a CLI target (``--potential`` or ``--model``)."""
    if potential is not None:
        return {"kind": "potential", "spec": str(potential)}
    if model is not None:
        return {
            "kind": "model",
            "path": str(Path(model).resolve()),
            "checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
        }
    raise RunStoreError("a target spec needs a potential or a model")


def _potential(spec: dict[str, Any]) -> Target:
    from lltools.targets.potentials import potential_target

    return potential_target(str(spec["spec"]))


def _model(spec: dict[str, Any]) -> Target:
    from lltools.targets.models import load_sample_model

    path = Path(spec["path"])
    if not path.exists():
        raise RunStoreError(f"model folder not found: {path}")
    return load_sample_model(path, spec.get("checkpoint"))


#: How each stored target kind is rebuilt (``runs resume``); extendable.
TARGET_BUILDERS: dict[str, Callable[[dict[str, Any]], Target]] = {
    "potential": _potential,
    "model": _model,
}


def build_target(spec: dict[str, Any]) -> Target:
    """Rebuild a :class:`~lltools.targets.base.Target` from a stored spec."""
    kind = spec.get("kind")
    if kind not in TARGET_BUILDERS:
        known = ", ".join(TARGET_BUILDERS)
        raise RunStoreError(f"cannot rebuild a target of kind {kind!r} (known: {known})")
    return TARGET_BUILDERS[kind](spec)


# ----------------------------------------------------------------------------- recording
def _trace_of(item: Any) -> Trace:
    """The trace inside a stream item: a Trace or a tuple whose first element is one."""
    return item[0] if isinstance(item, tuple) else item


def _default_summarize(kind: str) -> Callable[[Any], Any] | None:
    """How a finished stream's last item becomes a result, by run kind."""
    if kind == "estimate":

        def estimate_result(item: Any) -> Any:
            from lltools.workflows.estimate import summarize

            trace, settings, placed = item  # estimate_stream's (trace, settings, target)
            return summarize(trace, placed, settings)

        return estimate_result
    if kind == "sweep":

        def sweep_table(item: Any) -> Any:
            from lltools.estimation.llc import llc_by_setting

            return llc_by_setting(_trace_of(item).cpu())

        return sweep_table
    return None


def result_dict(result: Any) -> dict[str, Any] | None:
    """A result as the stored summary: ``.to_dict()``, a table as records, or a dict."""
    if result is None:
        return None
    if hasattr(result, "to_dict") and not isinstance(result, pd.DataFrame):
        return result.to_dict()
    if isinstance(result, pd.DataFrame):
        return {"table": jsonable(result)}
    if isinstance(result, dict):
        return result
    raise TypeError(f"cannot store a result of type {type(result).__name__}")


class RecordedStream:
    """An iterable that passes a stream's items through while recording them.

    Created by :func:`record_stream`.  After iteration, ``result`` holds the summarised
    result (e.g. an :class:`~lltools.workflows.estimate.EstimateResult`) and ``run_id`` the stored id.
    """

    def __init__(
        self,
        store: RunStore,
        stream: Iterable[Any],
        *,
        kind: str,
        settings: dict[str, Any],
        target: dict[str, Any],
        meta: dict[str, Any] | None,
        summarize: Callable[[Any], Any] | None,
        flush_interval: float,
    ) -> None:
        self.store = store
        self.stream = stream
        self.kind = kind
        self.settings = settings
        self.target = target
        self.meta = meta
        self.summarize = summarize if summarize is not None else _default_summarize(kind)
        self.flush_interval = flush_interval
        self.writer: RunWriter | None = None
        self.result: Any = None
        self._iterated = False

    @property
    def run_id(self) -> str | None:
        return None if self.writer is None else self.writer.run_id

    def __iter__(self) -> Iterator[Any]:
        if self._iterated:
            raise RuntimeError("a recorded stream can be iterated only once")
        self._iterated = True
        return self._record()

    def _record(self) -> Iterator[Any]:
        self.writer = writer = self.store.create_run(
            self.kind, self.settings, self.target, self.meta, flush_interval=self.flush_interval
        )
        last: Any = None
        started = False
        try:
            for item in self.stream:
                if not started:
                    self._describe(writer, item)
                    started = True
                writer.append(_trace_of(item))
                last = item
                yield item
            if last is None:
                raise RuntimeError("the stream produced nothing")
            self._finish(writer, last)
        except GeneratorExit:
            if last is not None and _trace_of(last).complete:  # stopped after the last trace
                try:
                    self._finish(writer, last)
                except Exception as exc:
                    writer.fail(describe_exception(exc))
            else:
                writer.fail("stopped by the caller before the end")
            raise
        except ValueError as exc:
            if not started:  # refused settings: the run never started, keep no record
                self.store.delete(writer.run_id, force=True)
                self.writer = None
            else:
                writer.fail(describe_exception(exc))
            raise
        except BaseException as exc:
            writer.fail(describe_exception(exc))
            raise

    def _finish(self, writer: RunWriter, last: Any) -> None:
        self.result = self.summarize(last) if self.summarize is not None else None
        summary = result_dict(self.result)
        if isinstance(self.result, pd.DataFrame) and last is not None:
            # A sweep's result is a bare table: keep its plain-language diagnostics too.
            from lltools.estimation.diagnostics import warnings_for

            summary = {**(summary or {}), "warnings": warnings_for(_trace_of(last).cpu())}
        writer.finish(summary)

    @staticmethod
    def _describe(writer: RunWriter, item: Any) -> None:
        """Store what the stream resolved: sampler settings, target description."""
        extra: dict[str, Any] = {}
        if isinstance(item, tuple) and len(item) >= 2:
            second = item[1]
            if hasattr(second, "as_dict"):
                resolved = second.as_dict()
                extra["resolved_settings"] = resolved
                extra["device"] = resolved.get("device")
                extra["seed"] = resolved.get("seed")
            elif isinstance(second, pd.DataFrame):
                extra["grid"] = second
        if isinstance(item, tuple) and len(item) >= 3 and hasattr(item[2], "describe"):
            extra["target_info"] = item[2].describe()
        if extra:
            writer.update(**extra)


def record_stream(
    store: RunStore,
    stream: Iterable[Any],
    *,
    kind: str = "estimate",
    settings: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    summarize: Callable[[Any], Any] | None = None,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
) -> RecordedStream:
    """Wrap ``estimate_stream`` (or ``sweep_stream``) so the run is saved as it goes.

    Iterate the returned object exactly like the stream; every partial trace is appended,
    the last item is summarised (``api.summarize`` for estimates, ``llc_by_setting`` for
    sweeps, or ``summarize``) and stored with status ``complete``.  An exception marks the
    run ``failed`` and is re-raised; a ``ValueError`` before the first trace (refused
    settings) leaves no run behind; breaking out of the loop marks it failed ("stopped").

    Items may be Traces or tuples whose first element is a Trace.
    """
    return RecordedStream(
        store,
        stream,
        kind=kind,
        settings=dict(settings or {}),
        target=dict(target or {}),
        meta=meta,
        summarize=summarize,
        flush_interval=flush_interval,
    )


def total_steps(settings: dict[str, Any]) -> int:
    """Sampler steps per chain of stored settings: burn-in + draws × thinning."""
    return int(settings.get("burnin", 200)) + int(settings.get("draws", 1000)) * int(
        settings.get("thinning", 1)
    )


def rerun_stream(kind: str, target: Target, settings: dict[str, Any], report_every: int) -> Any:
    """The stream that re-runs a stored run's settings (``estimate_stream`` / ``sweep_stream``)."""
    if kind == "estimate":
        from lltools.workflows.estimate import estimate_stream

        return estimate_stream(target, report_every=report_every, **settings)
    if kind == "sweep":
        from lltools.workflows.sweep import sweep_stream

        return sweep_stream(target, report_every=report_every, **settings)
    raise RunStoreError(f"runs of kind {kind!r} cannot be resumed; start them again")


def resume_stream(
    store: RunStore,
    run_id: str,
    *,
    report_every: int | None = None,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
) -> tuple[dict[str, Any], RecordedStream]:
    """Re-run an unfinished run FROM SCRATCH as a new recorded run (what ``runs resume`` does).

    Sampler state is not saved, so the run cannot continue where it stopped; the same
    settings and seed reproduce the same chains.  Returns ``(resume_info, recorder)``:
    iterate ``recorder`` to run it (its meta gets ``resumed_from``).  Raises
    :class:`RunStoreError` if the run is complete, still running, or its target cannot be
    rebuilt.
    """
    info = store.resume_info(run_id)
    if info["status"] == "running":
        raise RunStoreError(f"run {info['id']} is still running")
    if not info["resumable"]:
        raise RunStoreError(
            f"run {info['id']} ({info['kind']}, target {info['target'].get('kind')}) cannot be re-run here"
        )
    target = build_target(info["target"])
    settings = dict(info["settings"])
    report = report_every or max(1, total_steps(settings) // 100)
    recorder = record_stream(
        store,
        rerun_stream(info["kind"], target, settings, report),
        kind=info["kind"],
        settings=settings,
        target=info["target"],
        meta={**info["meta"], "resumed_from": info["id"]},
        flush_interval=flush_interval,
    )
    return info, recorder


def estimate_and_record(
    target_spec: dict[str, Any],
    *,
    store: RunStore | str | Path | None = None,
    report_every: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    meta: dict[str, Any] | None = None,
    **settings: Any,
) -> tuple[str, Any]:
    """Build the target from ``target_spec``, run ``estimate_stream`` and record it.

    ``settings`` are ``estimate_stream`` keywords (nbeta, gamma, epsilon, chains, draws,
    burnin, thinning, batch_size, seed, device, dtype).  ``progress(steps_done, total)`` is
    called at every report.  Returns ``(run id, EstimateResult)``.
    """
    from lltools.workflows.estimate import estimate_stream

    store = store if isinstance(store, RunStore) else RunStore(store)
    target = build_target(target_spec)
    total = int(settings.get("burnin", 200)) + int(settings.get("draws", 1000)) * int(
        settings.get("thinning", 1)
    )
    report = report_every or max(1, total // 100)
    recorder = record_stream(
        store,
        estimate_stream(target, report_every=report, **settings),
        kind="estimate",
        settings=settings,
        target=target_spec,
        meta=meta,
    )
    for trace, *_ in recorder:
        if progress is not None:
            progress(int(trace.meta.get("steps_done", 0)), total)
    assert recorder.run_id is not None
    return recorder.run_id, recorder.result
