"""Sensitivity & calibrate page: one batched sweep, heatmaps, calibrate with reasons."""

from __future__ import annotations

import numpy as np
import pytest

import lltools
from tests.app.conftest import assert_healthy, page


@pytest.fixture
def small():
    at = page("sensitivity")
    at.session_state["sens.chains"] = 2
    at.session_state["sens.draws"] = 60
    at.session_state["sens.burnin"] = 20
    at.session_state["sens.eps_list"] = "1e-3, 1e-2"
    at.session_state["sens.gamma_list"] = "1, 10"
    at.session_state["sens.nbeta_list"] = "30, 300"
    return at.run()


def test_sweep_runs_one_row_per_setting(small) -> None:
    assert_healthy(small)
    small.button(key="sens.run").click().run()
    assert_healthy(small)
    run = small.session_state["sens.__result"]
    assert len(run.table) == 8  # 2 ε × 2 γ × 2 nβ
    assert set(run.table["num_chains"]) == {2}
    assert any(c.value.startswith("complete ·") for c in small.caption)
    assert len(small.get("plotly_chart")) >= 5  # three heatmaps, λ̂ vs γ, multi-temperature
    assert any("Bias-reduced λ" in c.value for c in small.caption)


def test_changing_the_grid_changes_the_result(small) -> None:
    small.button(key="sens.run").click().run()
    first = small.session_state["sens.__result"].table["llc_mean"].tolist()
    small.text_input(key="sens.gamma_list").set_value("0.5").run()
    small.button(key="sens.run").click().run()
    assert_healthy(small)
    second = small.session_state["sens.__result"].table
    assert len(second) == 4 and set(second["gamma"].round(3)) == {0.5}
    assert len(first) == 8
    # The page's table is the core's sweep of the same grid (same seed, same numbers).
    spec = small.session_state["sens.potential"]  # the page's default target
    core = lltools.sweep(lltools.potential_target(spec), epsilon=[1e-3, 1e-2], gamma=[0.5],
                         nbeta=[30.0, 300.0], chains=2, draws=60, burnin=20, seed=0, device="cpu")
    mine = second.sort_values(["epsilon", "gamma", "nbeta"])["llc_mean"].to_numpy()
    expected = core.table.sort_values(["epsilon", "gamma", "nbeta"])["llc_mean"].to_numpy()
    np.testing.assert_allclose(mine, expected, rtol=1e-9)


def test_bad_grid_is_an_inline_error(small) -> None:
    small.text_input(key="sens.eps_list").set_value("1e-3, abc").run()
    assert_healthy(small)
    assert any("'abc' is not a number" in e.value for e in small.error)
    assert small.button(key="sens.run").disabled
    small.text_input(key="sens.eps_list").set_value("-1").run()
    assert any("must be > 0" in e.value for e in small.error)


def test_calibrate_recommends_and_applies_to_toy(small) -> None:
    # Calibration judges R-hat and ESS: give its chains enough draws to be judged healthy
    # (60 draws of 2 chains pass or fail by chance).
    small.number_input(key="sens.draws").set_value(600)
    small.number_input(key="sens.burnin").set_value(200)
    small.number_input(key="sens.chains").set_value(4).run()
    small.button(key="calib.run").click().run()
    assert_healthy(small)
    rec = small.session_state["calib.__result"].recommendation
    assert rec.reasons
    shown = [s.value for s in small.success] + [w.value for w in small.warning]
    assert any("ε =" in v for v in shown), shown
    if rec.as_settings():
        small.button(key="calib.apply").click().run()
        assert_healthy(small)
        assert small.session_state["toy.epsilon"] == rec.epsilon
        assert small.session_state["toy.gamma"] == rec.gamma


def test_sample_model_sweep_and_apply_to_networks() -> None:
    """A shipped network as the sweep target: grid centred on its default sampler."""
    from dashboard.common import sample_model_cards

    cards = sample_model_cards()
    small = [c for c in cards if "rrr_6_4_5" in str(c["path"])]
    if not small:
        pytest.skip("the small reduced-rank-regression sample model is not shipped")
    at = page("sensitivity").run()
    at.session_state["sens.source"] = "Sample model"
    at.session_state["sens.model"] = str(small[0]["path"])
    at.run()
    assert_healthy(at)
    at.text_input(key="sens.eps_list").set_value("3e-5, 1e-4").run()
    at.text_input(key="sens.gamma_list").set_value("1").run()
    at.text_input(key="sens.nbeta_list").set_value("587").run()
    at.number_input(key="sens.chains").set_value(2).run()
    at.number_input(key="sens.draws").set_value(30).run()
    at.number_input(key="sens.burnin").set_value(10).run()
    at.button(key="sens.run").click().run()
    assert_healthy(at)
    run = at.session_state["sens.__result"]
    assert run.spec.startswith("model:") and len(run.table) == 2
    assert run.theory_llc == 12.0


def test_url_cannot_load_arbitrary_model_folders() -> None:
    at = page("sensitivity")
    at.query_params["potential"] = "model:/etc"
    at.run()
    assert_healthy(at)
    assert any("not one of the shipped sample models" in w.value for w in at.warning)
    assert at.session_state["sens.source"] == "Toy potential"


def test_use_these_settings_opens_the_toy_page_with_them() -> None:
    """Through the app's router, "Use these settings" switches to the Toy page it filled in
    (issue 13.8), and the calibration of a potential was made against its known T."""
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import ROOT, TIMEOUT

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("views/sensitivity.py")
    at.session_state["sens.chains"] = 4
    at.session_state["sens.draws"] = 600
    at.session_state["sens.burnin"] = 200
    at.run()
    assert_healthy(at)
    at.button(key="calib.run").click().run()
    assert_healthy(at)
    rec = at.session_state["calib.__result"].recommendation
    assert rec.as_settings(), rec.headline
    assert rec.known_llc is not None and "calibrated against the known T" in rec.headline
    at.button(key="calib.apply").click().run()
    assert_healthy(at)
    assert at.title[0].value == "Toy potentials"
    assert at.session_state["toy.epsilon"] == rec.epsilon
    assert at.session_state["toy.gamma"] == rec.gamma
    assert at.session_state["toy.nbeta"] == rec.nbeta
    assert at.session_state["toy.potential"] == at.session_state["calib.__result"].spec
    assert at.number_input(key="toy.epsilon").value == rec.epsilon


def test_default_sweep_follows_the_target() -> None:
    """The grid and budget are the target's default sweep (issue 13.8): around a potential's
    preset, or a sample model's card sampler (4 chains, capped draws), never 2 × 300."""
    from lltools.estimation.calibrate import default_sweep
    from lltools.targets.potentials import sampler_defaults

    at = page("sensitivity").run()
    sd = default_sweep(sampler_defaults("x**4 + y**4"))
    assert at.text_input(key="sens.eps_list").value.replace(" ", "") == ",".join(f"{e:g}" for e in sd.epsilon)
    at.selectbox(key="sens.potential").set_value("x**2 * y**4").run()
    assert_healthy(at)
    assert "0.005" in at.text_input(key="sens.eps_list").value and at.session_state["calib.epsilon"] == 5e-3
    from dashboard.common import sample_model_cards

    paths = [str(c["path"]) for c in sample_model_cards() if "dln_8_6_6_4" in str(c["path"])]
    if not paths:
        pytest.skip("the small deep linear sample model is not shipped")
    at.session_state["sens.source"] = "Sample model"
    at.run()
    at.selectbox(key="sens.model").set_value(paths[0]).run()
    assert_healthy(at)
    assert at.session_state["sens.chains"] == 4 and at.session_state["sens.draws"] >= 1000
