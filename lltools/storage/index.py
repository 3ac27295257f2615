"""The run store: runs under ``<root>/runs/<id>/``, listed, shown, exported, removed.

Layout under the data directory (``root=`` > ``$LLTOOLS_HOME`` > ``~/.lltools``)::

    <root>/runs/<run id>/
        manifest.json              settings, target, versions, status, heartbeat, progress, summary
        chains.parquet             one row per chain: ids, ε, γ, nβ, L(w*), diverged_at
        chunk-000000.parquet       tidy trace rows: chain, setting, step, loss, acceptance
        chunk-000001.parquet       ... one file per flush, holding only the new columns

Crash safety
------------
Files are written atomically (:mod:`lltools.storage.files`).  A new run directory is built
under a temporary name and renamed into ``runs/`` with its manifest already inside.  The
manifest carries ``status`` (``running`` -> ``complete`` | ``stopped`` | ``failed``), the writer's pid,
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
(same seed, hence the same chains).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lltools.base.untrusted import one_line
from lltools.storage.files import (
    CHAIN_COLUMNS,
    CHAINS_FILE,
    DEFAULT_FLUSH_INTERVAL_S,
    FORMAT_VERSION,
    KINDS,
    MANIFEST,
    RUNS_DIR,
    TMP_PREFIX,
    RunStoreError,
    atomic_write,
    default_root,
    fsync_dir,
    jsonable,
    new_run_id,
    now_iso,
    process_start_ticks,
    versions,
    write_json,
    write_parquet,
)
from lltools.storage.netcdf import write_netcdf
from lltools.storage.reader import StoredRun, chunk_files, read_manifest, read_traces
from lltools.storage.specs import TARGET_BUILDERS, describe_target
from lltools.storage.writer import RunWriter

LIST_COLUMNS = (
    "id", "created", "kind", "target", "status", "llc_mean", "llc_sem", "num_chains",
    "draws_done", "num_draws", "steps_done", "num_steps_total",
)  # fmt: skip


# ----------------------------------------------------------------------------- the store
#: File types :meth:`RunStore.export` writes.
EXPORT_SUFFIXES = (".parquet", ".pq", ".csv", ".json", ".nc")


class RunStore:
    """Runs saved under ``root`` (default ``$LLTOOLS_HOME`` or ``~/.lltools``).

    Parameters
    ----------
    root : str or Path, optional
        The data directory; runs live in ``root/runs/<id>/``.  Created on first write.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        if root is not None and not str(root).strip():
            raise RunStoreError("the run store directory is empty; give a path (or leave --store out)")
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
        fsync_dir(self.runs_dir)
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
        llc_sem, num_chains, draws_done, num_draws, steps_done, num_steps_total``."""
        rows = []
        for path in self.run_dirs():
            with contextlib.suppress(FileNotFoundError):  # deleted while we looked
                rows.append(_list_row(read_manifest(path)))
        frame = pd.DataFrame(rows, columns=list(LIST_COLUMNS))
        frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601", errors="coerce")
        return frame.sort_values("id", ascending=False, kind="stable").reset_index(drop=True)

    def load_run(self, run_id: str) -> StoredRun:
        """Read a run: manifest, all flushed trace chunks, per-chain table and summary."""
        path = self.resolve(run_id)
        manifest = read_manifest(path)
        traces, damage = read_traces(path, manifest)
        chains, problem = _read_chains(path / CHAINS_FILE, manifest)
        damage += [problem] if problem else []
        listed = {c["file"] for c in manifest.get("chunks") or []}
        stray = sorted(p.name for p in path.iterdir() if p.name.startswith(TMP_PREFIX))
        stray += sorted(p.name for p in chunk_files(path) if p.name not in listed)
        if damage:
            manifest["stored_status"] = manifest.get("stored_status", manifest.get("status"))
            manifest["status"] = "corrupt"
            manifest["damage"] = damage
            manifest["error"] = f"damaged run: {damage[0]}" + (
                f" (and {len(damage) - 1} more)" if len(damage) > 1 else ""
            )
        return StoredRun(
            id=path.name,
            path=path,
            manifest=manifest,
            traces=traces,
            chains=chains,
            summary=manifest.get("summary"),
            stray_files=stray,
            damage=damage,
        )

    # .............................................................. export / remove
    def export(self, run_id: str, out: str | Path) -> Path:
        """Write a run to ``out``: ``.parquet`` (traces + manifest in the schema metadata),
        ``.csv`` (tidy traces), ``.json`` (manifest, chains and traces, columnar) or ``.nc``
        (an ArviZ-convention netCDF-4 DataTree, :mod:`lltools.storage.netcdf`)."""
        out = Path(out)
        suffix = out.suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            raise RunStoreError(
                f"unsupported export extension {out.suffix!r}; use .parquet, .csv, .json or .nc"
            )
        run = self.load_run(run_id)
        if run.damage:
            raise RunStoreError(f"run {run.id} is damaged, not exported: {run.manifest['error']}")
        if suffix == ".nc":
            write_netcdf(run, out)
        elif suffix == ".csv":
            atomic_write(out, lambda fh: run.traces.to_csv(fh, index=False))
        elif suffix == ".json":
            doc = {"run": run.manifest, "chains": _columnar(run.chains), "traces": _columnar(run.traces)}
            text = json.dumps(jsonable(doc), allow_nan=False)
            atomic_write(out, lambda fh: fh.write(text.encode()))
        else:
            table = pa.Table.from_pandas(run.traces, preserve_index=False)
            meta = {b"lltools.run": json.dumps(jsonable(run.manifest), allow_nan=False).encode()}
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
        """Remove an incomplete, stopped or failed run (complete and running runs are refused)."""
        path = self.resolve(run_id)
        status = read_manifest(path)["status"]
        if status not in ("incomplete", "stopped", "failed", "corrupt"):
            raise RunStoreError(
                f"run {path.name} is {status}; discard removes only incomplete, stopped or failed runs"
                + (" (use delete)" if status == "complete" else "")
            )
        self._remove(path)
        return path.name

    def _remove(self, path: Path) -> None:
        """Rename out of the listing first (atomic), then delete the files."""
        trash = path.with_name(f"{TMP_PREFIX}trash-{path.name}-{secrets.token_hex(3)}")
        os.rename(path, trash)
        if trash.is_symlink():  # a linked run: remove the link, never what it points to
            trash.unlink()
        else:
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
        path = self.resolve(run_id)
        manifest = read_manifest(path)
        status = manifest["status"]
        if status == "corrupt":
            raise RunStoreError(f"run {path.name} is corrupt ({manifest.get('error')}); it cannot be re-run")
        if status == "complete":
            raise RunStoreError(f"run {manifest['id']} is complete; nothing to resume")
        progress = manifest.get("progress", {})
        target = manifest.get("target", {})
        return {
            "id": path.name,  # a run's identity is its folder (the manifest agrees, or it is corrupt)
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


def _read_chains(path: Path, manifest: dict[str, Any]) -> tuple[pd.DataFrame, str | None]:
    """``chains.parquet`` checked against the manifest: ``(frame, None)`` or ``(empty, damage)``."""
    if not path.exists():
        return pd.DataFrame(), ("chains.parquet is missing" if manifest.get("chunks") else None)
    expected = (manifest.get("progress") or {}).get("num_chains")
    try:
        declared = pq.ParquetFile(path).metadata.num_rows
        if expected is not None and declared != expected:
            return pd.DataFrame(), f"chains.parquet holds {declared} chains, the manifest says {expected}"
        frame = pq.read_table(path).to_pandas()
    except (OSError, ValueError, pa.ArrowException) as exc:
        return pd.DataFrame(), f"chains.parquet is unreadable ({one_line(exc, 80)})"
    missing = set(CHAIN_COLUMNS) - set(frame.columns)
    if missing:
        return pd.DataFrame(), f"chains.parquet lacks {', '.join(sorted(missing))}"
    if frame["chain"].duplicated().any():
        return pd.DataFrame(), "chains.parquet lists a chain twice"
    return frame, None


def _columnar(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {c: frame[c].tolist() for c in frame.columns}


def _list_row(manifest: dict[str, Any]) -> dict[str, Any]:
    """One listing row from a manifest."""
    progress = manifest.get("progress", {})
    summary = manifest.get("summary") or {}
    settings = manifest.get("settings", {})
    num_chains = (progress.get("num_chains") or summary.get("num_chains")
                  or summary.get("n_chains")  # runs stored before the key was renamed
                  or settings.get("chains"))

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
        "num_chains": num_chains,
        "draws_done": progress.get("draws_done", 0),
        "num_draws": settings.get("draws"),
        "steps_done": progress.get("steps_done", 0),
        "num_steps_total": progress.get("num_steps_total"),
    }


