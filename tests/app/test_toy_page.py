"""Toy potentials page: controls change results, bad input stays inline, runs are recorded."""

from __future__ import annotations

import threading
import time

import lltools
from dashboard import theory
from tests.app.conftest import assert_healthy, assert_link_reproduces, metrics, page, settle, shown


def _core_llc(at, spec: str) -> str:
    """λ̂ of the page's settings computed by the core directly: the page must show exactly it
    (same seed, same counter-based noise)."""
    s = at.session_state
    res = lltools.estimate(lltools.potential_target(spec), nbeta=s["toy.nbeta"], gamma=s["toy.gamma"],
                           epsilon=s["toy.epsilon"], chains=s["toy.chains"], draws=s["toy.draws"],
                           burnin=s["toy.burnin"], seed=s["toy.seed"], device="cpu")
    return shown(res.llc_mean)


def _run(at):
    at.button(key="toy.run").click().run()
    assert_healthy(at)
    return metrics(at)


def test_loads_with_preview_and_teaching_note() -> None:
    at = settle(page("toy").run())
    assert_healthy(at)
    assert any("Press **Run**" in i.value for i in at.info)
    assert any("What am I looking at?" in m.value for m in at.markdown)
    assert not at.button(key="toy.run").disabled
    assert at.button(key="toy.stop").disabled


def test_run_shows_estimate_theory_and_target(tiny_toy) -> None:
    m = _run(tiny_toy)
    assert m["λ̂ (estimate)"] == _core_llc(tiny_toy, "x**2 + y**2")
    assert m["exact λ"] == "1"
    assert float(m["target T(nβ, γ)"]) == 0.995  # 2nβ/(2nβ + γ) at nβ = 100, γ = 1
    assert m["diverged"].endswith("/ 3")
    # The diagnostics panel and downloads are there.
    assert any(s.value == "Diagnostics" for s in tiny_toy.subheader)
    assert len(tiny_toy.get("download_button")) >= 6  # CSV + Parquet × (summary, chains, traces, positions)
    # The run line says which SGLD step ran (a tiny run stays eager) and the device.
    assert any(c.value.startswith("Run #") and "eager step" in c.value and "device cpu" in c.value
               for c in tiny_toy.caption)


def test_changing_the_potential_changes_the_result(tiny_toy) -> None:
    first = _run(tiny_toy)
    assert first["λ̂ (estimate)"] == _core_llc(tiny_toy, "x**2 + y**2")
    tiny_toy.selectbox(key="toy.potential").set_value("x**2 * y**4").run()
    assert tiny_toy.session_state["toy.epsilon"] == 5e-3  # its preset (a clean first run)
    for key, value in (("toy.chains", 3), ("toy.draws", 60), ("toy.burnin", 20)):  # stay tiny
        tiny_toy.session_state[key] = value
    second = _run(tiny_toy)
    assert second["exact λ"] == "0.25"
    assert second["λ̂ (estimate)"] == _core_llc(tiny_toy, "x**2 * y**4")
    assert float(second["target T(nβ, γ)"]) < 0.25  # finite nβ: NOT 1/4
    # Both runs are in the history, newest last.
    records = tiny_toy.session_state["history.records"]
    assert [r.target for r in records] == ["x**2 + y**2", "x**2 * y**4"]


def test_invalid_expression_is_an_inline_error_not_an_exception(tiny_toy) -> None:
    tiny_toy.selectbox(key="toy.potential").set_value("custom").run()
    tiny_toy.text_input(key="toy.expr").set_value("x**2 + y**").run()
    assert_healthy(tiny_toy)
    assert any("Invalid expression" in e.value for e in tiny_toy.error)
    assert tiny_toy.button(key="toy.run").disabled
    tiny_toy.text_input(key="toy.expr").set_value("__import__('os')").run()
    assert_healthy(tiny_toy)
    assert any("Invalid expression" in e.value for e in tiny_toy.error)


def test_custom_expression_runs(tiny_toy) -> None:
    tiny_toy.selectbox(key="toy.potential").set_value("custom").run()
    tiny_toy.text_input(key="toy.expr").set_value("x**2 * y**2 + x**6").run()
    m = _run(tiny_toy)
    assert m["exact λ"] == "0.5"


def test_absurd_sizes_are_refused_inline() -> None:
    at = page("toy")
    at.session_state["toy.chains"] = 1024
    at.session_state["toy.draws"] = 200_000
    at.run()
    assert_healthy(at)
    assert any("chain-steps" in e.value for e in at.error)
    assert at.button(key="toy.run").disabled


def test_gamma_zero_on_valley_potential_is_refused() -> None:
    at = page("toy")
    at.session_state["toy.potential"] = "x**2 * y**4"
    at.session_state["toy.gamma"] = 0.0
    at.run()
    assert_healthy(at)
    assert any("γ > 0" in e.value for e in at.error)
    assert at.button(key="toy.run").disabled


