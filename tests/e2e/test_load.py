"""A light load test: 10 concurrent browser sessions against ONE Streamlit server.

One headless Debian chromium, ten browser contexts (Playwright async API); each opens the
toy-potentials page with its own seed (so none is served from the server-wide result
cache), all press Run together with small settings, and each must reach the final
"λ̂ (estimate)" with no exception on the page.  Prints p50/p95 of the time to the first
live update and to completion; the bound is generous (2 shared cores).  The engine is
``benchmarks/bench_load.py``, which runs the heavier variant (25–50 sessions).

Skips cleanly without ``/usr/bin/chromium``; never downloads a browser.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from dashboard.serve import CHROMIUM  # the repo root is on sys.path (tests/e2e/conftest.py)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = 10
#: Small runs: 2 chains × (50 + 200) steps each, 25 live refreshes.
SETTINGS = {"chains": 2, "draws": 200, "burnin": 50}
P95_FIRST_LIVE_S = 120.0
P95_COMPLETE_S = 150.0

if not CHROMIUM.exists():
    pytest.skip(
        "Debian chromium is not installed at /usr/bin/chromium (run `make browser`)", allow_module_level=True
    )
pytest.importorskip("playwright.async_api")


def load_bench() -> ModuleType:
    """``benchmarks/bench_load.py`` as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "benchmarks" / "bench_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def test_percentile_and_summary() -> None:
    """The statistics the load test reports (cheap; no browser)."""
    assert bench.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert bench.percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert math.isnan(bench.percentile([], 50))
    results = [bench.SessionResult(0, 1.0, 5.0, 2.0), bench.SessionResult(1, error="TimeoutError: x")]
    stats = bench.summarize(results)
    assert stats["ok"] == 1 and stats["first_live_s"]["n"] == 1
    assert [f["index"] for f in stats["failures"]] == [1]
    assert "failed session 1: TimeoutError" in bench.format_report(stats)


def test_ten_concurrent_sessions_on_one_server(capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.perf_counter()
    with bench.streamlit_server(ROOT) as url:
        started = time.perf_counter() - t0
        results = asyncio.run(bench.run_load(url, SESSIONS, timeout_s=180.0, **SETTINGS))
    stats = bench.summarize(results)
    report = bench.format_report(stats)
    with capsys.disabled():
        print(f"\n[load] server up in {started:.1f} s; {SETTINGS}\n{report}\n"
              f"[load] total {time.perf_counter() - t0:.1f} s")

    assert len(results) == SESSIONS
    assert stats["ok"] == SESSIONS, report
    # Streamlit coalesces queued deltas to the same element, and with ten sampling threads on
    # two cores its event loop rarely flushes between them, so most sessions receive only the
    # final state (measured 2026-12-03: 1 and 5 of 10 sessions showed a live frame).  Live
    # progress under this load is an open issue-13.17 item; here: some live frame reached a
    # browser, and every session completed cleanly (above).
    assert stats["first_live_s"]["n"] >= 1, f"no session showed a live update\n{report}"
    assert all(r.first_live_s <= r.complete_s for r in results if r.first_live_s is not None), report
    assert stats["first_live_s"]["p95"] < P95_FIRST_LIVE_S, report
    assert stats["complete_s"]["p95"] < P95_COMPLETE_S, report
