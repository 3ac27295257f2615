"""Networks and Training trajectories in a real browser (Playwright sync API + Debian chromium).

Opens both pages of the running app, changes a control, runs the sampler (Networks) and
shows / recomputes a trajectory, checks that λ̂ appears and that the live traces grow,
that no Streamlit exception box is ever shown, and saves screenshots under
``test-artifacts/screenshots/``.  No browser is downloaded: the module is skipped when
``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "screenshots"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWPORT = {"width": 1500, "height": 1900}
RUN_TIMEOUT_MS = 240_000

if not CHROMIUM.exists():
    pytest.skip(
        "Debian chromium is not installed at /usr/bin/chromium (install the distribution package; "
        "browsers are never downloaded)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``streamlit run dashboard/app.py`` on a free port; its process group is killed afterwards."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LLTOOLS_SAMPLE_MODELS", None)  # the shipped sample models
    cmd = [
        sys.executable, "-m", "streamlit", "run", "dashboard/app.py",
        "--server.headless", "true", "--server.port", str(port),
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.fail(f"streamlit did not start:\n{out[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    pg = context.new_page()
    yield pg
    context.close()


# ----------------------------------------------------------------------------- helpers

RUNNING_JS = """() => !document.querySelector(
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]')"""

#: Number of points in the first (loss) trace of the first Plotly chart under the metrics.
TRACE_POINTS_JS = """() => {
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    const loss = plots.find(p => p.layout && p.layout.title && p.layout.title.text &&
                                 p.layout.title.text.startsWith('Loss per chain'));
    if (!loss || !loss._fullData) return 0;
    return loss._fullData.filter(t => t.meta && t.meta.role === 'chain')
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
    open_page(pg, f"{server}/networks", "Networks")
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
    open_page(pg, f"{server}/networks", "Networks")
    main_area(pg).get_by_role("combobox", name="Sample model").click()
    pg.get_by_role("option", name=re.compile("modular_addition")).click()
    wait_idle(pg)
    no_exception(pg)
    assert metric_value(pg, "d (parameters)") == "4,416"
    assert metric_value(pg, "paper λ") == "2176"
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
