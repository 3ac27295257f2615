"""Theme and lecture mode as a person uses them, at 1280 × 720 (issue 13 items 13 and 14).

- Switching to dark with Streamlit's ⋮ menu restyles the figures at once (no widget touched):
  the figure title's fill becomes light within a couple of seconds.
- Lecture mode and the theme survive a reload; the contour is readable (not ~100 px wide)
  and the inputs show their values.
Screenshots go to ``test-artifacts/screenshots/`` (look at them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.serve import CHROMIUM

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium (run `make browser`)",
                allow_module_level=True)

TITLE_FILLS_JS = "() => [...document.querySelectorAll('.gtitle')].map(e => getComputedStyle(e).fill)"
LIGHT_TITLES_JS = """() => {
    const fills = [...document.querySelectorAll('.gtitle')].map(e => getComputedStyle(e).fill);
    return fills.length > 0 && fills.every(f => {
        const [r, g, b] = f.match(/[\\d.]+/g).map(Number);
        return 0.2126 * r + 0.7152 * g + 0.0722 * b > 150;
    });
}"""
IDLE_JS = """() => !document.querySelector(
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]')"""


def _luminance(rgb: str) -> float:
    r, g, b = (float(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def _open(pg, url: str) -> None:
    pg.goto(url)
    pg.get_by_role("heading", name="Toy potentials").first.wait_for(timeout=60_000)
    pg.wait_for_function("() => document.querySelectorAll('.gtitle').length > 0", timeout=60_000)
    pg.wait_for_function(IDLE_JS, timeout=60_000)


def _choose_theme(pg, name: str) -> None:
    pg.get_by_test_id("stMainMenu").first.click()
    pg.locator(f"[data-testid=stMainMenuPopover] >> text={name}").last.click()
    pg.keyboard.press("Escape")


def test_figures_follow_the_theme_at_once_and_settings_survive_a_reload(browser, server: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    pg = context.new_page()
    try:
        _open(pg, server + "/?lecture=1")
        assert pg.get_by_role("switch", name="Lecture mode (large fonts)").is_checked()
        assert all(_luminance(f) < 0.4 for f in pg.evaluate(TITLE_FILLS_JS))  # dark text on light
        _choose_theme(pg, "Dark")
        # No widget is touched: the figure must restyle by itself, within a few seconds.
        pg.wait_for_function(LIGHT_TITLES_JS, timeout=5_000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / "theme_switched_dark.png"))
        pg.reload()
        _open(pg, pg.url)
        assert "lecture=1" in pg.url
        assert pg.get_by_role("switch", name="Lecture mode (large fonts)").is_checked()
        assert all(_luminance(f) > 0.6 for f in pg.evaluate(TITLE_FILLS_JS))  # still dark theme
        box = pg.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
        assert box is not None and box["width"] > 250, box  # the contour is readable at 1280 × 720
        assert pg.get_by_label("ε", exact=True).input_value() == "1.00e-3"
        pg.screenshot(path=str(SHOTS / "lecture_dark_1280x720.png"))
    finally:
        context.close()
