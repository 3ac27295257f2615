"""Suite-wide fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_run_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test records runs into a fresh temporary store, never into ~/.lltools, and
    starts with no remembered compile times (so the default eager/compiled choice does not
    depend on which tests compiled before)."""
    home = tmp_path_factory.mktemp("lltools_home")
    monkeypatch.setenv("LLTOOLS_HOME", str(home))
    monkeypatch.setenv("LLTOOLS_COMPILE_LOG", str(home / "compile_seconds.json"))


@pytest.fixture(scope="module")
def ray_local():
    """A local two-CPU Ray for the sharding tests (skipped without the ``ray`` package)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()

