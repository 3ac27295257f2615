"""Any ``nn.Module`` + a dataset + a loss as a batched :class:`~lltools.targets.base.Target`.

The sampler sees a network as a flat parameter vector ``w`` of shape ``(d,)`` (the
module's ``named_parameters()`` concatenated in order) and a batched loss over C chains.
Each chain has its own parameters *and its own minibatch*; the per-chain loss is

    L_B(w_c) = (1/m) Σ_{i ∈ B_c} ℓ(f(x_i; w_c), y_i),

evaluated for all chains at once with ``torch.func.functional_call`` vectorised over the
chain axis by ``torch.func.vmap`` (no copy of the module per chain).

Loss conventions (primer §1)
----------------------------
- ``"mse"``: ℓ = ½‖y − f(x)‖² summed over output coordinates, averaged over samples.
- ``"cross_entropy"``: ℓ = −log softmax(f(x))_y (mean negative log-likelihood); targets are
  int64 class labels ``(n,)`` or class probabilities ``(n, K)``.
- a callable ``(outputs, targets) -> per-sample losses (m,)``.

Minibatches
-----------
``sample_batch`` draws ``batch_size`` indices per chain uniformly *with replacement* from
``{0, …, n−1}`` with :func:`lltools.base.rng.randint`, so chain c's batches depend only on its
key and the step (never on the other chains).  ``batch_size=None`` means full-batch
(exact) gradients: ``sample_batch`` returns ``None`` and every loss is over the whole
dataset, evaluated in chunks so that memory stays bounded.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from lltools.base import rng
from lltools.targets.base import KernelKind, Target, TargetError

#: The built-in loss names (a callable is accepted too).
LOSSES: tuple[str, ...] = ("mse", "cross_entropy")

#: Activation elements one chain may hold for one chunk of a full-dataset evaluation.
CHUNK_ELEMENTS_PER_CHAIN = 2**20
#: Activation elements all chains together may hold for one chunk.
CHUNK_ELEMENTS_TOTAL = 2**25
#: Bytes of working memory per activation element in one forward+backward pass: the saved
#: forward activation, its gradient, the gathered minibatch copy and one temporary.
ACTIVATION_FACTOR = 4
#: (d,)-sized tensors per chain in one loss+gradient evaluation (gradient, autograd
#: buffers for the parameter views, the unflattened weight copies, the returned gradient).
PARAMETER_COPIES = 4

#: How :meth:`NetworkTarget.loss_and_grad` differentiates (see its docstring).
GRAD_METHODS: tuple[str, ...] = ("autograd", "vmap")

PerSampleLoss = Callable[[Tensor, Tensor], Tensor]


def mse_per_sample(outputs: Tensor, targets: Tensor) -> Tensor:
    """ℓ_i = ½‖y_i − f(x_i)‖², shape (m,) from outputs (m, ...) and targets of the same size."""
    diff = outputs - targets.reshape(outputs.shape)
    return 0.5 * diff.reshape(diff.shape[0], -1).pow(2).sum(dim=1)


def cross_entropy_per_sample(outputs: Tensor, targets: Tensor) -> Tensor:
    """ℓ_i = −log softmax(f(x_i))_{y_i}, shape (m,) from logits (m, K) and labels (m,)."""
    return F.cross_entropy(outputs, targets, reduction="none")


def resolve_loss(loss: str | PerSampleLoss) -> tuple[str, PerSampleLoss]:
    """The name and per-sample function of ``loss``; unknown names raise ``ValueError``."""
    if callable(loss):
        return getattr(loss, "__name__", "custom"), loss
    if loss == "mse":
        return "mse", mse_per_sample
    if loss == "cross_entropy":
        return "cross_entropy", cross_entropy_per_sample
    raise ValueError(f"unknown loss {loss!r}; valid losses are {', '.join(LOSSES)} or a callable")


def _activation_elements(module: nn.Module, x: Tensor) -> int:
    """Activation elements of one sample: the input plus every leaf module's output."""
    total = [x[:1].numel()]

    def hook(_mod: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, Tensor):
            total.append(out.numel())
        elif isinstance(out, (tuple, list)):
            total.extend(o.numel() for o in out if isinstance(o, Tensor))

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            out = module(x[:1])
    finally:
        for h in handles:
            h.remove()
    if len(total) == 1:  # a module without leaf children: count its output
        total.append(out.numel())
    return int(sum(total))


