"""Calibrate: the recommendation logic over hand-made sweep tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import synthetic_trace

from lltools.estimation.calibrate import Criteria, assess, default_grid, find_plateau, recommend
from lltools.estimation.health import CALIBRATION_CRITERIA, DEFAULT_CRITERIA, describe_criteria
from lltools.estimation.summary import summarize


def _row(
    setting: int,
    eps: float,
    gamma: float,
    llc: float,
    acc: float,
    *,
    rhat: float = 1.01,
    div: int = 0,
    sem: float = 0.01,
    nbeta: float = 100.0,
) -> dict:
    return {
        "setting": setting,
        "epsilon": eps,
        "gamma": gamma,
        "nbeta": nbeta,
        "llc_mean": llc,
        "llc_std": sem * 2,
        "llc_sem": sem,
        "rhat": rhat,
        "ess": 400.0,
        "acceptance": acc,
        "num_chains": 4,
        "n_diverged": div,
    }


def _typical() -> pd.DataFrame:
    """γ=1: ε=1e-4 frozen (low λ̂), 1e-3/3e-3/1e-2 plateau, 3e-2 low acceptance, 1e-1 diverges."""
    rows = [
        _row(0, 1e-4, 1.0, 0.55, 1.00),
        _row(1, 1e-3, 1.0, 0.97, 0.99),
        _row(2, 3e-3, 1.0, 0.99, 0.97),
        _row(3, 1e-2, 1.0, 1.01, 0.93),
        _row(4, 3e-2, 1.0, 1.20, 0.70),
        _row(5, 1e-1, 1.0, float("nan"), 0.10, div=4),
    ]
    return pd.DataFrame(rows)


def test_picks_largest_epsilon_on_plateau_and_explains() -> None:
    rec = recommend(_typical())
    assert rec.ok
    assert rec.epsilon == pytest.approx(1e-2)
    assert rec.gamma == 1.0 and rec.nbeta == 100.0
    assert rec.setting == 3
    assert rec.plateau == pytest.approx((1e-3, 3e-3, 1e-2))
    text = " ".join(rec.reasons)
    assert "largest step size on the plateau" in text
    assert "acceptance 0.70" in text  # why 3e-2 was rejected
    assert "diverged" in text  # why 1e-1 was rejected
    assert "drifts toward 0" in text  # why 1e-4 is off the plateau
    assert rec.as_settings() == {"epsilon": 1e-2, "gamma": 1.0, "nbeta": 100.0}
    assert "ε = 0.01" in rec.headline


def test_assess_flags_each_failure() -> None:
    out = assess(_typical())
    assert list(out["healthy"]) == [True, True, True, True, False, False]
    assert "acceptance 0.70 < 0.9" in out.loc[4, "problem"]
    assert out.loc[5, "problem"] == "all 4 chains diverged (ε too large)"
    assert out.loc[0, "problem"] == ""


def test_rhat_failure_and_nan_rhat_is_not_held_against() -> None:
    t = pd.DataFrame([_row(0, 1e-3, 1.0, 1.0, 0.95, rhat=1.5), _row(1, 2e-3, 1.0, 1.0, 0.95, rhat=math.nan)])
    out = assess(t)
    assert not out.loc[0, "rhat_ok"] and "R-hat 1.50" in out.loc[0, "problem"]
    assert out.loc[1, "rhat_ok"]


def test_float32_noise_is_cleaned() -> None:
    t = pd.DataFrame(
        [
            _row(0, 1e-3, 0.3199999928474426, 1.0, 0.99),
            _row(1, 2.0000000949949026e-3, 0.3199999928474426, 1.0, 0.95),
        ]
    )
    rec = recommend(t)
    assert rec.gamma == 0.32 and rec.epsilon == 0.002


def test_low_ess_is_unhealthy() -> None:
    t = pd.DataFrame([_row(0, 1e-5, 1.0, 0.2, 1.0), _row(1, 1e-3, 1.0, 1.0, 0.95)])
    t.loc[0, "ess"] = 12.0
    out = assess(t)
    assert not out.loc[0, "healthy"] and "12 effective draws" in out.loc[0, "problem"]
    assert out.loc[1, "healthy"]


def test_prefers_weakest_working_gamma() -> None:
    rows = []
    s = 0
    for gamma, llc, rhat in ((0.1, 1.0, 1.6), (1.0, 0.98, 1.01), (10.0, 0.8, 1.0)):
        for eps in (1e-3, 3e-3):
            rows.append(_row(s, eps, gamma, llc, 0.97, rhat=rhat))
            s += 1
    rec = recommend(pd.DataFrame(rows))
    assert rec.gamma == 1.0 and rec.epsilon == 3e-3
    text = " ".join(rec.reasons)
    assert "γ = 0.1 was not usable" in text and "R-hat" in text
    assert "larger γ (10)" in text


def test_no_plateau_gives_tentative_answer() -> None:
    t = pd.DataFrame(
        [_row(0, 1e-4, 1.0, 0.3, 1.0), _row(1, 1e-3, 1.0, 0.9, 0.95), _row(2, 1e-2, 1.0, 2.0, 0.5)]
    )
    rec = recommend(t)
    assert not rec.ok
    assert rec.epsilon == 1e-3
    assert "no plateau" in rec.headline


def test_nothing_healthy_says_what_to_change() -> None:
    t = pd.DataFrame([_row(0, 1e-2, 1.0, math.nan, 0.1, div=4), _row(1, 1e-1, 1.0, math.nan, 0.0, div=4)])
    rec = recommend(t)
    assert not rec.ok and rec.epsilon is None and rec.as_settings() == {}
    assert "smaller" in " ".join(rec.reasons)
    t2 = pd.DataFrame([_row(0, 1e-2, 1.0, 1.0, 0.5), _row(1, 1e-1, 1.0, 1.3, 0.2)])
    assert "decrease ε" in " ".join(recommend(t2).reasons)


def test_multiple_nbeta_uses_requested_one() -> None:
    rows = [
        _row(0, 1e-3, 1.0, 1.0, 0.99, nbeta=10),
        _row(1, 3e-3, 1.0, 1.0, 0.95, nbeta=10),
        _row(2, 1e-4, 1.0, 1.0, 0.99, nbeta=1000),
        _row(3, 3e-4, 1.0, 1.0, 0.95, nbeta=1000),
    ]
    t = pd.DataFrame(rows)
    assert recommend(t, nbeta=900).epsilon == 3e-4
    assert recommend(t, nbeta=12).epsilon == 3e-3
    assert recommend(t).nbeta == 1000  # tie on counts -> largest nβ


def test_plateau_needs_relative_and_standard_error_agreement() -> None:
    """Two λ̂ agree only within plateau_rtol *and* plateau_nsem SEM: a wide error bar does not
    make a 40% gap a plateau, and a 5% gap of 5 SEM is a real dependence on ε."""
    def two(b: float, sem: float) -> pd.DataFrame:
        rows = [_row(0, 1e-3, 1.0, 1.0, 0.99, sem=sem), _row(1, 2e-3, 1.0, b, 0.99, sem=sem)]
        return assess(pd.DataFrame(rows))

    c = Criteria(plateau_rtol=0.1, plateau_nsem=3)
    assert find_plateau(two(1.05, 0.1), c) == [0, 1]
    assert find_plateau(two(1.4, 0.1), c) == []  # within 3 SEM, but 40% apart
    assert find_plateau(two(1.05, 0.007), c) == []  # within 10%, but 5 SEM apart
    assert find_plateau(two(1.05, 0.007), Criteria(plateau_rtol=0.1, plateau_nsem=6)) == [0, 1]


def _biased_quartic(with_t: bool = True, error: float = 0.0) -> pd.DataFrame:
    """x⁴ + y⁴ at nβ = 100 as a short calibration sees it (issue 13.8): every setting healthy,
    the largest ε biased upward (0.587 ± 0.028 against T = 0.5) but within 3 SEM of its
    neighbours' wide error bars."""
    t = pd.DataFrame(
        [
            _row(0, 1e-3, 1.0, 0.49, 0.99, sem=0.03),
            _row(1, 3e-3, 1.0, 0.50, 0.97, sem=0.03),
            _row(2, 1e-2, 1.0, 0.587, 0.93, sem=0.028),
        ]
    )
    if with_t:
        t["expected_llc"], t["expected_llc_error"] = 0.5, error
    return t


