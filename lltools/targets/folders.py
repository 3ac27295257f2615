"""A model folder's own code: ``model.py``, imported from its file and checked.

The one model-folder format (shipped sample models and users' folders alike)::

    <folder>/model.py          build() -> nn.Module
                               data() -> (x, y) tensors, a Dataset, a DataLoader, a dict of
                                         tensors, or {"train": ..., "val": ...}
                               optionally loss(outputs, batch) -> per-sample losses (m,)
                               or evaluate(model, batch) -> per-sample losses (m,)
                               optionally subsets() -> {name: bool mask (n,) or indices}
                                         (named data subsets for data-restricted LLCs)
    <folder>/model.json        optional card (:mod:`lltools.targets.cards`)
    <folder>/*.safetensors or <folder>/checkpoints/*.safetensors   optional weights

:func:`lltools.targets.models.load_model_folder` builds the target from it.

Trust
-----
Loading ``model.py`` RUNS the folder's Python code, exactly like running the user's own
script: load only folders you trust (your own).  It is imported from its file path under a
unique module name (``importlib``), never from ``sys.path``.  Files received from a browser
(the app's upload) are weights only, never code (docs/threat_model.md).

Every problem with a folder's code (a syntax error, no ``build``/``data``, ``build()``
raising, a non-module) is a :class:`ModelFolderError`: one line naming the folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import itertools
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from lltools.base.untrusted import one_line
from lltools.targets.base import TargetError

MODEL_FILE = "model.py"
CARD_FILE = "model.json"
#: Largest folder :func:`pack_folder` ships to Ray workers (bytes).
MAX_PACKED_BYTES = 2 * 1024**3
#: Longest error message (characters).
MESSAGE_CHARS = 400

_COUNTER = itertools.count()


class ModelFolderError(TargetError):
    """A model folder that cannot be used: one line naming the folder and the problem."""

    def __init__(self, folder: str | Path, problem: str) -> None:
        self.folder = str(folder)
        super().__init__(one_line(f"model folder {folder}: {problem}", MESSAGE_CHARS))


@dataclass(frozen=True)
class ModelCode:
    """What a folder's ``model.py`` defines (``loss``/``evaluate`` may be None)."""

    folder: Path
    build: Callable[[], Any]
    data: Callable[[], Any]
    loss: Callable[..., Any] | None = None
    evaluate: Callable[..., Any] | None = None
    subsets: Callable[[], Any] | None = None


def folder_of(path: str | Path) -> Path:
    """The folder of ``path`` (a folder, or its ``model.py`` / ``model.json``)."""
    path = Path(path)
    if path.is_file() and path.name in (MODEL_FILE, CARD_FILE):
        return path.parent
    return path


def has_code(folder: str | Path) -> bool:
    """Whether the folder has a ``model.py``."""
    return (Path(folder) / MODEL_FILE).is_file()


def import_model_file(folder: str | Path) -> ModuleType:
    """Import ``<folder>/model.py`` under a unique module name (runs the user's code).

    Raises
    ------
    ModelFolderError
        No file, a syntax error, or an exception while the file runs.
    """
    folder = Path(folder)
    path = folder / MODEL_FILE
    if not path.is_file():
        raise ModelFolderError(folder, f"no {MODEL_FILE}")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"lltools_model_{digest}_{next(_COUNTER)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelFolderError(folder, f"{MODEL_FILE} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing in the user's file need it while it runs
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ModelFolderError(folder, f"{MODEL_FILE} has a syntax error (line {exc.lineno}): "
                                       f"{exc.msg}") from None
    except (Exception, SystemExit) as exc:  # the user's code may raise anything
        raise ModelFolderError(folder, f"{MODEL_FILE} raised {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
    return module


def load_model_code(folder: str | Path) -> ModelCode:
    """The functions of ``<folder>/model.py`` (build and data required).

    Raises
    ------
    ModelFolderError
        See :func:`import_model_file`; a missing or non-callable ``build``/``data``.
    """
    folder = Path(folder)
    module = import_model_file(folder)
    found: dict[str, Any] = {}
    for name in ("build", "data", "loss", "evaluate", "subsets"):
        value = getattr(module, name, None)
        if value is not None and not callable(value):
            raise ModelFolderError(folder, f"{MODEL_FILE}: {name} is not a function")
        found[name] = value
    for name in ("build", "data"):
        if found[name] is None:
            raise ModelFolderError(folder, f"{MODEL_FILE} defines no {name}() function")
    if found["loss"] is not None and found["evaluate"] is not None:
        raise ModelFolderError(folder, f"{MODEL_FILE} defines both loss() and evaluate(); keep one")
    return ModelCode(folder, found["build"], found["data"], found["loss"], found["evaluate"],
                     found["subsets"])


def call_user(folder: str | Path, fn: Callable[[], Any], what: str) -> Any:
    """``fn()`` with any exception turned into a one-line :class:`ModelFolderError`."""
    try:
        return fn()
    except ModelFolderError:
        raise
    except (Exception, SystemExit) as exc:
        raise ModelFolderError(folder, f"{what} raised {type(exc).__name__}: {exc}") from exc


def call_build(code: ModelCode) -> nn.Module:
    """``build()`` checked to return an ``nn.Module`` with parameters."""
    module = call_user(code.folder, code.build, "build()")
    if not isinstance(module, nn.Module):
        raise ModelFolderError(code.folder, "build() must return a torch.nn.Module, got "
                                            f"{type(module).__name__}")
    if not any(True for _ in module.parameters()):
        raise ModelFolderError(code.folder, "build() returned a module without parameters")
    return module


# ---------------------------------------------------------------------- shipping to workers
def pack_folder(folder: str | Path, *, max_bytes: int = MAX_PACKED_BYTES) -> bytes:
    """The folder's regular files as an uncompressed tar archive (for Ray workers that
    cannot read the folder at its path).  Refuses folders larger than ``max_bytes``."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                   and "__pycache__" not in p.parts)
    total = sum(p.stat().st_size for p in files)
    if total > max_bytes:
        raise ModelFolderError(folder, f"is {total:,} bytes; folders above {max_bytes:,} bytes are not "
                               "shipped to workers (put it on a shared file system)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for p in files:
            tar.add(p, arcname=str(p.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def unpack_folder(archive: bytes) -> Path:
    """:func:`pack_folder`'s archive unpacked into a private temporary folder (once per
    archive content per process); returns that folder."""
    digest = hashlib.sha256(archive).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"lltools-folder-{digest}"
    if (root / ".complete").is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
        tar.extractall(root, filter="data")  # our own archive; "data" refuses links and absolute paths
    (root / ".complete").write_text("ok")
    return root


__all__ = ["CARD_FILE", "MODEL_FILE", "ModelCode", "ModelFolderError", "call_build", "call_user",
           "folder_of", "has_code", "import_model_file", "load_model_code", "pack_folder",
           "unpack_folder"]
