"""Suite-wide fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_run_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test records runs into a fresh temporary store, never into ~/.lltools."""
    monkeypatch.setenv("LLTOOLS_HOME", str(tmp_path_factory.mktemp("lltools_home")))