def test_settings_come_from_the_url() -> None:
    at = page("toy")
    at.query_params.update(
        {
            "potential": "x**4 + y**4",
            "nbeta": "50",
            "gamma": "2",
            "draws": "40",
            "burnin": "10",
            "chains": "2",
            "epsilon": "not-a-number",
        }
    )
    at.run()
    assert_healthy(at)
    assert at.selectbox(key="toy.potential").value == "x**4 + y**4"
    assert at.number_input(key="toy.nbeta").value == 50.0
    assert at.number_input(key="toy.draws").value == 40
    assert any("epsilon" in w.value for w in at.warning)  # bad value ignored with a warning
    m = _run(at)
    assert m["exact λ"] == "0.5"


def test_stopped_run_is_summarised() -> None:
    """Stop = Streamlit interrupts the script; the next run summarises the kept partial trace."""
    from dashboard.common import potential_target  # noqa: F401  (warm the import path)
    from lltools.targets.potentials import potential_target as build
    from lltools.workflows.estimate import estimate_stream

    stream = estimate_stream(
        build("x**2 + y**2"),
        nbeta=100,
        gamma=1,
        epsilon=1e-3,
        chains=2,
        draws=200,
        burnin=20,
        seed=0,
        device="cpu",
        report_every=100,
    )
    partial = next(stream)  # 100 of 220 steps
    at = page("toy")
    at.session_state["toy.__partial"] = partial
    at.run()
    assert_healthy(at)
    assert any("stopped at step 100 of 220" in i.value for i in at.info)
    assert "λ̂ (estimate)" in metrics(at)


def test_history_compare_two_runs(tiny_toy) -> None:
    _run(tiny_toy)
    tiny_toy.number_input(key="toy.gamma").set_value(5.0).run()
    _run(tiny_toy)
    from dashboard.history import RunHistory, settings_diff

    hist = RunHistory(tiny_toy.session_state)
    a, b = hist.records()
    diff = settings_diff(a, b)
    assert list(diff["setting"]) == ["gamma"]


def test_theory_is_computed_off_the_page_path(monkeypatch) -> None:
    """A slow theory computation (a hostile expression past its budget) never holds up the page:
    it is drawn at once with a "computing" note, and the theory fills in when the job is done."""
    release = threading.Event()
    real = theory.compute_theory

    def slow(*args, **kwargs):
        release.wait(timeout=60)
        return real(*args, **kwargs)

    monkeypatch.setattr(theory, "compute_theory", slow)
    at = page("toy")
    at.session_state["toy.potential"] = "custom"
    at.session_state["toy.expr"] = "x**4 + y**4 + 0.125*x**2*y**2"  # used by no other test
    started = time.perf_counter()
    at.run()
    drawn = time.perf_counter() - started
    assert_healthy(at)
    try:
        assert any("Computing λ and T(nβ, γ) in the background" in c.value for c in at.caption)
        assert not any("What am I looking at?" in m.value for m in at.markdown)
        assert any("Press **Run**" in i.value for i in at.info)  # the page is usable meanwhile
        assert not at.button(key="toy.run").disabled
        assert drawn < 30  # the first run imports plotly etc.; the job itself waits 60 s
    finally:
        release.set()
    settle(at)
    assert_healthy(at)
    assert not any("in the background" in c.value for c in at.caption)
    assert any("What am I looking at?" in m.value for m in at.markdown)
    assert any("exact λ = 0.5**" in m.value for m in at.markdown)  # x⁴ + y⁴ + x²y²/8: λ = 1/2


def test_a_widget_change_rewrites_the_url_and_the_link_reproduces_it() -> None:
    """Issue 13.15: the URL follows the controls at once (not only after a run)."""
    at = settle(page("toy").run())
    at.selectbox(key="toy.potential").set_value("x**2 * y**4").run()
    at.number_input(key="toy.gamma").set_value(3.0).run()
    assert at.query_params["potential"] == "x**2 * y**4" and at.query_params["gamma"] == "3"
    assert_link_reproduces(at, "toy", ("toy.potential", "toy.gamma", "toy.nbeta", "toy.epsilon",
                                       "toy.chains", "toy.draws"))


def test_each_potential_opens_with_its_clean_preset() -> None:
    """Choosing a potential loads its preset (issue 13.9: the first click gives a clean run);
    a link's own settings still win over the preset."""
    from lltools.targets.potentials import sampler_defaults

    at = page("toy").run()
    for name in ("x**4 + y**4", "x**2 * y**4", "x**2 + y**2"):
        at.selectbox(key="toy.potential").set_value(name).run()
        assert_healthy(at)
        d = sampler_defaults(name)
        assert at.number_input(key="toy.epsilon").value == d["epsilon"]
        assert at.number_input(key="toy.chains").value == d["chains"]
        assert at.number_input(key="toy.draws").value == d["draws"]
    url = page("toy")
    url.query_params.update({"potential": "x2y4", "chains": "4"})
    url.run()
    assert url.number_input(key="toy.epsilon").value == 5e-3 and url.number_input(key="toy.chains").value == 4
