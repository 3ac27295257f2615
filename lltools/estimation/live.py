"""What a page shows while a run is still sampling, and how far an estimate is from a reference.

The live numbers are the same statistics as the final :func:`lltools.estimation.summary.summarize`
(so the value shown at the last chunk is the value shown when the run finishes): λ̂ is the mean
over the valid chains of the running estimate at their latest draw, and the acceptance is the
mean over the *draws* of the valid chains (burn-in excluded, as in the final number; during
burn-in, the burn-in steps so far).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lltools.estimation.diagnostics import acceptance_mean, nanmean
from lltools.estimation.health import DEFAULT_CRITERIA, Criteria
from lltools.estimation.llc import llc_per_chain
from lltools.estimation.select import host, valid_chains
from lltools.estimation.summary import summarize
from lltools.sampling.trace import Trace

__all__ = [
    "LiveEstimate", "LiveHealth", "gap_verdict", "live_estimate", "live_health", "stop_reason", "z_score",
]


@dataclass(frozen=True)
class LiveEstimate:
    """The numbers of a partial trace.

    Attributes
    ----------
    llc : float or None
        λ̂ so far (mean over valid chains of λ̂_c); ``None`` in burn-in or when every chain diverged.
    acceptance : float or None
        Mean MALA acceptance so far (draws only once there are draws); ``None`` when not computed.
    diverged : int
        Chains that have diverged so far.
    num_chains : int
        Chains in the trace.
    num_draws : int
        Draws recorded so far (columns after burn-in).
    """

    llc: float | None
    acceptance: float | None
    diverged: int
    num_chains: int
    num_draws: int


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def live_estimate(trace: Trace) -> LiveEstimate:
    """λ̂ so far, acceptance so far and divergences of a partial (or finished) trace.

    Parameters
    ----------
    trace : Trace
        Losses of shape ``(C, T)`` recorded so far (burn-in columns included).
    """
    h = host(trace)
    num_draws = int(h.draw_mask.sum())
    valid = valid_chains(h)
    llc = _finite(float(np.nanmean(llc_per_chain(h).numpy()))) if num_draws and valid.any() else None
    if num_draws:
        acc = _finite(acceptance_mean(h))
    elif valid.any():
        acc = _finite(nanmean(h.acceptance[valid]))
    else:
        acc = None
    return LiveEstimate(
        llc=llc,
        acceptance=acc,
        diverged=int((h.diverged_at >= 0).sum()),
        num_chains=h.num_chains,
        num_draws=num_draws,
    )


def z_score(
    estimate: float | None, sem: float | None, reference: float | None, reference_err: float = 0.0
) -> float | None:
    """(λ̂ − reference) / √(sem² + reference_err²), or ``None`` when it cannot be formed.

    ``reference_err`` is the reference's own error bar (0 for an exact value; a quadrature's
    error estimate for an approximate T).  ``None`` when any input is missing or non-finite,
    or the combined error is not positive.
    """
    if estimate is None or sem is None or reference is None:
        return None
    err = math.sqrt(sem**2 + reference_err**2) if math.isfinite(sem) else float("nan")
    if not (math.isfinite(estimate) and math.isfinite(reference) and math.isfinite(err)) or err <= 0:
        return None
    return (estimate - reference) / err


#: |z| at or above which λ̂ and a reference are "significantly different".
Z_SIGNIFICANT = 3.0


def gap_verdict(
    z: float | None, *, healthy: bool, acceptance: float | None, criteria: Criteria | None = None
) -> tuple[str, str | None]:
    """What λ̂ − reference = ``z`` standard errors means, and the one thing to do about it.

    Returns ``(verdict, advice)``: ``"consistent"`` (|z| < 3, advice ``None``) or
    ``"different"``.  When the diagnostics are healthy (chains agree, enough effective draws,
    acceptance at or above the criteria's minimum) more draws only shrink the error bar
    around the same biased value: the cause is the step size's discretisation bias, so the
    advice is "lower ε" — never "run longer".  When they are not healthy, the advice is the
    diagnostics' own (fix them first).
    """
    c = criteria or DEFAULT_CRITERIA
    if z is None or not math.isfinite(z) or abs(z) < Z_SIGNIFICANT:
        return "consistent", None
    if healthy and acceptance is not None and acceptance >= c.acceptance_min:
        return "different", (
            "The diagnostics are healthy, so more draws will not close this gap: it is the step "
            "size's bias. Lower ε (e.g. by 3×) and run again."
        )
    return "different", "Fix the problems the diagnostics report first (they usually point at ε)."


@dataclass(frozen=True)
class LiveHealth:
    """The one health rule applied to the draws so far (a traffic light while sampling).

    Attributes
    ----------
    light : {"green", "amber", "red"}
        red: a chain diverged or λ̂ < 0 or acceptance below the rule's minimum; amber: not
        converged yet (R-hat or ESS short of the rule, or too few draws); green: healthy.
    llc, sem, rhat, ess, acceptance : float
        λ̂ so far with its standard error, R-hat, bulk ESS and mean acceptance (NaN when unknown).
    reasons : tuple of str
        Why the light is not green (empty when it is).
    diverged : int
        Chains that have diverged so far.
    """

    light: str
    llc: float
    sem: float
    rhat: float
    ess: float
    acceptance: float
    reasons: tuple[str, ...]
    diverged: int = 0

    def line(self) -> str:
        """The verdict in one line: why (or "healthy"), then R-hat, ESS, MCSE(λ̂), acceptance and
        divergences, e.g. "ESS 61 < 100 · R-hat 1.004 · ESS 61 · MCSE(λ̂) 0.031 · acceptance 0.97 ·
        0 diverged"."""

        def num(x: float, spec: str) -> str:
            return format(x, spec) if math.isfinite(x) else "–"

        why = "healthy" if not self.reasons else "; ".join(self.reasons)
        return (f"{why} · R-hat {num(self.rhat, '.3f')} · ESS {num(self.ess, '.0f')} · "
                f"MCSE(λ̂) {num(self.sem, '.3g')} · acceptance {num(self.acceptance, '.2f')} · "
                f"{self.diverged} diverged")

    def target_reached(self, target_sem: float, criteria: Criteria | None = None) -> bool:
        """λ̂'s standard error at or below ``target_sem`` with R-hat within the rule (and no red)."""
        c = criteria or DEFAULT_CRITERIA
        return (self.light != "red" and math.isfinite(self.sem) and self.sem <= target_sem
                and math.isfinite(self.rhat) and self.rhat <= c.rhat_max)


def stop_reason(
    health: LiveHealth, target_sem: float, criteria: Criteria | None = None, *, target_name: str = "target"
) -> str | None:
    """The stopping rule of ``--target-sem`` and of the pages' "stop when MCSE(λ̂) ≤ target".

    Returns why to stop — e.g. "MCSE 0.012 ≤ target 0.02 and R-hat 1.004 ≤ 1.01" — once
    :meth:`LiveHealth.target_reached` holds, else ``None``.  ``target_name`` names the target
    in that sentence (the CLI says ``--target-sem``).
    """
    c = criteria or DEFAULT_CRITERIA
    if not health.target_reached(target_sem, c):
        return None
    return (f"MCSE {health.sem:.3g} ≤ {target_name} {target_sem:g} and "
            f"R-hat {health.rhat:.3f} ≤ {c.rhat_max:g}")


def live_health(trace: Trace, criteria: Criteria | None = None) -> LiveHealth:
    """:class:`LiveHealth` of a partial (single-setting) trace, by the one health rule."""
    c = criteria or DEFAULT_CRITERIA
    nan = float("nan")
    if int(trace.draw_mask.sum()) < 4:
        diverged = int((trace.diverged_at >= 0).sum())
        if diverged > c.max_diverged:
            return LiveHealth("red", nan, nan, nan, nan, nan, (f"{diverged} chain(s) diverged",), diverged)
        return LiveHealth("amber", nan, nan, nan, nan, nan, ("still in burn-in",), diverged)
    row = summarize(trace, c).row()
    get = {k: float(row[k]) if row.get(k) is not None else nan for k in ("llc_mean", "llc_sem", "rhat", "ess",
                                                                        "acceptance")}
    red, amber = [], []
    if int(row.get("n_diverged") or 0) > c.max_diverged:
        red.append(f"{int(row['n_diverged'])} chain(s) diverged")
    if math.isfinite(get["llc_mean"]) and get["llc_mean"] < 0:
        red.append("λ̂ < 0")
    if math.isfinite(get["acceptance"]) and get["acceptance"] < c.acceptance_min:
        red.append(f"acceptance {get['acceptance']:.2f} < {c.acceptance_min:g}")
    if not (math.isfinite(get["rhat"]) and get["rhat"] <= c.rhat_max):
        amber.append(f"R-hat {get['rhat']:.3f} > {c.rhat_max:g}")
    if not (math.isfinite(get["ess"]) and get["ess"] >= c.ess_min):
        amber.append(f"ESS {get['ess']:.0f} < {c.ess_min:g}")
    light = "red" if red else "amber" if amber else "green"
    return LiveHealth(light, get["llc_mean"], get["llc_sem"], get["rhat"], get["ess"], get["acceptance"],
                      tuple(red + amber), int(row.get("n_diverged") or 0))
