"""The record of one batched run: :class:`Trace`, per-chain, per-step arrays (partial traces
are views into the running buffers; the complete one is the run's result).

Written by :mod:`lltools.sampling.driver`, read by :mod:`lltools.estimation` and stored by
:mod:`lltools.storage`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from lltools.sampling.sgld import SGLDParams


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