def test_calibrates_against_a_known_t() -> None:
    rec = recommend(_biased_quartic())
    assert rec.ok and rec.setting == 1 and rec.epsilon == 3e-3
    assert rec.known_llc == 0.5
    assert "calibrated against the known T = 0.5" in rec.headline
    text = " ".join(rec.reasons)
    assert "Rejected larger ε = 0.01: λ̂ = 0.587 is 3.1 SEM (17%) above T = 0.5" in text
    assert rec.plateau == (1e-3, 3e-3)
    assert list(rec.table["consistent"]) == [True, True, False]


def test_without_t_a_biased_largest_epsilon_is_off_the_plateau() -> None:
    """No known T: the plateau check alone must not accept the biased 0.587 (17% off)."""
    rec = recommend(_biased_quartic(with_t=False))
    assert rec.ok and rec.epsilon == 3e-3 and rec.known_llc is None
    assert "calibrated" not in rec.headline


def test_an_inexact_t_is_not_calibrated_against() -> None:
    rec = recommend(_biased_quartic(error=0.01))  # error 2% of T: a reference, not the answer
    assert rec.known_llc is None and "calibrated" not in rec.headline


def test_known_t_prefers_the_weakest_gamma_then_the_largest_consistent_epsilon() -> None:
    rows = [
        _row(0, 1e-3, 0.1, 0.70, 0.99, rhat=1.5),  # γ = 0.1: chains wander (unhealthy)
        _row(1, 3e-3, 0.1, 0.70, 0.99, rhat=1.5),
        _row(2, 1e-3, 1.0, 0.30, 0.99, sem=0.03),  # frozen: far below T
        _row(3, 3e-3, 1.0, 0.49, 0.98, sem=0.03),
        _row(4, 1e-2, 1.0, 0.52, 0.95, sem=0.02),
        _row(5, 3e-2, 1.0, 0.60, 0.91, sem=0.02),  # biased: 5 SEM above T
        _row(6, 1e-3, 10.0, 0.40, 0.99, sem=0.03),  # consistent with its own T, but stronger γ
    ]
    t = pd.DataFrame(rows)
    t["expected_llc"] = [0.5] * 6 + [0.4]
    rec = recommend(t)
    assert rec.gamma == 1.0 and rec.epsilon == 1e-2 and rec.plateau == (3e-3, 1e-2)
    text = " ".join(rec.reasons)
    assert "Weaker localisation γ = 0.1" in text and "Rejected larger ε = 0.03" in text


