"""Each built-in potential's preset (the Toy page's and the CLI's defaults) gives a clean first
run: with the default seed, no warning under the one health rule (issue 13.9)."""

from __future__ import annotations

import pytest

from lltools.estimation.calibrate import assess, default_sweep, recommend
from lltools.estimation.health import DEFAULT_CRITERIA
from lltools.targets.potentials import BUILTIN_POTENTIALS, DEFAULT_SAMPLER, potential_target, sampler_defaults
from lltools.workflows.estimate import estimate

DEFAULT_SEED = 0


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUILTIN_POTENTIALS))
def test_preset_first_run_is_clean(name: str) -> None:
    settings = sampler_defaults(name)
    res = estimate(potential_target(name), **settings, seed=DEFAULT_SEED, device="cpu")
    assert res.warnings == [], res.warnings
    c = DEFAULT_CRITERIA
    assert res.rhat <= c.rhat_max and res.ess >= c.ess_min and res.acceptance >= c.acceptance_min
    assert not res.diverged_chains
    # Clean and right: λ̂ within 2 standard errors of the exact T(nβ, γ) (the step size's bias
    # stays below the run's noise), so the page does not report a significant gap either.
    assert res.expected_llc is not None
    assert abs(res.llc_mean - res.expected_llc) <= 2 * res.llc_sem


def test_presets_fall_back_to_the_shared_default() -> None:
    assert sampler_defaults("x**2*y**2 + x**6") == DEFAULT_SAMPLER
    assert sampler_defaults("x2y4")["epsilon"] == 5e-3  # aliases find the preset
    assert set(sampler_defaults("quartic")) == set(DEFAULT_SAMPLER)


def _default_sweep_table(target, sampler, *, network: bool = False):
    from lltools.workflows.sweep import sweep, with_expected

    sd = default_sweep(sampler, network=network)
    res = sweep(target, epsilon=sd.epsilon, gamma=sd.gamma, nbeta=sd.nbeta, chains=sd.chains, draws=sd.draws,
                burnin=sd.burnin, seed=DEFAULT_SEED, device="cpu")
    return with_expected(res.table, target)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUILTIN_POTENTIALS))
def test_default_sweep_of_each_potential_is_useful(name: str) -> None:
    """The Sensitivity page's default sweep (around the preset) has several healthy settings,
    and Calibrate finds one that reproduces the exact T (issue 13.8)."""
    table = _default_sweep_table(potential_target(name), sampler_defaults(name))
    assert int(assess(table)["healthy"].sum()) >= 3
    rec = recommend(table)
    assert rec.ok and rec.known_llc is not None


@pytest.mark.slow
def test_default_sweep_of_a_sample_model_is_useful() -> None:
    """The smallest sample model's default sweep (around its card's sampler) has several healthy
    settings (it had none: 2 chains × 300 draws; issue 13.8)."""
    from pathlib import Path

    from lltools.targets.models import load_sample_model

    folder = Path(__file__).resolve().parents[2] / "sample_models" / "deep_linear" / "rrr_6_4_5_r2"
    target = load_sample_model(folder)
    sampler = dict(target.card["default_sampler"])
    table = _default_sweep_table(target, sampler, network=True)
    assert int(assess(table)["healthy"].sum()) >= 3
    assert recommend(table).setting is not None
