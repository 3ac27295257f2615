"""Model folders given at launch (``make app MODELS=…`` / ``LLTOOLS_MODELS``) in the app.

The user's folder (tests/data/user_dln, not a sample model; no card, no weights) is listed
by the Networks, Trajectories and Sensitivity pages; picking it on the Networks page and
running gives λ̂ within MC error of Aoyagi's λ = 7/2 (settings and bias allowance as in
tests/workflows/test_own_model.py).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
import streamlit as st

from lltools.targets.checkpoints import save_checkpoint
from lltools.targets.models import load_model_folder
from tests.app.conftest import ROOT, assert_healthy, metrics, page

USER_DLN = str((ROOT / "tests" / "data" / "user_dln").resolve())
LAMBDA, BIAS = 3.5, 0.3


@pytest.fixture
def launched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The app launched with two folders: the user's DLN, and a copy with two checkpoints."""
    traj = shutil.copytree(USER_DLN, tmp_path / "user_traj", ignore=shutil.ignore_patterns("__pycache__"))
    state = load_model_folder(traj).module.state_dict()
    for step, shift in ((1, 0.05), (2, 0.0)):
        save_checkpoint(traj / "checkpoints" / f"step_{step}.safetensors",
                        {k: v + shift for k, v in state.items()}, metadata={"step": str(step)})
    monkeypatch.setenv("LLTOOLS_MODELS", os.pathsep.join([USER_DLN, str(traj), str(tmp_path / "missing")]))
    st.cache_data.clear()  # the model lists are cached per server
    yield {"dln": USER_DLN, "traj": str(traj.resolve())}
    st.cache_data.clear()


def test_launch_folders_are_offered_on_every_model_page(launched) -> None:
    from dashboard.common import launch_model_paths, model_cards

    assert launch_model_paths() == [launched["dln"], launched["traj"]]  # the missing one is left out
    cards = {c["path"]: c for c in model_cards()}
    assert cards[launched["dln"]]["user"] and cards[launched["dln"]]["name"] == "user_dln"
    assert cards[launched["dln"]]["final_checkpoint"] == ""  # w* = build()'s weights

    net = page("networks").run()
    assert_healthy(net)
    assert "user_dln  ·  your folder" in net.selectbox(key="networks.model").options
    traj = page("trajectories").run()
    assert_healthy(traj)
    options = " | ".join(traj.selectbox(key="traj.model").options)
    assert "user_traj" in options and "user_dln" not in options  # no checkpoints: no trajectory
    sens = page("sensitivity").run()
    sens.session_state["sens.source"] = "Sample model"
    sens.run()
    assert_healthy(sens)
    assert any(o.startswith("user_dln") for o in sens.selectbox(key="sens.model").options)


@pytest.mark.slow
def test_pick_the_user_folder_and_run(launched) -> None:
    at = page("networks")
    at.session_state["networks.model"] = launched["dln"]
    at.run()
    assert_healthy(at)
    assert at.session_state["networks.nbeta"] == pytest.approx(1000 / math.log(1000))  # n/log n, no card
    assert metrics(at)["d (parameters)"] == "18"
    settings = {"epsilon": 2e-4, "gamma": 1.0, "chains": 8, "draws": 1000, "burnin": 300, "batch": 100}
    for k, v in settings.items():
        at.session_state[f"networks.{k}"] = v
    at.run()
    at.button(key="networks.run").click().run()
    assert_healthy(at)
    done = at.session_state["networks.__result"].result  # the EstimateResult the page shows
    assert done.settings.batch_size == 100 and done.num_chains == 8 and not done.diverged_chains
    assert float(metrics(at)["λ̂ (estimate)"]) == pytest.approx(done.llc_mean, rel=1e-3)
    assert abs(done.llc_mean - LAMBDA) < 4 * done.llc_sem + BIAS, (done.llc_mean, done.llc_sem)
