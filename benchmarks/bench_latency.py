"""Latency a person feels (issue 13.17): the real app, one headless browser, one session at a time.

Starts the dashboard (``streamlit run dashboard/app.py``, a scratch run store) and drives it
with Debian's chromium through Playwright (``/usr/bin/chromium``, ``--no-sandbox
--disable-gpu``; never a downloaded browser).  Measured, from the moment **Run** is pressed:

* ``first_live_s`` — the first websocket frame carrying a live update (the progress bar's
  "step N /" with N > 0, or the "λ̂ so far" metric) reaches the browser;
* ``first_drawn_s`` — the page drew it (a MutationObserver; may be missing when React
  batched a short-lived state away);
* ``complete_s`` — the final "λ̂ (estimate)" metric is shown;
* ``settled_s`` — the script has finished (the page is idle: diagnostics, history drawn);
* ``compiling_seen`` — whether the page said it was compiling the step (or warming it up);
* ``browser_cpu_s`` — CPU seconds of the chromium processes (the renderer drawing the charts)
  over the same interval;
* ``server_cpu_s`` — CPU seconds (user + system) the server process spent in that interval
  (the figure to trust when the shared machine is busy), and its thread count after the run;
* ``loadavg`` — the 1-minute load average before and after.

Cases: the toy page's default run (x² + y², the page defaults) and the Networks page's default
run of every sample model (the model picked in its selectbox, its card's defaults untouched).
The toy case runs first, on a fresh server, so it is what a first click gets; ``--repeat N``
runs it N times (seeds 0, 1, …: never served from the result cache).

    python benchmarks/bench_latency.py                     # toy + every sample model
    python benchmarks/bench_latency.py --cases toy --repeat 3
    python benchmarks/bench_latency.py --cases toy modular_addition --json out.json
    python benchmarks/bench_latency.py --url http://127.0.0.1:8501   # an existing server
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard.serve import CHROMIUM, LAUNCH_ARGS, streamlit_server  # noqa: E402

VIEWPORT = {"width": 1280, "height": 900}
#: A live update in a Streamlit websocket frame (protobuf; the strings are plain UTF-8).
LIVE_FRAME = re.compile(rb"step [1-9][\d,]* / |\xce\xbb\xcc\x82 so far")
#: The page says the step is being compiled (or warmed up) instead of only "starting…".
COMPILING_FRAME = re.compile(rb"[Cc]ompiling|warming up")
IDLE_JS = """() => !document.querySelector(
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]')"""
OBSERVER_JS = """() => {
  window.__firstLive = null;
  const check = () => {
    if (window.__firstLive !== null) return;
    const bar = document.querySelector('[data-testid="stProgress"]');
    const live = (bar && /step [1-9]/.test(bar.textContent)) ||
        [...document.querySelectorAll('[data-testid="stMetricLabel"]')]
            .some((el) => el.textContent.includes('λ̂ so far'));
    if (live) window.__firstLive = performance.now();
  };
  new MutationObserver(check).observe(document.body,
      {subtree: true, childList: true, characterData: true, attributes: true});
  check();
}"""
#: The Networks page's sample models (folder names; deep linear ones live one level down).
SAMPLE_MODELS = (
    "dln_8_6_6_4_r2",
    "rrr_6_4_5_r2",
    "dln_100_50_50_100_r5",
    "digits_mlp",
    "modular_addition",
    "induction_transformer",
)


@dataclass
class Measurement:
    """One run's timings (seconds from pressing Run) and the machine's state around it."""

    case: str
    seed: int = 0
    first_live_s: float | None = None
    first_drawn_s: float | None = None
    complete_s: float | None = None
    settled_s: float | None = None
    compiling_seen: bool = False
    server_cpu_s: float | None = None
    browser_cpu_s: float | None = None
    server_threads: int | None = None
    load_before: float | None = None
    load_after: float | None = None
    llc: str | None = None
    step: str | None = None
    warnings: int | None = None
    exceptions: int = 0
    error: str | None = None


