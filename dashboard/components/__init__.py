"""Small custom components of the dashboard (local files only, no network)."""

from __future__ import annotations

from pathlib import Path

import streamlit.components.v1 as components

__all__ = ["theme_probe"]

_THEME_PROBE = components.declare_component("theme_probe", path=str(Path(__file__).parent / "theme_probe"))


def theme_probe(current: str | None, *, key: str = "lltools.theme_probe") -> str | None:
    """The theme the page shows ("light" or "dark"), reported by the browser as soon as it
    changes (which reruns the script); ``None`` until the browser has said.

    ``current`` is the theme the figures of this run are styled for: the probe stays silent
    while it matches, so it costs no extra rerun.
    """
    value = _THEME_PROBE(current=current, key=key, default=None)
    return value if value in ("light", "dark") else None
