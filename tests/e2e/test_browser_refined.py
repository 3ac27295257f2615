"""Refined LLCs in a real browser at 1280 × 720, light and dark: the Trajectories page's
component × checkpoint heatmap of the induction transformer, and the Networks page's
per-layer bars after a short refined run.  Screenshots go to ``test-artifacts/screenshots/``
(``trajectories_refined_{light,dark}.png``, ``networks_refined_{light,dark}.png``)."""

from __future__ import annotations

import re

import browser_steps
import pytest
from browser_steps import idle as _idle
from browser_steps import light_and_dark as _shots
from browser_steps import no_exception as _no_exception

from dashboard.serve import CHROMIUM

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


def test_refined_heatmap_on_the_trajectories_page(browser, server: str) -> None:
    context, pg = browser_steps.open_page(browser, f"{server}/trajectories", "Training trajectories")
    try:
        pg.get_by_test_id("stMainBlockContainer").get_by_role("combobox").first.click()
        pg.get_by_role("option", name=re.compile("induction_transformer")).click()
        _idle(pg)
        heading = pg.get_by_role("heading", name="Refined λ̂ over training").first
        heading.wait_for(timeout=60_000)
        _no_exception(pg)
        heat = pg.locator(".js-plotly-plot").filter(has_text="Restricted λ̂ per component and checkpoint")
        heat.first.wait_for(timeout=60_000)
        _shots(pg, "trajectories_refined", heading)
    finally:
        context.close()


def test_refined_bars_on_the_networks_page(browser, server: str) -> None:
    context, pg = browser_steps.open_page(browser, f"{server}/networks?model=deep_linear/dln_8_6_6_4_r2",
                                          "Networks")
    try:
        summary = pg.get_by_text("Refined λ̂: per layer or attention head")
        summary.click()
        _idle(pg)
        pg.get_by_role("button", name="Run refined λ̂").click()
        bars = pg.locator(".js-plotly-plot").filter(has_text="λ̂ per layer")
        bars.first.wait_for(timeout=240_000)
        _idle(pg)
        _no_exception(pg)
        _shots(pg, "networks_refined", bars.first)
    finally:
        context.close()