def test_known_t_that_no_setting_reproduces() -> None:
    t = pd.DataFrame([_row(0, 1e-3, 1.0, 0.60, 0.99, sem=0.01), _row(1, 3e-3, 1.0, 0.70, 0.97, sem=0.01)])
    t["expected_llc"] = 0.5
    rec = recommend(t)
    assert not rec.ok and rec.epsilon == 1e-3 and rec.known_llc == 0.5
    assert rec.headline.startswith("No healthy setting reproduces the known T = 0.5")
    assert "smaller ε" in " ".join(rec.reasons)


def test_calibrate_a_real_sweep_against_the_exact_t() -> None:
    """x⁴ + y⁴: the pick's λ̂ reproduces the quadrature T(nβ, γ) (within 2 SEM and 20%), and
    the biased ε = 2e-2 (λ̂ ≈ 0.67 against T = 0.483) is never the answer."""
    from lltools.targets.potentials import potential_target
    from lltools.workflows.estimate import expected_llc
    from lltools.workflows.sweep import sweep, with_expected

    target = potential_target("x**4 + y**4")
    res = sweep(target, epsilon=[3e-3, 1e-2, 2e-2], gamma=[1.0], nbeta=[100.0], chains=8, draws=1000,
                burnin=200, seed=0, device="cpu")
    lenient = Criteria(acceptance_min=0.8, rhat_max=1.1, ess_min=50.0, max_diverged=1)
    rec = recommend(with_expected(res.table, target), lenient)
    t = expected_llc(target, 100.0, 1.0).value
    assert rec.ok and rec.known_llc == pytest.approx(t)
    assert rec.epsilon < 2e-2
    assert abs(rec.llc_mean - t) <= min(2 * rec.llc_sem, 0.2 * t)
    assert "calibrated against the known T" in rec.headline


