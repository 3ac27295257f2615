"""The Target contract: what every target states, and that the sampler needs nothing else.

A custom minibatch target that is *not* a NetworkTarget but states the contract
(``kernel_kind == "minibatch"``, ``data``, ``chain_loss``) gets the whole-step compiled kernel
and the same chains as the eager step; a custom data target that states nothing more gets
the generic data step and never the automatic compiled one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.func import vmap

from lltools.base import rng
from lltools.sampling import compiled, sgld
from lltools.sampling.sgld import make_params
from lltools.targets.base import KERNEL_KINDS, FunctionTarget, Target
from lltools.targets.networks import NetworkTarget
from lltools.targets.potentials import potential_target

ROOT = Path(__file__).resolve().parents[2]


class Regression(Target):
    """Least squares ½(x·w − y)² on per-chain minibatches of row indices: states the whole
    minibatch contract without being a network."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int) -> None:
        super().__init__(torch.zeros(x.shape[1], dtype=x.dtype), n=x.shape[0], name="regression")
        self.x, self.y, self.batch_size = x, y, batch_size

    @property
    def has_data(self) -> bool:
        return True

    @property
    def kernel_kind(self) -> Any:
        return "minibatch"

    @property
    def data(self) -> tuple[Tensor, Tensor]:
        return self.x, self.y

    def chain_loss(self, w: Tensor, x: Tensor, y: Tensor) -> Tensor:  # type: ignore[override]
        return 0.5 * ((x @ w - y) ** 2).mean()

    def loss(self, w: Tensor, batch: Any = None) -> Tensor:
        if batch is None:
            return vmap(self.chain_loss, in_dims=(0, None, None))(w, self.x, self.y)
        return vmap(self.chain_loss)(w, self.x[batch], self.y[batch])

    def sample_batch(self, keys: Tensor, step: int) -> Tensor:
        return rng.randint(keys, step, rng.STREAM_BATCH, self.batch_size, self.n)


class OpaqueData(Regression):
    """The same loss, stating only the base contract (``kernel_kind`` "custom")."""

    @property
    def kernel_kind(self) -> Any:
        return "custom"

    @property
    def data(self) -> tuple[Tensor, ...]:
        return ()

    def chain_loss(self, w: Tensor, *rows: Tensor) -> Tensor:
        return Target.chain_loss(self, w, *rows)


def _regression(cls: type[Regression] = Regression) -> Regression:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.1 * torch.randn(64, generator=gen,
                                                                                    dtype=torch.float64)
    return cls(x, y, batch_size=8)


def test_potential_states_the_contract() -> None:
    pot = potential_target("x**2 * y**4", dtype=torch.float64)
    assert isinstance(pot, FunctionTarget)
    assert (pot.kernel_kind, pot.batch_size, pot.minibatches, pot.bytes_per_chain, pot.data) == (
        "potential", None, False, 0, ())
    assert pot.kernel_owner is pot.fn and pot.to("cpu").kernel_owner is pot.fn
    w = torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=torch.float64)
    expected = w[:, 0] ** 2 * w[:, 1] ** 4
    torch.testing.assert_close(pot.traceable_loss()(w), expected, rtol=0, atol=0)
    assert float(pot.chain_loss(w[1])) == pytest.approx(float(expected[1]), abs=0)


def test_networks_state_the_contract() -> None:
    x, y = torch.randn(20, 3), torch.randn(20, 2)
    net = NetworkTarget(torch.nn.Linear(3, 2), x, y, batch_size=5)
    assert (net.kernel_kind, net.minibatches, net.kernel_owner) == ("minibatch", True, net.module)
    assert net.data[0] is net.inputs and net.data[1] is net.targets
    assert net.bytes_per_chain > 0
    full = NetworkTarget(torch.nn.Linear(3, 2), x, y)
    assert (full.kernel_kind, full.minibatches, full.batch_size) == ("full-batch", False, None)
    # chain_loss is one chain's mean loss on its rows: ½‖y − (xWᵀ + b)‖² averaged over rows.
    w = net.w_star
    by_hand = 0.5 * ((y[:5] - (x[:5] @ net.module.weight.T + net.module.bias)) ** 2).sum(1).mean()
    torch.testing.assert_close(net.chain_loss(w, x[:5], y[:5]), by_hand)


def test_custom_data_target_defaults() -> None:
    opaque = _regression(OpaqueData)
    assert opaque.kernel_kind == "custom" and opaque.kernel_kind in KERNEL_KINDS
    with pytest.raises(NotImplementedError, match="per-chain loss"):
        opaque.chain_loss(opaque.w_star)
    assert isinstance(compiled.select_step(opaque, True), compiled.FusedDataStep)
    assert compiled.estimated_seconds_saved(opaque, 10**6, 10**6) == 0.0  # never compiled by default
    with pytest.raises(ValueError, match="minibatch targets"):
        compiled.FusedNetworkStep(opaque)


def test_custom_minibatch_target_gets_the_whole_step_kernel() -> None:
    """compiled.py reads only the contract: a non-network minibatch target runs through the
    whole-step kernel (uncompiled here) and gives the eager step's chains to rounding."""
    target = _regression()
    step = compiled.select_step(target, True)
    assert isinstance(step, compiled.FusedNetworkStep)
    kernel_step = compiled.FusedNetworkStep(target, compile=False)
    chains = 6
    params = make_params([1e-3] * (chains - 1) + [40.0], 1.0, 50.0, chains, dtype=torch.float64)
    a = b = sgld.init(target, params, rng.chain_keys(4, torch.arange(chains)))
    with torch.no_grad():
        for t in range(30):
            acc = t % 3 == 0
            a, ia = sgld.step(a, target, params, compute_acceptance=acc)
            b, ib = kernel_step(b, target, params, compute_acceptance=acc)
            assert torch.equal(a.diverged_at, b.diverged_at), t
            torch.testing.assert_close(b.w, a.w, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(ib.loss, ia.loss, equal_nan=True, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(ib.acceptance, ia.acceptance, equal_nan=True, rtol=1e-8, atol=1e-10)
    assert int(a.diverged_at[-1]) >= 0 and (a.diverged_at[:-1] < 0).all()  # ε = 40 diverges


def test_sampling_never_probes_targets() -> None:
    """No getattr/hasattr probing of targets and no NetworkTarget in the sampling and base
    layers: what they need is the Target contract."""
    for folder in ("lltools/sampling", "lltools/base"):
        for path in (ROOT / folder).glob("*.py"):
            text = path.read_text()
            assert not re.search(r"(getattr|hasattr)\(\s*(self\.)?target\b", text), path
            assert "NetworkTarget" not in text, path
