"""Load benchmark: many concurrent browser sessions on ONE Streamlit server.

Each session opens the toy-potentials page in its own browser context (one headless
Debian chromium, Playwright async API), with its own seed so no session is served from
the server-wide result cache, and presses **Run**.  Reported per session:

* time to first live update: Run pressed → the first websocket message carrying a live
  update (the progress bar's "step N /" with N > 0, or the "λ̂ so far" metric) reaches the
  browser.  Also, where the page drew it, when it was drawn (a MutationObserver; a busy
  page's React may batch a short-lived state away, so this one can be missing);
* time to completion: Run pressed → the final "λ̂ (estimate)" metric is shown;
* exception elements / "Something went wrong" on the page afterwards.

Summaries: p50 / p95 / max of both times, failures.  ``tests/e2e/test_load.py`` runs a
light version (10 sessions); run this one when the machine is quiet:

    python benchmarks/bench_load.py --sessions 25              # starts its own server
    python benchmarks/bench_load.py --sessions 50 --draws 4000
    python benchmarks/bench_load.py --url http://127.0.0.1:8501 --sessions 30   # existing server
    python benchmarks/bench_load.py --quick                     # smoke run: 4 short sessions

Never downloads a browser: ``/usr/bin/chromium`` (``make browser``) is required.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import sys
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard.serve import CHROMIUM, LAUNCH_ARGS, streamlit_server  # noqa: E402

VIEWPORT = {"width": 1200, "height": 1000}

#: Installed in every page before Run: records when the first live update is drawn.
OBSERVER_JS = """() => {
  window.__firstLive = null;
  const check = () => {
    if (window.__firstLive !== null) return;
    // textContent, not innerText: no forced layout on every mutation of ten busy pages
    const bar = document.querySelector('[data-testid="stProgress"]');
    const live = (bar && /step [1-9]/.test(bar.textContent)) ||
        [...document.querySelectorAll('[data-testid="stMetricLabel"]')]
            .some((el) => el.textContent.includes('λ̂ so far'));
    if (live) window.__firstLive = performance.now();
  };
  window.__liveObserver = new MutationObserver(check);
  window.__liveObserver.observe(document.body,
      {subtree: true, childList: true, characterData: true, attributes: true});
  check();
}"""
#: A live update in a Streamlit websocket frame (protobuf; the strings are plain UTF-8).
LIVE_FRAME = re.compile(rb"step [1-9][\d,]* / |\xce\xbb\xcc\x82 so far")
IDLE_JS = """() => !document.querySelector(
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]')"""


@dataclass
class SessionResult:
    """One browser session's timings (seconds from pressing Run) and health."""

    index: int
    first_live_s: float | None = None
    complete_s: float | None = None
    open_s: float | None = None
    first_drawn_s: float | None = None
    exceptions: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.exceptions == 0 and self.complete_s is not None


# ----------------------------------------------------------------------------- sessions
async def _wait_idle(page: Any, timeout_ms: float) -> None:
    await page.wait_for_timeout(300)
    await page.wait_for_function(IDLE_JS, timeout=timeout_ms)


async def one_session(
    browser: Any,
    url: str,
    index: int,
    *,
    query: str,
    ready: asyncio.Barrier,
    timeout_s: float,
) -> SessionResult:
    """Open the toy page, wait for every session to be ready, press Run, time it."""
    result = SessionResult(index)
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    timeout_ms = timeout_s * 1000
    clicked: list[float] = []  # perf_counter() when Run was pressed

    def watch(ws: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            if not clicked or result.first_live_s is not None:
                return
            data = payload.encode() if isinstance(payload, str) else payload
            if LIVE_FRAME.search(data):
                result.first_live_s = time.perf_counter() - clicked[0]
                ws.remove_listener("framereceived", on_frame)

        ws.on("framereceived", on_frame)

    page.on("websocket", watch)
    run = page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Run", exact=True)
    try:
        t_open = time.perf_counter()
        try:
            await page.goto(f"{url}/?{query}&seed={1000 + index}", timeout=timeout_ms)
            await page.get_by_role("heading", name="Toy potentials").first.wait_for(timeout=timeout_ms)
            await run.wait_for(timeout=timeout_ms)
            await _wait_idle(page, timeout_ms)
            result.open_s = time.perf_counter() - t_open
            await page.evaluate(OBSERVER_JS)
        finally:
            await ready.wait()  # even a session that failed to open lets the others start
        t_click = await page.evaluate("performance.now()")
        clicked.append(time.perf_counter())
        await run.click(timeout=timeout_ms)
        await page.get_by_text("λ̂ (estimate)").first.wait_for(timeout=timeout_ms)
        result.complete_s = time.perf_counter() - clicked[0]
        drawn = await page.evaluate("window.__firstLive")
        result.first_drawn_s = None if drawn is None else max(0.0, (drawn - t_click) / 1000)
        await _wait_idle(page, timeout_ms)
        result.exceptions = await page.locator('[data-testid="stException"]').count()
        result.exceptions += await page.get_by_text("Something went wrong").count()
    except Exception as exc:  # a session's failure is a result, not a crash of the benchmark
        result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        with contextlib.suppress(Exception):
            await context.close()
    return result


async def run_load(
    url: str,
    sessions: int,
    *,
    chains: int = 4,
    draws: int = 1000,
    burnin: int = 100,
    potential: str = "x**2 + y**2",
    timeout_s: float = 150.0,
    chromium: Path = CHROMIUM,
) -> list[SessionResult]:
    """``sessions`` concurrent sessions, all pressing Run together once every page is open."""
    from playwright.async_api import async_playwright

    query = urllib.parse.urlencode(
        {"potential": potential, "chains": chains, "draws": draws, "burnin": burnin}
    )
    ready = asyncio.Barrier(sessions)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), headless=True, args=LAUNCH_ARGS)
        try:
            tasks = [
                one_session(browser, url, i, query=query, ready=ready, timeout_s=timeout_s)
                for i in range(sessions)
            ]
            return list(await asyncio.gather(*tasks))
        finally:
            await browser.close()


