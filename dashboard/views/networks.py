"""Placeholder: the Networks page is being written by another engineer.

Replace this file.  Shared helpers for the page live in :mod:`dashboard.common`:
``run_page``, ``LiveRun`` + ``stream_live`` (Run/Stop + progress), ``show_figure``,
``teaching_note``, ``download_buttons``, ``record_estimate`` / ``render_history``,
``init_state`` / ``remember``, ``load_query_params`` / ``save_query_params``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # pragma: no cover
    sys.path.insert(0, str(ROOT))

from dashboard import common as ui  # noqa: E402


def main() -> None:
    ui.setup_page(
        "Networks",
        "Estimate λ̂ for the sample models (deep linear, modular addition …) with theory values beside them.",
    )
    st.info(
        "This page is coming soon. Meanwhile, try **Toy potentials** or **Sensitivity & calibrate**.",
        icon=":material/construction:",
    )


if __name__ == "__main__":
    ui.run_page(main, what="show the Networks page")
