"""Reading one run back: its manifest (effective status), chunk files and :class:`StoredRun`."""

from __future__ import annotations

import json
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

from lltools.sampling.driver import Trace
from lltools.sampling.sgld import SGLDParams
from lltools.storage.files import (
    CHUNK_PATTERN,
    MANIFEST,
    REMOTE_STALE_S,
    TRACE_SCHEMA,
    RunStoreError,
    pid_alive,
)


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


