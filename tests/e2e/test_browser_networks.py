"""Networks and Training trajectories in a real browser (Playwright sync API + Debian chromium).

Opens both pages of the running app, changes a control, runs the sampler (Networks) and
shows / recomputes a trajectory, checks that λ̂ appears and that the live traces grow,
that no Streamlit exception box is ever shown, and saves screenshots under
``test-artifacts/screenshots/``.  No browser is downloaded: the module is skipped when
``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import pytest

from dashboard.serve import CHROMIUM  # the repo root is on sys.path (tests/e2e/conftest.py)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
RUN_TIMEOUT_MS = 240_000

if not CHROMIUM.exists():
    pytest.skip(
        "Debian chromium is not installed at /usr/bin/chromium (install the distribution package; "
        "browsers are never downloaded)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


# ----------------------------------------------------------------------------- helpers

RUNNING_JS = """() => !document.querySelector(
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]')"""

#: Number of points in the first (loss) trace of the first Plotly chart under the metrics.
TRACE_POINTS_JS = """() => {
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    const loss = plots.find(p => p.layout && p.layout.title && p.layout.title.text &&
                                 p.layout.title.text.startsWith('Loss across chains'));
    if (!loss || !loss._fullData) return 0;
    return loss._fullData.filter(t => t.meta && t.meta.role === 'mean')
                         .reduce((s, t) => s + (t._length || 0), 0);
}"""


#: True once the live running-λ̂ chart has a few draws per chain (or the run is over).
RUNNING_LLC_SHOWN_JS = """() => {
    if (document.body.innerText.includes('λ̂ (estimate)')) return true;
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    const run = plots.find(p => p.layout && p.layout.title && p.layout.title.text &&
                                p.layout.title.text.startsWith('Running'));
    if (!run || !run._fullData) return false;
    return run._fullData.filter(t => t.meta && t.meta.role === 'chain')
                        .reduce((s, t) => s + (t._length || 0), 0) >= 8 * 150;
}"""


