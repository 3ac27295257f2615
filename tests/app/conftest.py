"""Shared helpers for the AppTest suite (Streamlit pages run in-process, no browser)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ROOT / "dashboard" / "views"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# No background compile of the toy step in the test process (dashboard/warmup.py; the router
# starts it): AppTest runs pages in-process, and tests/app/test_warmup.py tests it directly.
os.environ.setdefault("LLTOOLS_WARMUP", "0")

#: Generous: the first run of a page imports torch/plotly and compiles the quadrature.
TIMEOUT = 90


def page(name: str) -> AppTest:
    """A fresh AppTest for ``dashboard/views/<name>.py``."""
    return AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=TIMEOUT)


def metrics(at: AppTest) -> dict[str, str]:
    """Metric label -> displayed value."""
    return {m.label: m.value for m in at.metric}


def settle(at: AppTest) -> AppTest:
    """Let the background theory jobs finish, then rerun the page (what its polling fragment does)."""
    from dashboard import theory

    assert theory.wait_idle(timeout=TIMEOUT)
    return at.run()


def assert_healthy(at: AppTest) -> None:
    """No uncaught exception and no "something went wrong" error."""
    assert not at.exception, [e.value for e in at.exception]
    broken = [e.value for e in at.error if "went wrong" in e.value]
    assert not broken, broken


def assert_link_reproduces(at: AppTest, name: str, keys: tuple[str, ...]) -> AppTest:
    """A fresh session of page ``name`` opened on ``at``'s URL shows the same ``keys``."""
    again = page(name)
    again.query_params.update(at.query_params)
    again.run()
    assert_healthy(again)
    for key in keys:
        assert again.session_state[key] == at.session_state[key], key
    return again


@pytest.fixture
def tiny_toy() -> AppTest:
    """The toy page with a tiny sampler budget (fast on a shared CPU)."""
    at = page("toy")
    at.session_state["toy.chains"] = 3
    at.session_state["toy.draws"] = 60
    at.session_state["toy.burnin"] = 20
    return settle(at.run())


def shown(value: float | None, digits: int = 4) -> str:
    """How the pages display a number (the same formatter)."""
    from lltools.viz import format_number

    return format_number(value, digits)
