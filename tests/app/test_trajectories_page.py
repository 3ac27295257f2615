"""Training trajectories page: shipped tables show instantly, recomputes are cached, bad files stay inline.

The page reads its models from ``LLTOOLS_SAMPLE_MODELS``; each test points it at a
temporary copy of two small sample models, so results do not depend on which
``trajectory.parquet`` files happen to ship.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.views import trajectories as traj_page
from lltools.workflows.trajectory import trajectory_stream
from tests.app.conftest import ROOT, assert_healthy, assert_link_reproduces, metrics, page, shown

MODELS = ROOT / "sample_models"
TINY = {"traj.chains": 1, "traj.draws": 10, "traj.burnin": 0, "traj.stride": 8}


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in ("model.json", "metrics.csv"):
        shutil.copy(src / name, dst / name)
    shutil.copytree(src / "checkpoints", dst / "checkpoints")
    return dst


def _synthetic_trajectory(model: Path) -> pd.DataFrame:
    metrics_csv = pd.read_csv(model / "metrics.csv")
    k = len(metrics_csv)
    llc = np.concatenate([np.linspace(1.0, 9.0, k // 2), np.linspace(9.0, 7.0, k - k // 2)])
    table = metrics_csv.assign(
        checkpoint=[Path(c).name for c in metrics_csv["checkpoint"]],
        checkpoint_index=np.arange(k),
        llc_mean=llc,
        llc_sem=0.1,
        rhat=1.0,
        ess=400.0,
        acceptance=0.95,
        n_diverged=0,
        geometric_complexity=np.linspace(0.5, 2.0, k),
        gsm=np.nan,
        nbeta=587.048,
        gamma=1.0,
        epsilon=1e-4,
        num_chains=8,
    )
    table.to_parquet(model / "trajectory.parquet", index=False)
    return table


@pytest.fixture
def models(tmp_path, monkeypatch) -> dict[str, str]:
    """A private sample-model folder: a deep linear model WITH a shipped trajectory, the
    modular-addition model WITHOUT one."""
    root = tmp_path / "models"
    rrr = _copy_model(MODELS / "deep_linear" / "rrr_6_4_5_r2", root / "rrr")
    _synthetic_trajectory(rrr)
    modular = _copy_model(MODELS / "modular_addition", root / "modular_addition")
    monkeypatch.setenv("LLTOOLS_SAMPLE_MODELS", str(root))
    return {"rrr": str(rrr), "modular": str(modular), "root": str(root)}


def _open(model: str):
    at = page("trajectories")
    at.session_state["traj.model"] = model
    for k, v in TINY.items():
        at.session_state[k] = v
    at.run()
    assert_healthy(at)
    return at


def _compute(at):
    at.button(key="trajectories.run").click().run()
    assert_healthy(at)
    return metrics(at)


def test_shipped_trajectory_shows_instantly(models) -> None:
    at = _open(models["rrr"])
    m = metrics(at)
    assert m["peak λ̂"] == "9" and m["final λ̂"] == "7"
    assert m["GSM"] == "n/a"  # regression: no accuracies
    assert any("Shipped `trajectory.parquet`" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 2  # the linked panels and λ̂ vs GC
    assert len(at.get("download_button")) == 2  # CSV + Parquet of the table
    assert any("Regression" in md.value for md in at.markdown)
    assert any("λ̂ = 7 ± 0.1, against Aoyagi's λ = 12" in md.value for md in at.markdown)


def test_choosing_another_model_changes_the_numbers(models) -> None:
    at = _open(models["rrr"])
    at.selectbox(key="traj.model").set_value(models["modular"]).run()
    assert_healthy(at)
    m = metrics(at)
    assert m["GSM"] == "0.304" and m["grokked at step"] == "2,700"
    assert m["peak λ̂"] == "n/a"  # nothing shipped in this copy: offer to compute
    assert any("No precomputed trajectory" in i.value for i in at.info)
    assert any("Grokking" in md.value for md in at.markdown)
    # The sampler controls now hold that model's card settings.
    assert at.session_state["traj.gamma"] == 200.0 and at.session_state["traj.nbeta"] == 6360.0


def test_recompute_with_tiny_settings_gives_lambda_and_is_cached(models, monkeypatch) -> None:
    import lltools.workflows.trajectory as trajectories

    calls = []
    real = trajectories.trajectory_stream

    def counting(*args, **kwargs):
        calls.append(kwargs)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(trajectories, "trajectory_stream", counting)
    at = _open(models["modular"])
    m = _compute(at)
    float(m["final λ̂"])  # a number
    assert len(calls) == 1 and calls[0]["checkpoints"] == [0, 8, 16, 24, 32, 40, 47]
    assert any("Your trajectory" in c.value for c in at.caption)
    assert len(at.get("download_button")) == 2
    # The same settings again: served from st.cache_data, no new sampling.
    _compute(at)
    assert len(calls) == 1
    # Different settings: a new run.
    at.session_state["traj.seed"] = 1
    _compute(at)
    assert len(calls) == 2


def _core_table(at, model: str) -> pd.DataFrame:
    """The trajectory the core computes for the page's model and settings (no page involved)."""
    settings = traj_page.request_settings(at.session_state)
    stride = settings.pop("stride")
    card = traj_page.card_of(model)
    subset = traj_page.checkpoint_subset(int(card["num_checkpoints"]), stride)
    *_, last = trajectory_stream(model, checkpoints=list(subset) if subset else None, **settings)
    return last.result.sort_values("step").reset_index(drop=True)


