"""rank(J)/2 at w* as an interactive reference: plan the cost first, then compute on a subset.

J is the Jacobian of the model's outputs on the data with respect to w at w* (primer §4);
rank(J)/2 is a lower bound on λ, equal to λ for minimally singular models. Forming and
decomposing J for all n inputs can take minutes and gigabytes, so :func:`rank_plan` decides
from the sizes alone — before anything is allocated — on how many inputs to compute it
(enough for ≥ 2d output rows, so the rank is not capped by the rows) and whether that is
cheap (``auto``), slow enough to ask first (``on request``) or out of reach (``refused``);
:func:`subset_rank_llc` then computes it on that subset.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch

from lltools.theory.numeric import jacobian_rank_llc

__all__ = ["RANK_MAX_BYTES", "RANK_MAX_FLOPS", "RANK_SLOW_FLOPS", "RankPlan", "plan_for", "rank_plan",
           "subset_rank_llc"]

#: rank(J)/2 is computed automatically only when the SVD costs at most this many flops (≈ a second) ...
RANK_MAX_FLOPS = 3e9
#: ... and the Jacobian's reverse-mode lanes need at most this many bytes.
RANK_MAX_BYTES = 600e6
#: Up to this many flops (a minute or so) rank(J) is offered on request.
RANK_SLOW_FLOPS = 2e11


@dataclass(frozen=True)
class RankPlan:
    """How rank(J) would be computed: on ``rows`` inputs, automatically, on request, or not."""

    rows: int
    n_outputs: int
    tier: str  # "auto" | "on request" | "refused"
    seconds: float  # a rough time estimate
    reason: str


def rank_plan(dim: int, n: int, out_dim: int, act: int = 1) -> RankPlan:
    """Plan a rank(J) computation that is honest (≥ 2d output rows when possible) and bounded.

    Parameters
    ----------
    dim : int
        d, the number of parameters.
    n : int
        The number of training inputs.
    out_dim : int
        Outputs per input.
    act : int
        Activations per input (memory of the reverse-mode lanes).

    ``auto`` below :data:`RANK_MAX_FLOPS` (about a second), ``on request`` up to
    :data:`RANK_SLOW_FLOPS` (a minute or so), else ``refused`` with the reason.
    """
    need = max(1, math.ceil(2 * dim / max(out_dim, 1)))  # ≥ 2d outputs: the rank is not capped by rows
    rows = max(1, min(n, max(need, 64)))
    n_out = rows * out_dim
    flops = float(n_out) * dim * min(n_out, dim)
    seconds = flops / 2e9
    lanes = min(n_out, max(1, 4_000_000 // max(dim, 1)))
    size = f"J would be {n_out:,} outputs × {dim:,} parameters ({n_out * dim / 1e6:,.1f} M entries)"
    if lanes * rows * act * 8 > RANK_MAX_BYTES or n_out * dim * 8 > RANK_MAX_BYTES:
        why = f"not computed: {size}, too much memory for the dashboard"
        return RankPlan(rows, n_out, "refused", seconds, why)
    if flops <= RANK_MAX_FLOPS:
        return RankPlan(rows, n_out, "auto", seconds, "")
    if flops <= RANK_SLOW_FLOPS:
        why = f"{size}: about {max(seconds, 5):,.0f} s to compute"
        return RankPlan(rows, n_out, "on request", seconds, why)
    why = f"not computed: {size}, too slow to decompose interactively"
    return RankPlan(rows, n_out, "refused", seconds, why)


def plan_for(target: Any) -> RankPlan:
    """:func:`rank_plan` for a network target (one forward pass on one input for the output size)."""
    with torch.no_grad():
        out_dim = int(target.outputs(target.w_star, target.inputs[:1]).numel())
    act = max(1, int(getattr(target, "activations_per_sample", 1)))
    return rank_plan(int(target.dim), int(target.n), out_dim, act)


def subset_rank_llc(target: Any, plan: RankPlan | None = None) -> tuple[float | None, str]:
    """rank(J)/2 at w* on the planned subset of the inputs, or ``(None, why)``.

    A subset gives a lower bound on the full-data rank (exact for deep linear networks once
    the subset has at least input-width generic inputs). The weights are usually stored in
    float32, so singular values at float32 rounding level (~1e-7 of the largest) are noise,
    not directions: the tolerance uses the weights' own epsilon.
    """
    plan = plan or plan_for(target)
    if plan.tier == "refused":
        return None, plan.reason
    sub = copy.copy(target)
    sub.inputs, sub.targets, sub.n = target.inputs[: plan.rows], target.targets[: plan.rows], plan.rows
    eps = float(torch.finfo(target.w_star.dtype).eps)
    rtol = max(plan.n_outputs, int(target.dim)) * eps
    try:
        res = jacobian_rank_llc(sub, rtol=rtol, max_entries=plan.n_outputs * int(target.dim) + 1)
    except (ValueError, TypeError, RuntimeError) as exc:
        return None, f"not computed: {exc}"
    where = "all" if plan.rows == target.n else f"{plan.rows:,} of {int(target.n):,}"
    return float(res.llc), (
        f"rank(J) = {res.rank:,} of d = {res.dim:,} on {where} training inputs "
        f"({res.n_outputs:,} outputs); a lower bound on λ, equal to λ for minimally singular models"
    )
