"""The Landscape section of the Networks page in a real browser at 1280 × 720, light and dark:
after a short run, the plane with the chains on it and the Hessian spectrum; no exception box.
Screenshots go to ``test-artifacts/screenshots/`` (``networks_landscape_{light,dark}.png``; the
README's copy is ``assets/screenshots/networks_landscape.png``)."""

from __future__ import annotations

import browser_steps
import pytest

from dashboard.serve import CHROMIUM

pytestmark = pytest.mark.browser

SHOTS = browser_steps.SHOTS

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


_idle, _no_exception = browser_steps.idle, browser_steps.no_exception


def _set(pg, label: str, value: str) -> None:
    box = pg.get_by_test_id("stMainBlockContainer").get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    _idle(pg)


def _scroll_to_landscape(pg) -> None:
    """Put the Landscape heading at the top of the viewport (controls and plane below it)."""
    pg.get_by_role("heading", name="Landscape").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    pg.wait_for_timeout(1000)


def test_landscape_view_light_and_dark(browser, server: str) -> None:
    context, pg = browser_steps.open_page(browser, f"{server}/networks?model=deep_linear/dln_8_6_6_4_r2",
                                          "Networks")
    try:
        _set(pg, "draws", "300")
        _set(pg, "burn-in", "100")
        pg.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Run", exact=True).click()
        pg.get_by_text("λ̂ (estimate)").first.wait_for(timeout=240_000)
        _idle(pg)
        pg.get_by_text("Show the loss landscape around w*").click()
        _idle(pg)
        pg.get_by_text("Hessian spectrum at w*").click()
        _idle(pg)
        _no_exception(pg)
        plane = pg.locator(".js-plotly-plot").filter(has_text="L_n on a plane through w*")
        plane.first.wait_for(timeout=60_000)
        assert pg.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].some(p =>
            p._fullData && p._fullData.some(t => t.meta && t.meta.role === 'chain'))""")
        SHOTS.mkdir(parents=True, exist_ok=True)
        _scroll_to_landscape(pg)
        pg.screenshot(path=str(SHOTS / "networks_landscape_light.png"))
        browser_steps.to_dark(pg)
        _scroll_to_landscape(pg)
        pg.screenshot(path=str(SHOTS / "networks_landscape_dark.png"))
    finally:
        context.close()
