"""Networks page: theory numbers per model, live runs, and safe handling of uploaded weights."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import lltools
from dashboard.views import networks as networks_page
from tests.app.conftest import ROOT, assert_healthy, metrics, page, shown

MODELS = ROOT / "sample_models"
DLN = str(MODELS / "deep_linear" / "dln_8_6_6_4_r2")
RRR = str(MODELS / "deep_linear" / "rrr_6_4_5_r2")
MODULAR = str(MODELS / "modular_addition")
TINY = {"networks.chains": 2, "networks.draws": 30, "networks.burnin": 10}


def _tiny(at):
    for k, v in TINY.items():
        at.session_state[k] = v
    return at


def _core_llc(at) -> str:
    """λ̂ of the page's model, checkpoint and settings computed by the core directly."""
    s = at.session_state
    target = lltools.load_sample_model(s["networks.model"], checkpoint=s["networks.ckpt"])
    return shown(lltools.estimate(target, **networks_page.sampler_params(s)).llc_mean)


def _run(at):
    at.button(key="networks.run").click().run()
    assert_healthy(at)
    return metrics(at)


@pytest.fixture
def net():
    """The Networks page on dln_8_6_6_4_r2 (by its link), with a tiny sampler budget."""
    at = page("networks")
    at.query_params["model"] = "deep_linear/dln_8_6_6_4_r2"
    at = _tiny(at.run()).run()  # the link's model loads its card's settings first
    assert_healthy(at)
    return at


def test_opens_on_a_model_whose_first_click_is_healthy() -> None:
    """Issue 13.9: the page opens on rrr_6_4_5_r2 with its card's first-click settings (healthy
    at seed 0 in ~10 s, tests/workflows/test_sample_defaults.py), not on dln_8_6_6_4_r2, whose
    defaults still give R-hat 1.02."""
    from lltools.targets.cards import first_run_settings
    from lltools.targets.models import read_card

    at = page("networks").run()
    assert_healthy(at)
    assert at.session_state["networks.model"] == RRR
    first = first_run_settings(read_card(RRR))
    for key in ("chains", "draws", "burnin", "epsilon", "gamma"):
        assert at.session_state[f"networks.{key}"] == first[key], key


def test_opens_on_a_small_deep_linear_model_with_its_theory(net) -> None:
    m = metrics(net)
    assert net.session_state["networks.model"] == DLN
    assert m["d (parameters)"] == "108" and m["d/2"] == "54"
    assert m["exact λ (Aoyagi)"] == "13.5"
    assert m["rank(J)/2"] == "10"  # rank-2 4×8 product: tangent dimension 2·(4+8−2) = 20
    assert "λ̂ (estimate)" not in m
    assert any("Press **Run**" in i.value for i in net.info)
    assert any("Why is λ so much smaller than d/2?" in md.value for md in net.markdown)
    assert not net.button(key="networks.run").disabled and net.button(key="networks.stop").disabled
    # Defaults come from the model card.
    assert net.session_state["networks.gamma"] == 3.0 and net.session_state["networks.batch"] == 256


def test_run_gives_an_estimate_and_diagnostics(net) -> None:
    m = _run(net)
    lam = float(m["λ̂ (estimate)"])
    assert 0 < lam < 54
    assert m["diverged"] == "0 / 2"
    assert any(s.value == "Diagnostics" for s in net.subheader)
    assert len(net.get("download_button")) >= 6  # CSV + Parquet × (summary, chains, traces)
    [record] = net.session_state["history.records"]
    assert record.page == "Networks" and record.theory_llc == 13.5


def test_choosing_another_model_changes_the_numbers(net) -> None:
    first = _run(net)
    net.selectbox(key="networks.model").set_value(RRR).run()
    assert_healthy(net)
    m = metrics(net)
    assert m["d (parameters)"] == "44" and m["exact λ (Aoyagi)"] == "12"
    # Rank-2 layers 6→4→5: dim{dW₂W₁ + W₂dW₁} = 5·2 + 2·6 − 2·2 = 18, not the float32 noise.
    assert m["rank(J)/2"] == "9"
    assert "λ̂ (estimate)" not in m  # the old run belongs to the other model
    assert net.session_state["networks.nbeta"] == pytest.approx(587.048)  # its card's settings
    assert first["λ̂ (estimate)"] != "…"
    second = _run(_tiny(net))
    assert second["λ̂ (estimate)"] == _core_llc(net)


