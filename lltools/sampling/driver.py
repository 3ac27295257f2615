"""The only sampling loop: ``run_chunks`` streams partial traces, ``run`` returns the last.

Buffers for the whole run are preallocated on the target's device; each step writes one
column.  Nothing is copied to the host inside the loop: a partial :class:`Trace` (views of
the filled columns) is yielded every ``report_every`` steps, and the consumer decides when
to synchronise (the CLI's progress bar, the app's live plot).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import Tensor

from lltools.base import memory, rng
from lltools.sampling import compiled as fused_steps
from lltools.sampling import sgld
from lltools.sampling.compiled import StepFn
from lltools.sampling.sgld import SGLDInfo, SGLDParams, SGLDState
from lltools.targets.base import Target

#: Positions are recorded only for targets with at most this many parameters.
T = TypeVar("T")

MAX_POSITION_DIM = 16
#: ... and at most this many stored values (chains × recorded steps × d).
MAX_POSITION_VALUES = 4_000_000
#: Recorded columns are copied into the (C, T) traces in blocks of at most this many ...
STAGE_COLUMNS = 16
#: ... using a staging buffer of at most this many bytes per trace.
STAGE_BYTES = 32 * 1024**2


@dataclass(frozen=True)
class Trace:
    """Per-chain, per-step records of one batched run (frozen: results are computed from
    it by :func:`lltools.estimation.summary.summarize`, never cached on it).

    Attributes
    ----------
    loss : Tensor, shape (C, T)
        Draw losses L_B(w_t) at each recorded step (burn-in included; NaN once diverged).
    acceptance : Tensor, shape (C, T)
        MALA acceptance probability of each recorded step's proposal (NaN where not computed).
    steps : Tensor, shape (T,)
        The SGLD step index of each recorded column.
    loss_init : Tensor, shape (C,)
        L_n(w*) at each chain's centre.
    diverged_at : Tensor, shape (C,)
        Step at which each chain diverged, -1 if it never did.
    params : SGLDParams
        ε, γ, nβ per chain.
    chain_index : Tensor, shape (C,)
        Index of each chain within its hyperparameter setting.
    setting_index : Tensor, shape (C,)
        Which hyperparameter setting (sweep row) each chain belongs to.
    num_burnin : int
        Steps before the first draw; columns with ``steps >= num_burnin`` are draws.
    positions : Tensor or None, shape (C, T_pos, d)
        Positions w_t at ``position_steps`` for low-dimensional targets.
    complete : bool
        False for the partial traces yielded while the run is going.
    """

    loss: Tensor
    acceptance: Tensor
    steps: Tensor
    loss_init: Tensor
    diverged_at: Tensor
    params: SGLDParams
    chain_index: Tensor
    setting_index: Tensor
    num_burnin: int
    num_steps_total: int
    positions: Tensor | None = None
    position_steps: Tensor | None = None
    complete: bool = True
    meta: dict = field(default_factory=dict)

    @property
    def num_chains(self) -> int:
        return int(self.loss.shape[0])

    @property
    def draw_mask(self) -> Tensor:
        """Boolean (T,): which recorded columns are draws (after burn-in)."""
        return self.steps >= self.num_burnin

    @property
    def first_draw_column(self) -> int:
        """Index of the first draw column: recorded steps ascend, so the draws are the tail."""
        return int(self.steps.numel() - int(self.draw_mask.sum()))

    @property
    def draw_loss(self) -> Tensor:
        """Loss draws after burn-in, shape (C, T_draws) (a view, no copy)."""
        return self.loss[:, self.first_draw_column:]

    @property
    def draw_acceptance(self) -> Tensor:
        """MALA acceptances of the draws, shape (C, T_draws) (a view)."""
        return self.acceptance[:, self.first_draw_column:]

    def cpu(self) -> Trace:
        """A host copy (float64 for the statistics)."""

        def host(x: Tensor | None) -> Tensor | None:
            if x is None:
                return None
            x = x.detach().cpu()
            return x.double() if x.is_floating_point() else x

        return Trace(
            loss=host(self.loss),
            acceptance=host(self.acceptance),
            steps=host(self.steps),
            loss_init=host(self.loss_init),
            diverged_at=host(self.diverged_at),
            params=SGLDParams(*(host(p) for p in self.params)),
            chain_index=host(self.chain_index),
            setting_index=host(self.setting_index),
            num_burnin=self.num_burnin,
            num_steps_total=self.num_steps_total,
            positions=host(self.positions),
            position_steps=host(self.position_steps),
            complete=self.complete,
            meta=dict(self.meta),
        )


def recorded_steps(num_burnin: int, num_draws: int, thinning: int) -> Tensor:
    """Step indices that get a trace column: every ``thinning``-th step, burn-in included,
    ending with ``num_draws`` columns after burn-in."""
    total = num_burnin + num_draws * thinning
    first_draw = num_burnin + thinning - 1
    # (torch.arange refuses start > end, e.g. thinning 5 with fewer than 4 burn-in steps.)
    burn = torch.arange(thinning - 1, max(num_burnin, thinning - 1), thinning)
    draws = torch.arange(first_draw, total, thinning)
    return torch.cat((burn, draws))


def validate_run_sizes(num_chains: int, num_draws: int, num_burnin: int, thinning: int) -> None:
    if num_chains < 1:
        raise ValueError("need at least 1 chain")
    if num_draws < 2:
        raise ValueError("need at least 2 draws after burn-in")
    if num_burnin < 0:
        raise ValueError("burn-in cannot be negative")
    if thinning < 1:
        raise ValueError("thinning must be >= 1")


def run_chunks(
    target: Target,
    params: SGLDParams,
    *,
    num_draws: int,
    num_burnin: int = 0,
    thinning: int = 1,
    seed: int = 0,
    chain_index: Tensor | None = None,
    setting_index: Tensor | None = None,
    centre: Tensor | None = None,
    report_every: int | None = None,
    record_positions: bool | None = None,
    acceptance_every: int | None = None,
    divergence_threshold: float | None = None,
    fused: bool | None = None,
) -> Iterator[Trace]:
    """Run SGLD for every chain and yield partial traces as the run goes.

    Parameters
    ----------
    target : Target
    params : SGLDParams
        ε, γ, nβ per chain, shape (C,) each, on the target's device.
    num_draws, num_burnin, thinning : int
        ``num_burnin + num_draws·thinning`` steps are taken; a column is recorded every
        ``thinning`` steps.
    seed : int
        Run seed; with ``chain_index`` it fixes each chain's random stream.
    chain_index, setting_index : Tensor (C,), optional
        Chain number within its setting (default 0..C-1) and the setting it belongs to.
    centre : Tensor (d,) or (C, d), optional
        Per-chain centres w* (default ``target.w_star``), e.g. one per checkpoint.
    report_every : int, optional
        Yield a partial trace every this many steps (default: only at the end).
    record_positions : bool, optional
        Keep positions w_t (default: when d ≤ 16), capped at ``MAX_POSITION_VALUES``.
    acceptance_every : int, optional
        Compute the MALA acceptance every this many steps (default 1 for potentials, where
        it is free; 10 for data targets, where it costs a second gradient).
    divergence_threshold : float, optional
        nβ·(L − L(w*)) above which a chain counts as diverged (default max(1e4, 100·d)).
    fused : bool, optional
        Use the compiled step of :mod:`lltools.sampling.compiled` (True) or the eager one (False).
        Default: the ``LLTOOLS_FUSED`` environment variable, else compiled only when the run
        is big enough to repay compiling (:func:`lltools.sampling.compiled.should_fuse`).  Same chains up
        to rounding; the trace's ``meta["step"]`` says which step ran.

    Yields
    ------
    Trace
        Views of the columns filled so far (``complete=False``), then the full trace.
    """
    num_chains = params.num_chains
    validate_run_sizes(num_chains, num_draws, num_burnin, thinning)
    device, dtype = target.device, target.dtype
    dim = target.dim
    steps = recorded_steps(num_burnin, num_draws, thinning)
    num_recorded = int(steps.numel())
    total_steps = num_burnin + num_draws * thinning

    if record_positions is None:
        record_positions = dim <= MAX_POSITION_DIM
    position_stride = 1
    if record_positions:
        position_stride = max(1, -(-num_chains * num_recorded * dim // MAX_POSITION_VALUES))
    num_positions = -(-num_recorded // position_stride) if record_positions else 0
    itemsize = torch.empty((), dtype=dtype).element_size()
    batch_chains = memory.chain_batch_size(
        num_chains,
        dim,
        num_recorded,
        itemsize=itemsize,
        device=device,
        position_values=num_chains * num_positions * dim,
        extra_per_chain=int(getattr(target, "bytes_per_chain", 0)),
    )
    if batch_chains < num_chains:
        memory.announce(
            f"{num_chains:,} chains × {dim:,} parameters do not fit {device} memory in one step; "
            f"stepping them in {-(-num_chains // batch_chains)} batches of at most {batch_chains:,} "
            "chains (the same chains, just slower)"
        )

    if acceptance_every is None:
        acceptance_every = 10 if target.has_data else 1
    if divergence_threshold is None:
        divergence_threshold = max(1e4, 100.0 * dim)
    if chain_index is None:
        chain_index = torch.arange(num_chains)
    if setting_index is None:
        setting_index = torch.zeros(num_chains, dtype=torch.int64)
    chain_index = chain_index.to(device=device, dtype=torch.int64)
    setting_index = setting_index.to(device=device, dtype=torch.int64)

    fused_steps.tune_host_allocator(device)
    step_fn = fused_steps.select_step(target, fused, num_chains=num_chains, total_steps=total_steps)
    if batch_chains < num_chains:
        step_fn = ChainBatchedStep(step_fn, batch_chains)
    params = SGLDParams(*(p.to(device=device, dtype=dtype) for p in params))
    keys = rng.chain_keys(seed, chain_index)
    state = sgld.init(target, params, keys, centre)

    loss_buf = torch.full((num_chains, num_recorded), float("nan"), dtype=dtype, device=device)
    acc_buf = torch.full_like(loss_buf, float("nan"))
    pos_buf = (
        torch.empty((num_chains, num_positions, dim), dtype=dtype, device=device)
        if record_positions
        else None
    )
    pos_steps = steps[::position_stride] if record_positions else None
    steps_dev = steps.to(device)

    def snapshot(filled: int, complete: bool) -> Trace:
        npos = -(-filled // position_stride) if record_positions else 0
        return Trace(
            loss=loss_buf[:, :filled],
            acceptance=acc_buf[:, :filled],
            steps=steps_dev[:filled],
            loss_init=state.loss_init,
            diverged_at=state.diverged_at,
            params=params,
            chain_index=chain_index,
            setting_index=setting_index,
            num_burnin=num_burnin,
            num_steps_total=total_steps,
            positions=None if pos_buf is None else pos_buf[:, :npos],
            position_steps=None if pos_steps is None else pos_steps[:npos],
            complete=complete,
            meta={"seed": seed, "thinning": thinning, "acceptance_every": acceptance_every,
                  "target": target.name, "dim": dim, "n": target.n, "steps_done": 0,
                  "step": fused_steps.step_kind(step_fn), "chain_batch": batch_chains},
        )

    # Recorded columns are staged as rows of a small (K, C) buffer and copied into the
    # (C, T) traces K at a time: writing one column of a (C, T) buffer touches C cache lines
    # for C values, which at 10⁵+ chains costs more than a fused step itself.
    stage_rows = max(1, min(STAGE_COLUMNS, num_recorded, STAGE_BYTES // max(1, num_chains * itemsize)))
    stage_loss = torch.empty((stage_rows, num_chains), dtype=dtype, device=device)
    stage_acc = torch.empty_like(stage_loss)
    staged = 0  # rows of the stage waiting to be copied
    flushed = 0  # trace columns already copied

    def flush() -> None:
        nonlocal staged, flushed
        if staged:
            loss_buf[:, flushed:flushed + staged] = stage_loss[:staged].t()
            acc_buf[:, flushed:flushed + staged] = stage_acc[:staged].t()
            flushed += staged
            staged = 0

    recorded = steps.tolist()
    next_col = 0
    with torch.no_grad():
        for t in range(total_steps):
            compute_acc = (t % acceptance_every) == 0
            position_now = state.w
            state, info = step_fn(
                state,
                target,
                params,
                compute_acceptance=compute_acc,
                divergence_threshold=divergence_threshold,
            )
            if next_col < num_recorded and recorded[next_col] == t:
                stage_loss[staged] = info.loss
                stage_acc[staged] = info.acceptance
                staged += 1
                if staged == stage_rows:
                    flush()
                if pos_buf is not None and next_col % position_stride == 0:
                    pos_buf[:, next_col // position_stride] = position_now
                next_col += 1
            if report_every and (t + 1) % report_every == 0 and t + 1 < total_steps:
                flush()
                snap = snapshot(next_col, complete=False)
                snap.meta["steps_done"] = t + 1
                yield snap
        flush()
    final = snapshot(next_col, complete=True)
    final.meta["steps_done"] = total_steps
    yield final


class ChainBatchedStep:
    """A step function applied to consecutive batches of at most ``batch_chains`` chains.

    Chains never interact and each one's random stream depends only on its own key and the
    step (:mod:`lltools.base.rng`), so the result is the one-call result (bit for bit with the eager
    step on potentials; to rounding where batched matrix products block differently).  Only
    one batch's temporaries exist at a time; the new positions and gradients are written
    into fresh (C, d) tensors.
    """

    def __init__(self, step_fn: StepFn, batch_chains: int) -> None:
        self.step_fn = step_fn
        self.batch_chains = int(batch_chains)

    @property
    def compiled(self) -> bool:
        return bool(getattr(self.step_fn, "compiled", False))

    def __call__(
        self, state: SGLDState, target: Target, params: SGLDParams, **kwargs: Any
    ) -> tuple[SGLDState, SGLDInfo]:
        num_chains = params.num_chains
        w, grad = torch.empty_like(state.w), torch.empty_like(state.grad)
        loss, info_loss, info_acc = (torch.empty_like(state.loss) for _ in range(3))
        diverged_at = torch.empty_like(state.diverged_at)
        for start in range(0, num_chains, self.batch_chains):
            sl = slice(start, min(start + self.batch_chains, num_chains))
            part = SGLDState(w=state.w[sl], centre=state.centre[sl], loss=state.loss[sl], grad=state.grad[sl],
                             loss_init=state.loss_init[sl], diverged_at=state.diverged_at[sl],
                             keys=state.keys[sl], step=state.step)
            new, info = self.step_fn(part, target, SGLDParams(*(p[sl] for p in params)), **kwargs)
            w[sl], loss[sl], grad[sl], diverged_at[sl] = new.w, new.loss, new.grad, new.diverged_at
            info_loss[sl], info_acc[sl] = info.loss, info.acceptance
        new_state = SGLDState(w=w, centre=state.centre, loss=loss, grad=grad, loss_init=state.loss_init,
                              diverged_at=diverged_at, keys=state.keys, step=state.step + 1)
        return new_state, SGLDInfo(loss=info_loss, acceptance=info_acc)


def last_item(items: Iterable[T]) -> T:
    """The final element of a (non-empty) iterable, e.g. the complete result of a stream."""
    last: T | None = None
    for last in items:  # noqa: B007
        pass
    if last is None:
        raise RuntimeError("the stream produced nothing")
    return last


def run(target: Target, params: SGLDParams, **kwargs) -> Trace:
    """Run to the end and return the complete :class:`Trace` (see :func:`run_chunks`)."""
    return last_item(run_chunks(target, params, **kwargs))
