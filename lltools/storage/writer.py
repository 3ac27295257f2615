"""Writing one run: :class:`RunWriter` appends trace chunks and keeps the manifest current."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lltools.sampling.kernel import SAMPLER_NAMES
from lltools.sampling.trace import Trace
from lltools.storage.files import (
    CHAINS_FILE,
    MANIFEST,
    TRACE_SCHEMA,
    RunStoreError,
    describe_exception,
    jsonable,
    now_iso,
    write_json,
    write_parquet,
)


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
    """One row per chain: identifiers, hyperparameters (with the sampler, and RMSProp's α
    and δ when a chain uses it), L(w*) and divergence step."""
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
            "sampler": np.asarray(SAMPLER_NAMES, dtype=object)[_host(trace.params.sampler_codes)],
        }
    )
    if trace.params.rmsprop is not None:
        frame["rms_decay"] = _host(trace.params.rms_decay).astype(np.float64)
        frame["rms_delta"] = _host(trace.params.rms_delta).astype(np.float64)
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

    def stop(self, trace: Trace | None, result: dict[str, Any] | None, reason: str) -> None:
        """Mark the run ``stopped`` (ended early on request): the draws of ``trace`` so far are
        written (whatever the flush interval), with the summary ``result`` of those draws
        (``None`` when there are too few) and a one-line ``reason``."""
        with self._lock:
            if self.closed:
                return
        if trace is not None:
            self.append(trace, force=True)
        with self._lock:
            summary = jsonable(result) if result is not None else None
            self.manifest["summary"] = summary
            if isinstance(summary, dict) and summary.get("warnings"):
                self.manifest["warnings"] = list(summary["warnings"])
            self.manifest["stop_reason"] = str(reason).splitlines()[0] if reason else "stopped"
            self._close("stopped")

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
        rows = trace_rows(trace, start, stop)
        digest = write_parquet(self.path / name, rows)
        self.manifest["chunks"].append(
            {
                "file": name,
                "first_column": start,
                "columns": stop - start,
                "first_step": int(trace.steps[start]),
                "last_step": int(trace.steps[stop - 1]),
                "rows": rows.num_rows,
                "sha256": digest,
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


