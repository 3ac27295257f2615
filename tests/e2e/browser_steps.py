"""Steps the real-browser tests share: wait for Streamlit to go idle, assert no exception box,
and take the light + dark screenshot pair (imported by the test modules; tests/e2e is on
sys.path under pytest's rootdir-relative imports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
IDLE_JS = """() => !document.querySelector(
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]')"""


def idle(pg: Any, timeout_ms: int = 240_000) -> None:
    """Wait until the app has no script running."""
    pg.wait_for_timeout(300)
    pg.wait_for_function(IDLE_JS, timeout=timeout_ms)
    pg.wait_for_timeout(500)


def open_page(browser: Any, url: str, heading: str) -> tuple[Any, Any]:
    """A fresh 1280 × 720 light-theme context at ``url``, idle once ``heading`` shows;
    returns ``(context, page)`` (close the context when done)."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    pg = context.new_page()
    pg.goto(url)
    pg.get_by_role("heading", name=heading).first.wait_for(timeout=90_000)
    idle(pg)
    return context, pg


def no_exception(pg: Any) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0
    assert pg.get_by_text("Something went wrong").count() == 0


def to_dark(pg: Any) -> None:
    """Switch the theme to dark through the app menu (figures follow at once)."""
    pg.get_by_test_id("stMainMenu").first.click()
    pg.locator("[data-testid=stMainMenuPopover] >> text=Dark").last.click()
    pg.keyboard.press("Escape")
    pg.wait_for_timeout(2500)
    no_exception(pg)


def light_and_dark(pg: Any, name: str, anchor: Any) -> None:
    """Screenshots ``SHOTS/<name>_{light,dark}.png`` with ``anchor`` scrolled to the top."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for theme in ("light", "dark"):
        if theme == "dark":
            to_dark(pg)
        anchor.evaluate("e => e.scrollIntoView({block: 'start'})")
        pg.wait_for_timeout(1000)
        pg.screenshot(path=str(SHOTS / f"{name}_{theme}.png"))
