"""Figures of refined LLCs: bars, component × checkpoint heatmap, influence embedding."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lltools.viz.refined import influence_scatter, restricted_bars, restricted_heatmap


def refined_table() -> pd.DataFrame:
    rows = []
    for step in (0, 500, 1000):
        for i, name in enumerate(["layers.0.head0", "layers.1.head0", "all"]):
            rows.append({"restriction": name, "restricted_dim": 2048 if name != "all" else 9984, "step": step,
                         "llc_mean": 10.0 * (i + 1) + step / 100, "llc_sem": 0.5,
                         "train_loss": 3.0 - step / 1000, "val_loss": 3.1 - step / 1000})
    return pd.DataFrame(rows)


def test_bars_show_each_restriction_its_bound_and_the_whole_model() -> None:
    table = refined_table().query("step == 1000")
    fig = restricted_bars(table)
    bars = fig.data[0]
    assert list(bars.x) == ["layers.0.head0", "layers.1.head0"]
    np.testing.assert_allclose(bars.y, [20.0, 30.0])
    np.testing.assert_allclose(bars.error_y.array, [1.0, 1.0])  # ± 2 SEM
    np.testing.assert_allclose(fig.data[1].y, [1024, 1024])  # d_S / 2
    assert fig.layout.shapes[0].y0 == 40.0  # the whole model's λ̂
    assert fig.layout.xaxis.type == "category"


def test_heatmap_is_component_by_checkpoint_with_losses_above() -> None:
    fig = restricted_heatmap(refined_table())
    heat = next(t for t in fig.data if t.type == "heatmap")
    assert list(heat.y) == ["layers.0.head0", "layers.1.head0"] and list(heat.x) == [0, 500, 1000]
    np.testing.assert_allclose(np.asarray(heat.z), [[10, 15, 20], [20, 25, 30]])
    names = [t.name for t in fig.data if t.type == "scatter"]
    assert names == ["train loss", "val loss"]
    assert heat.xaxis == "x2" and fig.data[0].xaxis == "x"  # the curves sit above, on a shared axis


def test_influence_scatter_colours_by_a_label_or_a_number() -> None:
    frame = pd.DataFrame({"sample": range(6), "x": np.arange(6.0), "y": np.zeros(6),
                          "loss_change": np.linspace(0, 1, 6), "label": list("aabbbc"),
                          "text": [f"seq {i}" for i in range(6)]})
    by_label = influence_scatter(frame, color="label", hover="text")
    assert [t.name for t in by_label.data] == ["a", "b", "c"]
    assert list(by_label.data[1].text) == ["seq 2", "seq 3", "seq 4"]
    numeric = influence_scatter(frame)
    assert len(numeric.data) == 1 and list(numeric.data[0].marker.color) == list(frame["loss_change"])