# ----------------------------------------------------------------------------- statistics
def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(results: list[SessionResult]) -> dict[str, Any]:
    """p50 / p95 / max of the first-live and completion times, and the failures."""
    out: dict[str, Any] = {"sessions": len(results), "ok": sum(r.ok for r in results)}
    for key in ("first_live_s", "first_drawn_s", "complete_s", "open_s"):
        vals = [getattr(r, key) for r in results if getattr(r, key) is not None]
        out[key] = {
            "n": len(vals),
            "p50": percentile(vals, 50),
            "p95": percentile(vals, 95),
            "max": max(vals) if vals else math.nan,
        }
    out["failures"] = [asdict(r) for r in results if not r.ok]
    return out


def format_report(stats: dict[str, Any]) -> str:
    def row(name: str, key: str) -> str:
        s = stats[key]
        return (
            f"{name:<22} p50 {s['p50']:7.2f} s   p95 {s['p95']:7.2f} s   max {s['max']:7.2f} s   (n={s['n']})"
        )

    lines = [
        f"{stats['sessions']} concurrent sessions, {stats['ok']} completed cleanly",
        row("page open", "open_s"),
        row("first live update", "first_live_s"),
        row("  ... drawn (if seen)", "first_drawn_s"),
        row("completion", "complete_s"),
    ]
    for f in stats["failures"]:
        why = f["error"] or f"{f['exceptions']} exception element(s)"
        lines.append(f"failed session {f['index']}: {why}")
    return "\n".join(lines)


#: Settings of a full run and of ``--quick`` (a smoke test: few sessions, short runs);
#: an option given on the command line overrides either.
FULL = {"sessions": 25, "chains": 8, "draws": 2000, "burnin": 200, "timeout": 600.0}
QUICK = {"sessions": 4, "chains": 2, "draws": 200, "burnin": 50, "timeout": 180.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with unset numbers taken from :data:`FULL` or (``--quick``) :data:`QUICK`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def default(key: str) -> str:
        return f"default {FULL[key]:g}; --quick: {QUICK[key]:g}"

    parser.add_argument("--sessions", type=int, help=f"concurrent browser sessions ({default('sessions')})")
    parser.add_argument("--chains", type=int, help=default("chains"))
    parser.add_argument("--draws", type=int, help=default("draws"))
    parser.add_argument("--burnin", type=int, help=default("burnin"))
    parser.add_argument("--potential", default="x**2 + y**2")
    parser.add_argument("--timeout", type=float, help=f"per-session limit in seconds ({default('timeout')})")
    parser.add_argument("--quick", action="store_true", help="a short smoke run: few sessions, short runs")
    parser.add_argument("--url", help="use a running server instead of starting one")
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not CHROMIUM.exists():
        print(f"error: {CHROMIUM} not found (run `make browser`); no browser is downloaded", file=sys.stderr)
        return 2

    def go(url: str) -> list[SessionResult]:
        return asyncio.run(
            run_load(
                url,
                args.sessions,
                chains=args.chains,
                draws=args.draws,
                burnin=args.burnin,
                potential=args.potential,
                timeout_s=args.timeout,
            )
        )

    t0 = time.perf_counter()
    if args.url:
        results = go(args.url.rstrip("/"))
    else:
        with streamlit_server() as url:
            results = go(url)
    stats = summarize(results)
    stats["settings"] = {
        k: getattr(args, k) for k in ("sessions", "chains", "draws", "burnin", "potential", "quick")
    }
    stats["wall_s"] = time.perf_counter() - t0
    print(format_report(stats))
    print(f"wall time {stats['wall_s']:.1f} s")
    if args.json_out:
        args.json_out.write_text(json.dumps(stats, indent=2, default=str))
    return 0 if stats["ok"] == stats["sessions"] else 1


if __name__ == "__main__":
    sys.exit(main())
