"""What compiling a sampling step costs on this machine, learnt from the compiles already done.

``torch.compile`` keeps what it builds on disk (inductor's FX-graph and AOT-autograd caches,
under :func:`inductor_cache_dir`, ``$TORCHINDUCTOR_CACHE_DIR`` or ``/tmp/torchinductor_<user>``),
so the first compile of a network step costs ~25 s on a 2-core CPU and a later one, in a new
process, a few seconds.  The default choice between the eager and the compiled step
(:func:`lltools.sampling.compiled.should_fuse`) weighs the saving against that cost; this
module remembers, per step *signature* (kernel kind, target, chains, dimension, dtype,
device), the wall seconds its compiles took the last time, in a small JSON file kept *inside*
inductor's cache directory: when that directory is cleared (a reboot empties ``/tmp``) the
record goes with it and the cold-compile estimate applies again.  ``$LLTOOLS_COMPILE_LOG``
names another file for it, or ``off``.

The file is advisory: unreadable or malformed contents are ignored, writes are atomic
(temporary file + rename), and nothing here ever raises into a run.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

import torch

logger = logging.getLogger("lltools")

#: The record's file name inside inductor's cache directory.
LOG_NAME = "lltools_compile_seconds.json"
#: Environment override: a file path for the record, or "off" to neither read nor write it.
LOG_ENV = "LLTOOLS_COMPILE_LOG"
#: Entries kept at most (the oldest are dropped): one per step signature seen.
MAX_ENTRIES = 512


def inductor_cache_dir() -> Path:
    """Where inductor caches compiled graphs: ``$TORCHINDUCTOR_CACHE_DIR``, else its default
    (``<tmp>/torchinductor_<user>``).

    Computed here rather than asked of ``torch._inductor``, whose import (with dynamo's) costs
    ~2 s: the default choice of step reads this record before every run, and an eager run must
    not pay for the compiler it does not use (a toy run's first click waited on that import).
    Where inductor is imported already, its own answer is used; a test checks both agree."""
    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if env:
        return Path(env).absolute()
    utils = sys.modules.get("torch._inductor.runtime.cache_dir_utils")
    if utils is not None:
        return Path(utils.default_cache_dir())
    try:
        user = getpass.getuser()
    except (KeyError, ModuleNotFoundError, OSError):
        getuid = getattr(os, "getuid", None)
        user = f"uid_{getuid()}" if callable(getuid) else "unknown_user"
    return Path(tempfile.gettempdir()) / ("torchinductor_" + re.sub(r'[\\/:*?"<>|]', "_", user))


#: The sources whose code the compiled steps trace: a change to any of them (a new lltools)
#: or to torch misses inductor's cache, so a time remembered before it no longer applies.
TRACED_SOURCES = ("sampling/kernel.py", "sampling/compiled.py", "sampling/sgld.py", "base/rng.py",
                  "targets/base.py", "targets/networks.py", "targets/potentials.py",
                  "targets/expressions.py")


@functools.cache
def code_fingerprint() -> str:
    """8 hex digits of a hash of torch's version and the :data:`TRACED_SOURCES` (part of every
    :func:`signature`): after an upgrade, old records are not read as this code's costs."""
    digest = hashlib.sha1(torch.__version__.encode())
    root = Path(__file__).resolve().parents[1]
    for rel in TRACED_SOURCES:
        try:
            digest.update((root / rel).read_bytes())
        except OSError:
            digest.update(rel.encode())
    return digest.hexdigest()[:8]


def signature(kind: str, name: str, num_chains: int, dim: int, dtype: torch.dtype,
              device: torch.device | str) -> str:
    """The key under which a step's compile time is remembered (with :func:`code_fingerprint`:
    a compile of other code, whose graphs inductor's cache no longer holds, is not this one)."""
    return (f"{kind}|{name}|C={int(num_chains)}|d={int(dim)}|{dtype}|{torch.device(device).type}"
            f"|code={code_fingerprint()}")


def _log_path() -> Path | None:
    env = os.environ.get(LOG_ENV, "").strip()
    if env.lower() in ("off", "0", "false", "no"):
        return None
    return Path(env).expanduser() if env else inductor_cache_dir() / LOG_NAME


def _read() -> dict[str, float]:
    path = _log_path()
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float) and v >= 0}


def expected_seconds(sig: str) -> float | None:
    """The wall seconds the last compiles of ``sig`` took here, or None if never recorded."""
    return _read().get(sig)


def record(sig: str, seconds: float) -> None:
    """Remember that compiling ``sig`` took ``seconds`` (this process's total for it)."""
    path = _log_path()
    if path is None:
        return
    data = _read()
    data.pop(sig, None)
    data[sig] = round(float(seconds), 3)
    if len(data) > MAX_ENTRIES:
        data = dict(list(data.items())[-MAX_ENTRIES:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lltools_compile", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError as exc:  # advisory: never fail a run over it
        logger.debug("could not record compile time in %s: %s", path, exc)
