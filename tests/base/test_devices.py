"""Device/dtype resolution and the CPU thread policy (issue 13 item 16)."""

from __future__ import annotations

import pytest
import torch

from lltools.base import devices
from lltools.base.devices import THREADS_ENV, step_work, thread_count, threads_for_step
from lltools.sampling.driver import run_chunks
from lltools.sampling.sgld import make_params
from lltools.targets.potentials import potential_target


@pytest.fixture(autouse=True)
def _no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("LLTOOLS_TORCH_THREADS", raising=False)


@pytest.fixture
def two_threads() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_small_steps_get_one_thread() -> None:
    # The case: a 75-parameter network, 8 chains × batch 500, ran 10× faster on one
    # thread than on two on a busy 2-core machine.
    assert step_work(8, 75, 500) == 8 * 75 * (500 + devices.ELEMENTWISE_OPS)
    assert thread_count(step_work(8, 75, 500), ceiling=2) == 1
    assert thread_count(step_work(4, 2), ceiling=16) == 1  # the app's toy potential run
    assert thread_count(step_work(65_536, 2), ceiling=16) == 1


def test_big_steps_get_threads_up_to_the_ceiling() -> None:
    work = step_work(64, 9_610, 64)  # 10k-parameter MLP, 64 chains, batch 64: ≈ 7.9·10⁷
    assert thread_count(work, ceiling=16) == int(work // devices.WORK_PER_THREAD) == 9
    assert thread_count(work, ceiling=4) == 4
    assert thread_count(10 * work, ceiling=16) == 16
    assert thread_count(None, ceiling=5) == 5


def test_ceiling_defaults_to_the_cores_or_a_share_for_the_server() -> None:
    assert thread_count(cpu_count=16) == 16
    assert thread_count(shared=True, cpu_count=16) == 4
    assert thread_count(shared=True, cpu_count=2) == 1


def test_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "3")
    assert thread_count(1.0, ceiling=1) == 3
    assert thread_count(shared=True, cpu_count=2) == 3
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.warns(RuntimeWarning, match="LLTOOLS_THREADS"):
        assert thread_count(1.0, ceiling=8) == 1


@pytest.mark.usefixtures("two_threads")
def test_threads_for_step_sets_and_restores() -> None:
    with threads_for_step(step_work(8, 75, 500)) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with threads_for_step(step_work(8, 75, 500), "cuda") as n:  # no CPU change for CUDA runs
        assert n == 2 and torch.get_num_threads() == 2


@pytest.mark.usefixtures("two_threads")
def test_the_driver_applies_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    target = potential_target("x**2 + y**2")
    params = make_params(1e-3, 1.0, 10.0, 4)
    stream = run_chunks(target, params, num_draws=20, report_every=5)
    next(stream)
    assert torch.get_num_threads() == 1  # a 4-chain potential: one thread while sampling
    for _ in stream:
        pass
    assert torch.get_num_threads() == 2  # restored
    monkeypatch.setenv(THREADS_ENV, "2")
    stream = run_chunks(target, params, num_draws=20, report_every=5)
    next(stream)
    assert torch.get_num_threads() == 2
    stream.close()
