"""Shared fixtures for the real-browser tests: one Streamlit server per test module,
Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard.serve import CHROMIUM, LAUNCH_ARGS, ServerStartError, streamlit_server  # noqa: E402

VIEWPORT = {"width": 1500, "height": 1900}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The dashboard on a free localhost port, using the shipped sample models
    (``LLTOOLS_SAMPLE_MODELS`` unset) and a scratch run store (never the user's ~/.lltools)."""
    try:
        with streamlit_server(
            ROOT, startup_s=90, scratch_home=True, unset_env=["LLTOOLS_SAMPLE_MODELS"]
        ) as url:
            yield url
    except ServerStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
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
