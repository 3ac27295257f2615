"""The sidebar every page shares: lecture mode, the theme probe, where runs are saved, and the
notice about unfinished stored runs above the page."""

from __future__ import annotations

import contextlib

import streamlit as st

from dashboard import common as ui
from dashboard import history
from dashboard.components import theme_probe

_LECTURE_LOADED = "ui.__lecture_from_url"


def _lecture_to_url() -> None:
    """Keep lecture mode in the URL, so it survives a reload and travels with a shared link."""
    with contextlib.suppress(Exception):
        if st.session_state.get(ui.LARGE_KEY):
            st.query_params[ui.LECTURE_PARAM] = "1"
        elif ui.LECTURE_PARAM in st.query_params:
            del st.query_params[ui.LECTURE_PARAM]


def lecture_from_url() -> None:
    """On the session's first run, turn lecture mode on when the URL says ``?lecture=1``.

    Call before anything is styled (the app's CSS and every figure read lecture mode).
    """
    if not st.session_state.get(_LECTURE_LOADED):
        st.session_state[_LECTURE_LOADED] = True
        if st.query_params.get(ui.LECTURE_PARAM) in ("1", "true", "on"):
            ui.set_values({ui.LARGE_KEY: True})
    ui.init_state({ui.LARGE_KEY: False})


def sidebar_display_options() -> None:
    """Sidebar: lecture mode (large fonts in the app and in every figure), the theme probe and
    where runs are saved; above the page, the notice about unfinished stored runs."""
    lecture_from_url()
    _lecture_to_url()  # every run: switching pages clears the URL's parameters, a reload must keep it
    with st.sidebar:
        st.toggle(
            "Lecture mode (large fonts)",
            value=bool(ui.held(ui.LARGE_KEY, False)),
            key=ui.LARGE_KEY,
            help="Bigger text, thicker lines and larger markers, for a projector. Kept in the URL.",
            on_change=_lecture_to_url,
        )
        ui.remember([ui.LARGE_KEY])
        st.caption("Light or dark: the ⋮ menu at the top right. Figures follow at once.")
        history.store_caption()
        theme_probe("dark" if ui.is_dark() else "light", key=ui.THEME_KEY)
    ui.run_page(history.store_notice, what="check the run store for unfinished runs")
