"""The schema of a run's ``manifest.json``: a manifest that does not match marks its run corrupt.

Manifests are untrusted (a store may be shared, copied or edited by hand), so every field
the readers use is checked here before anything trusts it; one bad manifest marks only that
run ``corrupt`` and never breaks a listing.  A run's identity is its folder: a manifest whose
``id`` disagrees with its folder's name is corrupt.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lltools.base.untrusted import UntrustedInputError, one_line, read_json
from lltools.storage.files import CHUNK_PATTERN, KINDS, MANIFEST

#: Largest manifest read (bytes); a sweep's stored table is the largest part.
MAX_MANIFEST_BYTES = 256 * 2**20


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class WriterInfo(_Loose):
    pid: int = -1
    host: str = ""
    start_ticks: int | None = None


class Progress(_Loose):
    steps_done: int = Field(0, ge=0)
    num_steps_total: int | None = Field(None, ge=0)
    num_burnin: int = Field(0, ge=0)
    columns_done: int = Field(0, ge=0)
    draws_done: int = Field(0, ge=0)
    num_chains: int | None = Field(None, ge=0)
    num_settings: int | None = Field(None, ge=0)


class ChunkEntry(_Loose):
    file: str
    first_column: int = Field(ge=0)
    columns: int = Field(ge=1)
    first_step: int = Field(ge=0)
    last_step: int = Field(ge=0)
    rows: int | None = Field(None, ge=0)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("file")
    @classmethod
    def _chunk_name(cls, value: str) -> str:
        if not CHUNK_PATTERN.match(value):
            raise ValueError("not a chunk file name")
        return value


class Summary(_Loose):
    llc_mean: float | None = None
    llc_sem: float | None = None
    theory_llc: float | None = None
    rhat: float | None = None
    ess: float | None = None
    acceptance: float | None = None
    num_chains: int | None = None
    diverged_chains: list[int] = []
    warnings: list[str] = []
    table: list[dict[str, Any]] | None = None


class TargetSpecModel(_Loose):
    kind: str | None = None
    spec: str | None = None
    path: str | None = None
    checkpoint: str | None = None
    name: str | None = None


class Manifest(_Loose):
    id: str
    kind: Literal["estimate", "sweep", "trajectory"]
    status: Literal["running", "complete", "stopped", "failed"]
    created: str
    finished: str | None = None
    heartbeat_unix: float = 0.0
    writer: WriterInfo = WriterInfo()
    settings: dict[str, Any] = {}
    target: TargetSpecModel = TargetSpecModel()
    meta: dict[str, Any] = {}
    progress: Progress = Progress()
    chunks: list[ChunkEntry] = []
    warnings: list[str] = []
    summary: Summary | None = None
    error: str | None = None
    trace_meta: dict[str, Any] = {}
    versions: dict[str, str] = {}

    @field_validator("created", "finished")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        if value is not None:
            datetime.fromisoformat(value)
        return value


assert set(KINDS) == {"estimate", "sweep", "trajectory"}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "manifest"
    return one_line(f"{where}: {err['msg']}", 160)


def validate_manifest(data: Any, folder: str) -> dict[str, Any]:
    """``data`` checked against the schema and its folder name.

    Returns the manifest with ``writer``, ``progress``, ``chunks``, ``target`` and ``summary``
    normalised to their schema types (unknown fields kept as they are).

    Raises
    ------
    UntrustedInputError
        One line naming the offending field.
    """
    if not isinstance(data, dict):
        raise UntrustedInputError("manifest is not a JSON object")
    try:
        model = Manifest.model_validate(data)
    except ValidationError as exc:
        raise UntrustedInputError(_first_error(exc)) from None
    if model.id != folder:
        shown = one_line(model.id, 80)
        raise UntrustedInputError(f"manifest id {shown!r} disagrees with its folder {folder!r}")
    out = dict(data)
    for key in ("writer", "progress", "target", "summary"):
        value = getattr(model, key)
        out[key] = None if value is None else value.model_dump(exclude_unset=True)
    out["chunks"] = [c.model_dump(exclude_unset=True) for c in model.chunks]
    out["warnings"] = list(model.warnings)
    out["settings"], out["meta"], out["trace_meta"] = model.settings, model.meta, model.trace_meta
    return out


def load_manifest(path: Path) -> dict[str, Any]:
    """The validated manifest of the run folder ``path`` (stored status, not effective).

    ``FileNotFoundError`` if it has none; :class:`UntrustedInputError` if it is unreadable or
    does not match the schema.
    """
    data = read_json(path / MANIFEST, what="manifest", max_bytes=MAX_MANIFEST_BYTES)
    return validate_manifest(data, path.name)
