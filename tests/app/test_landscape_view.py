"""The Landscape sections: Networks page (plane, chains overlay, spectrum) and Trajectories page
(checkpoint line, training path), through AppTest."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from lltools.targets.models import load_sample_model
from lltools.theory.hessian import hessian_spectrum
from lltools.theory.planes import evaluate_plane, random_plane
from tests.app.conftest import ROOT, assert_healthy, metrics, page

DLN = str(ROOT / "sample_models" / "deep_linear" / "dln_8_6_6_4_r2")
TINY = {"networks.chains": 2, "networks.draws": 30, "networks.burnin": 10}


def _figure(at, key: str):
    charts = [c for c in at.get("plotly_chart") if key in str(c.proto.id)]
    assert charts, key
    return json.loads(charts[-1].proto.spec)


def _array(value) -> np.ndarray:
    """A Plotly JSON array (a list, or a base64 typed array ``{"dtype", "bdata", "shape"}``)."""
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return out.reshape([int(x) for x in str(shape).split(",")]) if shape else out
    return np.asarray(value, dtype=float)


def _open(at):
    at.toggle(key="landscape.on").set_value(True)
    at.session_state["landscape.grid"] = 21
    return at.run()


@pytest.mark.slow
def test_networks_landscape_plane_matches_the_core_and_the_spectrum_counts() -> None:
    at = page("networks")
    at.query_params["model"] = "deep_linear/dln_8_6_6_4_r2"
    for k, v in TINY.items():
        at.session_state[k] = v
    at = _open(at.run())
    assert_healthy(at)
    fig = _figure(at, "landscape.fig.plane")
    heat = next(t for t in fig["data"] if t.get("meta", {}).get("role") == "potential")
    target = load_sample_model(DLN)
    core = evaluate_plane(target, random_plane(target), grid=21, span=1.0)
    shown = _array(heat["customdata"]).reshape(21, 21)  # rows b, columns a
    np.testing.assert_allclose(shown, core["loss"].to_numpy().reshape(21, 21), rtol=1e-6)
    assert not any(t.get("meta", {}).get("role") == "chain" for t in fig["data"])  # no run yet
    at.toggle(key="landscape.spectrum").set_value(True)
    at = at.run()
    assert_healthy(at)
    m = metrics(at)
    spec = hessian_spectrum(target, top=20)
    assert m["near-zero eigenvalues"] == f"{spec.near_zero_count:,} / 108" and m["rank(H)/2"] == "10.0"
    labels = {t["meta"]["label"] for t in _figure(at, "landscape.fig.spectrum")["data"]
              if t.get("meta", {}).get("role") == "count"}
    assert {"d/2", "rank(H)/2", "rank(J)/2", "λ"} <= labels
    assert any("what a plane hides" in md.value for md in at.markdown)


@pytest.mark.slow
def test_after_a_run_the_chains_overlay_and_pca_plane_appear() -> None:
    at = page("networks")
    for k, v in TINY.items():
        at.session_state[k] = v
    at = at.run()
    at.button(key="networks.run").click().run()
    at = _open(at)
    assert_healthy(at)
    fig = _figure(at, "landscape.fig.plane")
    chains = [t for t in fig["data"] if t.get("meta", {}).get("role") == "chain"]
    assert len(chains) == 2
    at.selectbox(key="landscape.plane").set_value("pca")
    at.radio(key="landscape.view").set_value("surface")
    at = at.run()
    assert_healthy(at)
    fig = _figure(at, "landscape.fig.plane")
    assert any(t["type"] == "surface" for t in fig["data"])
    assert "PC 1" in fig["layout"]["scene"]["xaxis"]["title"]["text"]


def test_trajectories_checkpoint_line_and_path() -> None:
    at = page("trajectories").run()
    at.session_state["traj.model"] = DLN
    at = at.run()
    at.toggle(key="landscape.traj.on").set_value(True)
    at = at.run()
    assert_healthy(at)
    line = _figure(at, "landscape.fig.line")
    marks = next(t for t in line["data"] if t["meta"]["role"] == "checkpoint")
    assert len(_array(marks["x"])) == 20  # every saved training checkpoint (the teacher is not one)
    path = _figure(at, "landscape.fig.path")
    pts = next(t for t in path["data"] if t["meta"]["role"] == "checkpoints")
    assert "colorbar" in pts["marker"]  # coloured by λ̂


def test_an_expensive_plane_asks_first(monkeypatch) -> None:
    """A plane estimated over ASK_ABOVE_S seconds shows its cost and a button, not a long wait."""
    from dashboard.views import landscape as view

    at = page("networks")
    for k, v in TINY.items():
        at.session_state[k] = v
    at = at.run()
    view.cost_of.clear()
    monkeypatch.setattr(view, "seconds_per_point", lambda target, **_: 1.0)
    at = _open(at)
    assert_healthy(at)
    assert any("about 441 s" in i.value for i in at.info)
    assert not [c for c in at.get("plotly_chart") if "landscape.fig.plane" in str(c.proto.id)]
    at.button(key="landscape.confirm").click().run()
    assert_healthy(at)
    assert [c for c in at.get("plotly_chart") if "landscape.fig.plane" in str(c.proto.id)]
