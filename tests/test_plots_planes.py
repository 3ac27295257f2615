"""Figure builders of network landscapes (lltools.viz.planes): pure frames in, traces out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lltools.viz.planes import checkpoint_line_figure, plane_figure, spectrum_figure, training_path_figure


def grid(n: int = 11) -> pd.DataFrame:
    a, b = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))
    return pd.DataFrame({"a": a.ravel(), "b": b.ravel(), "loss": (a**2 + b**4).ravel()})


def chains() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"chain": np.repeat([0, 1], 20), "step": np.tile(np.arange(20), 2),
                         "x": rng.normal(0, 0.2, 40), "y": rng.normal(0, 0.2, 40)})


def roles(fig) -> list:
    return [(t.meta or {}).get("role") for t in fig.data]


@pytest.mark.parametrize("kind", ["contour", "surface"])
def test_plane_figure_draws_the_loss_the_chains_and_w_star(kind: str) -> None:
    fig = plane_figure(grid(), chains(), kind=kind, a_label="PC 1", b_label="PC 2")
    r = roles(fig)
    assert ("potential" if kind == "contour" else "surface") in r
    assert r.count("chain") == 2 and "w_star" in r
    if kind == "surface":
        surf = next(t for t in fig.data if t.type == "surface")
        assert surf.z.shape == (11, 11)
        chain = next(t for t in fig.data if (t.meta or {}).get("role") == "chain")
        assert np.isfinite(np.asarray(chain.z, dtype=float)).all()  # drawn on the surface
    else:
        assert fig.layout.xaxis.title.text == "PC 1"
    with pytest.raises(ValueError):
        plane_figure(grid(), kind="wireframe")


def test_spectrum_figure_marks_every_count_on_the_index_axis() -> None:
    ev = pd.DataFrame({"index": np.arange(1, 11), "eigenvalue": [5, 3, 2, 1, 1e-9, 0, 0, -1e-10, 0, -0.5]})
    fig = spectrum_figure(ev, dim=10, tolerance=1e-6,
                          counts={"d/2": 5, "rank(H)/2": 2.5, "rank(J)/2": None, "λ̂": 3.1})
    counts = [t.meta["label"] for t in fig.data if t.meta["role"] == "count"]
    assert counts == ["d/2", "rank(H)/2", "λ̂"]
    assert {t.meta.get("sign") for t in fig.data if t.meta["role"] == "eigenvalues"} == {"μ ≥ 0", "μ < 0"}
    assert fig.layout.yaxis.type == "log"


def test_checkpoint_line_and_training_path() -> None:
    path = pd.DataFrame({"segment": [0, 0, 0, 1, 1], "t": [0, 0.5, 1, 1.5, 2], "loss": [3, 4, 2, 2.5, 1.0],
                         "start": ["s0", "s0", "s0", "s1", "s1"], "end": ["s1", "s1", "s1", "s2", "s2"],
                         "at_checkpoint": [True, False, True, False, True]})
    fig = checkpoint_line_figure(path)
    marks = next(t for t in fig.data if t.meta["role"] == "checkpoint")
    assert list(marks.text) == ["s0", "s1", "s2"]
    pts = pd.DataFrame({"x": [0, 1, 2], "y": [0, 1, 0], "step": [0, 10, 20], "llc": [1.0, 2.0, 3.0]})
    fig = training_path_figure(pts, grid())
    marker = next(t for t in fig.data if t.meta["role"] == "checkpoints")
    assert list(marker.marker.color) == [1.0, 2.0, 3.0] and "contour" in roles(fig)
