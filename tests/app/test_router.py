"""The router: every registered page opens without an exception."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.conftest import ROOT, TIMEOUT, assert_healthy


def test_every_page_opens() -> None:
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=TIMEOUT).run()
    assert_healthy(at)
    assert at.title[0].value == "Toy potentials"
    for path, title in [
        ("views/networks.py", "Networks"),
        ("views/trajectories.py", "Training trajectories"),
        ("views/sensitivity.py", "Sensitivity & calibrate"),
        ("views/learn.py", "Learn"),
    ]:
        at.switch_page(path).run()
        assert_healthy(at)
        assert at.title[0].value == title
