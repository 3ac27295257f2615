"""NetworkTarget: batched losses and gradients equal a per-chain loop of the plain module."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lltools.base import rng
from lltools.sampling.sgld import make_params
from lltools.targets import networks
from lltools.targets.base import TargetError
from lltools.targets.networks import NetworkTarget

C, N = 5, 37


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4)).double()


def _data(loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(N, 3, generator=gen, dtype=torch.float64)
    if loss == "cross_entropy":
        return x, torch.randint(0, 4, (N,), generator=gen)
    return x, torch.randn(N, 4, generator=gen, dtype=torch.float64)


def huber(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.huber_loss(outputs, targets, reduction="none").sum(dim=-1)


def _reference(module: nn.Module, target: NetworkTarget, w: torch.Tensor, idx, loss) -> tuple:
    """Loss and gradient of the plain module with chain c's weights, on chain c's rows."""
    values, grads = [], []
    for c in range(w.shape[0]):
        m = copy.deepcopy(module)
        torch.nn.utils.vector_to_parameters(w[c], m.parameters())
        rows = slice(None) if idx is None else idx[c]
        out, y = m(target.inputs[rows]), target.targets[rows]
        if loss == "mse":
            per = 0.5 * ((out - y) ** 2).sum(dim=1)
        elif loss == "cross_entropy":
            per = nn.functional.cross_entropy(out, y, reduction="none")
        else:
            per = huber(out, y)
        value = per.mean()
        value.backward()
        values.append(value.detach())
        grads.append(torch.cat([p.grad.reshape(-1) for p in m.parameters()]))
    return torch.stack(values), torch.stack(grads)


def _chains(target: NetworkTarget, scale: float = 0.3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(2)
    return target.w_star + scale * torch.randn(C, target.dim, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "callable"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("grad_method", ["autograd", "vmap"])
def test_loss_and_grad_equal_per_chain_loop(loss: str, batched: bool, grad_method: str) -> None:
    module = _mlp()
    x, y = _data(loss)
    target = NetworkTarget(module, x, y, huber if loss == "callable" else loss,
                           batch_size=8 if batched else None, grad_method=grad_method)
    w = _chains(target)
    keys = rng.chain_keys(0, torch.arange(C))
    idx = target.sample_batch(keys, 3)
    assert (idx is None) == (not batched)

    value, grad = target.loss_and_grad(w, idx)
    assert value.shape == (C,) and grad.shape == (C, target.dim)
    assert torch.allclose(target.loss(w, idx), value, rtol=1e-13, atol=1e-14)

    ref, ref_grad = _reference(module, target, w, idx, loss)
    torch.testing.assert_close(value, ref, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-11, atol=1e-12)


def test_chunked_full_loss_matches_single_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data("mse")
    target = NetworkTarget(_mlp(), x, y, "mse")
    w = _chains(target)
    whole, whole_grad = target.full_loss(w), target.loss_and_grad(w)[1]
    monkeypatch.setattr(networks, "CHUNK_ELEMENTS_PER_CHAIN", 5 * target.activations_per_sample)
    assert target._chunk_rows(C) == 5  # 37 rows -> 8 chunks, the last one short
    torch.testing.assert_close(target.full_loss(w), whole, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(target.loss_and_grad(w)[1], whole_grad, rtol=1e-12, atol=1e-13)


def test_minibatches_differ_across_chains_and_depend_only_on_keys() -> None:
    x, y = _data("mse")
    target = NetworkTarget(_mlp(), x, y, batch_size=16)
    keys5 = rng.chain_keys(7, torch.arange(5))
    b5 = target.sample_batch(keys5, 11)
    assert b5.shape == (5, 16) and b5.dtype == torch.int64
    assert int(b5.min()) >= 0 and int(b5.max()) < N
    assert all(not torch.equal(b5[i], b5[j]) for i in range(5) for j in range(i))
    b2 = target.sample_batch(keys5[[3, 1]], 11)  # same chains in another batch of chains
    assert torch.equal(b2, b5[[3, 1]])
    assert not torch.equal(target.sample_batch(keys5, 12), b5)  # fresh batch each step


def test_outputs_unflatten_flatten_roundtrip() -> None:
    module = _mlp()
    x, y = _data("mse")
    target = NetworkTarget(module, x, y)
    torch.testing.assert_close(target.outputs(target.w_star), module(x))
    state = target.unflatten(target.w_star)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert state["0.weight"].shape == (6, 3)
    assert torch.equal(target.flatten(module.state_dict()), target.w_star)
    w = target.w_star.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(target.outputs(w).sum(), w)  # differentiable for rank(J)
    assert g.shape == (target.dim,)


def test_w_star_default_and_override() -> None:
    x, y = _data("mse")
    module = _mlp()
    target = NetworkTarget(module, x, y, w_star=torch.zeros(52, dtype=torch.float64), name="net")
    assert target.dim == 52 and target.n == N and target.has_data and target.name == "net"
    assert torch.equal(target.w_star, torch.zeros(52, dtype=torch.float64))
    assert target.default_nbeta == pytest.approx(N / torch.log(torch.tensor(float(N))).item())


def test_shape_errors_are_clear() -> None:
    x, y = _data("mse")
    with pytest.raises(TargetError, match="37 inputs vs 36 targets"):
        NetworkTarget(_mlp(), x, y[:-1])
    target = NetworkTarget(_mlp(), x, y)
    with pytest.raises(TargetError, match=r"shape \(chains, 52\)"):
        target.loss(torch.zeros(2, 45, dtype=torch.float64))
    with pytest.raises(TargetError, match=r"shape \(52,\)"):
        NetworkTarget(_mlp(), x, y, w_star=torch.zeros(53))
    with pytest.raises(TargetError, match="int64 index tensor"):
        target.loss(torch.zeros(2, 52, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(TargetError, match="cannot be evaluated"):
        NetworkTarget(_mlp(), x, torch.randn(N, 3))  # 4 outputs vs 3 targets
    with pytest.raises(TargetError, match=r"parameter '2\.bias' is missing"):
        target.flatten({k: v for k, v in _mlp().state_dict().items() if k != "2.bias"})


def test_unknown_loss_lists_valid_ones() -> None:
    x, y = _data("mse")
    with pytest.raises(ValueError, match="mse, cross_entropy"):
        NetworkTarget(_mlp(), x, y, "l2")
    with pytest.raises(ValueError, match="autograd, vmap"):
        NetworkTarget(_mlp(), x, y, grad_method="jacfwd")


def test_to_dtype_and_memory_estimate() -> None:
    x, y = _data("cross_entropy")
    target = NetworkTarget(_mlp(), x, y, "cross_entropy", batch_size=8)
    t32 = target.to("cpu", torch.float32)
    assert t32.dtype == torch.float32 and t32.inputs.dtype == torch.float32
    assert t32.targets.dtype == torch.int64 and target.dtype == torch.float64
    w = t32.w_star[None].expand(3, -1)
    torch.testing.assert_close(t32.full_loss(w), target.full_loss(target.w_star[None]).float().expand(3))
    # (input 3 + hidden 6 + tanh 6 + out 4) elements per sample × 8 rows × 8 bytes × factor
    # + (d = 52)-sized copies × 8 bytes.
    assert target.activations_per_sample == 3 + 6 + 6 + 4
    activations = 8 * 19 * 8 * networks.ACTIVATION_FACTOR
    assert target.bytes_per_chain == activations + networks.PARAMETER_COPIES * 52 * 8
    assert target.estimate_memory(10) - target.estimate_memory(9) == target.bytes_per_chain


def test_runs_under_the_sampler() -> None:
    from lltools.sampling.driver import run

    x, y = _data("cross_entropy")
    target = NetworkTarget(_mlp(), x, y, "cross_entropy", batch_size=8)
    params = make_params(1e-4, 100.0, 20.0, 3, dtype=torch.float64)
    trace = run(target, params, num_draws=5, num_burnin=2, seed=0)
    assert trace.loss.shape == (3, 7) and bool(torch.isfinite(trace.loss).all())
    assert (trace.diverged_at < 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_network_grid_rows_equal_settings_run_alone(dtype: torch.dtype) -> None:
    """A 2 ε × 2 γ grid × 3 chains of a minibatch network as one batched run gives each
    setting's chains as run alone: same minibatches and noise (keys are per chain within a
    setting), so the losses agree to rounding — the per-chain matrix products are blocked
    differently at other batch sizes.  Observed: ≤ ~1e-7 relative in float32, ~1e-15 in
    float64; the tolerance would miss a wrong stream (relative differences of order 1)."""
    from lltools.workflows.sweep import sweep

    x, y = _data("mse")
    target = NetworkTarget(_mlp(), x, y, batch_size=8, dtype=dtype)
    common = {"chains": 3, "draws": 30, "burnin": 10, "seed": 5, "nbeta": [20.0], "device": "cpu",
              "dtype": dtype, "fused": False}
    grid = sweep(target, epsilon=[1e-4, 3e-4], gamma=[10.0, 100.0], **common)
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    for s, row in grid.settings.iterrows():
        alone = sweep(target, epsilon=[row["epsilon"]], gamma=[row["gamma"]], **common)
        rows = grid.trace.setting_index == s
        torch.testing.assert_close(grid.trace.loss[rows], alone.trace.loss, rtol=rtol, atol=0.0)
        assert torch.equal(grid.trace.diverged_at[rows], alone.trace.diverged_at)
    first = grid.trace.loss[grid.trace.setting_index == 0]
    other = grid.trace.loss[grid.trace.setting_index == 3]
    assert not torch.allclose(first, other, rtol=rtol)  # the settings differ: the check can fail
