"""Load and save network weights safely: checkpoint files are untrusted input.

Nothing here ever unpickles arbitrary objects.

- ``.safetensors`` (preferred): the 8-byte header length and the JSON header are read and
  validated *before* anything is allocated — an absurd header length, a tensor whose
  declared size does not match its dtype and shape, data offsets past the end of the file,
  or a total larger than ``max_bytes`` are refused with a message such as
  "header declares 3.2 TB" — then ``safetensors.torch.load_file`` reads the tensors.
- ``.pt`` / ``.pth`` / ``.bin``: only ``torch.load(path, weights_only=True,
  map_location="cpu")``, whose restricted unpickler refuses any pickle that would import
  or call code (the code is never run).

Every problem — a missing or truncated file, a malformed header, non-tensor content,
missing or unexpected keys, a wrong shape or dtype, NaN/inf weights — raises
:class:`CheckpointError` (a ``ValueError``) naming what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lltools.base.untrusted import UntrustedInputError, one_line, parse_json

#: Default ceiling on a checkpoint's size.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Ceiling on the JSON header of a safetensors file (the format's own limit is 100 MB).
MAX_HEADER_BYTES = 100 * 1000**2
#: Ceiling on the number of entries in a ``torch.save`` archive.
MAX_ARCHIVE_ENTRIES = 100_000

#: safetensors dtype names -> (torch dtype, bytes per element).
SAFETENSORS_DTYPES: dict[str, tuple[torch.dtype, int]] = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
#: Wrapper keys unwrapped from a torch checkpoint holding ``{"state_dict": {...}}``.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")

ExpectedSpec = Mapping[str, tuple[tuple[int, ...] | torch.Size, torch.dtype | None]]


class CheckpointError(ValueError):
    """A checkpoint file is missing, malformed, unsafe or does not match the model."""


def format_size(num: float) -> str:
    """Decimal size for messages: ``3.2 TB``, ``512 B``."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(num) < 1000 or unit == "PB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1000
    return f"{num:.1f} PB"  # pragma: no cover


