"""The one abstraction the sampler sees: a centre w* and a batched loss.

A :class:`Target` is what SGLD samples around (primer §2). Toy potentials and trained
networks are both Targets; the sampler, estimators and diagnostics never know which.

Shapes
------
- ``w_star`` : Tensor, shape ``(d,)`` — the centre w* (a local minimum of the loss).
- ``loss(w, batch)`` : ``w`` shape ``(C, d)`` for C chains -> Tensor shape ``(C,)``, the
  minibatch mean loss L_B(w_c) of every chain c on *its own* minibatch ``batch[c]``.
- ``sample_batch(keys, step)`` -> a per-chain minibatch, or ``None`` for targets without data.

Chains never mix: ``loss(w, batch)[c]`` depends only on ``w[c]`` and ``batch[c]``, so one
backward pass of ``loss.sum()`` yields every chain's gradient.
"""

from __future__ import annotations

import copy
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor


class TargetError(ValueError):
    """Raised when a target is built from, or evaluated on, invalid input."""


#: How a step may evaluate a target (:attr:`Target.kernel_kind`):
#: ``"potential"`` — no data; :meth:`Target.traceable_loss` is a pure torch function of w;
#: ``"minibatch"`` — per-chain minibatches of row indices into :attr:`Target.data`, and
#: :meth:`Target.chain_loss` is one chain's loss on gathered rows (traceable by ``torch.func``);
#: ``"full-batch"`` — data, exact full-dataset gradients through :meth:`Target.loss_and_grad`;
#: ``"custom"`` — data, evaluated only through :meth:`Target.loss_and_grad`.
KernelKind = Literal["potential", "minibatch", "full-batch", "custom"]
KERNEL_KINDS: tuple[str, ...] = ("potential", "minibatch", "full-batch", "custom")


