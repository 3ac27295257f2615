"""Every sample model's first click is healthy (issue 13.9): the card's first-click settings
(``first_run`` over ``default_sampler``, :func:`lltools.targets.cards.first_run_settings` —
what the Networks page and ``lltools estimate --model`` start from) with the default seed
pass the one health rule (:mod:`lltools.estimation.health`: acceptance ≥ 0.9, no divergence,
R-hat ≤ 1.01, bulk ESS ≥ 100).  Each run is a few seconds of CPU on one thread (≤ ~10 s,
chosen to complete within ~15 s in the app; benchmarks/RESULTS.md §11 "after").

Models whose first click could not be made healthy within that budget without trading
accuracy against a known λ are marked xfail (strict: the mark must go once they are fixed),
with the measured reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lltools.targets.cards import first_run_settings
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
#: Not healthy yet (measured at seed 0, CPU seconds of one thread; RESULTS.md §11).
NOT_YET: dict[str, str] = {
    "dln_8_6_6_4_r2": "at the card's γ = 3 the running λ̂ still drifts up after 4 000 steps (flat "
                      "directions relax on ~1/(εγ) ≈ 8 000 steps): 32 × (1 000 + 3 000) at ε 4e-5: R-hat "
                      "1.020, 17 s; γ 10: R-hat 1.023; healthy only from γ ≈ 50, where λ̂ = 11.1, not 13.5",
    "dln_100_50_50_100_r5": "R-hat 1.04, ESS 72 (4 × 3000 steps, 19 s); 8 × (400 + 800) at ε 2e-5: R-hat "
                            "1.16, ESS 33, 14 s; 1300 steps at ε 3e-5: R-hat 1.26 (12 500 parameters: "
                            "~11 ms per step at 8 chains)",
}
#: Of those, the ones cheap enough to run (and so show the first click still fails).
RUN_NOT_YET: set[str] = set()


def default_run(folder: Path):
    """The card's first-click run at seed 0 (what the Networks page runs on a first click)."""
    settings = first_run_settings(read_card(folder))
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
    # Where λ is known, a healthy first click must not have been bought with accuracy (e.g. a
    # larger γ, which pulls λ̂ down: rrr at γ 10 gives 11.78 ± 0.06 and at γ 20 10.97 against
    # λ = 12, where its reference setting gives 11.83 ± 0.11 and the first click 12.09 ± 0.06).
    llc = (read_card(MODELS[name]).get("theory") or {}).get("llc")
    if llc is not None:
        assert abs(result.llc_mean - llc) <= 0.015 * llc, (name, result.llc_mean, llc)