# ----------------------------------------------------------------------------- the server process
def _children_named(word: str) -> list[int]:
    """Pids of this process's children whose command line contains ``word``."""
    me, out = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == me and word.encode() in (d / "cmdline").read_bytes():
                out.append(int(d.name))
    return out


def _descendants_named(word: str) -> list[int]:
    """Pids of this process's descendants (any depth) whose command line contains ``word``."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
    me, out = os.getpid(), []
    for pid in parent:
        up, seen = pid, 0
        while up in parent and up != me and seen < 64:
            up, seen = parent[up], seen + 1
        if up == me and pid != me:
            with contextlib.suppress(OSError):
                if word.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    out.append(pid)
    return out


def browser_cpu_seconds() -> float:
    """CPU seconds of every chromium process this benchmark started (renderer, GPU, browser)."""
    return sum(cpu_seconds(pid) or 0.0 for pid in _descendants_named("chromium"))


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of ``pid`` (all its threads), from ``/proc/<pid>/stat``."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int | None) -> int | None:
    if pid is None:
        return None
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return None


# ----------------------------------------------------------------------------- one run
def _metric(pg: Any, label: str) -> str | None:
    loc = pg.locator('[data-testid="stMetric"]').filter(has_text=label).first
    with contextlib.suppress(Exception):
        return loc.locator('[data-testid="stMetricValue"]').inner_text(timeout=2000).strip()
    return None


def measure(
    browser: Any, url: str, case: str, *, seed: int, server_pid: int | None, timeout_s: float
) -> Measurement:
    """Open the case's page, wait until idle, press Run and time it."""
    m = Measurement(case, seed)
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    pg = context.new_page()
    timeout_ms = timeout_s * 1000
    clicked: list[float] = []

    def watch(ws: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            if not clicked:
                return
            data = payload.encode() if isinstance(payload, str) else payload
            if not m.compiling_seen and COMPILING_FRAME.search(data):
                m.compiling_seen = True
            if m.first_live_s is None and LIVE_FRAME.search(data):
                m.first_live_s = time.perf_counter() - clicked[0]

        ws.on("framereceived", on_frame)

    pg.on("websocket", watch)
    main = pg.get_by_test_id("stMainBlockContainer")
    try:
        if case == "toy":
            pg.goto(f"{url}/?seed={seed}" if seed else f"{url}/", timeout=timeout_ms)  # the default page
            pg.get_by_role("heading", name="Toy potentials").first.wait_for(timeout=timeout_ms)
        else:
            pg.goto(f"{url}/networks", timeout=timeout_ms)
            pg.get_by_role("heading", name="Networks").first.wait_for(timeout=timeout_ms)
            pg.wait_for_function(IDLE_JS, timeout=timeout_ms)
            main.get_by_role("combobox", name="Model").click()
            pg.get_by_role("option", name=re.compile(re.escape(case))).first.click()
        pg.wait_for_timeout(300)
        pg.wait_for_function(IDLE_JS, timeout=timeout_ms)
        pg.wait_for_timeout(500)
        pg.evaluate(OBSERVER_JS)
        run = main.get_by_role("button", name="Run", exact=True)
        run.wait_for(timeout=timeout_ms)
        m.load_before = os.getloadavg()[0]
        cpu0 = cpu_seconds(server_pid)
        browser0 = browser_cpu_seconds()
        t_click = pg.evaluate("performance.now()")
        clicked.append(time.perf_counter())
        run.click(timeout=timeout_ms)
        pg.get_by_text("λ̂ (estimate)").first.wait_for(timeout=timeout_ms)
        m.complete_s = time.perf_counter() - clicked[0]
        pg.wait_for_function(IDLE_JS, timeout=timeout_ms)
        m.settled_s = time.perf_counter() - clicked[0]
        cpu1 = cpu_seconds(server_pid)
        m.browser_cpu_s = browser_cpu_seconds() - browser0
        m.server_cpu_s = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
        m.server_threads = threads(server_pid)
        m.load_after = os.getloadavg()[0]
        drawn = pg.evaluate("window.__firstLive")
        m.first_drawn_s = None if drawn is None else max(0.0, (drawn - t_click) / 1000)
        pg.wait_for_timeout(500)
        m.llc = _metric(pg, "λ̂ (estimate)")
        with contextlib.suppress(Exception):  # the run line says which SGLD step ran
            line = pg.get_by_text(re.compile(r"Run #.* step")).first.inner_text(timeout=2000)
            m.step = next((w for w in ("compiled", "eager") if f"{w} step" in line), None)
        m.warnings = pg.locator('[data-testid="stAlertContentWarning"]').count()
        m.exceptions = pg.locator('[data-testid="stException"]').count()
        m.exceptions += pg.get_by_text("Something went wrong").count()
    except Exception as exc:  # a failed case is a result, not a crash of the benchmark
        m.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if os.environ.get("BENCH_DEBUG"):
            print(exc, file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            context.close()
    return m


# ----------------------------------------------------------------------------- report
def _f(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def format_table(rows: list[Measurement]) -> str:
    """A markdown table of the measurements."""
    head = (
        "| case | seed | first live s | drawn s | complete s | settled s | server CPU s | browser CPU s "
        "| threads "
        "| load before/after | compiling shown | step | λ̂ | warnings |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|"
    )
    lines = [head]
    for m in rows:
        if m.error:
            lines.append(f"| {m.case} | {m.seed} | failed: {m.error} |")
            continue
        lines.append(
            f"| {m.case} | {m.seed} | {_f(m.first_live_s)} | {_f(m.first_drawn_s)} | {_f(m.complete_s)} "
            f"| {_f(m.settled_s)} | {_f(m.server_cpu_s)} | {_f(m.browser_cpu_s)} | {m.server_threads} "
            f"| {_f(m.load_before, 1)} / {_f(m.load_after, 1)} | {'yes' if m.compiling_seen else 'no'} "
            f"| {m.step} | {m.llc} | {m.warnings} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["toy", *SAMPLE_MODELS],
                        help="toy and/or sample model folder names (default: toy and every sample model)")
    parser.add_argument("--repeat", type=int, default=1, help="toy runs (seeds 0, 1, …; default 1)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per-run limit in seconds")
    parser.add_argument("--url", help="use a running server instead of starting one")
    parser.add_argument("--json", dest="json_out", type=Path, help="also write the measurements here")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds to wait after the server starts (its warm-up), default 5")
    return parser.parse_args(argv)


def run_cases(url: str, args: argparse.Namespace, server_pid: int | None) -> list[Measurement]:
    from playwright.sync_api import sync_playwright

    rows: list[Measurement] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            for case in args.cases:
                seeds = range(args.repeat) if case == "toy" else range(1)
                for seed in seeds:
                    m = measure(browser, url, case, seed=seed, server_pid=server_pid, timeout_s=args.timeout)
                    print(format_table([m]).splitlines()[-1], flush=True)
                    rows.append(m)
        finally:
            browser.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not CHROMIUM.exists():
        print(f"error: {CHROMIUM} not found (run `make browser`); no browser is downloaded", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    if args.url:
        rows = run_cases(args.url.rstrip("/"), args, None)
    else:
        with streamlit_server(ROOT, unset_env=["LLTOOLS_SAMPLE_MODELS"]) as url:
            pids = _children_named("streamlit")
            time.sleep(args.settle)
            rows = run_cases(url, args, pids[0] if pids else None)
    print(format_table(rows))
    print(f"wall time {time.perf_counter() - t0:.1f} s; load average now {os.getloadavg()}")
    if args.json_out:
        args.json_out.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0 if all(r.error is None and r.exceptions == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