class Target(ABC):
    """A centre ``w_star`` (d,), an optional dataset size ``n`` and a batched loss.

    Subclasses implement :meth:`loss` and, if they hold data, :meth:`sample_batch`
    and :meth:`full_loss`.  The rest of the contract has defaults that are right for a
    potential and safe for any data target; the sampler and the run planner read only
    what is stated here (no probing for optional attributes):

    - :attr:`has_data`, :attr:`batch_size`, :attr:`minibatches` — whether and how the loss
      is stochastic;
    - :attr:`bytes_per_chain` — working memory of one chain's loss+gradient evaluation,
      beyond the sampler's own (C, d) tensors (for sizing runs);
    - :attr:`kernel_kind`, :meth:`traceable_loss`, :attr:`data`, :meth:`chain_loss`,
      :attr:`kernel_owner` — what a compiled step may trace (:mod:`lltools.sampling.compiled`);
    - :meth:`loss`, :meth:`loss_and_grad`, :meth:`full_loss`, :meth:`sample_batch`,
      :meth:`describe`.

    Attributes
    ----------
    w_star : Tensor, shape (d,)
        The centre w* the sampler is localised at (primer §2).
    n : int or None
        Dataset size; ``None`` for analytic potentials (then nβ is a free parameter).
    name : str
        Human-readable name, shown in summaries.
    theory_llc : float or None
        A λ the target's source *states* (a model card), else ``None``.  Computed values
        come from :func:`lltools.theory.record.theory_for`, which also says whether they are exact.
    warnings : list of str
        Plain-language warnings attached when the target was built (e.g. "w* is not a
        local minimum").
    batch_size : int or None
        Rows of each chain's minibatch; ``None`` for potentials and full-batch targets.
    """

    batch_size: int | None = None

    def __init__(
        self,
        w_star: Tensor,
        *,
        n: int | None = None,
        name: str = "target",
        theory_llc: float | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        if w_star.ndim != 1:
            raise TargetError(f"w_star must have shape (d,), got {tuple(w_star.shape)}")
        if not torch.isfinite(w_star).all():
            raise TargetError("w_star contains NaN or infinite values")
        self.w_star = w_star
        self.n = n
        self.name = name
        self.theory_llc = theory_llc
        self.warnings = list(warnings or [])

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Number of parameters d."""
        return int(self.w_star.shape[0])

    @property
    def device(self) -> torch.device:
        return self.w_star.device

    @property
    def dtype(self) -> torch.dtype:
        return self.w_star.dtype

    @property
    def has_data(self) -> bool:
        """True when the loss depends on a minibatch (then SGLD gradients are stochastic)."""
        return False

    @property
    def minibatches(self) -> bool:
        """True when every step draws a minibatch (stochastic gradients)."""
        return self.has_data and self.batch_size is not None

    @property
    def bytes_per_chain(self) -> int:
        """Working bytes of one chain for one loss+gradient evaluation, beyond the sampler's
        own (C, d) tensors (e.g. a network's activations); 0 for a potential."""
        return 0

    @property
    def kernel_kind(self) -> KernelKind:
        """How a step may evaluate this target (see :data:`KernelKind`): ``"potential"``
        without data, else ``"custom"`` unless a subclass states more."""
        return "custom" if self.has_data else "potential"

    @property
    def kernel_owner(self) -> Any:
        """An object shared by the copies of this target that compute the same loss (a
        function, a module): compiled steps are cached per owner.  Default: the target."""
        return self

    @property
    def data(self) -> tuple[Tensor, ...]:
        """The dataset arrays, each shape (n, ...), that :meth:`sample_batch` indexes and
        :meth:`chain_loss` reads; ``()`` without data."""
        return ()

    @property
    def default_nbeta(self) -> float | None:
        """The default effective inverse temperature nβ = n / log n (primer §2), if n is known."""
        if self.n is None or self.n < 2:
            return None
        return float(self.n / torch.log(torch.tensor(float(self.n))).item())

    # ------------------------------------------------------------------ the contract
    @abstractmethod
    def loss(self, w: Tensor, batch: Any = None) -> Tensor:
        """Minibatch mean loss L_B(w_c) for every chain: ``w`` (C, d) -> (C,)."""

    def sample_batch(self, keys: Tensor, step: int) -> Any:
        """Draw one minibatch per chain.

        Parameters
        ----------
        keys : Tensor, shape (C,), int64
            Per-chain random keys (see :mod:`lltools.base.rng`); the batch of chain c must
            depend only on ``keys[c]`` and ``step``, so that a chain's draws do not depend
            on which other chains share the batch.
        step : int
            The SGLD step index.
        """
        return None

    def full_loss(self, w: Tensor) -> Tensor:
        """Loss on the whole dataset L_n(w): ``w`` (C, d) -> (C,).  Defaults to ``loss(w)``."""
        return self.loss(w, None)

    def traceable_loss(self) -> Callable[[Tensor], Tensor]:
        """The loss of a target without data as a function of ``w`` (C, d) -> (C,) alone,
        without argument checks: what a compiled step traces.  Default: ``self.loss``."""
        return self.loss

    def chain_loss(self, w: Tensor, *rows: Tensor) -> Tensor:
        """One chain's mean loss: ``w`` (d,) and its rows of each :attr:`data` array ->
        a scalar.  Required for ``kernel_kind == "minibatch"``; a potential ignores ``rows``."""
        if self.has_data:
            raise NotImplementedError(f"{type(self).__name__} does not state a per-chain loss")
        return self.loss(w[None, :], None)[0]

    def loss_and_grad(self, w: Tensor, batch: Any = None) -> tuple[Tensor, Tensor]:
        """L_B(w) (C,) and ∇_w L_B(w) (C, d) for every chain, in one backward pass.

        Chains are independent, so the gradient of ``loss.sum()`` is each chain's gradient.
        Subclasses may override with a cheaper closed form or ``torch.func``.
        """
        with torch.enable_grad():
            w_ = w.detach().requires_grad_(True)
            value = self.loss(w_, batch)
            (grad,) = torch.autograd.grad(value.sum(), w_)
        return value.detach(), grad

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Target:
        """A copy of this target on ``device`` with floating tensors cast to ``dtype``.

        The default moves ``w_star``; subclasses holding data override it.
        """
        new = copy.copy(self)
        new.w_star = self.w_star.to(device=device, dtype=dtype)
        return new

    #: The matrix-product precision losses are evaluated in
    #: (:data:`lltools.base.devices.MATMUL_PRECISIONS`); only network targets offer "bf16".
    precision: str = "fp32"

    def with_precision(self, precision: str) -> Target:
        """This target evaluated in ``precision``; the default knows only "fp32"."""
        if precision == "fp32":
            return self
        raise TargetError(f"precision {precision!r} applies only to network targets")

    def describe(self) -> dict[str, Any]:
        """A small JSON-friendly description (name, d, n, theory λ); subclasses add theirs."""
        return {
            "name": self.name,
            "dim": self.dim,
            "n": self.n,
            "theory_llc": self.theory_llc,
        }


class FunctionTarget(Target):
    """A target given by a batched function ``f(w) -> (C,)`` of the parameters alone.

    Used for analytic potentials: no dataset, ``n = None``, gradients are exact.
    """

    def __init__(
        self,
        fn: Any,
        w_star: Tensor,
        *,
        name: str = "potential",
        theory_llc: float | None = None,
        warnings: list[str] | None = None,
        n: int | None = None,
    ) -> None:
        super().__init__(w_star, n=n, name=name, theory_llc=theory_llc, warnings=warnings)
        self.fn = fn

    @property
    def kernel_owner(self) -> Any:
        """The function ``fn``, shared by this target's copies."""
        return self.fn

    def traceable_loss(self) -> Callable[[Tensor], Tensor]:
        """``fn`` with the output reshaped to (C,), without the argument checks of :meth:`loss`."""
        return functools.partial(_function_loss, self.fn)

    def loss(self, w: Tensor, batch: Any = None) -> Tensor:
        if w.ndim != 2 or w.shape[1] != self.dim:
            raise TargetError(
                f"expected parameters of shape (chains, {self.dim}), got {tuple(w.shape)}"
            )
        out = self.fn(w)
        if out.shape != (w.shape[0],):
            out = out.expand(w.shape[0]) if out.numel() == 1 else out.reshape(w.shape[0])
        return out


def _function_loss(fn: Callable[[Tensor], Tensor], w: Tensor) -> Tensor:
    """:meth:`FunctionTarget.loss` without the argument checks (a module-level function, so
    the partial over ``fn`` traces the same way for every copy of the target)."""
    out = fn(w)
    if out.shape != (w.shape[0],):
        out = out.expand(w.shape[0]) if out.numel() == 1 else out.reshape(w.shape[0])
    return out
