"""lltools dashboard: the router.  Run with ``streamlit run dashboard/app.py``.

Only navigation and app-wide chrome live here (page config, logo, CSS, lecture mode);
each page is a script under ``dashboard/views/``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch

from dashboard import common as ui
from dashboard import sidebar, warmup
from dashboard.views import toy
from lltools.base.devices import thread_count

# Sessions run in parallel: cap every computation at a share of the cores (lltools' one thread
# policy; each run then lowers it further for small steps).
torch.set_num_threads(thread_count(shared=True))

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(
    page_title="lltools · local learning coefficient",
    page_icon=str(ui.ICON) if ui.ICON.exists() else "λ",
    layout="wide",
    initial_sidebar_state="expanded",
)
if ui.LOGO.exists():
    st.logo(str(ui.LOGO), size="large", icon_image=str(ui.ICON) if ui.ICON.exists() else None)
# Compile ahead (issue 13.17): the default toy run's compiled step is built in the background
# once per server process, so the first Run can use it (LLTOOLS_WARMUP=0 switches this off).
warmup.start(((toy.DEFAULTS[toy.K_POT], int(toy.DEFAULTS[toy.K_CHAINS])),))
sidebar.lecture_from_url()
ui.inject_css()

pages = {
    "Estimate": [
        st.Page(
            VIEWS / "toy.py", title="Toy potentials", icon=":material/blur_on:", url_path="toy", default=True
        ),
        st.Page(VIEWS / "networks.py", title="Networks", icon=":material/hub:", url_path="networks"),
        st.Page(
            VIEWS / "trajectories.py",
            title="Training trajectories",
            icon=":material/timeline:",
            url_path="trajectories",
        ),
    ],
    "Tune & learn": [
        st.Page(
            VIEWS / "sensitivity.py",
            title="Sensitivity & calibrate",
            icon=":material/tune:",
            url_path="sensitivity",
        ),
        st.Page(VIEWS / "learn.py", title="Learn", icon=":material/school:", url_path="learn"),
    ],
}
page = st.navigation(pages)
sidebar.sidebar_display_options()
page.run()
