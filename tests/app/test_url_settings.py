"""Issue 13.15: settings live in the URL on the Networks and Trajectories pages (and lecture mode
on every page): a link sets the widgets, a widget change rewrites the link, bad values are
ignored with one line (never a traceback)."""

from __future__ import annotations

import json

from lltools.targets.cards import first_run_settings
from tests.app.conftest import ROOT, assert_healthy, assert_link_reproduces, page

MODELS = ROOT / "sample_models"
RRR = str(MODELS / "deep_linear" / "rrr_6_4_5_r2")
RRR_CARD = json.loads((MODELS / "deep_linear" / "rrr_6_4_5_r2" / "model.json").read_text())
RRR_FIRST = first_run_settings(RRR_CARD)  # what the Networks page starts from
DLN = str(MODELS / "deep_linear" / "dln_8_6_6_4_r2")
DLN_FIRST = first_run_settings(json.loads((MODELS / "deep_linear" / "dln_8_6_6_4_r2" / "model.json")
                                          .read_text()))


def _warnings(at) -> str:
    return " | ".join(w.value for w in at.warning)


def test_networks_settings_come_from_the_url() -> None:
    at = page("networks")
    at.query_params.update({"model": "deep_linear/rrr_6_4_5_r2",
                            "checkpoint": "checkpoints/step_000010.safetensors", "gamma": "7",
                            "chains": "3", "epsilon": "2e-5", "stop_sem": "0.2"})
    at.run()
    assert_healthy(at)
    s = at.session_state
    assert s["networks.model"] == RRR and at.selectbox(key="networks.model").value == RRR
    assert at.selectbox(key="networks.ckpt").value == "checkpoints/step_000010.safetensors"
    assert at.number_input(key="networks.gamma").value == 7.0
    assert at.number_input(key="networks.chains").value == 3
    assert at.number_input(key="networks.epsilon").value == 2e-5
    # what the URL does not name is the URL model's card setting, not the default model's
    assert at.number_input(key="networks.draws").value == RRR_FIRST["draws"]
    assert at.checkbox(key="networks.autostop").value
    assert at.number_input(key="networks.target_sem").value == 0.2
    assert not at.warning


def test_bad_networks_url_values_are_ignored_with_one_line_each() -> None:
    at = page("networks")
    evil = "<script>alert(1)</script>[x](javascript:alert(1))"
    at.query_params.update({"model": evil, "gamma": "-3", "chains": "1.5", "epsilon": "nan",
                            "checkpoint": "../../etc/passwd", "refine": "neuron", "draws": "40"})
    at.run()
    assert_healthy(at)
    said = _warnings(at)
    for name in ("model", "gamma", "chains", "epsilon", "checkpoint", "refine"):
        assert f"ignored URL parameter {name}=" in said, name
    assert "\\<script>" in said and "\\[x\\]" in said  # the user's text is escaped where rendered
    assert at.number_input(key="networks.draws").value == 40  # the valid one is taken
    assert at.session_state["networks.model"].endswith("rrr_6_4_5_r2")  # the default model


def test_a_networks_widget_change_rewrites_the_url() -> None:
    at = page("networks").run()
    assert_healthy(at)
    assert at.query_params["model"] == "deep_linear/rrr_6_4_5_r2"  # the default model
    at.number_input(key="networks.gamma").set_value(11.0).run()
    assert at.query_params["gamma"] == "11"
    at.selectbox(key="networks.model").set_value(DLN).run()
    assert at.query_params["model"] == "deep_linear/dln_8_6_6_4_r2"
    assert at.query_params["gamma"] == f"{DLN_FIRST['gamma']:g}"  # the card's
    assert "stop_sem" not in at.query_params  # the option is off
    # the link reproduces the page: a fresh session opened on it shows the same settings
    assert_link_reproduces(at, "networks", (
        "networks.model", "networks.ckpt", "networks.gamma", "networks.epsilon", "networks.nbeta",
        "networks.draws", "networks.chains"))
