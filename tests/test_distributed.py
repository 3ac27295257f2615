"""Splitting runs: local chain batches and Ray shards give exactly the local result.

Chain k of every setting (or checkpoint) has the same random stream whatever else is in its
batch, so a sweep sharded over Ray tasks — or a run split into memory-sized batches — must
reproduce the one-batch result bit for bit.  The Ray tests start a local instance
(``ray.init(num_cpus=2)``) and are skipped when ray is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lltools.sampling.driver import run
from lltools.sampling.sgld import make_params
from lltools.targets.potentials import potential_target
from lltools.workflows import distributed
from lltools.workflows.sweep import sweep

REPO = Path(__file__).resolve().parent.parent
MODULAR = REPO / "sample_models" / "modular_addition"
GRID = {"epsilon": [1e-3, 3e-3], "gamma": [0.5, 2.0], "nbeta": [10.0, 100.0, 1000.0]}


def _same_trace(a, b) -> None:
    for name in ("loss", "acceptance", "loss_init", "diverged_at", "chain_index", "setting_index", "steps"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        if x.is_floating_point():
            assert torch.equal(x.isnan(), y.isnan()), name
            assert torch.equal(x.nan_to_num(0.0), y.nan_to_num(0.0)), name
        else:
            assert torch.equal(x, y), name
    for p, q in zip(a.params, b.params, strict=True):
        if p is None or q is None:  # plain SGLD: no sampler codes, α, δ
            assert p is None and q is None
        else:
            assert torch.equal(p, q)


# ---------------------------------------------------------------------------- local batches
def test_max_chains_that_fit_inverts_the_memory_estimate() -> None:
    target = potential_target("x**2 + y**2")
    per_chain = 2 * 100 * 4 + 10 * 2 * 4
    assert distributed.max_chains_that_fit(target, 100, record_positions=False,
                                           budget_bytes=per_chain * 1000) == 1000
    assert distributed.max_chains_that_fit(target, 100, record_positions=False, budget_bytes=10) == 1
    assert distributed.max_chains_that_fit(target, 100) >= 1


def test_run_batched_equals_one_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Split into batches of 7 (announced on stderr), the trace is the one-batch trace."""
    target = potential_target("x**2 * y**4")
    chains = 24
    eps = torch.tensor([1e-3] * 20 + [0.6] * 4)  # some diverge
    params = make_params(eps, 1.0, 50.0, chains)
    chain_index = torch.arange(6).repeat(4)
    setting_index = torch.arange(4).repeat_interleave(6)
    kwargs = {"num_draws": 60, "num_burnin": 10, "seed": 5, "chain_index": chain_index,
              "setting_index": setting_index, "record_positions": False}
    whole = run(target, params, **kwargs)
    split = distributed.run_batched(target, params, max_chains=7, **kwargs)
    _same_trace(whole, split)
    assert "4 batches of at most 7 chains" in capsys.readouterr().err
    assert (whole.diverged_at >= 0).any()


def test_concat_traces_keeps_positions_only_when_aligned() -> None:
    target = potential_target("x**2 + y**2")
    params = make_params(1e-3, 1.0, 10.0, 4)
    a = run(target, make_params(1e-3, 1.0, 10.0, 2), num_draws=10)
    b = run(target, make_params(1e-3, 1.0, 10.0, 2), num_draws=10, chain_index=torch.tensor([2, 3]))
    both = distributed.concat_traces([a, b])
    whole = run(target, params, num_draws=10)
    _same_trace(whole, both)
    assert torch.equal(both.positions, whole.positions)
    with pytest.raises(ValueError, match="same steps"):
        distributed.concat_traces([a, run(target, make_params(1e-3, 1.0, 10.0, 2), num_draws=11)])


def test_shard_ranges_cover_everything_once() -> None:
    for count in (1, 5, 12, 13):
        for shards in (1, 2, 5, 40):
            ranges = distributed._shard_ranges(count, shards)
            assert [i for r in ranges for i in r] == list(range(count))
            assert len(ranges) == min(shards, count)


def test_sweep_shard_without_ray_equals_local_rows() -> None:
    """The shard body alone (no Ray): a subset of settings with global setting numbers gives
    exactly those rows of the local sweep."""
    from lltools.estimation.summary import summarize

    local = sweep(potential_target("x**2 * y**4"), **GRID, chains=3, draws=40, burnin=10,
                  seed=2, device="cpu")
    part = local.settings.iloc[[1, 4, 7]].reset_index(drop=True)
    trace = distributed.sweep_shard("x**2 * y**4", part, chains=3, draws=40, burnin=10, seed=2, device="cpu")
    table = summarize(trace).table
    expected = local.table.set_index("setting").loc[[1, 4, 7]].reset_index()
    pd.testing.assert_frame_equal(table.reset_index(drop=True), expected, check_exact=True)


# ---------------------------------------------------------------------------- Ray
@pytest.mark.slow
def test_sweep_distributed_equals_local_sweep(ray_local) -> None:
    """12 settings over 5 Ray tasks: the same table and trace as the local batched sweep."""
    kwargs = {**GRID, "chains": 3, "draws": 50, "burnin": 10, "seed": 4, "device": "cpu"}
    local = sweep(potential_target("x**2 * y**4"), **kwargs)
    spec = {"kind": "potential", "spec": "x**2 * y**4"}
    remote = distributed.sweep_distributed(spec, num_shards=5, **kwargs)
    assert remote.trace.meta["shards"] == 5
    pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)
    pd.testing.assert_frame_equal(remote.settings, local.settings)
    _same_trace(remote.trace, local.trace)


@pytest.mark.slow
def test_trajectory_distributed_equals_local(ray_local) -> None:
    """The modular-addition trajectory sharded by checkpoints equals the local batched run."""
    from lltools.workflows.trajectory import compute_trajectory

    kwargs = {"chains": 2, "draws": 4, "burnin": 2, "seed": 1, "device": "cpu",
              "with_geometric_complexity": False}
    local = compute_trajectory(MODULAR, **kwargs)
    remote = distributed.trajectory_distributed(MODULAR, num_shards=3, **kwargs)
    assert remote.attrs["shards"] == 3
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    assert np.isfinite(remote["llc_mean"]).all()


def test_resolve_target_specs() -> None:
    assert distributed.resolve_target("x2y4").name == "x**2 * y**4"
    assert distributed.resolve_target({"kind": "potential", "spec": "quadratic"}).name == "x**2 + y**2"
    target = potential_target("x**4 + y**4")
    assert distributed.resolve_target(target) is target
    with pytest.raises(TypeError):
        distributed.resolve_target(3)  # type: ignore[arg-type]


def test_run_batched_with_thinning_and_short_burn_in() -> None:
    """Thinning larger than the burn-in (e.g. 5 with none, as for 10⁶-chain benchmarks) used
    to make ``recorded_steps`` raise; batches and one run still agree."""
    target = potential_target("x**2 + y**2")
    params = make_params(1e-3, 1.0, 10.0, 10)
    whole = run(target, params, num_draws=4, num_burnin=0, thinning=5)
    assert whole.steps.tolist() == [4, 9, 14, 19]
    split = distributed.run_batched(target, params, num_draws=4, num_burnin=0, thinning=5, max_chains=3,
                                    quiet=True)
    _same_trace(whole, split)
