"""Reading one run back: its manifest (effective status), chunk files and :class:`StoredRun`."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lltools.base.untrusted import UntrustedInputError, one_line
from lltools.sampling.kernel import RMSPROP_DECAY, RMSPROP_DELTA
from lltools.sampling.sgld import SGLDParams, sampler_codes
from lltools.sampling.trace import Trace
from lltools.storage.files import (
    CHUNK_PATTERN,
    REMOTE_STALE_S,
    TRACE_SCHEMA,
    RunStoreError,
    file_sha256,
    pid_alive,
)
from lltools.storage.manifest import load_manifest


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
    stray_files : list of str
        Temporary files and chunk files the manifest does not list (ignored).
    damage : list of str
        What failed verification (missing or altered chunks, a bad chain table); a damaged
        run has status ``corrupt`` and refuses :meth:`to_trace` and export.
    """

    id: str
    path: Path
    manifest: dict[str, Any]
    traces: pd.DataFrame
    chains: pd.DataFrame
    summary: dict[str, Any] | None = None
    stray_files: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)

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

    def _params(self, col: dict[str, torch.Tensor]) -> SGLDParams:
        """The stored per-chain params; runs written before the sampler column are plain SGLD."""
        floats = (col["epsilon"].double(), col["gamma"].double(), col["nbeta"].double())
        if "sampler" not in self.chains.columns:
            return SGLDParams(*floats)
        names = self.chains["sampler"].astype(str).tolist()
        try:
            codes = sampler_codes(names, len(names))
        except ValueError as exc:
            raise RunStoreError(f"run {self.id}: chains.parquet has {one_line(exc, 80)}") from exc
        if codes is None:
            return SGLDParams(*floats)
        rms = [col[k].double() if k in col else torch.full_like(floats[0], default)
               for k, default in (("rms_decay", RMSPROP_DECAY), ("rms_delta", RMSPROP_DELTA))]
        return SGLDParams(*floats, codes, *rms)

    def to_trace(self) -> Trace:
        """The flushed part of the run as a host :class:`~lltools.sampling.trace.Trace` (float64)."""
        if self.damage:
            raise RunStoreError(f"run {self.id} is damaged: {self.damage[0]}")
        if self.chains.empty:
            raise RunStoreError(f"run {self.id} has no flushed trace yet")
        progress = self.manifest.get("progress", {})
        steps = np.sort(self.traces["step"].unique()) if len(self.traces) else np.zeros(0, np.int64)

        def grid(column: str) -> torch.Tensor:
            wide = self.traces.pivot(index="chain", columns="step", values=column)
            wide = wide.reindex(index=self.chains["chain"], columns=steps)
            return torch.tensor(wide.to_numpy(dtype=np.float64))

        col = {k: torch.tensor(self.chains[k].to_numpy()) for k in self.chains.columns
               if pd.api.types.is_numeric_dtype(self.chains[k])}
        return Trace(
            loss=grid("loss"),
            acceptance=grid("acceptance"),
            steps=torch.from_numpy(steps.astype(np.int64)),
            loss_init=col["loss_init"].double(),
            diverged_at=col["diverged_at"].long(),
            params=self._params(col),
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


def _read_chunk(
    path: Path, entry: dict[str, Any], num_chains: int | None
) -> tuple[pa.Table | None, str | None]:
    """One listed chunk, verified against its manifest entry: ``(table, None)`` or ``(None, damage)``."""
    name = entry["file"]
    file = path / name
    if not file.is_file():
        return None, f"{name} is listed in the manifest but missing"
    if entry.get("sha256") is not None and file_sha256(file) != entry["sha256"]:
        return None, f"{name} does not match its checksum"
    expected = entry.get("rows")
    if expected is None and num_chains:
        expected = int(entry["columns"]) * int(num_chains)
    try:
        declared = pq.ParquetFile(file).metadata.num_rows
        if expected is not None and declared != expected:
            return None, f"{name} holds {declared} rows, the manifest says {expected}"
        table = pq.read_table(file, schema=TRACE_SCHEMA)
    except (OSError, ValueError, pa.ArrowException) as exc:
        return None, f"{name} is unreadable ({one_line(exc, 80)})"
    steps = table.column("step").to_numpy()
    if len(steps) and (steps.min() < entry["first_step"] or steps.max() > entry["last_step"]):
        return None, f"{name} holds steps outside {entry['first_step']}..{entry['last_step']}"
    return table, None


def read_traces(path: Path, manifest: dict[str, Any] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The run's chunks listed in its manifest, verified, as one tidy frame, and the damage found.

    Only chunks the manifest lists are read (a chunk written just before a crash, before its
    manifest entry, is ignored); each is checked against its entry (present, checksum, row
    count, step range).  Returns ``(frame ordered by chain then step, damage messages)``.
    """
    manifest = manifest if manifest is not None else read_manifest(path)
    entries = manifest.get("chunks") or []
    num_chains = (manifest.get("progress") or {}).get("num_chains")
    tables, damage = [], []
    for entry in entries:
        table, problem = _read_chunk(path, entry, num_chains)
        if problem is not None:
            damage.append(problem)
        elif table is not None:
            tables.append(table)
    if not tables:
        return TRACE_SCHEMA.empty_table().to_pandas(), damage
    frame = pa.concat_tables(tables).to_pandas()
    frame = frame.sort_values(["chain", "step"], kind="stable").reset_index(drop=True)
    if not damage and frame.duplicated(["chain", "step"]).any():
        damage.append("chunks hold duplicate (chain, step) rows")
    return frame, damage


def corrupt_manifest(path: Path, reason: str) -> dict[str, Any]:
    """The stand-in manifest of a run whose manifest cannot be trusted."""
    return {"id": path.name, "status": "corrupt", "stored_status": None,
            "error": f"corrupt manifest: {one_line(reason, 200)}"}


def read_manifest(path: Path) -> dict[str, Any]:
    """A run's validated manifest with its effective status (``corrupt`` if it fails the schema).

    Raises ``FileNotFoundError`` when the folder has no manifest at all.
    """
    try:
        manifest = load_manifest(path)
    except FileNotFoundError:
        raise
    except UntrustedInputError as exc:
        return corrupt_manifest(path, str(exc))
    manifest["stored_status"] = manifest.get("status")
    manifest["status"] = effective_status(manifest)
    return manifest