def test_errors_on_bad_tables() -> None:
    with pytest.raises(ValueError, match="empty"):
        recommend(pd.DataFrame())
    with pytest.raises(ValueError, match="missing columns"):
        assess(pd.DataFrame({"epsilon": [1.0]}))


def test_default_grid_is_log_spaced_around_current() -> None:
    g = default_grid(1e-3, 1.0, n_epsilon=5, n_gamma=3)
    assert g["epsilon"] == [1e-4, 3.2e-4, 1e-3, 3.2e-3, 1e-2]
    assert g["gamma"] == [0.32, 1.0, 3.2]
    assert default_grid(1e-3, 0.0)["gamma"] == [0.0]
    with pytest.raises(ValueError):
        default_grid(0.0, 1.0)


def test_one_health_rule_for_warnings_calibration_and_help_text() -> None:
    """Acceptance 0.85 fails the same threshold in the calibration flags, the result warnings
    and the help sentence; 0.95 passes all three."""
    assert CALIBRATION_CRITERIA.acceptance_min == DEFAULT_CRITERIA.acceptance_min == 0.9
    assert "acceptance ≥ 0.9," in describe_criteria() and "R-hat ≤ 1.01" in describe_criteria()
    assert "R-hat ≤ 1.1 " in describe_criteria(CALIBRATION_CRITERIA)
    gen = np.random.default_rng(0)
    loss = gen.gamma(1.0, 1.0, size=(8, 1000)) / 10.0
    for acc, bad in ((0.85, True), (0.95, False)):
        summary = summarize(synthetic_trace(loss, nbeta=10.0, acceptance=acc))
        warned = any("Mean MALA acceptance" in w for w in summary.warnings)
        flagged = not bool(assess(summary.table)["acceptance_ok"].iloc[0])
        assert warned == flagged == bad


def test_default_sweep_is_centred_on_the_target_defaults() -> None:
    from lltools.estimation.calibrate import default_sweep

    pot = default_sweep({"epsilon": 3e-3, "gamma": 1.0, "nbeta": 100.0, "chains": 16, "draws": 3000,
                         "burnin": 500})
    assert pot.epsilon == (1e-3, 3e-3, 9e-3, 3e-2) and pot.gamma == (0.1, 1.0, 10.0) and pot.nbeta == (100.0,)
    assert (pot.chains, pot.draws, pot.burnin) == (4, 3000, 500)
    net = default_sweep({"epsilon": 1e-4, "gamma": 5.0, "nbeta": 587.048, "chains": 8, "draws": 6000,
                         "burnin": 2000}, network=True)
    assert net.epsilon == (3e-5, 1e-4, 3e-4) and net.gamma == (1.7, 5.0, 15.0) and net.nbeta == (587.048,)
    assert (net.chains, net.draws, net.burnin) == (4, 2000, 500)
    assert default_sweep({"epsilon": 1e-3, "gamma": 0.0, "nbeta": 10.0, "chains": 2, "draws": 100,
                          "burnin": 10}).gamma == (0.0,)
