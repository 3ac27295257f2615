"""Start the dashboard on a free localhost port: ``streamlit run dashboard/app.py``.

Shared by the real-browser tests (``tests/e2e/conftest.py``) and the load benchmark
(``benchmarks/bench_load.py``), with the browser they drive (:data:`CHROMIUM`).  No
Streamlit import: this only starts a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Debian's chromium, which the browser tests and the load benchmark drive headless (never a
#: downloaded browser), and its launch arguments.
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


class ServerStartError(RuntimeError):
    """The server exited, or did not answer its health check in time (the message has its log)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server's process group; kill it if it does not exit within 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@contextlib.contextmanager
def streamlit_server(
    root: Path = ROOT,
    *,
    port: int | None = None,
    startup_s: float = 120.0,
    scratch_home: bool = True,
    unset_env: Iterable[str] = (),
) -> Iterator[str]:
    """``streamlit run dashboard/app.py`` on ``port`` (default: a free one) of 127.0.0.1.

    Yields the base URL once ``/_stcore/health`` answers ``ok``; raises
    :class:`ServerStartError` if the server exits first or takes longer than
    ``startup_s``.  Its log goes to a file (a pipe nobody reads could fill and stall it).
    With ``scratch_home`` the run store (``LLTOOLS_HOME``) is a temporary folder; the
    variables named in ``unset_env`` are removed from the server's environment.  The
    server's process group is terminated afterwards.
    """
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="lltools-serve-") as tmp:
        log_path = Path(tmp) / "streamlit.log"
        env = {**os.environ, "PYTHONPATH": str(root)}
        if scratch_home:
            env["LLTOOLS_HOME"] = str(Path(tmp) / "home")
        for name in unset_env:
            env.pop(name, None)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
                 "--server.port", str(port), "--server.address", "127.0.0.1",
                 "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_s
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise ServerStartError(f"streamlit did not start within {startup_s:.0f} s:\n{tail}")
                time.sleep(0.3)
            yield url
        finally:
            _stop(proc)
