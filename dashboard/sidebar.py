"""The sidebar every page shares: lecture mode, where runs are saved, and the notice about
unfinished stored runs above the page."""

from __future__ import annotations

import streamlit as st

from dashboard import common as ui
from dashboard import history


def sidebar_display_options() -> None:
    """Sidebar: lecture mode (large fonts in the app and in every figure) and where runs are
    saved; above the page, the notice about unfinished stored runs (resume / discard)."""
    ui.init_state({ui.LARGE_KEY: False})
    with st.sidebar:
        st.toggle(
            "Lecture mode (large fonts)",
            key=ui.LARGE_KEY,
            help="Bigger text, thicker lines and larger markers, for a projector.",
        )
        ui.remember([ui.LARGE_KEY])
        st.caption("Light/dark: ⋮ menu → Settings → Theme. Figures follow the app theme.")
        history.store_caption()
    ui.run_page(history.store_notice, what="check the run store for unfinished runs")