def test_shipped_and_recomputed_can_be_compared(models) -> None:
    at = _open(models["rrr"])
    assert metrics(at)["final λ̂"] == "7"  # the synthetic shipped table ends at 7
    _compute(at)
    assert at.session_state["traj.view"] == "mine"
    core = _core_table(at, models["rrr"])
    m = metrics(at)
    # "mine" shows the recomputed table: its final and peak λ̂ are the core's, at these settings.
    assert m["final λ̂"] == shown(core["llc_mean"].iloc[-1])
    assert m["peak λ̂"] == shown(core["llc_mean"].max())
    at.segmented_control(key="traj.view").set_value("shipped").run()
    assert_healthy(at)
    m = metrics(at)
    assert m["final λ̂"] == "7" and m["peak λ̂"] == "9"  # back to the shipped table


def test_garbage_checkpoint_is_an_error_not_an_exception(models) -> None:
    # Garbage bytes saved as a .safetensors checkpoint of the model.
    (Path(models["modular"]) / "checkpoints" / "step_00000.safetensors").write_bytes(b"\x00garbage" * 64)
    at = _open(models["modular"])
    _compute(at)
    errors = " ".join(e.value for e in at.error)
    assert "Could not compute the trajectory" in errors and "not a safetensors file" in errors


def test_damaged_shipped_parquet_is_a_warning(models) -> None:
    (Path(models["rrr"]) / "trajectory.parquet").write_bytes(b"not parquet")
    at = _open(models["rrr"])
    assert any("could not be read" in w.value for w in at.warning)
    assert any("No precomputed trajectory" in i.value for i in at.info)


def test_a_stopped_computation_says_so_and_keeps_nothing(models) -> None:
    at = page("trajectories")
    at.session_state["traj.model"] = models["rrr"]
    at.session_state["traj.__in_progress"] = {"model": models["rrr"]}  # what Stop leaves behind
    at.run()
    assert_healthy(at)
    assert any("stopped before it finished" in i.value for i in at.info)
    assert metrics(at)["peak λ̂"] == "9"  # the shipped table is still shown
    at.run()
    assert not any("stopped before it finished" in i.value for i in at.info)  # said once


def test_settings_come_from_the_url_and_go_back_into_it(models) -> None:
    """Issue 13.15: the model and its recompute settings live in the URL (bad values: one line)."""
    at = page("trajectories")
    at.query_params.update({"model": "deep_linear/rrr_6_4_5_r2", "gamma": "9", "chains": "2", "stride": "4",
                            "logx": "0", "draws": "lots", "seed": "-1"})
    at.run()
    assert_healthy(at)
    assert at.selectbox(key="traj.model").value == models["rrr"]
    assert at.number_input(key="traj.gamma").value == 9.0 and at.number_input(key="traj.chains").value == 2
    assert at.selectbox(key="traj.stride").value == 4 and at.toggle(key="traj.logx").value is False
    said = " | ".join(w.value for w in at.warning)
    assert "ignored URL parameter draws=" in said and "ignored URL parameter seed=" in said
    # a widget change rewrites the URL; a fresh session on that URL shows the same settings
    at.number_input(key="traj.epsilon").set_value(3e-5).run()
    assert at.query_params["epsilon"] == "3e-05" and at.query_params["stride"] == "4"
    again = assert_link_reproduces(at, "trajectories", ("traj.model", "traj.gamma", "traj.epsilon",
                                                        "traj.chains", "traj.stride", "traj.logx"))
    assert not again.warning
