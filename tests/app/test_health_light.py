"""Issue 13.19 on the pages: the live health light is the core's verdict, and "stop when
MCSE(λ̂) ≤ target" ends a run by the core's rule (the one ``--target-sem`` uses), saying why."""

from __future__ import annotations

import re

import pytest

from dashboard.health_light import LIGHTS, HealthLight, auto_stop_target, light_markdown
from lltools.estimation.live import live_health, stop_reason
from lltools.workflows.events import RunEvent
from tests.app.conftest import assert_healthy, page, settle
from tests.helpers import gamma_draws_trace


class _Slot:
    """Stands in for a Streamlit container: keeps what was drawn."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def empty(self) -> _Slot:
        return self

    def markdown(self, text: str) -> None:
        self.lines.append(text)


def _event(trace) -> RunEvent:
    return RunEvent(kind="estimate", steps_done=trace.num_steps_total, steps_total=2 * trace.num_steps_total,
                    trace=trace, settings=None, target=None)


@pytest.mark.parametrize(("light", "trace"), [
    ("green", gamma_draws_trace(num_chains=4, num_draws=2000)),
    ("amber", gamma_draws_trace(num_chains=2, num_draws=10)),
    ("amber", gamma_draws_trace(num_chains=4, num_draws=3)),
    ("red", gamma_draws_trace(num_chains=4, num_draws=2000, diverged_at=[-1, -1, -1, 100])),
])
def test_the_light_is_the_core_verdict(light: str, trace) -> None:
    slot = _Slot()
    shown = HealthLight(slot).draw(_event(trace))
    core = live_health(trace)
    assert (shown.light, shown.reasons, shown.line()) == (core.light, core.reasons, core.line())
    assert core.light == light
    colour, _, word = LIGHTS[light]
    assert slot.lines == [light_markdown(core)]
    assert slot.lines[0].startswith(f":{colour}-badge[") and word in slot.lines[0]
    assert core.line() in slot.lines[0]  # the core's reason and numbers, not a page copy


def test_the_light_stops_by_the_core_rule_only_when_asked() -> None:
    trace = gamma_draws_trace(num_chains=4, num_draws=2000)
    assert HealthLight(_Slot()).stop_when(_event(trace)) is None  # option off: never stops
    light = HealthLight(_Slot(), target_sem=0.1)
    assert light.stop_when(_event(trace)) == stop_reason(live_health(trace), 0.1) is not None
    assert HealthLight(_Slot(), target_sem=1e-4).stop_when(_event(trace)) is None


def test_the_option_is_off_by_default_and_reads_its_target() -> None:
    assert auto_stop_target("toy", {}) is None
    assert auto_stop_target("toy", {"toy.autostop": False, "toy.target_sem": 0.1}) is None
    assert auto_stop_target("toy", {"toy.autostop": True, "toy.target_sem": 0.1}) == 0.1


def test_stop_when_mcse_reaches_the_target_ends_the_toy_run_and_says_why() -> None:
    at = page("toy")
    at.session_state["toy.chains"] = 4
    at.session_state["toy.draws"] = 100_000
    at.session_state["toy.burnin"] = 100
    at = settle(at.run())
    assert not at.checkbox(key="toy.autostop").value  # off by default
    at.checkbox(key="toy.autostop").check().run()
    at.number_input(key="toy.target_sem").set_value(0.05).run()
    at.button(key="toy.run").click().run()
    assert_healthy(at)
    done = at.session_state["toy.__result"]
    said = [i.value for i in at.info if "stopped at step" in i.value]
    assert said, [i.value for i in at.info]
    m = re.search(r"stopped at step ([\d,]+) of 100,100: MCSE ([\d.e-]+) ≤ target 0\.05 and "
                  r"R-hat ([\d.]+) ≤ 1\.01", said[0])
    assert m, said[0]
    assert int(m[1].replace(",", "")) < 100_100  # stopped early
    r = done.result
    assert r.llc_sem <= 0.05 and r.rhat <= 1.01  # the final summary agrees with the reason
    assert float(m[2]) == pytest.approx(r.llc_sem, rel=1e-2)
    assert abs(r.llc_mean - 200 / 201) < 5 * 0.05  # T(100, 1) of x² + y²
    assert done.status.startswith("stopped at step")
    assert at.session_state["history.records"][-1].status == done.status


def test_the_option_lives_in_the_url() -> None:
    at = page("toy")
    at.query_params["stop_sem"] = "0.03"
    at.run()
    assert_healthy(at)
    assert at.checkbox(key="toy.autostop").value and at.number_input(key="toy.target_sem").value == 0.03
    bad = page("toy")
    bad.query_params["stop_sem"] = "-1"
    bad.run()
    assert_healthy(bad)
    assert not bad.checkbox(key="toy.autostop").value
    assert any("ignored URL parameter stop" in w.value for w in bad.warning)  # one line, no traceback


@pytest.mark.slow
def test_stop_when_mcse_reaches_the_target_ends_a_networks_run_and_says_why() -> None:
    """rrr 6-4-5 at its card settings with 4 chains: R-hat ≤ 1.01 after ~10 000 steps (~35 s here)."""
    at = page("networks")
    at.query_params.update({"model": "deep_linear/rrr_6_4_5_r2", "chains": "4", "draws": "20000",
                            "burnin": "100", "stop_sem": "2"})
    at.run()
    assert_healthy(at)
    at.button(key="networks.run").click().run()
    assert_healthy(at)
    said = [i.value for i in at.info if "stopped at step" in i.value]
    assert said and re.search(r"of 20,100: MCSE [\d.]+ ≤ target 2 and R-hat [\d.]+ ≤ 1\.01", said[0]), said
    r = at.session_state["networks.__result"].result
    assert r.llc_sem <= 2.0 and r.rhat <= 1.01 and r.trace.draw_loss.shape[1] < 20_000
