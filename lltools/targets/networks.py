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
- a callable ``(outputs, targets) -> per-sample losses (m,)`` (the positional
  ``NetworkTarget(module, inputs, targets, loss)`` form).

Any data, loss or evaluation (:meth:`NetworkTarget.from_data`)
---------------------------------------------------------------
The dataset may be any of :mod:`lltools.targets.batches`' forms (tensors, a dict of
tensors, a Dataset, a DataLoader; token/integer inputs keep their dtype).  A batch keeps the
user's structure (a tuple ``(x, y, ...)`` or a dict) and is evaluated as

- ``evaluate(model, batch) -> per-sample losses (m,)`` when given (``model`` is called like
  the module, with the chain's parameters), else
- ``outputs = model(x)`` for a tuple batch (``x = batch[0]``), ``model(v)`` for a dict
  with one non-target key ``v``, else ``model(**inputs)`` (the dict without its target key,
  :data:`lltools.targets.batches.TARGET_KEYS`); then ``loss(outputs, batch) -> (m,)``,
  default ½‖y − f(x)‖² for a floating target and cross-entropy for integer class labels
  (a tuple output uses its first element).

Buffers (batch-norm running statistics) are read, never updated: the module is in eval
mode.  A loss that returns a scalar instead of per-sample values is refused at
construction.

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
import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from lltools.base import rng
from lltools.base.devices import MATMUL_PRECISIONS, fast_bf16_matmul
from lltools.targets.base import KernelKind, Target, TargetError
from lltools.targets.batches import Fields, batch_fields, normalise_data

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
#: ``loss(outputs, batch) -> per-sample losses (m,)`` (batch: the user's tuple or dict).
BatchLoss = Callable[[Any, Any], Tensor]
#: ``evaluate(model, batch) -> per-sample losses (m,)``.
Evaluate = Callable[[Any, Any], Tensor]
#: Most batches one pass of a streamed loader may yield.
MAX_STREAM_BATCHES = 1_000_000


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


def _activation_elements(module: nn.Module, forward_one: Callable[[], Any], input_elements: int) -> int:
    """Activation elements of one sample: the input plus every leaf module's output, counted
    with forward hooks while ``forward_one()`` evaluates the module on one sample."""
    total = [int(input_elements)]

    def hook(_mod: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, Tensor):
            total.append(out.numel())
        elif isinstance(out, (tuple, list)):
            total.extend(o.numel() for o in out if isinstance(o, Tensor))

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            out = forward_one()
    finally:
        for h in handles:
            h.remove()
    if len(total) == 1 and isinstance(out, Tensor):  # a module without leaf children: count its output
        total.append(out.numel())
    return int(sum(total))


class BoundModule:
    """The module called with one chain's parameters (``functional_call``): what a user's
    ``evaluate(model, batch)`` receives.  Attributes other than calling are the module's."""

    def __init__(self, module: nn.Module, params: dict[str, Tensor]) -> None:
        self._module = module
        self._params = params

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return functional_call(self._module, self._params, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _first_output(outputs: Any) -> Tensor:
    """A model's main output: the tensor itself, or the first element of a tuple/list."""
    if isinstance(outputs, (tuple, list)) and outputs:
        return outputs[0]
    return outputs


def _targets_loss(fn: PerSampleLoss) -> BatchLoss:
    """A ``(outputs, targets)`` per-sample loss as a ``(outputs, batch)`` one (target = batch[1])."""
    return functools.partial(_call_with_targets, fn)


def _call_with_targets(fn: PerSampleLoss, outputs: Any, batch: Any) -> Tensor:
    return fn(outputs, batch[1])


def _default_loss(fields: Fields) -> tuple[str, BatchLoss]:
    """MSE for a floating target, cross-entropy for integer labels (the target field of
    :meth:`Fields.target_position`)."""
    pos = fields.target_position
    if pos is None:
        raise TargetError("the data has no target to compare the outputs with (give (x, y), a dict "
                          "with a 'y'/'labels' key, or a loss/evaluate function)")
    fn = mse_per_sample if fields.tensors[pos].is_floating_point() else cross_entropy_per_sample
    name = "mse" if fn is mse_per_sample else "cross_entropy"
    return name, functools.partial(_default_batch_loss, fn, pos, fields.keys)


def _default_batch_loss(fn: PerSampleLoss, pos: int, keys: tuple[str, ...] | None, outputs: Any,
                        batch: Any) -> Tensor:
    target = batch[pos] if keys is None else batch[keys[pos]]
    return fn(_first_output(outputs), target)


class NetworkTarget(Target):
    """A network ``module`` on a dataset as a batched target.

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
        to per-sample losses ``(m,)``.  (:meth:`from_data` takes any data and a
        ``loss(outputs, batch)`` or ``evaluate(model, batch)`` instead.)
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
    fields : Fields, optional
        Keyword-only, instead of ``inputs``/``targets``: the dataset as
        :class:`~lltools.targets.batches.Fields` (see :meth:`from_data`).
    batch_loss : callable, optional
        ``(outputs, batch) -> (m,)`` (with ``fields``); default by the target's dtype.
    evaluate : callable, optional
        ``(model, batch) -> (m,)`` per-sample losses; replaces forward + loss.
    precision : {"fp32", "bf16"}
        "bf16" (opt-in) evaluates the model's matrix products in bfloat16 under
        ``torch.autocast`` while parameters, gradients, noise and the loss's mean stay in the
        target's dtype (mixed precision).  Worth it only where the hardware multiplies bf16
        (:func:`lltools.base.devices.fast_bf16_matmul`; the target warns elsewhere).

    Attributes
    ----------
    param_names : list of str
    param_shapes : list of torch.Size
        The flattening order of ``w``.
    fields : Fields
        The dataset; ``inputs``/``targets`` are its first two tensors (tuple data).
    bytes_per_chain : int
        Estimated working memory of one chain for one loss+gradient step (see
        :meth:`estimate_memory`); :func:`lltools.sampling.driver.run` adds it per chain.
    """

    def __init__(
        self,
        module: nn.Module,
        inputs: Tensor | None = None,
        targets: Tensor | None = None,
        loss: str | PerSampleLoss = "mse",
        *,
        batch_size: int | None = None,
        w_star: Tensor | None = None,
        name: str | None = None,
        theory_llc: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        grad_method: str = "autograd",
        fields: Fields | None = None,
        batch_loss: BatchLoss | str | None = None,
        evaluate: Evaluate | None = None,
        precision: str = "fp32",
    ) -> None:
        _check_precision(precision)
        if grad_method not in GRAD_METHODS:
            raise ValueError(f"unknown grad_method {grad_method!r}; valid: {', '.join(GRAD_METHODS)}")
        if not isinstance(module, nn.Module):
            raise TargetError(f"the model must be a torch.nn.Module, got {type(module).__name__}")
        params = list(module.named_parameters())
        if not params:
            raise TargetError("the module has no parameters")
        dtype = dtype or params[0][1].dtype
        device = torch.device(device) if device is not None else params[0][1].device
        if fields is None:
            if inputs is None or targets is None:
                raise TargetError("give inputs and targets (or fields=...)")
            fields = self._check_data(inputs, targets)
            self.loss_name, per_sample = resolve_loss(loss)
            self.per_sample_loss: PerSampleLoss | None = per_sample
            self.batch_loss: BatchLoss = _targets_loss(per_sample)
        else:
            self.per_sample_loss = None
            if evaluate is not None:
                self.loss_name, self.batch_loss = getattr(evaluate, "__name__", "evaluate"), _no_loss
            elif batch_loss is None:
                self.loss_name, self.batch_loss = _default_loss(fields)
            elif isinstance(batch_loss, str):
                self.loss_name, per_sample = resolve_loss(batch_loss)
                self.batch_loss = functools.partial(
                    _default_batch_loss, per_sample, self._target_position(fields), fields.keys)
            else:
                self.loss_name, self.batch_loss = getattr(batch_loss, "__name__", "custom"), batch_loss
        self.evaluate = evaluate
        self.module = copy.deepcopy(module).to(device=device, dtype=dtype).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.param_names = [k for k, _ in self.module.named_parameters()]
        self.param_shapes = [p.shape for _, p in self.module.named_parameters()]
        self._numels = [math.prod(s) for s in self.param_shapes]
        self.fields = fields.to(device, dtype)
        if w_star is None:
            w_star = self.flatten(dict(self.module.named_parameters()))
        w_star = torch.as_tensor(w_star).detach().to(device=device, dtype=dtype)
        self._check_width(w_star, "w_star")
        super().__init__(
            w_star.clone(),
            n=self.fields.n,
            name=name or type(module).__name__,
            theory_llc=theory_llc,
        )
        if batch_size is not None and int(batch_size) < 1:
            raise TargetError(f"batch_size must be a positive integer or None, got {batch_size}")
        self.batch_size = None if batch_size is None else int(batch_size)
        self._check_forward()
        one = self.fields.take(slice(0, 1))
        self.activations_per_sample = _activation_elements(
            self.module, lambda: self._forward(self.w_star, one.tensors),
            sum(t.numel() for t in one.tensors[: max(1, len(one.tensors) - 1)]),
        )
        self.grad_method = grad_method
        self.precision = "fp32"
        if precision != "fp32":
            self._set_precision(precision)

    @classmethod
    def from_data(
        cls,
        module: nn.Module,
        data: Any,
        *,
        loss: BatchLoss | str | None = None,
        evaluate: Evaluate | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> NetworkTarget:
        """A target from any data :func:`lltools.targets.batches.normalise_data` accepts.

        Parameters
        ----------
        module : nn.Module
        data : tensors (x, y, ...), dict of tensors, Dataset, DataLoader, or
            ``{"train": ..., "val": ...}``
            An iterable-only loader gives a :class:`StreamingNetworkTarget`.
        loss : callable or {"mse", "cross_entropy"}, optional
            ``loss(outputs, batch) -> per-sample losses (m,)``; default by the target dtype.
        evaluate : callable, optional
            ``evaluate(model, batch) -> per-sample losses (m,)`` (then ``loss`` is unused).
        batch_size : int, optional
            Default: a DataLoader's ``batch_size``; else full batch.
        **kwargs
            ``w_star``, ``name``, ``theory_llc``, ``device``, ``dtype``, ``grad_method``.
        """
        if loss is not None and evaluate is not None:
            raise TargetError("give loss or evaluate, not both")
        norm = normalise_data(data)
        if batch_size is None:
            batch_size = norm.batch_size
        if norm.fields is None:
            assert norm.loader is not None
            return StreamingNetworkTarget(module, norm.loader, loss=loss, evaluate=evaluate,
                                          batch_size=batch_size, **kwargs)
        target = cls(module, fields=norm.fields, batch_loss=loss, evaluate=evaluate,
                     batch_size=batch_size, **kwargs)
        if norm.val is not None:
            target.val_fields = norm.val.to(target.device, target.dtype)
            if norm.val.keys is None and len(norm.val.tensors) >= 2:
                target.val_inputs, target.val_targets = target.val_fields.tensors[:2]
        return target

    @staticmethod
    def _target_position(fields: Fields) -> int:
        pos = fields.target_position
        if pos is None:
            raise TargetError("the data has no target for this loss (give (x, y) or a dict with a "
                              "'y'/'labels' key, or a loss function of (outputs, batch))")
        return pos

    # ------------------------------------------------------------------ the data
    @property
    def inputs(self) -> Tensor:
        """The first data tensor (the inputs x of tuple data), shape (n, ...)."""
        return self.fields.tensors[0]

    @inputs.setter
    def inputs(self, value: Tensor) -> None:
        self.fields = Fields((value, *self.fields.tensors[1:]), self.fields.keys)

    @property
    def targets(self) -> Tensor:
        """The second data tensor (the targets y of tuple data), shape (n, ...)."""
        return self.fields.tensors[1]

    @targets.setter
    def targets(self, value: Tensor) -> None:
        self.fields = Fields((self.fields.tensors[0], value, *self.fields.tensors[2:]), self.fields.keys)

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_data(inputs: Tensor, targets: Tensor) -> Fields:
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
        return Fields((inputs, targets))

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
        """Evaluate the per-sample losses on two samples so that shape errors surface at
        construction (a loss returning a scalar, not per-sample values, is refused)."""
        rows = self.fields.take(slice(0, 2)).tensors
        m = int(rows[0].shape[0])
        try:
            with torch.no_grad():
                per_sample = self._per_sample(self.w_star, rows)
        except TargetError:
            raise
        except Exception as exc:  # the user's model/loss code may raise anything
            raise TargetError(
                f"the module and loss {self.loss_name!r} cannot be evaluated on this data "
                f"({self.fields.describe()}): {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(per_sample, Tensor):
            raise TargetError(f"the loss must return a tensor of per-sample losses (m,), got "
                              f"{type(per_sample).__name__}")
        if per_sample.shape != (m,):
            what = "a scalar" if per_sample.ndim == 0 else f"shape {tuple(per_sample.shape)}"
            raise TargetError(f"the loss must return per-sample losses of shape (m,) = ({m},), got {what}")
        if not per_sample.is_floating_point():
            raise TargetError(f"the loss must return floating values, got {per_sample.dtype}")

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
            parts.append(t.detach().reshape(-1).to(device=self.w_star_device, dtype=self._param_dtype))
        return torch.cat(parts)

    @property
    def w_star_device(self) -> torch.device:
        """The device of the module's parameters (and of the data)."""
        return next(self.module.parameters()).device

    @property
    def _param_dtype(self) -> torch.dtype:
        """The floating dtype of the module (also the dtype of ``w_star``)."""
        return next(self.module.parameters()).dtype

    # ------------------------------------------------------------------ one chain
    def _forward(self, w: Tensor, rows: Sequence[Tensor]) -> Any:
        """The model's outputs on a batch of ``rows`` (see the module notes), one chain."""
        batch = self.fields.batch(rows)
        model = BoundModule(self.module, self.unflatten(w))
        if self.evaluate is not None:
            return self.evaluate(model, batch)
        if self.fields.keys is None:
            return model(rows[0])
        pos = self.fields.target_position
        inputs = {k: v for i, (k, v) in enumerate(batch.items()) if i != pos}  # type: ignore[union-attr]
        if len(inputs) == 1:
            return model(next(iter(inputs.values())))
        return model(**inputs)

    def _per_sample(self, w: Tensor, rows: Sequence[Tensor]) -> Tensor:
        """Per-sample losses (m,) of one chain ``w`` (d,) on ``rows``."""
        if self.evaluate is not None:
            return self._forward(w, rows)
        if self.per_sample_loss is not None:  # (inputs, targets) data: the historical path
            out = functional_call(self.module, self.unflatten(w), (rows[0],))
            return self.per_sample_loss(out, rows[1])
        return self.batch_loss(self._forward(w, rows), self.fields.batch(rows))

    def chain_loss(self, w: Tensor, *rows: Tensor) -> Tensor:
        """Mean loss of one chain: w (d,) and its rows of every data field (m, ...) -> scalar.

        With ``precision="bf16"`` the forward pass runs under bf16 autocast and its
        per-sample losses are averaged in ``w``'s dtype."""
        if self.precision == "fp32":
            return self._per_sample(w, rows).mean()
        with torch.autocast(device_type=w.device.type, dtype=torch.bfloat16):
            per_sample = self._per_sample(w, rows)
        return per_sample.to(w.dtype).mean()

    def _set_precision(self, precision: str) -> None:
        _check_precision(precision)
        self.precision = precision
        self.warnings = [w for w in self.warnings if not w.startswith("bf16 matrix products")]
        if precision == "bf16" and not fast_bf16_matmul(self.device):
            self.warnings.append(
                f"bf16 matrix products were asked for, but this {self.device.type.upper()} has no bf16 "
                "matrix units (AVX-512 BF16 / AMX, or a bf16 GPU): they are emulated and slower than fp32")

    def with_precision(self, precision: str) -> NetworkTarget:
        """A copy evaluating its matrix products in ``precision`` ("fp32" or "bf16")."""
        new = copy.copy(self)
        new._set_precision(precision)
        return new

    # ------------------------------------------------------------------ batched losses
    def _chunk_rows(self, num_chains: int) -> int:
        """Rows per chunk of a full-dataset evaluation for ``num_chains`` chains."""
        per_row = max(1, self.activations_per_sample)
        rows = min(CHUNK_ELEMENTS_PER_CHAIN // per_row, CHUNK_ELEMENTS_TOTAL // (per_row * num_chains))
        return int(max(1, min(self.n, rows)))

    def _gather(self, batch: Tensor, num_chains: int) -> tuple[Tensor, ...]:
        batch = torch.as_tensor(batch)
        if batch.ndim != 2 or batch.shape[0] != num_chains or batch.dtype != torch.int64:
            raise TargetError(
                f"batch must be an int64 index tensor of shape ({num_chains}, m), got "
                f"{batch.dtype} {tuple(batch.shape)}"
            )
        batch = batch.to(self.inputs.device)
        return tuple(t[batch] for t in self.fields.tensors)  # each (C, m, ...)

    def _in_dims(self, shared: bool) -> tuple[int | None, ...]:
        return (0, *([None if shared else 0] * len(self.fields.tensors)))

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
            fn = vmap(self.chain_loss, in_dims=self._in_dims(True))
            for rows in self._chunks(w.shape[0]):
                total = total + fn(w, *rows) * (rows[0].shape[0] / self.n)
            return total
        return vmap(self.chain_loss)(w, *self._gather(batch, w.shape[0]))

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
            return self._accumulate(w, self._chunks(w.shape[0]), self.n)
        return self._value_and_grad(w, self._gather(batch, w.shape[0]), self._in_dims(False))

    def _accumulate(self, w: Tensor, chunks: Iterable[Sequence[Tensor]], n: int) -> tuple[Tensor, Tensor]:
        """Row-weighted mean loss and gradient over ``chunks`` of shared rows (n rows in all)."""
        value = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
        grad = torch.zeros_like(w)
        for rows in chunks:
            v, g = self._value_and_grad(w, rows, self._in_dims(True))
            frac = rows[0].shape[0] / n
            value, grad = value + frac * v, grad + frac * g
        return value, grad

    def _value_and_grad(
        self, w: Tensor, rows: Sequence[Tensor], in_dims: tuple[int | None, ...]
    ) -> tuple[Tensor, Tensor]:
        if self.grad_method == "vmap":
            grad, value = vmap(grad_and_value(self.chain_loss), in_dims=in_dims)(w, *rows)
            return value, grad
        with torch.enable_grad():
            w_ = w.requires_grad_(True)
            value = vmap(self.chain_loss, in_dims=in_dims)(w_, *rows)
            (grad,) = torch.autograd.grad(value.sum(), w_)
        return value.detach(), grad

    def _chunks(self, num_chains: int) -> list[tuple[Tensor, ...]]:
        rows = self._chunk_rows(num_chains)
        return [self.fields.take(slice(i, i + rows)).tensors for i in range(0, self.n, rows)]

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
    def data(self) -> tuple[Tensor, ...]:
        """The data fields, each (n, ...): ``(inputs, targets)`` for tuple data."""
        return self.fields.tensors

    # ------------------------------------------------------------------ outputs
    def outputs(self, w: Tensor, inputs: Tensor | None = None) -> Tensor:
        """Model outputs f(x; w) on the whole dataset (or ``inputs``), shape (n, ...).

        ``w`` has shape (d,).  Differentiable in ``w`` (used for the Jacobian rank in
        :func:`lltools.theory.numeric.jacobian_rank_llc`); evaluated in chunks of rows.
        Tuple (x, y) data only (the model is called on x).
        """
        self._check_width(w, "w")
        if self.fields.keys is not None or self.evaluate is not None:
            raise TargetError("outputs() needs (inputs, targets) data evaluated by the module itself")
        x_all = self.inputs if inputs is None else torch.as_tensor(inputs).to(self.inputs)
        params = self.unflatten(w)
        rows = self._chunk_rows(1)
        outs = [_first_output(functional_call(self.module, params, (x_all[i : i + rows],))) for i in
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
        data = sum(t.numel() * t.element_size() for t in self.fields.tensors)
        module = sum(t.numel() * t.element_size() for t in self.module.state_dict().values())
        return int(num_chains * self.bytes_per_chain + data + module)

    # ------------------------------------------------------------------ refined LLCs
    def per_sample_losses(self, w: Tensor, index: Tensor) -> Tensor:
        """Per-sample losses ℓ_i(w_c) of the samples ``index`` (S,) for every chain ``w``
        (C, d): shape (C, S), without gradients, evaluated in row chunks."""
        self._check_width(w, "w", batched=True)
        index = torch.as_tensor(index, dtype=torch.int64, device=self.fields.tensors[0].device).reshape(-1)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.n):
            raise TargetError(f"probe sample indices must be in 0..{self.n - 1}")
        rows = self._chunk_rows(w.shape[0])
        fn = vmap(self._per_sample, in_dims=(0, None))
        with torch.no_grad():
            parts = [fn(w, self.fields.take(index[i:i + rows]).tensors)
                     for i in range(0, index.numel(), rows)]
        return torch.cat(parts, dim=1) if parts else w.new_zeros((w.shape[0], 0))

    def restrict_data(self, index: Tensor, name: str | None = None) -> NetworkTarget:
        """The same model and w* with the loss measured on the samples ``index`` only (a
        data-restricted LLC, primer §7): a copy whose dataset is those rows (n = their count).

        Raises
        ------
        TargetError
            For an empty subset or indices outside 0..n−1.
        """
        index = torch.as_tensor(index).reshape(-1)
        if index.dtype == torch.bool:
            if index.numel() != self.n:
                raise TargetError(f"a data mask needs {self.n} entries, got {index.numel()}")
            index = torch.nonzero(index).flatten()
        index = index.to(dtype=torch.int64, device=self.fields.tensors[0].device)
        if index.numel() == 0:
            raise TargetError("the data restriction selects no samples")
        if int(index.min()) < 0 or int(index.max()) >= self.n:
            raise TargetError(f"data restriction indices must be in 0..{self.n - 1}")
        new = copy.copy(self)
        new.fields = self.fields.take(index)
        new.n = new.fields.n
        new.name = name or f"{self.name} [{new.n} of {self.n} samples]"
        new.warnings = list(self.warnings)
        return new

    # ------------------------------------------------------------------ device
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> NetworkTarget:
        """A copy on ``device`` with floating tensors (weights, data, w*) cast to ``dtype``."""
        new = copy.copy(self)
        new.module = copy.deepcopy(self.module).to(device=device, dtype=dtype)
        new.w_star = self.w_star.to(device=device, dtype=dtype)
        new.fields = self.fields.to(device, dtype)
        new.warnings = list(self.warnings)
        return new

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(loss=self.loss_name, batch_size=self.batch_size)
        if self.precision != "fp32":
            info.update(precision=self.precision)
        return info


def _check_precision(precision: str) -> None:
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(MATMUL_PRECISIONS)}")


def _no_loss(outputs: Any, batch: Any) -> Tensor:  # pragma: no cover - evaluate replaces it
    raise AssertionError("evaluate() computes the loss")


class StreamingNetworkTarget(NetworkTarget):
    """A network on an iterable-only loader: batches are streamed, never indexed.

    What is shared across chains: at step t EVERY chain sees the same batch, the loader's
    t-th batch (cycling through the loader; a step earlier than the last one restarts it,
    as when a run is split into chain batches).  The loader's own order (and shuffling)
    decides which batch that is, so a run is reproducible only if the loader is.  ``n`` is
    the number of samples in one pass (counted once); L_n(w) is the sample-weighted mean
    over one full pass.  Evaluated eagerly (``kernel_kind == "custom"``).

    Parameters
    ----------
    module : nn.Module
    loader : iterable of batches
        Re-iterable (``iter()`` starts a new pass); each batch a tuple ``(x, y, ...)`` or a
        dict of tensors with a leading batch axis.
    loss, evaluate, batch_size, **kwargs
        As for :meth:`NetworkTarget.from_data`.
    """

    def __init__(
        self,
        module: nn.Module,
        loader: Iterable[Any],
        *,
        loss: BatchLoss | str | None = None,
        evaluate: Evaluate | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.loader = loader
        first = None
        n = 0
        for i, raw in enumerate(loader):
            fields = batch_fields(raw, f"batch {i} of the loader")
            first = first or fields
            n += fields.n
            if i + 1 > MAX_STREAM_BATCHES:
                raise TargetError(f"the loader yields more than {MAX_STREAM_BATCHES:,} batches per pass")
        if first is None:
            raise TargetError("the loader yields no batches")
        super().__init__(module, fields=first, batch_loss=loss, evaluate=evaluate, **kwargs)
        self.n = n
        self.batch_size = int(batch_size) if batch_size else first.n
        self._iter: Iterator[Any] | None = None
        self._pos = -1
        self._current: tuple[Tensor, ...] | None = None

    @property
    def kernel_kind(self) -> KernelKind:
        """``"custom"``: batches come from the loader, evaluated eagerly."""
        return "custom"

    @property
    def data(self) -> tuple[Tensor, ...]:
        """``()``: nothing is indexed (the loader streams)."""
        return ()

    def _pass(self) -> Iterator[tuple[Tensor, ...]]:
        for i, raw in enumerate(self.loader):
            yield batch_fields(raw, f"batch {i} of the loader").to(self.device, self.dtype).tensors

    def sample_batch(self, keys: Tensor, step: int) -> tuple[Tensor, ...]:
        """The loader's batch for ``step`` (the same for every chain): a tuple of tensors (m, ...)."""
        if self._iter is None or step < self._pos:
            self._iter, self._pos, self._current = self._pass(), -1, None
        while self._pos < step:
            try:
                self._current = next(self._iter)
            except StopIteration:
                self._iter = self._pass()
                self._current = next(self._iter)
            self._pos += 1
        assert self._current is not None
        return self._current

    def loss(self, w: Tensor, batch: Any = None) -> Tensor:
        """Mean loss (C,) of every chain on the shared ``batch`` (None: one full pass)."""
        self._check_width(w, "w", batched=True)
        fn = vmap(self.chain_loss, in_dims=self._in_dims(True))
        if batch is not None:
            return fn(w, *batch)
        total = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
        for rows in self._pass():
            total = total + fn(w, *rows) * (rows[0].shape[0] / self.n)
        return total

    def loss_and_grad(self, w: Tensor, batch: Any = None) -> tuple[Tensor, Tensor]:
        """L_B(w) (C,) and its gradient (C, d) on the shared ``batch`` (None: one full pass)."""
        self._check_width(w, "w", batched=True)
        w = w.detach()
        if batch is None:
            return self._accumulate(w, self._pass(), self.n)
        return self._value_and_grad(w, tuple(batch), self._in_dims(True))

    def _chunks(self, num_chains: int) -> list[tuple[Tensor, ...]]:
        return list(self._pass())

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> NetworkTarget:
        new = super().to(device, dtype)
        assert isinstance(new, StreamingNetworkTarget)
        new._iter, new._pos, new._current = None, -1, None
        return new


def network_target(
    model: nn.Module,
    data: Any,
    *,
    loss: BatchLoss | str | None = None,
    evaluate: Evaluate | None = None,
    batch_size: int | None = None,
    **kwargs: Any,
) -> NetworkTarget:
    """:meth:`NetworkTarget.from_data`: any ``nn.Module`` with tensors, a dict of tensors, a
    Dataset or a DataLoader, and a per-sample ``loss(outputs, batch)`` or
    ``evaluate(model, batch)``."""
    return NetworkTarget.from_data(model, data, loss=loss, evaluate=evaluate, batch_size=batch_size,
                                   **kwargs)
