"""The only sampling loop: plan a run (sizes, memory, chain batching, threads), step every
chain, and stream :class:`~lltools.sampling.trace.Trace` objects.

:func:`plan_run` sizes a run before anything is allocated: the recorded columns, the
positions kept, the chain batch that fits the device's memory (:mod:`lltools.base.memory`)
and the CPU threads (:func:`lltools.base.devices.thread_count`).  :func:`run_chunks` then
preallocates the trace buffers on the target's device and writes one column per recorded
step.  Nothing is copied to the host inside the loop: a partial trace (views of the filled
columns) is yielded every ``report_every`` steps, and the consumer decides when to
synchronise (the CLI's progress bar, the app's live plot).  :func:`run` returns the last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor

from lltools.base import devices, memory, rng
from lltools.sampling import compiled as fused_steps
from lltools.sampling import sgld
from lltools.sampling.compiled import StepFn
from lltools.sampling.sgld import SGLDInfo, SGLDParams, SGLDState
from lltools.sampling.trace import Trace
from lltools.targets.base import Target

__all__ = [
    "MAX_POSITION_DIM",
    "MAX_POSITION_VALUES",
    "ChainBatchedStep",
    "RunPlan",
    "last_item",
    "plan_run",
    "recorded_steps",
    "run",
    "run_chunks",
    "validate_run_sizes",
]

T = TypeVar("T")
#: ``observe(step, w (C, d), chains (C,), alive (C,) bool)`` — see :func:`run_chunks`.
Observer = Callable[[int, Tensor, Tensor, Tensor], None]

#: Positions are recorded only for targets with at most this many parameters ...
MAX_POSITION_DIM = 16
#: ... and at most this many stored values (chains × recorded steps × d).
MAX_POSITION_VALUES = 4_000_000
#: Recorded columns are copied into the (C, T) traces in blocks of at most this many ...
STAGE_COLUMNS = 16
#: The MALA acceptance (a diagnostic: it never changes the chains) is computed every this many
#: steps by default.  For data targets it costs a second gradient; for potentials the loss and
#: gradient at w' are needed anyway, but the ~15 small operations of the acceptance were still
#: a fifth of a 2-parameter toy run (2.1 → 1.6 s for 8 chains × 2 500 steps): every 10th step
#: leaves 250 values per chain there, plenty for a mean and a rolling curve.
ACCEPTANCE_EVERY = 10
#: ... using a staging buffer of at most this many bytes per trace.
STAGE_BYTES = 32 * 1024**2


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
    """Raise ``ValueError`` (one line) for sizes no run can have."""
    if num_chains < 1:
        raise ValueError("need at least 1 chain")
    if num_draws < 2:
        raise ValueError("need at least 2 draws after burn-in")
    if num_burnin < 0:
        raise ValueError("burn-in cannot be negative")
    if thinning < 1:
        raise ValueError("thinning must be >= 1")


@dataclass(frozen=True)
class RunPlan:
    """The sizes of one run, fixed before anything is allocated (:func:`plan_run`).

    Attributes
    ----------
    num_chains, num_draws, num_burnin, thinning : int
        As asked; ``num_steps_total = num_burnin + num_draws·thinning`` steps are taken.
    steps : Tensor, shape (T,)
        The step index of each recorded column (:func:`recorded_steps`).
    position_stride : int
        Positions are kept every this many recorded columns (0 columns when not recorded).
    num_positions : int
        Position columns kept per chain.
    batch_chains : int
        Chains one step processes at once (``num_chains`` when everything fits memory).
    acceptance_every : int
        The MALA acceptance is computed every this many steps.
    divergence_threshold : float
        nβ·(L − L(w*)) above which a chain counts as diverged.
    work_per_step : float
        :func:`lltools.base.devices.step_work` of one step (sets the CPU threads).
    """

    num_chains: int
    num_draws: int
    num_burnin: int
    thinning: int
    num_steps_total: int
    steps: Tensor
    record_positions: bool
    position_stride: int
    num_positions: int
    batch_chains: int
    acceptance_every: int
    divergence_threshold: float
    work_per_step: float

    @property
    def num_recorded(self) -> int:
        """Trace columns per chain."""
        return int(self.steps.numel())


def plan_run(
    target: Target,
    num_chains: int,
    *,
    num_draws: int,
    num_burnin: int = 0,
    thinning: int = 1,
    record_positions: bool | None = None,
    acceptance_every: int | None = None,
    divergence_threshold: float | None = None,
) -> RunPlan:
    """Size a run of ``num_chains`` chains on ``target`` (see :func:`run_chunks` for the
    arguments and defaults); announces a split into chain batches.

    Raises
    ------
    ValueError
        For invalid sizes.
    MemoryBudgetError
        When not even one chain at a time fits the device's memory.
    """
    validate_run_sizes(num_chains, num_draws, num_burnin, thinning)
    dim, device = target.dim, target.device
    steps = recorded_steps(num_burnin, num_draws, thinning)
    num_recorded = int(steps.numel())
    if record_positions is None:
        record_positions = dim <= MAX_POSITION_DIM
    position_stride = 1
    if record_positions:
        position_stride = max(1, -(-num_chains * num_recorded * dim // MAX_POSITION_VALUES))
    num_positions = -(-num_recorded // position_stride) if record_positions else 0
    itemsize = torch.empty((), dtype=target.dtype).element_size()
    batch_chains = memory.chain_batch_size(
        num_chains,
        dim,
        num_recorded,
        itemsize=itemsize,
        device=device,
        position_values=num_chains * num_positions * dim,
        extra_per_chain=int(target.bytes_per_chain),
    )
    if batch_chains < num_chains:
        memory.announce(
            f"{num_chains:,} chains × {dim:,} parameters do not fit {device} memory in one step; "
            f"stepping them in {-(-num_chains // batch_chains)} batches of at most {batch_chains:,} "
            "chains (the same chains, just slower)"
        )
    rows = (target.batch_size or target.n or 0) if target.has_data else 0
    return RunPlan(
        num_chains=num_chains,
        num_draws=num_draws,
        num_burnin=num_burnin,
        thinning=thinning,
        num_steps_total=num_burnin + num_draws * thinning,
        steps=steps,
        record_positions=bool(record_positions),
        position_stride=position_stride,
        num_positions=num_positions,
        batch_chains=batch_chains,
        acceptance_every=acceptance_every if acceptance_every is not None else ACCEPTANCE_EVERY,
        divergence_threshold=(divergence_threshold if divergence_threshold is not None
                              else max(1e4, 100.0 * dim)),
        work_per_step=devices.step_work(min(batch_chains, num_chains), dim, rows),
    )


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
    report_seconds: float | None = None,
    record_positions: bool | None = None,
    acceptance_every: int | None = None,
    divergence_threshold: float | None = None,
    fused: bool | None = None,
    mask: Tensor | None = None,
    observe: Observer | None = None,
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
    report_seconds : float, optional
        Also yield a partial trace once this many seconds have passed since the last one
        (wall clock): a consumer that must react quickly (Stop in the app) hears from the
        run at least this often, however slow a step is.
    record_positions : bool, optional
        Keep positions w_t (default: when d ≤ 16), capped at ``MAX_POSITION_VALUES``.
    acceptance_every : int, optional
        Compute the MALA acceptance every this many steps (default :data:`ACCEPTANCE_EVERY`).
    divergence_threshold : float, optional
        nβ·(L − L(w*)) above which a chain counts as diverged (default max(1e4, 100·d)).
    fused : bool, optional
        Use the compiled step of :mod:`lltools.sampling.compiled` (True) or the eager one (False).
        Default: the ``LLTOOLS_FUSED`` environment variable, else compiled only when the run
        is big enough to repay compiling (:func:`lltools.sampling.compiled.should_fuse`).  Same chains up
        to rounding; the trace's ``meta["step"]`` says which step ran.
    mask : Tensor (C, d), optional
        Per-chain weight restrictions (1 where a chain moves, 0 where it stays at its
        centre; :mod:`lltools.targets.restrictions`).  Runs the eager step.
    observe : callable, optional
        Called at every recorded step as ``observe(step, w, chains, alive)`` with the
        positions ``w`` (C, d) whose losses the trace records at that step, the chain
        numbers (C,) and which chains are still healthy (C,) bool — e.g. to stream
        per-sample losses (:mod:`lltools.workflows.refined`) without storing positions.

    Yields
    ------
    Trace
        Views of the columns filled so far (``complete=False``), then the full trace.
    """
    num_chains = params.num_chains
    plan = plan_run(target, num_chains, num_draws=num_draws, num_burnin=num_burnin, thinning=thinning,
                    record_positions=record_positions, acceptance_every=acceptance_every,
                    divergence_threshold=divergence_threshold)
    with devices.threads_for_step(plan.work_per_step, target.device):
        yield from _run_planned(target, params, plan, seed=seed, chain_index=chain_index,
                                setting_index=setting_index, centre=centre, report_every=report_every,
                                report_seconds=report_seconds, fused=fused, mask=mask, observe=observe)


