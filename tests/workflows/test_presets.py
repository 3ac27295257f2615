"""Each built-in potential's preset (the Toy page's and the CLI's defaults) gives a clean first
run: with the default seed, no warning under the one health rule (issue 13.9)."""

from __future__ import annotations

import pytest

from lltools.estimation.health import DEFAULT_CRITERIA
from lltools.targets.potentials import BUILTIN_POTENTIALS, DEFAULT_SAMPLER, potential_target, sampler_defaults
from lltools.workflows.estimate import estimate

DEFAULT_SEED = 0


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
