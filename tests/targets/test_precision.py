"""Opt-in bf16 matrix products for network targets (issue 18, item 4).

The products run in bfloat16 under autocast; parameters, gradients, noise and the loss's
mean stay fp32.  λ̂ must agree with fp32 within Monte-Carlo error on a deep linear network
(against the exact λ too) and on a ReLU MLP.  Broken once: without the autocast the first
test sees fp32 products and fails.  The agreement tests bound the mixed-precision error
rather than detect a subtle bug: at these settings they still passed with the positions
rounded to bf16 after every step (the SGLD noise step √ε ≫ bf16's spacing near w*).
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import run_cli
from torch.utils._python_dispatch import TorchDispatchMode

from lltools.base.devices import fast_bf16_matmul
from lltools.estimation.llc import llc
from lltools.sampling.driver import run
from lltools.sampling.sgld import make_params
from lltools.targets.base import TargetError
from lltools.targets.models import deep_linear_target
from lltools.targets.networks import NetworkTarget
from lltools.targets.potentials import potential_target
from lltools.workflows.estimate import estimate

MATMULS = ("mm", "bmm", "addmm", "baddbmm")


class _MatmulDtypes(TorchDispatchMode):
    """Records the input dtypes of every matrix product dispatched inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] in MATMULS:
            self.dtypes.update(a.dtype for a in args if isinstance(a, torch.Tensor))
        return func(*args, **(kwargs or {}))


def _small_mlp_target(precision: str = "fp32") -> NetworkTarget:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    x = torch.randn(512, 5)
    y = torch.sin(x[:, :1]) + 0.1 * torch.randn(512, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        (0.5 * (model(x) - y).pow(2).mean()).backward()
        opt.step()
    return NetworkTarget(model, x, y, batch_size=64, precision=precision)


def test_bf16_runs_the_products_in_bf16_and_keeps_everything_else_fp32() -> None:
    target = _small_mlp_target("bf16")
    torch.manual_seed(1)  # off the minimum, where the gradient is not ≈ 0
    w = target.w_star[None] + 0.1 * torch.randn(3, target.dim)
    batch = target.sample_batch(torch.arange(3), 0)
    with _MatmulDtypes() as seen:
        loss, grad = target.loss_and_grad(w, batch)
    assert seen.dtypes == {torch.bfloat16}
    assert loss.dtype == grad.dtype == target.w_star.dtype == torch.float32
    fp32 = target.with_precision("fp32")
    assert fp32.precision == "fp32" and target.precision == "bf16"
    with _MatmulDtypes() as seen32:
        loss32, grad32 = fp32.loss_and_grad(w, batch)
    assert seen32.dtypes == {torch.float32}
    # bf16 keeps ~3 significant digits: close to, but not equal to, the fp32 numbers.
    assert 0 < float((loss - loss32).abs().max()) < 1e-2 * float(loss32.abs().max()) + 1e-3
    assert float((grad - grad32).norm()) < 0.05 * float(grad32.norm()) + 1e-3
    slow = any(w.startswith("bf16 matrix products") for w in target.warnings)
    assert slow == (not fast_bf16_matmul("cpu"))
    assert not any(w.startswith("bf16 matrix products") for w in fp32.warnings)


def test_bad_precision_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        _small_mlp_target("fp16")
    with pytest.raises(TargetError, match="only to network targets"):
        potential_target("x**2").with_precision("bf16")
    assert potential_target("x**2").with_precision("fp32").precision == "fp32"


def _llc(target: NetworkTarget, chains: int, draws: int, burnin: int, epsilon: float) -> tuple[float, float]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        params = make_params(epsilon, 1.0, target.default_nbeta, chains)
        result = llc(run(target, params, num_draws=draws, num_burnin=burnin, seed=0, fused=False))
    finally:
        torch.set_num_threads(threads)
    assert result.num_valid == chains
    return result.mean, result.sem


@pytest.mark.slow
def test_bf16_llc_agrees_with_fp32_and_the_exact_value_on_a_deep_linear_network() -> None:
    """4→3→2, r = 1 (λ = 7/2), minibatch 200, 8 chains × (200 + 800) steps, same seeds.

    Tolerances: the two λ̂ within 3·√(SEM² + SEM²) (they share their noise, so this is
    conservative), each within 4·SEM + 10 % of 3.5 (plain SGLD's step-size bias here ≤ 4 %).
    """
    target = deep_linear_target([4, 3, 2], 1, n=2000, seed=0, batch_size=200)
    fp32, fp32_sem = _llc(target, 8, 800, 200, 3e-4)
    bf16, bf16_sem = _llc(target.with_precision("bf16"), 8, 800, 200, 3e-4)
    assert abs(bf16 - fp32) < 3 * math.hypot(fp32_sem, bf16_sem), (bf16, fp32, bf16_sem, fp32_sem)
    for mean, sem in ((fp32, fp32_sem), (bf16, bf16_sem)):
        assert abs(mean - 3.5) < 4 * sem + 0.35, (mean, sem)


def test_bf16_llc_agrees_with_fp32_on_a_relu_mlp_through_estimate() -> None:
    """5-32-1 ReLU (225 parameters), batch 64, 8 chains × (100 + 300) steps, same seeds;
    the bf16 run's settings say so."""
    target = _small_mlp_target()
    kwargs = dict(gamma=100.0, epsilon=1e-4, chains=8, draws=300, burnin=100, seed=0, fused=False)
    fp32 = estimate(target, **kwargs)
    bf16 = estimate(target, precision="bf16", **kwargs)
    assert bf16.settings.precision == "bf16" and "precision" not in fp32.settings.as_dict()
    assert bf16.settings.as_dict()["precision"] == "bf16"
    assert abs(bf16.llc_mean - fp32.llc_mean) < 3 * math.hypot(fp32.llc_sem, bf16.llc_sem), (
        bf16.llc_mean, fp32.llc_mean, bf16.llc_sem, fp32.llc_sem)
    with pytest.raises(ValueError, match="only to network targets"):
        estimate(potential_target("x**2"), precision="bf16", draws=10, burnin=0)


def test_cli_precision_option() -> None:
    ok = run_cli("estimate", "--model", "tests/data/user_dln", "--precision", "bf16", "--draws", "40",
                 "--burnin", "10", "--no-progress")
    assert ok.returncode == 0, ok.stderr
    assert "bf16 matrix products" in ok.stdout
    bad = run_cli("estimate", "--potential", "x**2", "--precision", "bf16", "--no-progress")
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == ["error: --precision bf16 applies only to networks (--model)"]
    unknown = run_cli("estimate", "--potential", "x**2", "--precision", "fp16", "--no-progress")
    assert "--precision must be one of fp32, bf16" in unknown.stderr
