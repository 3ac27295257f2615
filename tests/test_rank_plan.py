"""The rank(J) plan decides from sizes alone; the subset computation agrees with the full one."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

import lltools
from lltools.theory.numeric import jacobian_rank_llc
from lltools.theory.rank_plan import RANK_MAX_FLOPS, RANK_SLOW_FLOPS, plan_for, rank_plan, subset_rank_llc

ROOT = Path(__file__).resolve().parents[1]


def test_tiers_follow_the_cost() -> None:
    small = rank_plan(dim=100, n=1000, out_dim=4)
    assert small.tier == "auto" and small.rows == 64  # ≥ 2d = 200 outputs → 50 rows, at least 64
    assert small.n_outputs * 100 * min(small.n_outputs, 100) <= RANK_MAX_FLOPS
    medium = rank_plan(dim=20_000, n=100_000, out_dim=10)
    flops = medium.n_outputs * 20_000 * min(medium.n_outputs, 20_000)
    assert medium.rows == 4_000 and flops > RANK_MAX_FLOPS
    assert medium.tier == ("on request" if flops <= RANK_SLOW_FLOPS else "refused")
    huge = rank_plan(dim=2_000_000, n=10_000, out_dim=10)
    assert huge.tier == "refused" and "not computed" in huge.reason


@pytest.mark.parametrize("n", [1, 5])
def test_rows_never_exceed_the_data(n: int) -> None:
    assert rank_plan(dim=50, n=n, out_dim=1).rows == n


def test_subset_rank_is_the_full_rank_for_a_deep_linear_network() -> None:
    """For a deep linear network J's row space is reached by any ≥ input-width generic inputs,
    so rank(J) on the planned 64 of 200 inputs equals rank(J) on all 200."""
    target = lltools.load_sample_model(ROOT / "sample_models" / "deep_linear" / "rrr_6_4_5_r2")
    small = copy.copy(target)
    small.inputs, small.targets, small.n = target.inputs[:200], target.targets[:200], 200
    plan = plan_for(small)
    assert plan.tier == "auto" and plan.rows == 64
    value, note = subset_rank_llc(small, plan)
    eps = float(torch.finfo(target.w_star.dtype).eps)
    full = jacobian_rank_llc(small, rtol=max(200 * 5, int(target.dim)) * eps)
    assert value == full.llc and 0 < value < target.dim / 2
    assert "64 of 200" in note
