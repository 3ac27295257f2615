"""Refined LLCs: weight-restricted λ̂ as one batched run, data restrictions, and per-sample
posterior statistics streamed through the driver."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lltools.estimation.influence import gaussian_loss_covariance
from lltools.targets import restrictions as R
from lltools.targets.base import TargetError
from lltools.targets.models import deep_linear_target
from lltools.targets.networks import NetworkTarget
from lltools.theory.networks import restricted_deep_linear_expectation, restricted_deep_linear_llc
from lltools.workflows.estimate import estimate
from lltools.workflows.refined import refined

RUN = {"epsilon": 2e-3, "gamma": 20.0, "chains": 4, "draws": 1500, "burnin": 300, "seed": 7, "fused": False}


@pytest.fixture(scope="module")
def dln() -> NetworkTarget:
    return deep_linear_target([5, 4, 4, 3], 2, n=300, seed=1, batch_size=None)


@pytest.fixture(scope="module")
def layers_run(dln):
    return refined(dln, R.each_layer(dln.module), **RUN)


@pytest.mark.slow
def test_each_layer_matches_the_exact_restricted_expectation(dln, layers_run) -> None:
    """One batched run over the three layers; each λ̂ against the exact E[nβ(L − L*)] of its
    Gaussian restricted posterior at this γ (rank/2 is its γ → 0 limit)."""
    table = layers_run.table
    weights = list(dln.unflatten(dln.w_star).values())
    nbeta = float(table["nbeta"].iloc[0])
    assert list(table["restriction"]) == ["0", "1", "2"]
    assert list(table["restricted_dim"]) == [20, 16, 12]
    for k, row in table.iterrows():
        exact = restricted_deep_linear_expectation(weights, k, dln.inputs, nbeta, RUN["gamma"])
        limit = restricted_deep_linear_llc(weights, k)
        assert exact < limit
        # MC error (4 SEM) + a stated 5 % allowance for the step size's discretisation bias.
        assert abs(row["llc_mean"] - exact) < 4 * row["llc_sem"] + 0.05 * exact, (k, row["llc_mean"], exact)
    assert [restricted_deep_linear_llc(weights, k) for k in range(3)] == [5.0, 2.0, 3.0]


def test_all_weights_reproduce_the_unrestricted_run_exactly(dln) -> None:
    small = {**RUN, "draws": 200, "burnin": 50}
    everything = refined(dln, [R.everything(dln.module)], **small).table.iloc[0]
    plain = estimate(dln, **small)
    assert everything["llc_mean"] == plain.llc_mean and everything["restricted_dim"] == dln.dim


def test_a_batched_restriction_equals_the_restriction_run_alone(dln, layers_run) -> None:
    alone = refined(dln, [R.each_layer(dln.module)[1]], **RUN).table.iloc[0]
    batched = layers_run.table.iloc[1]
    assert alone["llc_mean"] == pytest.approx(batched["llc_mean"], rel=1e-6, abs=1e-9)


def linear_regression(n: int = 40, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64) + 0.5 * torch.randn(n, generator=gen,
                                                                                     dtype=torch.float64)
    w_star = torch.linalg.lstsq(x, y[:, None]).solution.reshape(-1)
    model = nn.Linear(3, 1, bias=False).double()
    return NetworkTarget(model, x, y[:, None], "mse", w_star=w_star, dtype=torch.float64), x, y, w_star


@pytest.mark.slow
def test_streamed_loss_covariance_matches_the_linear_gaussian_closed_form() -> None:
    """Linear regression at its least-squares w*: the localised tempered posterior is exactly
    N(w*, (nβ XᵀX/n + γ I)⁻¹), so Cov(ℓ_i, ℓ_j) has a closed form; the streamed BIF (through
    the driver's observer) matches it within MC error, and equals the batch computation on
    the recorded positions."""
    target, x, y, w_star = linear_regression()
    probe = torch.arange(6)
    nbeta, gamma = 10.0, 1.0
    res = refined(target, [R.everything(target.module)], epsilon=5e-3, gamma=gamma, nbeta=nbeta, chains=8,
                  draws=4000, burnin=500, seed=3, probe=probe, fused=False, dtype=torch.float64)
    moments = res.influence[0]
    # Batch computation from the stored positions (d = 3 is recorded) equals the stream.
    trace = res.trace
    draws = trace.positions[:, trace.first_draw_column:]  # (C, T, d)
    losses = 0.5 * (y[probe][None, None, :] - draws @ x[probe].T) ** 2  # (C, T, S)
    flat = losses.reshape(-1, len(probe)).numpy()
    np.testing.assert_allclose(moments.covariance, np.cov(flat, rowvar=False), rtol=1e-9, atol=1e-15)
    # Against the closed form: MC error from the spread of the 8 independent chains' estimates.
    post_cov = torch.linalg.inv(nbeta * x.T @ x / len(y) + gamma * torch.eye(3, dtype=torch.float64))
    exact = gaussian_loss_covariance((y - x @ w_star)[probe].numpy(), x[probe].numpy(), post_cov.numpy())
    per_chain = np.stack([np.cov(c.numpy(), rowvar=False) for c in losses])
    se = per_chain.std(axis=0, ddof=1) / np.sqrt(len(per_chain))
    diag = np.diag_indices(len(probe))
    # 4 SE of MC error + a stated 6 % allowance for the discretisation bias at this ε.
    assert (np.abs(moments.covariance - exact)[diag] < 4 * se[diag] + 0.06 * exact[diag]).all()
    big = np.abs(exact) > 0.2 * np.abs(exact).max()
    assert (np.abs(moments.covariance - exact)[big] < 4 * se[big] + 0.06 * np.abs(exact[big])).all()


def test_data_restriction_measures_the_loss_on_the_subset(dln) -> None:
    subset = torch.zeros(dln.n, dtype=torch.bool)
    subset[::3] = True
    part = dln.restrict_data(subset, name="every third")
    assert part.n == 100 and part.name == "every third"
    w = dln.w_star[None, :] + 0.1 * torch.randn(2, dln.dim, generator=torch.Generator().manual_seed(0))
    per_sample = dln.per_sample_losses(w, torch.nonzero(subset).flatten())
    torch.testing.assert_close(part.full_loss(w), per_sample.mean(dim=1))
    assert dln.n == 300  # the original is untouched
    for bad, message in ((torch.zeros(dln.n, dtype=torch.bool), "selects no samples"),
                         (torch.tensor([0, 300]), "must be in 0..299"),
                         (torch.ones(5, dtype=torch.bool), "needs 300 entries")):
        with pytest.raises(TargetError, match=message):
            dln.restrict_data(bad)
