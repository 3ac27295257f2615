"""The driver's plan (sizes, positions, chain batch, defaults, work per step) and its module
layout: ``lltools.run`` is the facade function, not a module; Trace lives in its own module."""

from __future__ import annotations

import importlib.util
import time

import pytest
import torch

import lltools
from lltools.base import devices
from lltools.sampling import driver
from lltools.sampling.driver import MAX_POSITION_VALUES, plan_run
from lltools.sampling.sgld import SGLDParams
from lltools.sampling.trace import Trace
from lltools.targets.base import FunctionTarget
from lltools.targets.networks import NetworkTarget
from lltools.targets.potentials import potential_target


def test_plan_of_a_potential() -> None:
    plan = plan_run(potential_target("x**2 + y**4"), 8, num_draws=100, num_burnin=20, thinning=3)
    assert plan.num_steps_total == 20 + 100 * 3
    # Every 3rd step: burn-in columns at steps 2, 5, …, 17 (6 of them), then 100 draws.
    assert plan.num_recorded == 6 + 100 and plan.steps[0] == 2 and plan.steps[6] == 22
    assert (plan.record_positions, plan.position_stride, plan.num_positions) == (True, 1, 106)
    assert (plan.batch_chains, plan.acceptance_every, plan.divergence_threshold) == (8, 10, 1e4)
    assert plan.work_per_step == devices.step_work(8, 2, 0) == 8 * 2 * devices.ELEMENTWISE_OPS


def test_positions_are_thinned_to_the_cap() -> None:
    plan = plan_run(potential_target("x**2 + y**2"), 20_000, num_draws=400)
    values = 20_000 * 400 * 2
    assert plan.position_stride == -(-values // MAX_POSITION_VALUES) == 4
    assert plan.num_positions == 100


def test_plan_of_a_minibatch_network() -> None:
    net = NetworkTarget(torch.nn.Linear(30, 1), torch.randn(100, 30), torch.randn(100, 1), batch_size=16)
    plan = plan_run(net, 4, num_draws=10, divergence_threshold=5.0)
    assert (plan.record_positions, plan.num_positions) == (False, 0)  # d = 31 > 16
    assert (plan.acceptance_every, plan.divergence_threshold) == (10, 5.0)
    assert plan.work_per_step == 4 * 31 * (16 + devices.ELEMENTWISE_OPS)
    full = NetworkTarget(torch.nn.Linear(30, 1), torch.randn(100, 30), torch.randn(100, 1))
    assert plan_run(full, 4, num_draws=10).work_per_step == 4 * 31 * (100 + devices.ELEMENTWISE_OPS)


@pytest.mark.parametrize(("chains", "draws", "burnin", "thinning", "message"), [
    (0, 10, 0, 1, "at least 1 chain"), (2, 1, 0, 1, "at least 2 draws"),
    (2, 10, -1, 1, "burn-in"), (2, 10, 0, 0, "thinning"),
])
def test_invalid_sizes_are_refused(chains: int, draws: int, burnin: int, thinning: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_run(potential_target("x**2"), chains, num_draws=draws, num_burnin=burnin, thinning=thinning)


def test_module_layout() -> None:
    assert callable(lltools.run) and lltools.run is driver.run
    assert importlib.util.find_spec("lltools.run") is None
    assert lltools.Trace is Trace and "Trace" not in driver.__all__


def test_report_seconds_yields_by_time_not_by_step_count() -> None:
    """Issue 13.2: with ``report_seconds`` the consumer hears from a run at least that often,
    however slow each step is (Stop in the app reacts within one chunk)."""
    def slow(w: torch.Tensor) -> torch.Tensor:
        time.sleep(0.004)  # a slow step: 100 steps per report_every would be 0.4 s
        return (w**2).sum(1)

    target = FunctionTarget(slow, torch.zeros(2), name="slow")
    params = SGLDParams(*(torch.full((2,), v, dtype=target.dtype) for v in (1e-3, 1.0, 10.0)))
    stamps, steps = [], []
    t0 = time.monotonic()
    for trace in driver.run_chunks(target, params, num_draws=150, num_burnin=0, report_every=100,
                                   report_seconds=0.05, fused=False):
        stamps.append(time.monotonic())
        steps.append(int(trace.meta["steps_done"]))
    gaps = [b - a for a, b in zip([t0, *stamps[:-1]], stamps, strict=True)]
    assert steps[-1] == 150 and len(steps) >= 6  # by count alone: 2 (step 100 and the end)
    assert max(gaps[1:-1]) < 0.05 + 0.1  # one report interval plus a slow step or two
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    # Without it: by step count only.
    counted = [int(t.meta["steps_done"]) for t in driver.run_chunks(
        target, params, num_draws=150, num_burnin=0, report_every=100, fused=False)]
    assert counted == [100, 150]
