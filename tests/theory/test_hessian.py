"""The Hessian spectrum at w*: exact vs Lanczos vs closed forms, and the flat-direction count."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import jacrev

from lltools.targets.models import deep_linear_target
from lltools.targets.networks import NetworkTarget
from lltools.targets.reduction import is_linear_in_input, reduced_target
from lltools.theory.hessian import hessian_matrix, hessian_spectrum, lanczos


def linear_regression(
    n: int = 300, p: int = 6, q: int = 1, seed: int = 0
) -> tuple[NetworkTarget, torch.Tensor]:
    """y = W x + noise with a known design matrix X (n, p); NetworkTarget's "mse" is
    ½‖y − f‖² averaged over samples, so the Hessian in vec(W) is I_q ⊗ XᵀX/n."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g, dtype=torch.float64) * torch.linspace(0.5, 2.0, p, dtype=torch.float64)
    w_true = torch.randn(q, p, generator=g, dtype=torch.float64)
    y = x @ w_true.T + 0.3 * torch.randn(n, q, generator=g, dtype=torch.float64)
    module = nn.Linear(p, q, bias=False).double()
    with torch.no_grad():
        module.weight.copy_(w_true)
    return NetworkTarget(module, x, y, "mse", dtype=torch.float64), x


def test_linear_regression_hessian_is_xtx_over_n_exact_and_lanczos() -> None:
    target, x = linear_regression()
    exact = np.sort(np.linalg.eigvalsh((x.T @ x / x.shape[0]).numpy()))[::-1]  # ½-mean convention
    full = hessian_spectrum(target, top=6, method="exact")
    np.testing.assert_allclose(full.eigenvalues, exact, rtol=1e-10, atol=1e-12)
    lan = hessian_spectrum(target, top=3, method="lanczos", steps=6)
    np.testing.assert_allclose(lan.top_eigenvalues, exact[:3], rtol=1e-9)
    np.testing.assert_allclose(lan.bottom_eigenvalues, exact[::-1][:3], rtol=1e-9)
    assert full.near_zero_count == 0 and lan.near_zero_count == 0  # a regular model: rank(H) = d
    assert full.hessian_rank_half == target.dim / 2


def test_lanczos_extreme_eigenvalues_of_a_known_matrix() -> None:
    evals = torch.cat([torch.linspace(1.0, 2.0, 190), torch.tensor([5.0, 7.0, 11.0]), torch.zeros(7)])
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64))
    a = (q * evals.double()) @ q.T
    theta, vecs, resid = lanczos(lambda v: a @ v, 200, 60)
    np.testing.assert_allclose(theta[-3:].numpy(), [5.0, 7.0, 11.0], rtol=1e-10)
    assert abs(float(theta[0])) < 1e-10
    top = vecs[-1]
    assert float((a @ top - 11.0 * top).norm()) < 1e-8 and float(resid[-1]) < 1e-8


def test_reduced_dataset_gives_the_same_loss_for_every_w() -> None:
    target = deep_linear_target((5, 4, 3), rank=2, n=500, seed=3, noise_std=0.2, dtype=torch.float64)
    assert is_linear_in_input(target)
    small = reduced_target(target)
    assert small.n == 6 and small is not target
    w = target.w_star[None, :] + torch.randn(16, target.dim, generator=torch.Generator().manual_seed(0),
                                             dtype=torch.float64)
    torch.testing.assert_close(small.full_loss(w), target.full_loss(w), rtol=1e-11, atol=1e-12)
    mlp = NetworkTarget(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double(),
                        torch.randn(50, 3, dtype=torch.float64), torch.randn(50, 1, dtype=torch.float64))
    assert reduced_target(mlp) is mlp  # not linear in its input: left alone


def test_model_folder_losses_are_checked_before_reducing() -> None:
    """A model folder's own loss is opaque: reduced only when it is ½‖y − f‖² on every row."""
    x, y = torch.randn(60, 3, dtype=torch.float64), torch.randn(60, 2, dtype=torch.float64)
    module = nn.Linear(3, 2, bias=False).double()
    half = NetworkTarget.from_data(module, (x, y), loss=lambda out, b: 0.5 * (b[1] - out).pow(2).sum(1))
    full = NetworkTarget.from_data(module, (x, y), loss=lambda out, b: (b[1] - out).pow(2).sum(1))
    assert is_linear_in_input(half) and not is_linear_in_input(full)
    assert reduced_target(full) is full


@pytest.mark.parametrize("method", ["exact", "lanczos"])
def test_deep_linear_zero_count_is_d_minus_rank_of_the_product_jacobian(method: str) -> None:
    widths, r = (4, 3, 3, 2), 1
    target = deep_linear_target(widths, rank=r, n=200, seed=0, dtype=torch.float64)
    sizes = [(b, a) for a, b in itertools.pairwise(widths)]

    def product(w: torch.Tensor) -> torch.Tensor:
        mats, start = [], 0
        for rows, cols in sizes:
            mats.append(w[start : start + rows * cols].reshape(rows, cols))
            start += rows * cols
        out = mats[0]
        for m in mats[1:]:
            out = m @ out
        return out.reshape(-1)

    jac = jacrev(product)(target.w_star)
    sv = torch.linalg.svdvals(jac)
    rank_j = int((sv > 1e-10 * sv[0]).sum())
    # the tangent space of rank-r (out × in) matrices: r(in + out − r)
    assert rank_j == r * (widths[0] + widths[-1] - r)
    spec = hessian_spectrum(target, top=4, method=method)
    assert spec.near_zero_count == target.dim - rank_j
    assert spec.hessian_rank_half == rank_j / 2


def test_hessian_matrix_matches_autograd() -> None:
    target = NetworkTarget(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double(),
                           torch.randn(40, 3, dtype=torch.float64), torch.randn(40, 2, dtype=torch.float64))
    h = hessian_matrix(target)
    ref = torch.autograd.functional.hessian(lambda w: target.loss(w[None], None)[0], target.w_star)
    torch.testing.assert_close(h, ref, rtol=1e-10, atol=1e-12)


def test_bad_arguments_raise_one_line_value_errors() -> None:
    target, _ = linear_regression()
    for kwargs in ({"top": 0}, {"rtol": -1.0}, {"method": "magic"}):
        with pytest.raises(ValueError):
            hessian_spectrum(target, **kwargs)