def test_a_training_checkpoint_is_a_different_centre(net) -> None:
    net.selectbox(key="networks.ckpt").set_value("checkpoints/step_000000.safetensors").run()
    assert_healthy(net)
    assert metrics(net)["d (parameters)"] == "108"
    [aoyagi] = [m for m in net.metric if m.label == "exact λ (Aoyagi)"]
    assert "A trained student is near a true parameter" in aoyagi.proto.help


def test_garbage_upload_is_an_error_not_an_exception(net) -> None:
    net.radio(key="networks.source").set_value("upload").run()
    assert_healthy(net)
    assert net.button(key="networks.run").disabled  # nothing uploaded yet
    net.file_uploader(key="networks.upload").set_value(
        ("weights.safetensors", b"\x00garbage, not a safetensors file" * 10, "application/octet-stream")
    ).run()
    assert_healthy(net)
    assert any("cannot be used as weights" in e.value for e in net.error)
    assert net.button(key="networks.run").disabled


def test_upload_for_another_architecture_names_the_mismatch(net) -> None:
    other = (MODELS / "deep_linear" / "rrr_6_4_5_r2" / "checkpoints" / "teacher.safetensors").read_bytes()
    net.radio(key="networks.source").set_value("upload").run()
    net.file_uploader(key="networks.upload").set_value(
        ("rrr.safetensors", other, "application/octet-stream")
    ).run()
    assert_healthy(net)
    errors = re.sub(r"\\(.)", r"\1", " ".join(e.value for e in net.error))  # as rendered (unescaped)
    assert "cannot be used as weights" in errors
    assert "rrr.safetensors: missing keys ['2.weight']" in errors  # the user's file name, what is wrong


def test_valid_upload_runs(net) -> None:
    data = (
        MODELS / "deep_linear" / "dln_8_6_6_4_r2" / "checkpoints" / "step_004000.safetensors"
    ).read_bytes()
    net.radio(key="networks.source").set_value("upload").run()
    net.file_uploader(key="networks.upload").set_value(
        ("mine.safetensors", data, "application/octet-stream")
    ).run()
    assert_healthy(net)
    assert any("108 parameters match" in s.value for s in net.success)
    m = _run(net)
    float(m["λ̂ (estimate)"])
    assert net.session_state["history.records"][-1].target.endswith("uploaded mine.safetensors")


def test_quadratic_network_shows_the_paper_value_and_offers_rank() -> None:
    at = page("networks")
    at.session_state["networks.model"] = MODULAR
    at.run()
    assert_healthy(at)
    m = metrics(at)
    assert m["d (parameters)"] == "4,416"
    assert m["Cullen et al. formula"] == "2176"  # K(d+p−1)/2 = 64·68/2
    assert m["rank(J)/2"] == "n/a"
    assert at.button(key="networks.rank").label.startswith("Compute rank(J)/2")


def test_settings_carried_over_from_another_page_never_crash() -> None:
    # E.g. "use these settings on the Networks page" from Sensitivity: model switched by state,
    # without the selectbox callback, while the batch size still belongs to a bigger model.
    at = page("networks")
    at.session_state["networks.model"] = MODULAR  # n = 212
    at.session_state["networks.batch"] = 256
    at.run()
    assert_healthy(at)
    assert at.session_state["networks.batch"] == 0


