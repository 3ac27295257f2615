"""Settings live in the URL, as a person uses it (issue 13.15): a shared Networks link sets the
controls, a changed control is in the address bar, a reload keeps everything, and lecture mode
survives a page switch and a reload."""

from __future__ import annotations

import re

import pytest
from browser_steps import SHOTS, idle, no_exception, open_page
from playwright.sync_api import expect

from dashboard.serve import CHROMIUM

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium (run `make browser`)",
                allow_module_level=True)


def _expect_value(pg, label: str, value: str) -> None:
    """Wait (≤ 30 s) for the input ``label`` to show ``value``: after a reload the page can be
    idle a moment before the widgets receive their state."""
    expect(pg.get_by_label(label, exact=True)).to_have_value(value, timeout=30_000)


def test_a_networks_link_sets_the_controls_and_a_reload_keeps_them(browser, server: str) -> None:
    context, pg = open_page(browser, server + "/networks?model=deep_linear/rrr_6_4_5_r2&gamma=7&lecture=1",
                            "Networks")
    try:
        no_exception(pg)
        assert pg.get_by_text("deep_linear/rrr_6_4_5_r2").count() > 0  # the model the link names
        _expect_value(pg, "γ (localisation)", "7")
        box = pg.get_by_label("chains", exact=True)
        box.fill("5")
        box.press("Enter")
        idle(pg)
        assert "chains=5" in pg.url and "model=deep_linear" in pg.url and "lecture=1" in pg.url
        pg.reload()
        pg.get_by_role("heading", name="Networks").first.wait_for(timeout=90_000)
        idle(pg)
        no_exception(pg)
        _expect_value(pg, "γ (localisation)", "7")
        _expect_value(pg, "chains", "5")
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


def test_the_live_light_and_the_mcse_stop_on_the_toy_page(browser, server: str) -> None:
    """Issue 13.19 as a person sees it: the traffic light while sampling, then the run stops by
    itself and says why."""
    context, pg = open_page(browser, server + "/?potential=x**2%20%2B%20y**2&chains=4&draws=20000&burnin=100"
                            "&stop_sem=0.02", "Toy potentials")
    try:
        assert pg.get_by_role("checkbox", name="Auto-stop (MCSE)").is_checked()
        pg.get_by_role("button", name="Run").first.click()
        light = pg.get_by_text(re.compile(r"MCSE\(λ̂\) [\d–]")).first
        light.wait_for(timeout=180_000)  # the light, while sampling (the first chunk is slow under load)
        pg.mouse.move(900, 400)
        pg.mouse.wheel(0, -3000)  # the main column's top (the light is redrawn each frame)
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / "toy_live_health_light.png"))
        pg.get_by_text("≤ target 0.02 and R-hat").first.wait_for(timeout=180_000)
        idle(pg)
        no_exception(pg)
        info = pg.get_by_text("stopped at step").first
        pg.mouse.wheel(0, -3000)
        pg.wait_for_timeout(500)
        said = info.inner_text()
        assert "of 20,100" in said and "MCSE" in said
        pg.screenshot(path=str(SHOTS / "toy_stopped_at_mcse_target.png"))
    finally:
        context.close()