def wait_idle(pg, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    pg.wait_for_timeout(300)
    pg.wait_for_function(RUNNING_JS, timeout=timeout_ms)
    pg.wait_for_timeout(500)


def open_page(pg, url: str, title: str) -> None:
    pg.goto(url)
    pg.get_by_role("heading", name=title).first.wait_for(timeout=90_000)
    wait_idle(pg)


def main_area(pg):
    return pg.get_by_test_id("stMainBlockContainer")


def set_input(pg, label: str, value: str) -> None:
    box = main_area(pg).get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_idle(pg)


def no_exception(pg) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0
    assert pg.get_by_text("Something went wrong").count() == 0


def metric_value(pg, label: str, timeout_ms: int = 60_000) -> str:
    """The displayed value of the ``st.metric`` with exactly this label (waits for it)."""
    metric = pg.locator('[data-testid="stMetric"]').filter(
        has=pg.locator('[data-testid="stMetricLabel"]', has_text=re.compile(f"^{re.escape(label)}$"))
    )
    metric.first.wait_for(timeout=timeout_ms)
    return metric.first.locator('[data-testid="stMetricValue"]').inner_text().strip()


def shot(pg, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


# ----------------------------------------------------------------------------- Networks


def test_networks_live_run_and_bad_upload(page, server: str) -> None:
    pg = page
    open_page(pg, f"{server}/networks?model=deep_linear/dln_8_6_6_4_r2", "Networks")
    no_exception(pg)
    assert metric_value(pg, "d (parameters)") == "108"
    assert metric_value(pg, "exact λ (Aoyagi)") == "13.5"
    shot(pg, "networks_before_run")

    # Controls: a run long enough to watch the traces grow, short enough for a busy CPU.
    set_input(pg, "draws", "800")
    set_input(pg, "burn-in", "200")
    main_area(pg).get_by_role("button", name="Run", exact=True).click()
    pg.get_by_text("λ̂ so far").first.wait_for(timeout=90_000)
    first = 0
    deadline = time.time() + 90
    while first == 0 and time.time() < deadline:
        first = pg.evaluate(TRACE_POINTS_JS)
        pg.wait_for_timeout(100)
    later = first
    while later <= first and time.time() < deadline:
        pg.wait_for_timeout(50)
        if pg.get_by_text("λ̂ (estimate)").count():
            break
        later = max(later, pg.evaluate(TRACE_POINTS_JS))
    assert later > first > 0, f"the live loss traces did not grow ({first} -> {later} points)"
    # For the screenshot: wait (best effort) until the running λ̂ has draws to show.
    with contextlib.suppress(sync_api.TimeoutError):
        pg.wait_for_function(RUNNING_LLC_SHOWN_JS, timeout=150_000)
    shot(pg, "networks_live")

    pg.get_by_text("λ̂ (estimate)").first.wait_for(timeout=RUN_TIMEOUT_MS)
    wait_idle(pg)
    no_exception(pg)
    lam = _number(metric_value(pg, "λ̂ (estimate)"))
    assert 0 < lam < 54  # degenerate: well below d/2
    assert pg.get_by_text("Diagnostics", exact=True).count() == 1
    assert pg.locator(".js-plotly-plot").count() >= 4
    shot(pg, "networks_result")

    # Garbage bytes uploaded as weights: a clear error, never a traceback.
    main_area(pg).get_by_text("upload weights", exact=True).click()
    wait_idle(pg)
    pg.locator('input[type="file"]').first.set_input_files(
        files=[
            {
                "name": "weights.safetensors",
                "mimeType": "application/octet-stream",
                "buffer": b"\x00junk" * 50,
            }
        ]
    )
    pg.get_by_text("cannot be used as weights").first.wait_for(timeout=60_000)
    wait_idle(pg)
    no_exception(pg)
    shot(pg, "networks_bad_upload")


def test_networks_quadratic_model_theory(page, server: str) -> None:
    pg = page
    open_page(pg, f"{server}/networks?model=deep_linear/dln_8_6_6_4_r2", "Networks")
    main_area(pg).get_by_role("combobox", name="Model").click()
    pg.get_by_role("option", name=re.compile("modular_addition")).click()
    wait_idle(pg)
    no_exception(pg)
    assert metric_value(pg, "d (parameters)") == "4,416"
    assert metric_value(pg, "Cullen et al. formula") == "2176"
    shot(pg, "networks_modular")


# ----------------------------------------------------------------------------- Trajectories


def test_trajectories_shipped_and_recomputed(page, server: str) -> None:
    pg = page
    open_page(pg, f"{server}/trajectories", "Training trajectories")
    no_exception(pg)
    assert metric_value(pg, "GSM") == "0.304"
    pg.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    wait_idle(pg)
    shipped = (ROOT / "sample_models" / "modular_addition" / "trajectory.parquet").exists()
    if shipped:
        _number(metric_value(pg, "peak λ̂"))  # λ̂ shows at once from the shipped table
    shot(pg, "trajectories_shipped" if shipped else "trajectories_curves")

    # Recompute with tiny settings on every 8th checkpoint.
    main_area(pg).get_by_text("Recompute with my settings").click()
    set_input(pg, "chains", "1")
    set_input(pg, "draws", "40")
    set_input(pg, "burn-in", "20")
    main_area(pg).get_by_role("combobox", name="Checkpoints").click()
    pg.get_by_role("option", name=re.compile("every 8th")).click()
    wait_idle(pg)
    main_area(pg).get_by_role("button", name="Compute", exact=True).click()
    pg.get_by_text("Your trajectory").first.wait_for(timeout=RUN_TIMEOUT_MS)
    wait_idle(pg)
    no_exception(pg)
    _number(metric_value(pg, "final λ̂"))
    pg.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)
    shot(pg, "trajectories_recomputed")

    # Log / linear step axis.
    main_area(pg).get_by_text("Log step axis").click()
    wait_idle(pg)
    no_exception(pg)
