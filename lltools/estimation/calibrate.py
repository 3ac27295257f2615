"""Recommend SGLD settings from a small batched sweep (the dashboard's Calibrate action).

A pure function over a sweep table (one row per setting, the columns of
``lltools.workflows.sweep.sweep(...).table``): no sampling happens here, so the logic is unit
tested on hand-made tables.

The rules follow the failure signatures of the primer (§3):

1. **Healthy** — the one health rule of :mod:`lltools.estimation.health`
   (:class:`~lltools.estimation.health.Criteria`, the same that drives every result's
   warnings): no chain diverged, the mean MALA acceptance is at least ``acceptance_min``
   (≈ 0.9: the Langevin step is accurate), R-hat is at most ``rhat_max`` (chains agree),
   the bulk ESS is at least ``ess_min`` (the chains move), and λ̂ is finite.  The default
   is :data:`~lltools.estimation.health.CALIBRATION_CRITERIA` (R-hat ≤ 1.1, ESS ≥ 50 for
   the short runs of a grid).
2. **Plateau** — for a fixed (γ, nβ), λ̂ should not depend on ε once ε is small enough:
   too large an ε biases λ̂ upward, too small an ε freezes the chains (λ̂ drifts toward 0
   within a short run).  Among the healthy settings of a group, the plateau is the longest
   run of consecutive step sizes whose λ̂ agree within ``plateau_rtol`` (relative) *and*
   ``plateau_nsem`` standard errors (both: a wide error bar must not hide a bias).
3. **Pick** — the weakest localisation γ whose group has a plateau (γ too large shrinks
   λ̂), and within it the *largest* ε on the plateau (fastest mixing for the same answer).

**Known answer.**  Where the table carries the exact finite-nβ target T(nβ, γ) of each row
(columns ``expected_llc`` and, optionally, ``expected_llc_error``: the 2-D quadrature of a
potential; never a reference formula), a plateau is not needed: a setting is *consistent*
when it is healthy and its λ̂ agrees with T (within ``known_nsem`` standard errors and
``known_rtol`` relatively).  The pick is the weakest γ with a consistent setting, and
there the largest consistent ε; the recommendation says it was calibrated against T.  Too
large an ε, whose bias a short run's wide error bar would hide from the plateau check, is
then rejected by name.

:func:`recommend` returns the choice and the reasons in plain words; :func:`assess`
returns the per-row flags used for the heatmaps' "healthy region".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lltools.estimation.health import CALIBRATION_CRITERIA, Criteria

REQUIRED_COLUMNS = ("setting", "epsilon", "gamma", "nbeta", "llc_mean", "llc_sem", "rhat", "acceptance")
#: T counts as known (calibrate against it) when its error estimate is at most this fraction of |T|.
KNOWN_T_RTOL = 1e-3


@dataclass
class Recommendation:
    """The outcome of :func:`recommend`.

    Attributes
    ----------
    ok : bool
        False when no setting is healthy; then ``epsilon``/``gamma``/``nbeta`` hold the
        least-bad fallback (or ``None``) and ``reasons`` say what to try next.
    setting : int or None
        The ``setting`` id of the chosen row.
    epsilon, gamma, nbeta : float or None
        The recommended hyperparameters.
    llc_mean, llc_sem : float or None
        λ̂ at the chosen setting.
    plateau : tuple of float
        The ε values of the chosen γ's plateau.
    headline : str
        One sentence for the UI.
    reasons : list of str
        Why this setting, and why its neighbours were rejected.
    table : DataFrame
        The input table with the per-row flags of :func:`assess` and a ``plateau`` column
        (and, against a known T, ``known_llc``, ``gap_sem`` and ``consistent``).
    known_llc : float or None
        The known T(nβ, γ) of the chosen setting when the choice was calibrated against it.
    """

    ok: bool
    setting: int | None
    epsilon: float | None
    gamma: float | None
    nbeta: float | None
    llc_mean: float | None
    llc_sem: float | None
    plateau: tuple[float, ...]
    headline: str
    reasons: list[str]
    table: pd.DataFrame = field(repr=False)
    known_llc: float | None = None

    def __post_init__(self) -> None:
        # Hyperparameters read back from a float32 trace carry noise (0.3199999928): clean them.
        for name in ("epsilon", "gamma", "nbeta"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _clean(value))
        self.plateau = tuple(_clean(e) for e in self.plateau)

    def as_settings(self) -> dict[str, float]:
        """``{"epsilon", "gamma", "nbeta"}`` ready to pass to ``estimate`` (empty if none)."""
        if self.epsilon is None or self.gamma is None or self.nbeta is None:
            return {}
        return {"epsilon": self.epsilon, "gamma": self.gamma, "nbeta": self.nbeta}


def default_grid(
    epsilon: float,
    gamma: float,
    *,
    n_epsilon: int = 5,
    n_gamma: int = 3,
    epsilon_span: float = 100.0,
    gamma_span: float = 10.0,
) -> dict[str, list[float]]:
    """A log-spaced calibration grid centred (in log space) on the current ε and γ.

    ε spans ``epsilon_span`` (two decades by default) and γ spans ``gamma_span``.
    Returns ``{"epsilon": [...], "gamma": [...]}`` with rounded, increasing values.
    """
    if epsilon <= 0:
        raise ValueError("epsilon must be > 0")
    if gamma < 0:
        raise ValueError("gamma must be >= 0")
    half = math.sqrt(epsilon_span)
    eps = np.geomspace(epsilon / half, epsilon * half, max(n_epsilon, 1)) if n_epsilon > 1 else [epsilon]
    if gamma == 0 or n_gamma <= 1:
        gam = [gamma]
    else:
        h = math.sqrt(gamma_span)
        gam = np.geomspace(gamma / h, gamma * h, n_gamma)
    return {"epsilon": [_round_sig(e) for e in eps], "gamma": [_round_sig(g) for g in gam]}


@dataclass(frozen=True)
class SweepDefaults:
    """The default sweep grid of a target and its budget per setting.

    Attributes
    ----------
    epsilon, gamma, nbeta : tuple of float
        The grid's axes (increasing).
    chains, draws, burnin : int
        Chains per setting, draws after burn-in, burn-in steps.
    """

    epsilon: tuple[float, ...]
    gamma: tuple[float, ...]
    nbeta: tuple[float, ...]
    chains: int
    draws: int
    burnin: int


#: Default sweep around a potential's preset: ε from 1/3× (healthy, slower) to 10× (biased, then
#: low acceptance or diverged), γ over two decades; a network's grid is narrower and its budget
#: capped (every setting is more chains of the whole model).
POTENTIAL_SWEEP = {"epsilon": (1 / 3, 1.0, 3.0, 10.0), "gamma": (0.1, 1.0, 10.0), "chains": 4}
NETWORK_SWEEP = {"epsilon": (1 / 3, 1.0, 3.0), "gamma": (1 / 3, 1.0, 3.0), "chains": 4, "draws": 2000,
                 "burnin": 500}


def default_sweep(sampler: Mapping[str, Any], *, network: bool = False) -> SweepDefaults:
    """The default sweep of a target, centred on its default sampler settings.

    ``sampler`` holds ``epsilon, gamma, nbeta, chains, draws, burnin`` (a potential's preset,
    :func:`lltools.targets.potentials.sampler_defaults`, or a model card's
    ``default_sampler`` with nβ resolved).  Chosen so the default sweep has several healthy
    settings (the centre column is the validated default) beside ones that show what goes
    wrong (see :data:`POTENTIAL_SWEEP`, :data:`NETWORK_SWEEP`).
    """
    plan = NETWORK_SWEEP if network else POTENTIAL_SWEEP
    eps, gamma = float(sampler["epsilon"]), float(sampler["gamma"])
    draws, burnin = int(sampler["draws"]), int(sampler["burnin"])
    return SweepDefaults(
        epsilon=tuple(_round_sig(eps * f, 1) for f in plan["epsilon"]),
        gamma=(gamma,) if gamma == 0 else tuple(_round_sig(gamma * f, 2) for f in plan["gamma"]),
        nbeta=(_round_sig(float(sampler["nbeta"]), 6),),
        chains=min(int(sampler["chains"]), int(plan["chains"])),
        draws=min(draws, int(plan.get("draws", draws))),
        burnin=min(burnin, int(plan.get("burnin", burnin))),
    )


def _clean(x: float) -> float:
    """Drop float32 noise from a hyperparameter read back from a trace (0.3199999928 → 0.32)."""
    return float(f"{float(x):.7g}")


def _round_sig(x: float, sig: int = 2) -> float:
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{sig}g}")


def _check(table: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"sweep table is missing columns: {', '.join(missing)}")


def _diverged(table: pd.DataFrame) -> pd.Series:
    if "n_diverged" in table:
        return table["n_diverged"].fillna(0).astype(int)
    return pd.Series(0, index=table.index)


def assess(table: pd.DataFrame, criteria: Criteria | None = None) -> pd.DataFrame:
    """Per-setting health flags.

    Adds the boolean columns ``acceptance_ok``, ``divergence_ok``, ``rhat_ok``,
    ``ess_ok``, ``finite_ok``, ``healthy`` and a text column ``problem`` (empty when
    healthy) that names what failed and what to change.  A NaN R-hat or ESS (e.g. a single
    chain, or a table without an ``ess`` column) is not held against a setting.
    """
    _check(table)
    c = criteria or CALIBRATION_CRITERIA
    out = table.copy()
    n_div = _diverged(out)
    acc = out["acceptance"].astype(float)
    rhat = out["rhat"].astype(float)
    llc = out["llc_mean"].astype(float)
    out["acceptance_ok"] = acc >= c.acceptance_min
    out["divergence_ok"] = n_div <= c.max_diverged
    out["rhat_ok"] = rhat.isna() | (rhat <= c.rhat_max)
    ess = out["ess"].astype(float) if "ess" in out else pd.Series(np.nan, index=out.index)
    out["ess_ok"] = ess.isna() | (ess >= c.ess_min)
    out["finite_ok"] = np.isfinite(llc)
    out["healthy"] = (
        out["acceptance_ok"] & out["divergence_ok"] & out["rhat_ok"] & out["ess_ok"] & out["finite_ok"]
    )
    problems = []
    for i in out.index:
        p = []
        nch = out.at[i, "num_chains"] if "num_chains" in out else None
        if not out.at[i, "divergence_ok"]:
            all_gone = nch is not None and not pd.isna(nch) and int(n_div[i]) >= int(nch)
            of = f"/{int(nch)}" if nch is not None and not pd.isna(nch) else ""
            if all_gone:
                problems.append(f"all {int(nch)} chains diverged (ε too large)")
                continue
            p.append(f"{int(n_div[i])}{of} chains diverged (ε too large)")
        if not out.at[i, "finite_ok"]:
            p.append("λ̂ is not finite")
        if not out.at[i, "acceptance_ok"] and math.isfinite(acc[i]):
            p.append(f"acceptance {acc[i]:.2f} < {c.acceptance_min:g} (decrease ε)")
        elif not math.isfinite(acc[i]):
            p.append("no acceptance measured")
        if not out.at[i, "rhat_ok"]:
            p.append(f"R-hat {rhat[i]:.2f} > {c.rhat_max:g} (chains disagree: more draws, or larger γ)")
        if not out.at[i, "ess_ok"]:
            p.append(f"only {ess[i]:.0f} effective draws (chains barely move: larger ε or more draws)")
        problems.append("; ".join(p))
    out["problem"] = problems
    return out


def _agree(a: float, sa: float, b: float, sb: float, c: Criteria) -> bool:
    """Two λ̂ agree when they are within ``plateau_rtol`` of each other relatively *and*
    within ``plateau_nsem`` combined standard errors (a missing SEM counts as 0, so then
    only the relative test applies).  Requiring both keeps a wide error bar from making a
    biased value "agree" (a short run's 0.587 ± 0.028 beside 0.48 ± 0.03 is 20% off)."""
    scale = max(abs(a), abs(b), 1e-12)
    if abs(a - b) > c.plateau_rtol * scale:
        return False
    se = math.sqrt((sa if math.isfinite(sa) else 0.0) ** 2 + (sb if math.isfinite(sb) else 0.0) ** 2)
    return se == 0 or abs(a - b) <= c.plateau_nsem * se


def find_plateau(group: pd.DataFrame, criteria: Criteria | None = None) -> list[int]:
    """Index labels of the plateau among the healthy rows of one (γ, nβ) group.

    The plateau is the longest run of consecutive healthy step sizes (sorted by ε) in
    which every λ̂ agrees with every other (see :class:`Criteria`).  Ties go to the run
    with the larger step sizes.  Returns ``[]`` when fewer than two healthy settings agree.
    """
    c = criteria or CALIBRATION_CRITERIA
    g = group[group["healthy"]].sort_values("epsilon") if "healthy" in group else group.sort_values("epsilon")
    idx = list(g.index)
    vals = g["llc_mean"].astype(float).to_numpy()
    sems = g["llc_sem"].astype(float).to_numpy()
    best: list[int] = []
    for start in range(len(idx)):
        end = start + 1
        while end < len(idx) and all(
            _agree(vals[k], sems[k], vals[end], sems[end], c) for k in range(start, end)
        ):
            end += 1
        run = idx[start:end]
        if len(run) >= 2 and len(run) >= len(best):
            best = run
    return best


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    return f"{float(x):.{digits}g}"


def recommend(
    table: pd.DataFrame,
    criteria: Criteria | None = None,
    *,
    nbeta: float | None = None,
) -> Recommendation:
    """Choose (ε, γ, nβ) from a sweep table and explain the choice.

    Parameters
    ----------
    table : DataFrame
        One row per setting: ``setting, epsilon, gamma, nbeta, llc_mean, llc_sem, rhat,
        acceptance`` (and ``n_diverged``, ``num_chains`` when available).
    criteria : Criteria, optional
    nbeta : float, optional
        Calibrate at this nβ (the closest one in the table).  By default, the nβ with the
        most rows (ties: the largest).

    Returns
    -------
    Recommendation
    """
    c = criteria or CALIBRATION_CRITERIA
    if table is None or len(table) == 0:
        raise ValueError("the sweep table is empty: run a calibration grid first")
    assessed = assess(table, c)
    assessed["plateau"] = False

    nbetas = assessed["nbeta"].astype(float)
    if nbeta is None:
        counts = nbetas.value_counts()
        top = counts[counts == counts.max()].index
        chosen_nb = float(max(top))
    else:
        uniq = np.unique(nbetas.to_numpy())
        chosen_nb = float(uniq[np.argmin(np.abs(np.log(uniq) - math.log(nbeta)))])
    at_nb = assessed[np.isclose(nbetas, chosen_nb)]

    plateaus: dict[float, list[int]] = {}
    for gamma, group in at_nb.groupby("gamma", sort=True):
        plateau = find_plateau(group, c)
        plateaus[float(gamma)] = plateau
        assessed.loc[plateau, "plateau"] = True

    reasons: list[str] = []
    nb_note = f" (at nβ = {_fmt(chosen_nb)})" if assessed["nbeta"].nunique() > 1 else ""
    gammas_with_plateau = [g for g, p in sorted(plateaus.items()) if p]
    healthy = at_nb[at_nb["healthy"]]

    known = known_target(assessed)
    if known.loc[at_nb.index].notna().any():
        return _recommend_known(assessed, at_nb.index, known, chosen_nb, nb_note, c)

    if gammas_with_plateau:
        gamma = gammas_with_plateau[0]
        plateau_rows = assessed.loc[plateaus[gamma]].sort_values("epsilon")
        pick = plateau_rows.iloc[-1]
        ok = True
        eps_list = tuple(float(e) for e in plateau_rows["epsilon"])
        lo, hi = plateau_rows["llc_mean"].min(), plateau_rows["llc_mean"].max()
        headline = (
            f"Use ε = {_fmt(pick['epsilon'])}, γ = {_fmt(gamma)}, nβ = {_fmt(chosen_nb)}: "
            f"λ̂ = {_fmt(pick['llc_mean'])} ± {_fmt(pick['llc_sem'], 2)}."
        )
        reasons.append(
            f"ε = {_fmt(pick['epsilon'])} is the largest step size on the plateau{nb_note}: "
            f"acceptance {pick['acceptance']:.2f} ≥ {c.acceptance_min:g}, "
            f"{_divergence_words(pick)}, "
            f"R-hat {float(pick['rhat']):.3f} ≤ {c.rhat_max:g}."
        )
        reasons.append(
            f"λ̂ stays between {_fmt(lo)} and {_fmt(hi)} for ε ∈ [{_fmt(eps_list[0])}, {_fmt(eps_list[-1])}] "
            f"({len(eps_list)} step sizes agree), so the answer does not depend on ε there; "
            "the largest such ε mixes fastest."
        )
        group = assessed[np.isclose(assessed["nbeta"], chosen_nb) & np.isclose(assessed["gamma"], gamma)]
        larger = group[group["epsilon"] > pick["epsilon"]].sort_values("epsilon")
        for _, row in larger.iterrows():
            why = row["problem"] or (
                f"λ̂ = {_fmt(row['llc_mean'])} is off the plateau (ε biases λ̂ at this size)"
            )
            reasons.append(f"Rejected larger ε = {_fmt(row['epsilon'])}: {why}.")
        smaller_off = group[(group["epsilon"] < eps_list[0]) & group["healthy"]]
        if len(smaller_off):
            reasons.append(
                "Smaller step sizes "
                + ", ".join(_fmt(e) for e in smaller_off["epsilon"])
                + " gave different λ̂: the chains move too little in this many draws "
                "(λ̂ drifts toward 0). They would need many more draws."
            )
        weaker = sorted(g for g in plateaus if g < gamma)
        for g in weaker:
            rows = at_nb[np.isclose(at_nb["gamma"], g)]
            reasons.append(f"Weaker localisation γ = {_fmt(g)} was not usable: {_group_problem(rows)}.")
        stronger = sorted(g for g in plateaus if g > gamma)
        if stronger:
            reasons.append(
                f"γ = {_fmt(gamma)} is the weakest localisation that works; larger γ "
                f"({', '.join(_fmt(g) for g in stronger)}) pulls chains toward w* and shrinks λ̂."
            )
        row_id = int(pick["setting"])
        return Recommendation(
            ok=ok,
            setting=row_id,
            epsilon=float(pick["epsilon"]),
            gamma=float(gamma),
            nbeta=chosen_nb,
            llc_mean=float(pick["llc_mean"]),
            llc_sem=float(pick["llc_sem"]),
            plateau=eps_list,
            headline=headline,
            reasons=reasons,
            table=assessed,
        )

    if len(healthy):
        # Healthy settings exist but no two agree: pick the largest healthy ε at the
        # smallest γ, and say the plateau is unconfirmed.
        gamma = float(healthy["gamma"].min())
        pick = healthy[np.isclose(healthy["gamma"], gamma)].sort_values("epsilon").iloc[-1]
        headline = (
            f"Tentatively ε = {_fmt(pick['epsilon'])}, γ = {_fmt(gamma)}, nβ = {_fmt(chosen_nb)} "
            f"(λ̂ = {_fmt(pick['llc_mean'])}), but no plateau across ε was found."
        )
        reasons.append(
            f"ε = {_fmt(pick['epsilon'])} is the largest healthy step size at γ = {_fmt(gamma)}{nb_note}, "
            "but no neighbouring step size gives the same λ̂, so the estimate may still depend on ε."
        )
        reasons.append(
            "Try: more draws (short runs at small ε under-estimate λ̂), and a grid with more "
            "step sizes between the healthy ones."
        )
        return Recommendation(
            ok=False,
            setting=int(pick["setting"]),
            epsilon=float(pick["epsilon"]),
            gamma=gamma,
            nbeta=chosen_nb,
            llc_mean=float(pick["llc_mean"]),
            llc_sem=float(pick["llc_sem"]),
            plateau=(),
            headline=headline,
            reasons=reasons,
            table=assessed,
        )

    # Nothing healthy: diagnose the dominant failure.
    reasons.extend(_diagnose_failure(at_nb, c))
    return Recommendation(
        ok=False,
        setting=None,
        epsilon=None,
        gamma=None,
        nbeta=chosen_nb,
        llc_mean=None,
        llc_sem=None,
        plateau=(),
        headline="No setting in this grid is healthy.",
        reasons=reasons,
        table=assessed,
    )


def known_target(table: pd.DataFrame) -> pd.Series:
    """T(nβ, γ) per row where it is known, else NaN.

    Read from the ``expected_llc`` column; with an ``expected_llc_error`` column, a T whose
    error estimate is missing or above :data:`KNOWN_T_RTOL` of |T| is not known.
    """
    if "expected_llc" not in table:
        return pd.Series(np.nan, index=table.index)
    t = table["expected_llc"].astype(float)
    ok = np.isfinite(t)
    if "expected_llc_error" in table:
        err = table["expected_llc_error"].astype(float)
        ok &= np.isfinite(err) & (err <= KNOWN_T_RTOL * t.abs())
    return t.where(ok)


def _consistent(row: pd.Series, t: float, c: Criteria) -> tuple[bool, float]:
    """Whether a healthy row's λ̂ agrees with the known ``t``, and λ̂ − T in standard errors."""
    llc, sem = float(row["llc_mean"]), float(row["llc_sem"])
    if not math.isfinite(llc) or not math.isfinite(t):
        return False, math.nan
    gap = llc - t
    z = gap / sem if math.isfinite(sem) and sem > 0 else (0.0 if gap == 0 else math.copysign(math.inf, gap))
    ok = bool(row["healthy"]) and abs(gap) <= c.known_rtol * abs(t) and abs(z) <= c.known_nsem
    return ok, z


def _gap_words(row: pd.Series, t: float) -> str:
    gap = float(row["llc_mean"]) - t
    pct = f"{100 * abs(gap) / abs(t):.0f}%" if t else "n/a"
    z = float(row["gap_sem"])
    zs = f"{abs(z):.1f} SEM" if math.isfinite(z) else "many SEM"
    return f"λ̂ = {_fmt(row['llc_mean'])} is {zs} ({pct}) {'above' if gap > 0 else 'below'} T = {_fmt(t)}"


def _recommend_known(
    assessed: pd.DataFrame,
    at_index: pd.Index,
    known: pd.Series,
    chosen_nb: float,
    nb_note: str,
    c: Criteria,
) -> Recommendation:
    """The choice against a known T: the weakest γ with a healthy λ̂ that reproduces T, and
    there the largest such ε."""
    assessed["known_llc"] = known
    assessed["gap_sem"] = np.nan
    assessed["consistent"] = False
    assessed["plateau"] = False
    for i in at_index:
        if math.isfinite(known[i]):
            ok, z = _consistent(assessed.loc[i], float(known[i]), c)
            assessed.at[i, "consistent"], assessed.at[i, "gap_sem"] = ok, z
    rows = assessed.loc[at_index]
    rows = rows[rows["known_llc"].notna()]
    runs: dict[float, list[int]] = {}
    for gamma, group in rows.groupby("gamma", sort=True):
        runs[float(gamma)] = list(group[group["consistent"]].sort_values("epsilon").index)
    reasons: list[str] = []
    usable = [g for g, r in sorted(runs.items()) if r]
    if not usable:
        healthy = rows[rows["healthy"]]
        if not len(healthy):
            reasons.extend(_diagnose_failure(assessed.loc[at_index], c))
            return Recommendation(False, None, None, None, chosen_nb, None, None, (),
                                  "No setting in this grid is healthy.", reasons, assessed)
        rel = (healthy["llc_mean"] - healthy["known_llc"]).abs() / healthy["known_llc"].abs()
        pick = healthy.loc[rel.idxmin()]
        t = float(pick["known_llc"])
        headline = (
            f"No healthy setting reproduces the known T = {_fmt(t)}; the closest is ε = "
            f"{_fmt(pick['epsilon'])}, γ = {_fmt(pick['gamma'])}, nβ = {_fmt(chosen_nb)} "
            f"(λ̂ = {_fmt(pick['llc_mean'])} ± {_fmt(pick['llc_sem'], 2)})."
        )
        reasons.append(
            f"Calibrated against the known T(nβ, γ){nb_note}: at the closest setting, {_gap_words(pick, t)}."
        )
        above = bool((healthy["llc_mean"] > healthy["known_llc"]).all())
        reasons.append(
            "λ̂ is above T at every healthy setting: the step size's bias. Try smaller ε (with more draws)."
            if above else
            "Try more draws (short runs at small ε under-estimate λ̂) and step sizes between the healthy ones."
        )
        return Recommendation(False, int(pick["setting"]), float(pick["epsilon"]), float(pick["gamma"]),
                              chosen_nb, float(pick["llc_mean"]), float(pick["llc_sem"]), (), headline,
                              reasons, assessed, known_llc=t)
    gamma = usable[0]
    run_rows = assessed.loc[runs[gamma]].sort_values("epsilon")
    assessed.loc[runs[gamma], "plateau"] = True
    pick = run_rows.iloc[-1]
    t = float(pick["known_llc"])
    headline = (
        f"Use ε = {_fmt(pick['epsilon'])}, γ = {_fmt(gamma)}, nβ = {_fmt(chosen_nb)}: "
        f"λ̂ = {_fmt(pick['llc_mean'])} ± {_fmt(pick['llc_sem'], 2)}, "
        f"calibrated against the known T = {_fmt(t)}."
    )
    reasons.append(
        f"Calibrated against the known T(nβ, γ) = {_fmt(t)} (exact quadrature){nb_note}: ε = "
        f"{_fmt(pick['epsilon'])} is the largest step size whose λ̂ agrees with T (within "
        f"{c.known_nsem:g} SEM and {100 * c.known_rtol:g}%): acceptance {pick['acceptance']:.2f} ≥ "
        f"{c.acceptance_min:g}, {_divergence_words(pick)}, R-hat {float(pick['rhat']):.3f} ≤ {c.rhat_max:g}."
    )
    group = assessed[np.isclose(assessed["nbeta"], chosen_nb) & np.isclose(assessed["gamma"], gamma)]
    for _, row in group[group["epsilon"] > pick["epsilon"]].sort_values("epsilon").iterrows():
        why = row["problem"] or (_gap_words(row, float(row["known_llc"])) + ": the step size's bias"
                                 if math.isfinite(row["known_llc"]) else "T is not known here")
        reasons.append(f"Rejected larger ε = {_fmt(row['epsilon'])}: {why}.")
    for g in sorted(x for x in runs if x < gamma):
        reasons.append(f"Weaker localisation γ = {_fmt(g)}: no healthy step size reproduced its T.")
    return Recommendation(True, int(pick["setting"]), float(pick["epsilon"]), float(gamma), chosen_nb,
                          float(pick["llc_mean"]), float(pick["llc_sem"]),
                          tuple(float(e) for e in run_rows["epsilon"]), headline, reasons, assessed,
                          known_llc=t)


def _group_problem(rows: pd.DataFrame) -> str:
    """Why one (γ, nβ) group has no plateau, in a few words."""
    good = rows[rows["healthy"]].sort_values("epsilon")
    if len(good) == 0:
        probs = [p for p in rows.sort_values("epsilon")["problem"] if p]
        return "no step size was healthy (" + "; ".join(dict.fromkeys(probs[:2])) + ")"
    if len(good) == 1:
        return (
            f"only ε = {_fmt(good['epsilon'].iloc[0])} was healthy, so no plateau across ε "
            "could be confirmed (chains wander: R-hat/ESS fail at the other step sizes)"
        )
    vals = ", ".join(f"{_fmt(v)}" for v in good["llc_mean"])
    return f"λ̂ changed with ε across its healthy step sizes ({vals})"


def _divergence_words(row: pd.Series) -> str:
    n = int(row["n_diverged"]) if "n_diverged" in row and not pd.isna(row["n_diverged"]) else 0
    return "no diverged chains" if n == 0 else f"{n} diverged chain{'s' if n > 1 else ''}"


def _diagnose_failure(rows: pd.DataFrame, c: Criteria) -> list[str]:
    out: list[str] = []
    eps_min = float(rows["epsilon"].min())
    if not rows["divergence_ok"].any():
        out.append(
            f"Every setting had diverging chains, even ε = {_fmt(eps_min)}: try step sizes "
            f"10–100× smaller (e.g. ε ≈ {_fmt(eps_min / 30)}) or a smaller nβ."
        )
    elif not rows["acceptance_ok"].any():
        best = rows.loc[rows["acceptance"].astype(float).idxmax()]
        out.append(
            f"Acceptance never reached {c.acceptance_min:g} (best {float(best['acceptance']):.2f} "
            f"at ε = {_fmt(best['epsilon'])}): decrease ε, e.g. ε ≈ {_fmt(eps_min / 10)}."
        )
    if not rows["rhat_ok"].any():
        out.append(
            f"R-hat exceeded {c.rhat_max:g} everywhere: the chains disagree. Use more draws, "
            "or increase γ if the chains wander away from w*."
        )
    if not out:
        out.append(
            "Each setting failed a different check; see the table. Usually: shrink ε until "
            f"acceptance ≥ {c.acceptance_min:g}, then add draws until R-hat ≤ {c.rhat_max:g}."
        )
    return out


def summarize_grid(values: Sequence[float]) -> str:
    """'1e-4 … 1e-2 (5 values)' for grid labels."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return "—"
    if len(vals) == 1:
        return _fmt(vals[0])
    return f"{_fmt(vals[0])} … {_fmt(vals[-1])} ({len(vals)} values)"