class NetworkTarget(Target):
    """A network ``module`` on a dataset ``(inputs, targets)`` as a batched target.

    Parameters
    ----------
    module : nn.Module
        The network.  It is copied, moved to ``device``/``dtype`` and put in eval mode
        (dropout off; batch-norm uses its buffers, which are kept as they are).
    inputs : Tensor, shape (n, ...)
    targets : Tensor, shape (n, ...)
        Regression targets (floating) or class labels (int64, for cross-entropy).
    loss : {"mse", "cross_entropy"} or callable
        See the module docstring; a callable maps ``(outputs (m, ...), targets (m, ...))``
        to per-sample losses ``(m,)``.
    batch_size : int, optional
        Minibatch size m per chain (indices drawn with replacement).  ``None``: full batch.
    w_star : Tensor, shape (d,), optional
        The centre; defaults to the module's current parameters.
    name : str, optional
    theory_llc : float, optional
        The exact λ at ``w_star`` where known.
    device, dtype : optional
        Where and in which floating dtype to evaluate (default: the module's).
    grad_method : {"autograd", "vmap"}
        How gradients are taken (same values; see :meth:`loss_and_grad`).

    Attributes
    ----------
    param_names : list of str
    param_shapes : list of torch.Size
        The flattening order of ``w``.
    bytes_per_chain : int
        Estimated working memory of one chain for one loss+gradient step (see
        :meth:`estimate_memory`); :func:`lltools.sampling.driver.run` adds it per chain.
    """

    def __init__(
        self,
        module: nn.Module,
        inputs: Tensor,
        targets: Tensor,
        loss: str | PerSampleLoss = "mse",
        *,
        batch_size: int | None = None,
        w_star: Tensor | None = None,
        name: str | None = None,
        theory_llc: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        grad_method: str = "autograd",
    ) -> None:
        if grad_method not in GRAD_METHODS:
            raise ValueError(f"unknown grad_method {grad_method!r}; valid: {', '.join(GRAD_METHODS)}")
        self.loss_name, self.per_sample_loss = resolve_loss(loss)
        params = list(module.named_parameters())
        if not params:
            raise TargetError("the module has no parameters")
        dtype = dtype or params[0][1].dtype
        device = torch.device(device) if device is not None else params[0][1].device
        self.module = copy.deepcopy(module).to(device=device, dtype=dtype).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.param_names = [k for k, _ in self.module.named_parameters()]
        self.param_shapes = [p.shape for _, p in self.module.named_parameters()]
        self._numels = [math.prod(s) for s in self.param_shapes]
        self.inputs, self.targets = self._check_data(inputs, targets, device, dtype)
        if w_star is None:
            w_star = self.flatten(dict(self.module.named_parameters()))
        w_star = torch.as_tensor(w_star).detach().to(device=device, dtype=dtype)
        self._check_width(w_star, "w_star")
        super().__init__(
            w_star.clone(),
            n=int(self.inputs.shape[0]),
            name=name or type(module).__name__,
            theory_llc=theory_llc,
        )
        if batch_size is not None and int(batch_size) < 1:
            raise TargetError(f"batch_size must be a positive integer or None, got {batch_size}")
        self.batch_size = None if batch_size is None else int(batch_size)
        self._check_forward()
        self.activations_per_sample = _activation_elements(self.module, self.inputs)
        self.grad_method = grad_method

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_data(
        inputs: Tensor, targets: Tensor, device: torch.device, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor]:
        inputs, targets = torch.as_tensor(inputs), torch.as_tensor(targets)
        if inputs.ndim == 0 or targets.ndim == 0:
            raise TargetError("inputs and targets must have a leading sample axis")
        if inputs.shape[0] != targets.shape[0]:
            raise TargetError(
                f"inputs and targets disagree on the number of samples: "
                f"{inputs.shape[0]} inputs vs {targets.shape[0]} targets"
            )
        if inputs.shape[0] < 1:
            raise TargetError("the dataset is empty")
        inputs = inputs.to(device=device, dtype=dtype if inputs.is_floating_point() else None)
        targets = targets.to(device=device, dtype=dtype if targets.is_floating_point() else None)
        return inputs, targets

    def _check_width(self, w: Tensor, what: str, batched: bool = False) -> None:
        d = sum(self._numels)
        ok = (w.ndim == 2 and w.shape[1] == d) if batched else (w.ndim == 1 and w.shape[0] == d)
        if not ok:
            want = f"(chains, {d})" if batched else f"({d},)"
            raise TargetError(
                f"{what} must have shape {want} for this network of {d} parameters, "
                f"got {tuple(w.shape)}"
            )

    def _check_forward(self) -> None:
        """Evaluate the loss on two samples so that shape errors surface at construction."""
        try:
            with torch.no_grad():
                value = self.chain_loss(self.w_star, self.inputs[:2], self.targets[:2])
        except (RuntimeError, ValueError, IndexError) as exc:
            raise TargetError(
                f"the module and loss {self.loss_name!r} cannot be evaluated on these inputs/targets "
                f"(inputs {tuple(self.inputs.shape)}, targets {tuple(self.targets.shape)}): {exc}"
            ) from exc
        if value.ndim != 0:
            raise TargetError(f"the per-sample loss must return shape (m,), got a mean of shape "
                              f"{tuple(value.shape)}")

    # ------------------------------------------------------------------ (un)flattening
    def unflatten(self, w: Tensor) -> dict[str, Tensor]:
        """Named parameter tensors (views of ``w``) from a flat vector ``w`` of shape (d,)."""
        chunks = torch.split(w, self._numels)
        return {k: c.view(s) for k, c, s in zip(self.param_names, chunks, self.param_shapes, strict=True)}

    def flatten(self, state_dict: Mapping[str, Tensor]) -> Tensor:
        """The flat vector (d,) of a state dict's parameters, in ``param_names`` order.

        Buffers and other extra keys are ignored; a missing or mis-shaped parameter raises
        :class:`TargetError`.
        """
        parts = []
        for k, s in zip(self.param_names, self.param_shapes, strict=True):
            if k not in state_dict:
                raise TargetError(f"parameter {k!r} is missing from the state dict")
            t = torch.as_tensor(state_dict[k])
            if t.shape != s:
                raise TargetError(f"parameter {k!r}: expected shape {tuple(s)}, got {tuple(t.shape)}")
            parts.append(t.detach().reshape(-1).to(device=self.inputs.device, dtype=self._param_dtype))
        return torch.cat(parts)

    @property
    def _param_dtype(self) -> torch.dtype:
        """The floating dtype of the module (also the dtype of ``w_star``)."""
        return next(self.module.parameters()).dtype

    # ------------------------------------------------------------------ one chain
    def chain_loss(self, w: Tensor, x: Tensor, y: Tensor) -> Tensor:  # type: ignore[override]
        """Mean loss of one chain: w (d,), its inputs x (m, ...) and targets y (m, ...) -> scalar."""
        out = functional_call(self.module, self.unflatten(w), (x,))
        return self.per_sample_loss(out, y).mean()

    # ------------------------------------------------------------------ batched losses
    def _chunk_rows(self, num_chains: int) -> int:
        """Rows per chunk of a full-dataset evaluation for ``num_chains`` chains."""
        per_row = max(1, self.activations_per_sample)
        rows = min(CHUNK_ELEMENTS_PER_CHAIN // per_row, CHUNK_ELEMENTS_TOTAL // (per_row * num_chains))
        return int(max(1, min(self.n, rows)))

    def _gather(self, batch: Tensor, num_chains: int) -> tuple[Tensor, Tensor]:
        batch = torch.as_tensor(batch)
        if batch.ndim != 2 or batch.shape[0] != num_chains or batch.dtype != torch.int64:
            raise TargetError(
                f"batch must be an int64 index tensor of shape ({num_chains}, m), got "
                f"{batch.dtype} {tuple(batch.shape)}"
            )
        batch = batch.to(self.inputs.device)
        return self.inputs[batch], self.targets[batch]  # (C, m, ...)

    def loss(self, w: Tensor, batch: Tensor | None = None) -> Tensor:
        """Minibatch mean loss of every chain, shape (C,).

        Parameters
        ----------
        w : Tensor, shape (C, d)
        batch : Tensor, shape (C, m), int64, or None
            Row indices of each chain's minibatch; ``None`` for the whole dataset.
        """
        self._check_width(w, "w", batched=True)
        if batch is None:
            total = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
            fn = vmap(self.chain_loss, in_dims=(0, None, None))
            for x, y in self._chunks(w.shape[0]):
                total = total + fn(w, x, y) * (x.shape[0] / self.n)
            return total
        x, y = self._gather(batch, w.shape[0])
        return vmap(self.chain_loss)(w, x, y)

    def loss_and_grad(self, w: Tensor, batch: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """L_B(w) (C,) and ∇_w L_B(w) (C, d) for every chain.

        ``grad_method="autograd"`` (default): one backward pass of the vmapped loss's sum
        (chains are independent, so it yields every chain's gradient);
        ``grad_method="vmap"``: ``vmap(grad_and_value(per-chain loss))``.  Both give the
        same numbers.  Measured on CPU (64-128-10 ReLU MLP, d = 9 610, minibatch 64, one
        thread, best of 20): 8 chains — autograd ≈ 6 400 chain-steps/s, vmap ≈ 5 400;
        64 chains — autograd ≈ 9 200, vmap ≈ 9 800 (within noise on a shared machine).
        The per-call overhead of the grad transform dominates at few chains, so autograd
        is the default.  A full-batch evaluation accumulates over row chunks.
        """
        self._check_width(w, "w", batched=True)
        w = w.detach()
        if batch is None:
            value = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
            grad = torch.zeros_like(w)
            for x, y in self._chunks(w.shape[0]):
                v, g = self._value_and_grad(w, x, y, in_dims=(0, None, None))
                frac = x.shape[0] / self.n
                value, grad = value + frac * v, grad + frac * g
            return value, grad
        x, y = self._gather(batch, w.shape[0])
        return self._value_and_grad(w, x, y, in_dims=(0, 0, 0))

    def _value_and_grad(
        self, w: Tensor, x: Tensor, y: Tensor, in_dims: tuple[int | None, ...]
    ) -> tuple[Tensor, Tensor]:
        if self.grad_method == "vmap":
            grad, value = vmap(grad_and_value(self.chain_loss), in_dims=in_dims)(w, x, y)
            return value, grad
        with torch.enable_grad():
            w_ = w.requires_grad_(True)
            value = vmap(self.chain_loss, in_dims=in_dims)(w_, x, y)
            (grad,) = torch.autograd.grad(value.sum(), w_)
        return value.detach(), grad

    def _chunks(self, num_chains: int) -> list[tuple[Tensor, Tensor]]:
        rows = self._chunk_rows(num_chains)
        return [(self.inputs[i : i + rows], self.targets[i : i + rows]) for i in range(0, self.n, rows)]

    def full_loss(self, w: Tensor) -> Tensor:
        """L_n(w) on the whole dataset for every chain, shape (C,), without gradients.

        Evaluated in chunks of rows so that memory stays bounded for any n.
        """
        with torch.no_grad():
            return self.loss(w.detach(), None)

    def sample_batch(self, keys: Tensor, step: int) -> Tensor | None:
        """Per-chain minibatch indices (C, m), int64, drawn uniformly with replacement.

        Chain c's indices depend only on ``keys[c]`` and ``step``
        (``rng.randint(keys, step, rng.STREAM_BATCH, m, n)``).  ``None`` when
        ``batch_size`` is ``None`` (full-batch gradients).
        """
        if self.batch_size is None:
            return None
        return rng.randint(keys, step, rng.STREAM_BATCH, self.batch_size, self.n)

    @property
    def has_data(self) -> bool:
        return True

    @property
    def kernel_kind(self) -> KernelKind:
        """``"minibatch"`` with a ``batch_size`` (a compiled step traces :meth:`chain_loss` on
        the gathered rows), else ``"full-batch"`` (evaluated in row chunks, eagerly)."""
        return "minibatch" if self.batch_size is not None else "full-batch"

    @property
    def kernel_owner(self) -> nn.Module:
        """The module: compiled steps are cached per module."""
        return self.module

    @property
    def data(self) -> tuple[Tensor, Tensor]:
        """``(inputs, targets)``, each (n, ...)."""
        return self.inputs, self.targets

    # ------------------------------------------------------------------ outputs
    def outputs(self, w: Tensor, inputs: Tensor | None = None) -> Tensor:
        """Model outputs f(x; w) on the whole dataset (or ``inputs``), shape (n, ...).

        ``w`` has shape (d,).  Differentiable in ``w`` (used for the Jacobian rank in
        :func:`lltools.theory.numeric.jacobian_rank_llc`); evaluated in chunks of rows.
        """
        self._check_width(w, "w")
        x_all = self.inputs if inputs is None else torch.as_tensor(inputs).to(self.inputs)
        params = self.unflatten(w)
        rows = self._chunk_rows(1)
        outs = [functional_call(self.module, params, (x_all[i : i + rows],)) for i in
                range(0, x_all.shape[0], rows)]
        return torch.cat(outs)

    # ------------------------------------------------------------------ memory
    @property
    def bytes_per_chain(self) -> int:
        """Working bytes of one chain for one loss+gradient step.

        ``m · a · itemsize · ACTIVATION_FACTOR + PARAMETER_COPIES · d · itemsize`` with m
        the batch size (or the chunk rows of a full-batch evaluation) and a the activation
        elements of one sample (input + every leaf module's output).
        """
        itemsize = self.w_star.element_size()
        rows = self.batch_size if self.batch_size is not None else self._chunk_rows(1)
        act = rows * self.activations_per_sample * itemsize * ACTIVATION_FACTOR
        return int(act + PARAMETER_COPIES * self.dim * itemsize)

    def estimate_memory(self, num_chains: int) -> int:
        """Estimated bytes of a step for ``num_chains`` chains, including data and module."""
        data = self.inputs.numel() * self.inputs.element_size()
        data += self.targets.numel() * self.targets.element_size()
        module = sum(t.numel() * t.element_size() for t in self.module.state_dict().values())
        return int(num_chains * self.bytes_per_chain + data + module)

    # ------------------------------------------------------------------ device
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> NetworkTarget:
        """A copy on ``device`` with floating tensors (weights, data, w*) cast to ``dtype``."""
        new = copy.copy(self)
        new.module = copy.deepcopy(self.module).to(device=device, dtype=dtype)
        new.w_star = self.w_star.to(device=device, dtype=dtype)
        new.inputs = self.inputs.to(device=device, dtype=dtype if self.inputs.is_floating_point() else None)
        new.targets = self.targets.to(
            device=device, dtype=dtype if self.targets.is_floating_point() else None
        )
        new.warnings = list(self.warnings)
        return new

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(loss=self.loss_name, batch_size=self.batch_size)
        return info
