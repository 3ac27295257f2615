"""The one health rule: :class:`Criteria`, the advice it gives, and its wording for help text.

A setting (one ε, γ, nβ) is *healthy* when no chain diverged, the mean MALA acceptance is
at least ``acceptance_min`` (primer §3: ≈ 0.9 or above indicates a healthy ε), the
rank-normalised split R-hat is at most ``rhat_max`` (Vehtari et al. 2021: 1.01), the bulk
ESS is at least ``ess_min`` and λ̂ is finite.  The same :class:`Criteria` drives

- the plain-language warnings of every result (:func:`advice`, via
  :func:`lltools.estimation.summary.summarize`),
- the calibration of :mod:`lltools.estimation.calibrate` (which settings are usable),
- the help text of the dashboard and the CLI (:func:`describe_criteria`).

This module is a leaf: it works on numbers, not traces.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Criteria:
    """Thresholds for a healthy, trustworthy setting.

    Attributes
    ----------
    acceptance_min : float
        Minimum mean MALA acceptance (primer §3: ≈ 0.9 or above indicates a healthy ε).
    rhat_max : float
        Maximum rank-normalised split R-hat (Vehtari et al. 2021 recommend 1.01; short
        calibration runs use 1.1, see :data:`CALIBRATION_CRITERIA`).
    ess_min : float
        Minimum bulk ESS: fewer effective draws means the chains barely move (ε too small
        for this run length), so λ̂ and its error bar are not trustworthy.
    max_diverged : int
        Diverged chains tolerated per setting (default none).
    frozen_atol : float
        A valid chain is "frozen" (ε too small or γ too large) when nβ·sd_t(L_t) and |λ̂_c|
        are both below this (units of λ).
    plateau_rtol : float
        Calibration: λ̂ values within this relative distance of each other count as "the same".
    plateau_nsem : float
        ... and within this many combined standard errors.
    known_nsem : float
        Calibration against a known T(nβ, γ): a setting reproduces T when λ̂ is within this
        many standard errors of T (stricter than the plateau check: λ̂ is compared with an
        exact number, and a step-size bias of a few SEM is what it must catch) ...
    known_rtol : float
        ... and within this relative distance of T (so an error bar too wide to show a large
        bias does not count as agreement).
    """

    acceptance_min: float = 0.9
    rhat_max: float = 1.01
    ess_min: float = 100.0
    max_diverged: int = 0
    frozen_atol: float = 1e-2
    plateau_rtol: float = 0.1
    plateau_nsem: float = 3.0
    known_nsem: float = 2.0
    known_rtol: float = 0.2


#: The default rule, used wherever no other :class:`Criteria` is passed.
DEFAULT_CRITERIA = Criteria()
#: The same rule with the R-hat and ESS thresholds loosened for the short exploratory runs of
#: a calibration grid (a few chains of a few hundred draws cannot reach ESS 100 or R-hat
#: 1.01 even when ε is right); the default of :mod:`lltools.estimation.calibrate`.
CALIBRATION_CRITERIA = replace(DEFAULT_CRITERIA, rhat_max=1.1, ess_min=50.0)


def describe_criteria(criteria: Criteria | None = None) -> str:
    """The rule as one sentence for help text, e.g. "Healthy: mean MALA acceptance ≥ 0.9,
    no diverged chains, R-hat ≤ 1.01 and bulk ESS ≥ 100."."""
    c = criteria or DEFAULT_CRITERIA
    div = "no diverged chains" if c.max_diverged == 0 else f"at most {c.max_diverged} diverged chains"
    return (
        f"Healthy: mean MALA acceptance ≥ {c.acceptance_min:g}, {div}, "
        f"R-hat ≤ {c.rhat_max:g} and bulk ESS ≥ {c.ess_min:g}."
    )