def test_a_formula_outside_its_regime_is_never_called_exact_nor_scored_against() -> None:
    """Issue 13.10: modular addition's Cullen et al. value is a reference, not the answer."""
    at = _tiny(page("networks"))
    at.session_state["networks.model"] = MODULAR
    at.run()
    m = _run(at)
    assert "λ̂ (estimate)" in m and m["Cullen et al. formula"] == "2176"
    assert not any(k.startswith("exact") for k in m)
    assert not any("standard errors" in md.value for md in at.markdown)  # no z-score against it
    assert any("not scored against it" in md.value for md in at.markdown)
    [record] = at.session_state["history.records"]
    assert record.theory_llc is None or not record.theory_label.startswith("exact")
    running = next(c for c in at.get("plotly_chart") if "Running" in c.proto.spec)
    assert "exact λ" not in running.proto.spec


def test_a_pt_upload_is_refused_with_its_reason(net) -> None:
    """Issue 13.12: a .pt file is not silently rejected: one line says why, and what to do."""
    net.radio(key="networks.source").set_value("upload").run()
    net.file_uploader(key="networks.upload").set_value(
        ("student.pt", b"PK\x03\x04 a zip of pickles", "application/octet-stream")
    ).run()
    assert_healthy(net)
    [error] = [e.value.replace("\\", "") for e in net.error if "student" in e.value]
    assert "refused" in error and "pickle" in error and "safetensors" in error
    assert any("weights_only=True" in c.value for c in net.caption)  # the CLI path for one's own .pt
    assert net.button(key="networks.run").disabled


def test_live_tiles_show_the_lights_rhat_and_ess(net, monkeypatch: pytest.MonkeyPatch) -> None:
    """While sampling, the R-hat / ESS tiles show the live light's numbers (they read "n/a"
    beside a light quoting R-hat and ESS)."""
    import functools
    import math

    from dashboard import running
    from dashboard.views import networks_run

    calls: list[dict] = []
    draw = networks_run.draw_metrics

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return draw(*args, **kwargs)

    monkeypatch.setattr(networks_run, "draw_metrics", spy)
    monkeypatch.setattr(running, "stream_live", functools.partial(running.stream_live, min_interval=0.0,
                                                                      first_draw=0.0))
    net.session_state["networks.draws"] = 1500  # several live redraws with draws, even under load
    _run(net)
    live = [c for c in calls if c.get("live")]
    assert live, "no live redraw"
    shown_rhat = [c["rhat"] for c in live if c.get("rhat") is not None and math.isfinite(c["rhat"])]
    shown_ess = [c["ess"] for c in live if c.get("ess") is not None and math.isfinite(c["ess"])]
    assert shown_rhat and shown_ess, live


def test_the_first_click_uses_the_cards_first_run_and_says_when_its_gamma_differs(net) -> None:
    """Issue 13.9: a model's first-click settings are its card's ``first_run`` (over
    ``default_sampler``); where that γ is not the trajectory's, the page says so beside the
    result, so the two λ̂ are never read as the same quantity."""
    card = json.loads((Path(MODULAR) / "model.json").read_text())
    first, reference = card["first_run"], card["default_sampler"]
    assert first["gamma"] != reference["gamma"]
    net.selectbox(key="networks.model").set_value(MODULAR).run()
    assert_healthy(net)
    s = net.session_state
    assert s["networks.gamma"] == first["gamma"] and s["networks.epsilon"] == first["epsilon"]
    assert s["networks.draws"] == first["draws"] and s["networks.burnin"] == first["burnin"]
    assert s["networks.chains"] == first.get("chains", reference["chains"])
    assert s["networks.nbeta"] == reference["nbeta"]  # a key first_run leaves out: default_sampler's
    said = f"trajectory uses γ = {reference['gamma']:g}"
    assert any(said in c.value for c in net.caption)  # beside the γ input, before any run
    _run(_tiny(net))
    [note] = [i.value for i in net.info if "not the same quantity" in i.value]
    assert f"γ = {first['gamma']:g}" in note and f"γ = {reference['gamma']:g} " in note
    # The reference γ (e.g. typed back in): no note.
    net.number_input(key="networks.gamma").set_value(float(reference["gamma"])).run()
    assert not any(said in c.value for c in net.caption)
    _run(net)
    assert not any("not the same quantity" in i.value for i in net.info)
