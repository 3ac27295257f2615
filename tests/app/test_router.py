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


def test_lecture_mode_stays_in_the_url_on_every_page() -> None:
    """Issue 13.15: lecture mode survives a reload on any page. Switching pages drops the URL's
    parameters (the browser opens the new page's bare path), so every run writes it back."""
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=TIMEOUT)
    at.query_params["lecture"] = "1"
    at.run()
    assert_healthy(at)
    assert at.toggle(key="ui.large").value
    for path in ("views/learn.py", "views/networks.py", "views/trajectories.py"):
        at.switch_page(path)
        at.query_params.clear()
        at.run()
        assert_healthy(at)
        assert at.query_params.get("lecture") == "1", path
    at.toggle(key="ui.large").set_value(False).run()
    assert "lecture" not in at.query_params