def _run_planned(
    target: Target,
    params: SGLDParams,
    plan: RunPlan,
    *,
    seed: int,
    chain_index: Tensor | None,
    setting_index: Tensor | None,
    centre: Tensor | None,
    report_every: int | None,
    fused: bool | None,
    mask: Tensor | None = None,
    observe: Observer | None = None,
    report_seconds: float | None = None,
) -> Iterator[Trace]:
    """The loop of :func:`run_chunks` for a :class:`RunPlan`."""
    num_chains = plan.num_chains
    device, dtype, dim = target.device, target.dtype, target.dim
    steps, num_recorded, num_steps_total = plan.steps, plan.num_recorded, plan.num_steps_total
    num_burnin, thinning = plan.num_burnin, plan.thinning
    acceptance_every, divergence_threshold = plan.acceptance_every, plan.divergence_threshold
    batch_chains, position_stride, num_positions = plan.batch_chains, plan.position_stride, plan.num_positions
    record_positions = plan.record_positions
    itemsize = torch.empty((), dtype=dtype).element_size()
    if chain_index is None:
        chain_index = torch.arange(num_chains)
    if setting_index is None:
        setting_index = torch.zeros(num_chains, dtype=torch.int64)
    chain_index = chain_index.to(device=device, dtype=torch.int64)
    setting_index = setting_index.to(device=device, dtype=torch.int64)

    memory.tune_host_allocator(device)
    if mask is not None:
        fused = False  # the compiled steps do not carry restrictions
    step_fn = fused_steps.select_step(target, fused, num_chains=num_chains, num_steps_total=num_steps_total)
    if batch_chains < num_chains:
        step_fn = ChainBatchedStep(step_fn, batch_chains)
    params = params.to(device=device, dtype=dtype)
    keys = rng.chain_keys(seed, chain_index)
    state = sgld.init(target, params, keys, centre, mask)
    if step_fn is sgld.step:  # the eager step draws its noise a block of steps at a time
        state = state._replace(noise=rng.NormalBlocks(state.keys, rng.STREAM_NOISE, dim, dtype,
                                                      last_step=num_steps_total))
    all_chains = torch.arange(num_chains, device=device)

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
            num_steps_total=num_steps_total,
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
    clock = time.monotonic
    last_report = clock()
    with torch.no_grad():
        for t in range(num_steps_total):
            # The acceptance only where a column is recorded (every acceptance_every-th one):
            # elsewhere it would be computed and dropped (thinned by its multiple: never kept).
            compute_acc = (next_col < num_recorded and recorded[next_col] == t
                           and next_col % acceptance_every == 0)
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
                if observe is not None:
                    observe(t, position_now, all_chains, state.diverged_at < 0)
                next_col += 1
            due = bool(report_every) and (t + 1) % report_every == 0
            if report_seconds is not None and not due:
                due = clock() - last_report >= report_seconds
            if due and t + 1 < num_steps_total:
                flush()
                snap = snapshot(next_col, complete=False)
                snap.meta["steps_done"] = t + 1
                yield snap
                last_report = clock()
        flush()
    final = snapshot(next_col, complete=True)
    final.meta["steps_done"] = num_steps_total
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
        moment = None if state.moment is None else torch.empty_like(state.moment)
        for start in range(0, num_chains, self.batch_chains):
            sl = slice(start, min(start + self.batch_chains, num_chains))
            part = SGLDState(w=state.w[sl], centre=state.centre[sl], loss=state.loss[sl], grad=state.grad[sl],
                             loss_init=state.loss_init[sl], diverged_at=state.diverged_at[sl],
                             keys=state.keys[sl], step=state.step,
                             moment=None if state.moment is None else state.moment[sl],
                             mask=None if state.mask is None else state.mask[sl])
            new, info = self.step_fn(part, target, params.take(sl), **kwargs)
            w[sl], loss[sl], grad[sl], diverged_at[sl] = new.w, new.loss, new.grad, new.diverged_at
            if moment is not None:
                moment[sl] = new.moment
            info_loss[sl], info_acc[sl] = info.loss, info.acceptance
        new_state = SGLDState(w=w, centre=state.centre, loss=loss, grad=grad, loss_init=state.loss_init,
                              diverged_at=diverged_at, keys=state.keys, step=state.step + 1, moment=moment,
                              mask=state.mask)
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
    """Run to the end and return the complete :class:`~lltools.sampling.trace.Trace` (see
    :func:`run_chunks`)."""
    return last_item(run_chunks(target, params, **kwargs))
