"""Live numbers of a partial trace (what the pages show while sampling) and the z-score."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from lltools.estimation.live import gap_verdict, live_estimate, live_health, stop_reason, z_score
from lltools.estimation.summary import summarize
from tests.helpers import gamma_draws_trace, synthetic_trace


def _trace(**kwargs):
    # chain 0: excess nβ(L − L*) = 1 on every draw; chain 1: 3; burn-in columns have excess 50.
    loss = np.array([[0.5] * 4 + [0.01] * 6, [0.5] * 4 + [0.03] * 6])
    acc = np.array([[0.2] * 4 + [0.9] * 6, [0.2] * 4 + [0.7] * 6])
    return synthetic_trace(loss, nbeta=100.0, acceptance=acc, num_burnin=4, **kwargs)


def test_live_llc_and_acceptance_exclude_burn_in() -> None:
    now = live_estimate(_trace(filled=7))
    assert now.llc == pytest.approx(2.0)  # mean of the chains' λ̂_c = 1 and 3, burn-in excluded
    assert now.acceptance == pytest.approx(0.8)  # draws only: the final number counts no burn-in
    assert (now.diverged, now.num_chains, now.num_draws) == (0, 2, 3)


def test_live_equals_the_final_summary_on_a_complete_trace() -> None:
    trace = _trace()
    now, final = live_estimate(trace), summarize(trace).row()
    assert now.llc == pytest.approx(final["llc_mean"])
    assert now.acceptance == pytest.approx(final["acceptance"])


def test_in_burn_in_there_is_no_llc_but_an_acceptance() -> None:
    now = live_estimate(_trace(filled=3))
    assert now.llc is None and now.num_draws == 0
    assert now.acceptance == pytest.approx(0.2)


def test_diverged_chains_are_left_out() -> None:
    now = live_estimate(_trace(diverged_at=[-1, 5]))
    assert now.llc == pytest.approx(1.0) and now.diverged == 1
    assert now.acceptance == pytest.approx(0.9)
    assert live_estimate(_trace(diverged_at=[5, 5])).llc is None


def test_z_score() -> None:
    assert z_score(2.0, 0.5, 1.0) == pytest.approx(2.0)
    assert z_score(2.0, 0.3, 1.0, 0.4) == pytest.approx(2.0)  # √(0.3² + 0.4²) = 0.5
    for args in [(None, 0.5, 1.0), (2.0, None, 1.0), (2.0, 0.5, None), (2.0, 0.0, 1.0),
                 (math.nan, 0.5, 1.0), (2.0, math.nan, 1.0)]:
        assert z_score(*args) is None


def test_gap_verdict_never_says_run_longer_when_the_chains_are_healthy() -> None:
    """Issue 13.7: healthy chains far from T is step-size bias: "lower ε", never "run longer"."""
    verdict, advice = gap_verdict(10.0, healthy=True, acceptance=0.97)
    assert verdict == "different" and "Lower ε" in advice and "longer" not in advice
    verdict, advice = gap_verdict(-4.0, healthy=False, acceptance=0.5)
    assert verdict == "different" and "diagnostics" in advice and "longer" not in advice
    assert gap_verdict(1.5, healthy=True, acceptance=0.97) == ("consistent", None)
    assert gap_verdict(None, healthy=True, acceptance=0.97) == ("consistent", None)


def test_live_health_is_one_traffic_light_by_the_one_rule() -> None:
    """Issue 13.19: green for healthy draws, amber before convergence, red for a diverged chain."""
    healthy = gamma_draws_trace(num_chains=4, num_draws=2000)
    h = live_health(healthy)
    assert h.light == "green" and h.reasons == () and h.llc == pytest.approx(1.0, abs=5 * h.sem)
    assert h.target_reached(0.1) and not h.target_reached(h.sem / 2)
    assert live_health(gamma_draws_trace(num_chains=4, num_draws=3)).light == "amber"  # burn-in only
    short = live_health(gamma_draws_trace(num_chains=2, num_draws=10))
    assert short.light == "amber" and any("ESS" in r for r in short.reasons)
    broken = live_health(gamma_draws_trace(num_chains=4, num_draws=2000, diverged_at=[-1, -1, -1, 100]))
    assert broken.light == "red" and not broken.target_reached(10.0)


def test_stop_reason_is_the_target_sem_rule_and_says_why() -> None:
    """Issue 13.19: one stopping rule (CLI --target-sem and the pages): MCSE(λ̂) ≤ target and
    R-hat within the health rule; the reason names both numbers."""
    h = live_health(gamma_draws_trace(num_chains=4, num_draws=2000))
    reason = stop_reason(h, 0.1)
    assert reason == f"MCSE {h.sem:.3g} ≤ target 0.1 and R-hat {h.rhat:.3f} ≤ 1.01"
    assert stop_reason(h, 0.1, target_name="--target-sem").startswith(f"MCSE {h.sem:.3g} ≤ --target-sem 0.1")
    assert stop_reason(h, h.sem / 2) is None  # MCSE not small enough yet
    unconverged = replace(h, rhat=1.05)
    assert stop_reason(unconverged, 10.0) is None  # R-hat outside the rule
    assert stop_reason(replace(h, light="red"), 10.0) is None  # never stop "done" on a red light


def test_live_health_line_names_every_number() -> None:
    h = live_health(gamma_draws_trace(num_chains=4, num_draws=2000, diverged_at=[-1, -1, -1, 100]))
    line = h.line()
    assert line.startswith("1 chain(s) diverged") and "1 diverged" in line
    for part in ("R-hat", "ESS", "MCSE(λ̂)", "acceptance"):
        assert part in line
    assert live_health(gamma_draws_trace(num_chains=4, num_draws=2000)).line().startswith("healthy · R-hat")
    burnin = live_health(gamma_draws_trace(num_chains=4, num_draws=3, diverged_at=[1, -1, -1, -1]))
    assert burnin.light == "red" and burnin.diverged == 1  # a divergence in burn-in is red at once
