"""Reading untrusted text: bounded JSON parsing and terminal-safe strings.

Everything a user (or another user sharing a store) can hand lltools -- a model card, a
safetensors header, a stored run's manifest, a file name, a model name -- goes through these
helpers before it is parsed or printed: a size limit before reading, a one-line
:class:`UntrustedInputError` (a ``ValueError``) instead of a ``RecursionError`` traceback, and
control characters stripped before anything reaches a terminal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: Default largest JSON document read from disk (bytes).
MAX_JSON_BYTES = 64 * 2**20
#: Longest message text kept when untrusted text is quoted in an error.
MAX_MESSAGE_CHARS = 300

# ANSI/VT escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other ESC x,
# and the 8-bit C1 forms (0x9b CSI, 0x9d OSC).
_ESCAPES = re.compile(
    r"(?:\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?)"  # OSC ... BEL / ST
    r"|(?:\x1b\[[0-?]*[ -/]*[@-~]?)"  # CSI
    r"|(?:\x9d[^\x07\x9c]*[\x07\x9c]?)"  # 8-bit OSC
    r"|(?:\x9b[0-?]*[ -/]*[@-~]?)"  # 8-bit CSI
    r"|(?:\x1b[@-_]?)"  # any other escape
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class UntrustedInputError(ValueError):
    """Malformed untrusted input (one line, no traceback)."""


def terminal_safe(text: Any, *, keep_newlines: bool = True) -> str:
    """``text`` with terminal escape sequences and control characters removed.

    Tabs (and newlines unless ``keep_newlines`` is false) are kept; everything that could
    move the cursor, set a window title (OSC) or rewrite the screen is dropped.
    """
    out = _CONTROLS.sub("", _ESCAPES.sub("", str(text)))
    return out if keep_newlines else out.replace("\n", " ")


def one_line(text: Any, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A terminal-safe single line of at most ``limit`` characters (``…`` marks a cut)."""
    line = terminal_safe(text, keep_newlines=False).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_json(text: str | bytes, *, what: str) -> Any:
    """``json.loads`` that refuses non-standard constants and over-deep nesting in one line.

    Raises
    ------
    UntrustedInputError
        Not JSON, NaN/Infinity, or nested too deeply (``what`` names the document).
    """

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=no_constant)
    except RecursionError:
        raise UntrustedInputError(f"{what} is nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UntrustedInputError(f"{what} is not valid JSON ({one_line(exc, 120)})") from None


def read_json(path: str | Path, *, what: str | None = None, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse the JSON file ``path``, refusing it before reading when it exceeds ``max_bytes``.

    ``FileNotFoundError`` passes through; other failures are :class:`UntrustedInputError`.
    """
    path = Path(path)
    what = what or str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UntrustedInputError(f"{what} is {size} bytes; the limit is {max_bytes} bytes")
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UntrustedInputError(f"cannot read {what}: {one_line(exc, 120)}") from None
    if len(data) > max_bytes:
        raise UntrustedInputError(f"{what} is over the {max_bytes}-byte limit")
    return parse_json(data, what=what)
