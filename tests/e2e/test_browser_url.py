"""Settings live in the URL, as a person uses it (issue 13.15): a shared Networks link sets the
controls, a changed control is in the address bar, a reload keeps everything, and lecture mode
survives a page switch and a reload."""

from __future__ import annotations

import pytest
from browser_steps import idle, no_exception, open_page

from dashboard.serve import CHROMIUM

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium (run `make browser`)",
                allow_module_level=True)


def _value(pg, label: str) -> str:
    return pg.get_by_label(label, exact=True).input_value()


def test_a_networks_link_sets_the_controls_and_a_reload_keeps_them(browser, server: str) -> None:
    context, pg = open_page(browser, server + "/networks?model=deep_linear/rrr_6_4_5_r2&gamma=7&lecture=1",
                            "Networks")
    try:
        no_exception(pg)
        assert pg.get_by_text("deep_linear/rrr_6_4_5_r2").count() > 0  # the model the link names
        assert _value(pg, "γ (localisation)") == "7"
        box = pg.get_by_label("chains", exact=True)
        box.fill("5")
        box.press("Enter")
        idle(pg)
        assert "chains=5" in pg.url and "model=deep_linear" in pg.url and "lecture=1" in pg.url
        pg.reload()
        pg.get_by_role("heading", name="Networks").first.wait_for(timeout=90_000)
        idle(pg)
        no_exception(pg)
        assert _value(pg, "γ (localisation)") == "7" and _value(pg, "chains") == "5"
        assert pg.get_by_role("switch", name="Lecture mode (large fonts)").is_checked()
        # another page drops the URL's parameters; lecture mode is written back and survives a reload
        pg.get_by_role("link", name="Learn").first.click()
        pg.get_by_role("heading", name="Learn").first.wait_for(timeout=90_000)
        idle(pg)
        assert "lecture=1" in pg.url
        pg.reload()
        pg.get_by_role("heading", name="Learn").first.wait_for(timeout=90_000)
        idle(pg)
        no_exception(pg)
        assert pg.get_by_role("switch", name="Lecture mode (large fonts)").is_checked()
    finally:
        context.close()
