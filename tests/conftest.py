"""Suite-wide fixtures."""

from __future__ import annotations

import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on (at least) two cores: one torch thread each, here and in
    # the subprocesses tests start, so that they never oversubscribe the CPU.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


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

