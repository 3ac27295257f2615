"""Every sample model's default run is healthy (issue 13.9): the card's ``default_sampler`` with
the default seed passes the one health rule (:mod:`lltools.estimation.health`: acceptance
≥ 0.9, no divergence, R-hat ≤ 1.01, bulk ESS ≥ 100) — a teacher's first click on Networks gives
a clean, converged result.  Each run is a few seconds of CPU (the defaults are also chosen to
finish within ~15 s in the app, see benchmarks/RESULTS.md "Latency").

Models whose defaults could not yet be made healthy (without changing γ) are marked xfail
(strict: the mark must go once they are fixed), with the measured reason.  rrr_6_4_5_r2 is
healthy but takes ~18 s of CPU (its R-hat, 1.0096, leaves no room to shorten the run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lltools.targets.models import load_sample_model, read_card
from lltools.workflows.estimate import estimate

ROOT = Path(__file__).resolve().parents[2] / "sample_models"
MODELS = {
    "dln_8_6_6_4_r2": ROOT / "deep_linear" / "dln_8_6_6_4_r2",
    "rrr_6_4_5_r2": ROOT / "deep_linear" / "rrr_6_4_5_r2",
    "dln_100_50_50_100_r5": ROOT / "deep_linear" / "dln_100_50_50_100_r5",
    "digits_mlp": ROOT / "digits_mlp",
    "modular_addition": ROOT / "modular_addition",
    "induction_transformer": ROOT / "induction_transformer",
}
#: Not healthy yet (what was measured at seed 0, CPU seconds of one thread; RESULTS.md §11).
#: A fix that changes γ changes what λ̂ measures and the card's γ is also the shipped
#: trajectory's (Trajectories page, tests/test_modular.py), so γ was left alone.
NOT_YET: dict[str, str] = {
    "dln_8_6_6_4_r2": "R-hat 1.021 (8 × 6000 steps, 26 s); 2000–2500 steps at ε 5–6e-5 give R-hat 1.02–1.03",
    "dln_100_50_50_100_r5": "R-hat 1.04, ESS 72 (4 × 3000 steps, 20 s); 1300 steps at ε 3e-5: R-hat 1.26",
    "modular_addition": "acceptance 0.88, R-hat 1.09, ESS 39 at the trajectory's γ = 200; healthy at "
                        "γ = 2000, ε 1.5e-5, 500 + 1500 steps (7.5 s) but λ̂ then means 154, not 570",
    "induction_transformer": "acceptance 0.886, R-hat 1.011 (17 s); healthy at γ = 300, ε 1.2e-4, 60 + 220 "
                             "steps (8.7 s) but λ̂ then means 115, not 237",
}
#: Of those, the ones cheap enough to run (and so show the old defaults still fail).
RUN_NOT_YET = {"modular_addition"}


def default_run(folder: Path):
    """The card's default run at seed 0 (what the Networks page runs on a first click)."""
    settings = dict(read_card(folder).get("default_sampler") or {})
    batch_size = settings.pop("batch_size", None)
    target = load_sample_model(folder, batch_size=batch_size)
    return estimate(target, seed=0, **{k: v for k, v in settings.items() if v is not None})


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.xfail(reason=NOT_YET[n], strict=True, run=n in RUN_NOT_YET))
     if n in NOT_YET else n for n in MODELS],
)
def test_default_run_is_healthy(name: str) -> None:
    result = default_run(MODELS[name])
    assert not result.warnings, (name, result.warnings)
