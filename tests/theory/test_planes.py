"""Planes through w*: batched evaluation = the per-point loop, the closed-form quadratic of a
linear regression, directions and projections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lltools.targets.models import deep_linear_target
from lltools.targets.networks import NetworkTarget
from lltools.theory.hessian import hessian_spectrum
from lltools.theory.planes import (
    Plane,
    build_plane,
    checkpoint_plane,
    evaluate_plane,
    filter_normalized_direction,
    line_losses,
    path_losses,
    pca_directions,
    project_positions,
    random_plane,
)
from tests.theory.test_hessian import linear_regression


def data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 3, dtype=torch.float64), torch.randn(n, 2, dtype=torch.float64)


def test_linear_regression_plane_is_the_closed_form_quadratic() -> None:
    target, x = linear_regression(q=2, p=4)
    y = target.targets
    plane = random_plane(target, seed=3)
    table = evaluate_plane(target, plane, grid=7, span=(-1.0, 2.0, -0.5, 0.5))
    n = x.shape[0]
    s = x.T @ x / n
    w0 = plane.origin.reshape(2, 4)
    u, v = plane.u.reshape(2, 4), plane.v.reshape(2, 4)
    r0 = y - x @ w0.T
    c0 = float(0.5 * (r0 * r0).sum() / n)
    ca, cb = float(-(r0 * (x @ u.T)).sum() / n), float(-(r0 * (x @ v.T)).sum() / n)
    haa, hbb = float(torch.trace(u @ s @ u.T)), float(torch.trace(v @ s @ v.T))
    hab = float(torch.trace(u @ s @ v.T))
    a, b = table["a"].to_numpy(), table["b"].to_numpy()
    closed = c0 + ca * a + cb * b + 0.5 * (haa * a**2 + 2 * hab * a * b + hbb * b**2)
    np.testing.assert_allclose(table["loss"].to_numpy(), closed, rtol=1e-10, atol=1e-12)
    assert len(table) == 49


def test_batched_plane_equals_the_per_point_loop_float64() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    target = NetworkTarget(module, *data(64))
    plane = random_plane(target, seed=1)
    table = evaluate_plane(target, plane, grid=9, span=0.7)
    loop = [float(target.full_loss(plane.points(torch.tensor([a], dtype=torch.float64),
                                                torch.tensor([b], dtype=torch.float64)))[0])
            for a, b in zip(table["a"], table["b"], strict=True)]
    np.testing.assert_array_equal(table["loss"].to_numpy(), loop)  # exact, float64


def test_filter_normalised_direction_matches_filter_norms() -> None:
    module = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    target = NetworkTarget(module, *data(10))
    d = target.unflatten(filter_normalized_direction(target, seed=0))
    w = target.unflatten(target.w_star)
    for name in ("0.weight", "2.weight"):
        torch.testing.assert_close(d[name].norm(dim=1), w[name].norm(dim=1))
    assert float(d["0.bias"].abs().sum()) == 0.0 and float(d["2.bias"].abs().sum()) == 0.0


def test_pca_directions_are_orthonormal_and_ordered() -> None:
    g = torch.Generator().manual_seed(0)
    scale = torch.cat([torch.tensor([10.0, 5.0]), torch.linspace(1, 0.1, 28)]).double()
    pts = torch.randn(200, 30, generator=g, dtype=torch.float64) * scale
    dirs, share = pca_directions(pts, k=3)
    torch.testing.assert_close(dirs @ dirs.T, torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-12)
    assert share[0] >= share[1] >= share[2] > 0
    assert abs(float(dirs[0, 0])) > 0.95 and abs(float(dirs[1, 1])) > 0.9  # the widest coordinates


def test_projected_chains_reproduce_their_coordinates() -> None:
    target = deep_linear_target((4, 3, 2), rank=1, n=50, seed=0, dtype=torch.float64)
    plane = random_plane(target, seed=5)  # u, v not orthogonal
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 7, generator=g, dtype=torch.float64)
    b = torch.randn(3, 7, generator=g, dtype=torch.float64)
    positions = plane.points(a.reshape(-1), b.reshape(-1)).reshape(3, 7, -1)
    frame = project_positions(plane, positions, steps=torch.arange(10, 17))
    np.testing.assert_allclose(frame["x"], a.reshape(-1).numpy(), atol=1e-10)
    np.testing.assert_allclose(frame["y"], b.reshape(-1).numpy(), atol=1e-10)
    assert frame["distance"].max() < 1e-10 and list(frame["step"][:7]) == list(range(10, 17))
    off = positions + 0.5 * torch.randn(positions.shape, generator=g, dtype=torch.float64)
    assert project_positions(plane, off)["distance"].min() > 0.01


def test_hessian_planes_use_the_eigenvectors() -> None:
    target = deep_linear_target((4, 3, 2), rank=1, n=80, seed=0, dtype=torch.float64)
    spec = hessian_spectrum(target, top=4)
    top = build_plane(target, "hessian", spectrum=spec)
    flat = build_plane(target, "flat", spectrum=spec)
    torch.testing.assert_close(top.u, spec.top_vectors[0])
    grid = evaluate_plane(target, flat, grid=5, span=0.1)
    steep = evaluate_plane(target, top, grid=5, span=0.1)
    assert grid["loss"].max() < 1e-3 * steep["loss"].max()  # a flat plane is (almost) flat


def test_lines_and_checkpoint_plane_pass_through_the_endpoints() -> None:
    target = deep_linear_target((4, 3, 2), rank=1, n=50, seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    vectors = target.w_star[None, :] + 0.3 * torch.randn(3, target.dim, generator=g, dtype=torch.float64)
    at = target.full_loss(vectors).numpy()
    line = line_losses(target, vectors[0], vectors[1], points=5)
    np.testing.assert_allclose(line["loss"].to_numpy()[[0, -1]], at[:2], rtol=1e-12)
    path = path_losses(target, vectors, ["A", "B", "C"], points=5)
    np.testing.assert_allclose(path.loc[path["at_checkpoint"], "loss"].to_numpy(), at, rtol=1e-12)
    plane = checkpoint_plane(target, vectors[0], vectors[2])
    assert abs(float(plane.u @ plane.v)) < 1e-9
    coords, _ = plane.project(vectors[[0, 2]])
    np.testing.assert_allclose(coords.numpy(), [[0, 0], [1, 0]], atol=1e-10)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"grid": 1}, "grid"), ({"span": -1.0}, "range"), ({"span": (0, 1, 2)}, "range"),
])
def test_bad_grid_arguments_raise(kwargs: dict, needle: str) -> None:
    target = deep_linear_target((2, 2), rank=1, n=10, seed=0)
    plane = Plane(target.w_star, torch.ones(4), torch.zeros(4) + torch.arange(4.0), "random")
    with pytest.raises(ValueError, match=needle):
        evaluate_plane(target, plane, **kwargs)
    with pytest.raises(ValueError, match="unknown plane"):
        build_plane(target, "diagonal")