# ---------------------------------------------------------------------- safetensors header
def read_safetensors_header(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Read and validate a safetensors header without loading any tensor.

    Returns
    -------
    dict
        The parsed header: ``{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}``.

    Raises
    ------
    CheckpointError
        Truncated file, absurd header length, invalid JSON, unknown dtype, a tensor whose
        byte size disagrees with its shape, offsets beyond the file, or more than
        ``max_bytes`` declared.
    """
    path = _existing_file(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise CheckpointError(f"{path.name}: the file is {format_size(size)}, above the limit "
                              f"of {format_size(max_bytes)}")
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path.name}: truncated file ({size} bytes; a safetensors file "
                                  "starts with an 8-byte header length)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(
                f"{path.name}: header length field says {format_size(header_len)} but the file "
                f"holds {format_size(size)} (truncated or not a safetensors file)"
            )
        raw = fh.read(header_len)
    try:
        header = parse_json(raw, what="the safetensors header")
    except UntrustedInputError as exc:
        raise CheckpointError(f"{path.name}: {exc}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path.name}: the safetensors header is not a JSON object")
    _check_header_entries(path.name, header, size - 8 - header_len, max_bytes)
    return header


def _check_header_entries(name: str, header: dict[str, Any], data_bytes: int, max_bytes: int) -> None:
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{name}: __metadata__ must map strings to strings")
    declared = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        nbytes, end = _entry_bytes(name, key, entry)
        declared += nbytes
        if declared > max_bytes:
            raise CheckpointError(f"{name}: header declares {format_size(declared)} of tensors, above "
                                  f"the limit of {format_size(max_bytes)}")
        if end > data_bytes:
            raise CheckpointError(
                f"{name}: tensor {key!r} ends at byte {end} but the file holds only "
                f"{format_size(data_bytes)} of data (header declares {format_size(declared)}; "
                "truncated file?)"
            )


def _entry_bytes(name: str, key: str, entry: Any) -> tuple[int, int]:
    """Declared byte size and end offset of one header entry (validated)."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise CheckpointError(f"{name}: header entry {key!r} lacks dtype/shape/data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in SAFETENSORS_DTYPES:
        raise CheckpointError(f"{name}: tensor {key!r} has unsupported dtype {dtype!r}; "
                              f"supported: {', '.join(SAFETENSORS_DTYPES)}")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise CheckpointError(f"{name}: tensor {key!r} has an invalid shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and o >= 0 for o in offsets) or offsets[1] < offsets[0]):
        raise CheckpointError(f"{name}: tensor {key!r} has invalid data_offsets {offsets!r}")
    nbytes = math.prod(shape) * SAFETENSORS_DTYPES[dtype][1]
    if offsets[1] - offsets[0] != nbytes:
        raise CheckpointError(
            f"{name}: tensor {key!r} of shape {tuple(shape)} and dtype {dtype} needs "
            f"{format_size(nbytes)} but its offsets span {format_size(offsets[1] - offsets[0])}"
        )
    return nbytes, offsets[1]


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (e.g. ``{"step": "1200"}``)."""
    return dict(read_safetensors_header(path).get("__metadata__", {}))


# ---------------------------------------------------------------------- loading
def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint is not a regular file: {path}")
    return path


def _load_safetensors(path: Path, max_bytes: int) -> dict[str, Tensor]:
    read_safetensors_header(path, max_bytes=max_bytes)
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # the library's own errors (SafetensorError, OSError, ...)
        raise CheckpointError(f"{path.name}: cannot read safetensors file: {exc}") from exc


def _load_torch(path: Path, max_bytes: int) -> dict[str, Tensor]:
    size = path.stat().st_size
    if size > max_bytes:
        raise CheckpointError(f"{path.name}: the file is {format_size(size)}, above the limit "
                              f"of {format_size(max_bytes)}")
    _check_torch_archive(path, max_bytes)
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the refusal below says enough
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # UnpicklingError for unsafe globals, RuntimeError, EOFError, ...
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            raise CheckpointError(
                f"{path.name}: refused: the file contains pickled objects other than tensors "
                f"(it could run code when loaded); only plain state dicts are accepted ({text})"
            ) from exc
        raise CheckpointError(f"{path.name}: cannot read the checkpoint (truncated or corrupt?): "
                              f"{text}") from exc
    return _as_state_dict(path.name, obj, max_bytes)


def _check_torch_archive(path: Path, max_bytes: int) -> None:
    """Refuse a ``torch.save`` zip whose entries are compressed or declare too many bytes.

    ``torch.save`` stores every entry uncompressed, so a compressed entry can only be a
    decompression bomb; the declared uncompressed sizes are summed before anything is read.
    """
    if not zipfile.is_zipfile(path):
        return  # a legacy raw pickle: its size is the file size, already checked
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: not a readable torch checkpoint ({exc})") from None
    if len(entries) > MAX_ARCHIVE_ENTRIES:
        raise CheckpointError(f"{path.name}: the archive holds {len(entries)} entries; "
                              f"the limit is {MAX_ARCHIVE_ENTRIES}")
    declared = 0
    for entry in entries:
        if entry.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{path.name}: entry {entry.filename!r} is compressed; torch.save "
                                  "never compresses, so this file is refused (decompression bomb?)")
        declared += entry.file_size
        if declared > max_bytes:
            raise CheckpointError(f"{path.name}: the archive declares {format_size(declared)} "
                                  f"uncompressed, above the limit of {format_size(max_bytes)}")


def _check_tensor(name: str, key: str, value: Tensor) -> int:
    """Refuse tensors that are not plain dense arrays; returns their byte size.

    A sparse, quantized or nested tensor, or a strided view whose elements share memory
    (``zeros(1).expand(10**5, 10**5)``: 4 bytes stored, 40 GB once any op touches it), is
    refused before any computation on it.
    """
    if value.layout != torch.strided:
        raise CheckpointError(f"{name}: {key!r} is a {str(value.layout).removeprefix('torch.')} tensor; "
                              "only dense tensors are accepted")
    if value.is_quantized or getattr(value, "is_nested", False) or value.is_meta:
        raise CheckpointError(f"{name}: {key!r} is not a plain dense tensor")
    nbytes = value.numel() * value.element_size()
    if value.untyped_storage().nbytes() < nbytes:
        raise CheckpointError(
            f"{name}: {key!r} of shape {tuple(value.shape)} declares {format_size(nbytes)} but stores "
            f"{format_size(value.untyped_storage().nbytes())} (an expanded or overlapping view); "
            "save plain contiguous tensors"
        )
    return nbytes


def _as_state_dict(name: str, obj: Any, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{name}: expected a dict of tensors, got {type(obj).__name__}")
    for key in WRAPPER_KEYS:
        if set(obj.keys()) == {key} and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    out: dict[str, Tensor] = {}
    total = 0
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{name}: key {one_line(repr(key), 80)} is not a string")
        if not isinstance(value, Tensor):
            raise CheckpointError(f"{name}: entry {one_line(repr(key), 80)} is a {type(value).__name__}, "
                                  "not a tensor")
        total += _check_tensor(name, one_line(key, 80), value)
        if total > max_bytes:
            raise CheckpointError(f"{name}: the tensors hold {format_size(total)}, above the limit "
                                  f"of {format_size(max_bytes)}")
        out[key] = value
    return out


def _sniff_is_torch(path: Path) -> bool:
    """True for a zip (``torch.save``) or raw-pickle file, False for a safetensors layout."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if head[:4] == b"PK\x03\x04":
        return True
    if len(head) == 9 and head[8:9] == b"{":
        return False
    return head[:1] == b"\x80"


def load_checkpoint(
    path: str | Path,
    *,
    expected: ExpectedSpec | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Tensor]:
    """Load a state dict from an untrusted checkpoint file.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file (preferred) or a ``.pt``/``.pth``/``.bin`` file holding a
        plain dict of tensors (loaded with ``weights_only=True``).
    expected : mapping name -> (shape, dtype), optional
        Exact key set, shapes and dtypes the checkpoint must have; ``dtype=None`` accepts
        any floating dtype.
    max_bytes : int
        Refuse files (or declared tensor totals) larger than this.

    Returns
    -------
    dict of str -> Tensor
        On the CPU.

    Raises
    ------
    CheckpointError
        For any problem, with a message naming the key and what was expected.
    """
    path = _existing_file(path)
    if path.suffix.lower() in TORCH_SUFFIXES or (path.suffix.lower() != ".safetensors"
                                                 and _sniff_is_torch(path)):
        state = _load_torch(path, max_bytes)
    else:
        state = _load_safetensors(path, max_bytes)
    validate_state_dict(state, expected, name=path.name)
    return state


def validate_state_dict(
    state: Mapping[str, Tensor], expected: ExpectedSpec | None = None, *, name: str = "checkpoint"
) -> None:
    """Check finiteness and, if given, the exact keys, shapes and dtypes of ``state``."""
    if expected is not None:
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise CheckpointError(f"{name}: {' and '.join(parts)}; expected keys {list(expected)}")
        for key, (shape, dtype) in expected.items():
            t = state[key]
            if tuple(t.shape) != tuple(shape):
                raise CheckpointError(f"{name}: {key!r} has shape {tuple(t.shape)}, expected "
                                      f"{tuple(shape)}")
            if dtype is None and not t.is_floating_point():
                raise CheckpointError(f"{name}: {key!r} has dtype {t.dtype}, expected a floating dtype")
            if dtype is not None and t.dtype != dtype:
                raise CheckpointError(f"{name}: {key!r} has dtype {t.dtype}, expected {dtype}")
    for key, t in state.items():
        if t.is_floating_point() or t.is_complex():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise CheckpointError(f"{name}: {key!r} contains {bad} NaN/inf value(s) "
                                      f"out of {t.numel()}")


# ---------------------------------------------------------------------- saving
_DTYPE_NAMES = {dtype: name for name, (dtype, _size) in SAFETENSORS_DTYPES.items()}


def serialize_safetensors(tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> bytes:
    """The safetensors bytes of ``tensors`` (in the given order) with ``metadata``.

    Written here rather than by ``safetensors.torch.save`` so that the bytes are
    deterministic (the library orders metadata as a hash map, so re-running a training
    script would change every committed file).  Layout: little-endian u64 header length,
    compact JSON header padded with spaces to a multiple of 8, then the raw tensor bytes.
    """
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    blobs, offset = [], 0
    for key, t in tensors.items():
        if t.dtype not in _DTYPE_NAMES:
            raise CheckpointError(f"{key!r}: dtype {t.dtype} cannot be stored in safetensors")
        blob = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[key] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def save_checkpoint(
    path: str | Path, state_dict: Mapping[str, Tensor], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write ``state_dict`` as a safetensors file (atomically, deterministic bytes).

    Tensors are written in the state dict's order; metadata values are converted with
    ``str`` (e.g. ``{"step": 1200}`` is stored as ``"1200"``).  The result loads with
    ``safetensors.torch.load_file`` and :func:`load_checkpoint`.
    """
    path = Path(path)
    tensors = _as_state_dict(path.name, dict(state_dict))
    data = serialize_safetensors(tensors, {str(k): str(v) for k, v in (metadata or {}).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