def describe_acceptance(criteria: Criteria | None = None) -> str:
    """"Mean MALA acceptance: ≥ 0.9 means ε is healthy." (the acceptance metric's help text)."""
    c = criteria or DEFAULT_CRITERIA
    return f"Mean MALA acceptance: ≥ {c.acceptance_min:g} means ε is healthy; lower ε if it is below."


@dataclass(frozen=True)
class SettingHealth:
    """The numbers of one setting that the health rule looks at.

    Attributes
    ----------
    num_chains : int
        Chains of the setting.
    diverged_steps : np.ndarray, shape (k,)
        Sorted steps at which its k diverged chains diverged.
    llc_mean, acceptance, rhat, ess : float
        λ̂, mean MALA acceptance, split R-hat and bulk ESS over the valid chains (NaN when
        undefined).
    num_frozen : int
        Valid chains that barely moved (see ``Criteria.frozen_atol``).
    """

    num_chains: int
    diverged_steps: np.ndarray
    llc_mean: float
    acceptance: float
    rhat: float
    ess: float
    num_frozen: int = 0


def steps_text(steps: np.ndarray, limit: int = 6) -> str:
    shown = ", ".join(str(int(s)) for s in steps[:limit])
    more = f", … ({len(steps) - limit} more)" if len(steps) > limit else ""
    word = "step" if len(steps) == 1 else "steps"
    return f"{word} {shown}{more}"


def advice(h: SettingHealth, criteria: Criteria | None = None) -> list[str]:
    """Plain-language warnings for one setting, each saying what to change (primer §3).

    Checks: all chains diverged; more than ``max_diverged`` diverged; λ̂ < 0 (w* may not be
    a local minimum); mean acceptance < ``acceptance_min`` (ε too large); R-hat >
    ``rhat_max`` (more draws/burn-in); frozen chains (ε too small or γ too large); bulk ESS
    < ``ess_min``.  A NaN statistic is not held against the setting.  Empty when nothing
    looked wrong.
    """
    c = criteria or DEFAULT_CRITERIA
    n = h.num_chains
    k = len(h.diverged_steps)
    if n > 0 and k == n:
        return [
            f"All chains diverged ({n} of {n}, at {steps_text(h.diverged_steps)}): λ̂ is undefined. "
            "Lower ε (e.g. by 10×); a larger γ also keeps chains near w*."
        ]
    out = []
    if k > c.max_diverged:
        out.append(
            f"{k} of {n} chains diverged (at {steps_text(h.diverged_steps)}); they are "
            "excluded from λ̂. Lower ε to keep every chain."
        )
    if h.llc_mean < 0:
        out.append(
            f"λ̂ = {h.llc_mean:.3g} < 0: w* may not be a local minimum; the sampler found lower loss. "
            "Train w* further (or check it is a minimum), or raise γ to stay closer to w*."
        )
    if h.acceptance < c.acceptance_min:
        out.append(
            f"Mean MALA acceptance {h.acceptance:.2f} < {c.acceptance_min:g}: ε too large: lower it."
        )
    if h.rhat > c.rhat_max:
        out.append(
            f"R-hat = {h.rhat:.3f} > {c.rhat_max:g}: chains disagree: more draws/burn-in "
            "(if it persists, chains may sit in different basins: raise γ)."
        )
    if h.num_frozen:
        out.append(
            f"{h.num_frozen} of {n} chains barely moved (λ̂_c ≈ 0): ε too small or γ too large: "
            "raise ε or lower γ."
        )
    if h.ess < c.ess_min:
        out.append(
            f"Effective sample size {h.ess:.0f} < {c.ess_min:.0f}: too few independent draws for "
            "a reliable λ̂ and error bar: run more draws or chains."
        )
    return out


__all__ = [
    "CALIBRATION_CRITERIA",
    "DEFAULT_CRITERIA",
    "Criteria",
    "SettingHealth",
    "advice",
    "describe_acceptance",
    "describe_criteria",
    "steps_text",
]
