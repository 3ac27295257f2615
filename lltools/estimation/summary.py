"""ONE summary of a trace: :func:`summarize` → :class:`Summary`, in one pass.

A :class:`Summary` is a per-setting table — one row per hyperparameter setting (sweep row,
or checkpoint of a trajectory) with ε, γ, nβ, λ̂ mean/std/SEM, R-hat, ESS, acceptance,
chain and divergence counts — plus each setting's plain-language warnings.  An estimate's
result is its single row, a sweep's table is the table, a trajectory a table row per
checkpoint.

The pass computes the excess-loss draws X = nβ(L − L(w*)) of shape (C, T) once, the
per-chain λ̂_c, the frozen-chain mask and the acceptances from it, and R-hat / bulk ESS /
pooled sd with :mod:`lltools.estimation.stats`, batched over settings (one arviz-stats call
for an ``(S, C, T)`` view) when every setting holds the same number of consecutive valid
chains, else setting by setting.  Nothing is cached on the trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from lltools.estimation.diagnostics import frozen_mask
from lltools.estimation.health import DEFAULT_CRITERIA, Criteria, SettingHealth, advice
from lltools.estimation.llc import excess_loss_draws, per_chain_means
from lltools.estimation.select import host, params_label, valid_chains
from lltools.estimation.stats import ess_bulk, mcse_from, pooled_sd, rhat
from lltools.sampling.kernel import sampler_name
from lltools.sampling.trace import Trace

#: The columns of :attr:`Summary.table`, in order.
SUMMARY_COLUMNS = (
    "setting", "epsilon", "gamma", "nbeta", "sampler", "llc_mean", "llc_std", "llc_sem",
    "rhat", "ess", "acceptance", "num_chains", "n_diverged",
)  # fmt: skip
#: Former name of :data:`SUMMARY_COLUMNS`.
LLC_TABLE_COLUMNS = SUMMARY_COLUMNS


def plain(value: Any) -> Any:
    """A number as a plain JSON value: NaN/inf → None, numpy scalars → Python."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


@dataclass(frozen=True)
class Summary:
    """The per-setting summary of a trace (see :func:`summarize`).

    Attributes
    ----------
    table : DataFrame
        One row per setting, columns :data:`SUMMARY_COLUMNS`: ``setting, epsilon, gamma,
        nbeta, sampler, llc_mean, llc_std, llc_sem, rhat, ess, acceptance, num_chains,
        n_diverged`` (``sampler``: "sgld" or "rmsprop").
        ``llc_mean`` is the mean of λ̂_c over the valid chains, ``llc_std`` their spread
        (ddof=1), ``llc_sem`` = sd(X)/√ESS_bulk(X) over the valid draws (primer §2),
        ``rhat`` the rank-normalised split R-hat of X (NaN with < 2 valid chains), ``ess``
        its bulk ESS, ``acceptance`` the mean MALA acceptance of the valid draws.
    setting_warnings : tuple of tuple of str
        Each row's warnings (unprefixed), in table order.
    per_chain : np.ndarray, shape (C,)
        λ̂_c of every chain in trace order, NaN for diverged chains.
    diverged_chains : np.ndarray of int, shape (k,)
        Global indices of the chains excluded because they diverged.
    complete : bool
        False for the summary of a partial trace.
    steps_done, num_steps_total : int
        Progress of the run the trace came from.
    criteria : Criteria
        The health rule the warnings applied.
    """

    table: pd.DataFrame
    setting_warnings: tuple[tuple[str, ...], ...]
    per_chain: np.ndarray = field(repr=False)
    diverged_chains: np.ndarray
    complete: bool = True
    steps_done: int = 0
    num_steps_total: int = 0
    criteria: Criteria = DEFAULT_CRITERIA

    def __len__(self) -> int:
        return len(self.table)

    @property
    def num_chains(self) -> int:
        return int(self.per_chain.shape[0])

    @property
    def warnings(self) -> list[str]:
        """Every setting's warnings; on a sweep each is prefixed with its setting, e.g.
        "Setting 1 (ε=0.1, γ=1, nβ=10): Mean MALA acceptance 0.20 < 0.9: …"."""
        if len(self.table) == 1:
            return list(self.setting_warnings[0])
        out = []
        for row, msgs in zip(self.table.itertuples(index=False), self.setting_warnings, strict=True):
            label = params_label(row.epsilon, row.gamma, row.nbeta)
            out.extend(f"Setting {row.setting} ({label}): {m}" for m in msgs)
        return out

    def row(self, setting: int | None = None) -> dict[str, Any]:
        """One row as a dict (the table's columns and its ``warnings``).

        Raises
        ------
        ValueError
            If ``setting`` is None on a summary of several settings, or unknown.
        """
        if setting is None:
            if len(self.table) != 1:
                raise ValueError(f"the summary holds {len(self.table)} settings; pass setting=<index>")
            i = 0
        else:
            hits = np.flatnonzero(self.table["setting"].to_numpy() == setting)
            if hits.size == 0:
                raise ValueError(f"no setting {setting}; settings are {self.table['setting'].tolist()}")
            i = int(hits[0])
        out = {k: plain(v) for k, v in self.table.iloc[i].items()}
        out["setting"] = int(self.table["setting"].iloc[i])
        out["num_chains"] = int(self.table["num_chains"].iloc[i])
        out["n_diverged"] = int(self.table["n_diverged"].iloc[i])
        out["warnings"] = list(self.setting_warnings[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: ``{"table": [row, …], "warnings": [...], "num_chains", "diverged_chains",
        "complete"}`` (NaN → None)."""
        return {
            "table": [self.row(int(s)) for s in self.table["setting"]],
            "warnings": self.warnings,
            "num_chains": self.num_chains,
            "diverged_chains": [int(c) for c in self.diverged_chains],
            "complete": bool(self.complete),
        }


def _groups(index: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], bool]:
    """Setting ids (sorted), the chains of each, and whether they form equal consecutive blocks."""
    ids, inverse, counts = np.unique(index, return_inverse=True, return_counts=True)
    blocks = bool(np.all(np.diff(index) >= 0)) and bool(np.all(counts == counts[0]))
    if blocks:
        size = int(counts[0])
        chains = [np.arange(i * size, (i + 1) * size) for i in range(ids.size)]
    else:
        order = np.argsort(inverse, kind="stable")
        chains = np.split(order, np.cumsum(counts)[:-1])
    return ids, chains, blocks


def _pooled_mean(sums: np.ndarray, counts: np.ndarray) -> float:
    """Σ sums / Σ counts, NaN when nothing was counted."""
    total = int(counts.sum())
    return float(sums.sum() / total) if total else math.nan


def summarize(trace: Trace, criteria: Criteria | None = None) -> Summary:
    """Summarise a trace in one pass: one table row per setting, with warnings.

    Parameters
    ----------
    trace : Trace
        A complete or partial trace (device or host); chains that diverged are excluded.
    criteria : Criteria, optional
        The health rule for the warnings (default :data:`~lltools.estimation.health.DEFAULT_CRITERIA`).

    Returns
    -------
    Summary
        While a partial trace has no draws yet, the statistics are NaN and there are no
        warnings.
    """
    c = criteria or DEFAULT_CRITERIA
    h = host(trace)
    excess = excess_loss_draws(h)  # (C, T), the one large array of the pass
    num_chains, num_draws = excess.shape
    valid = valid_chains(h)
    lam = per_chain_means(excess, valid)
    frozen = frozen_mask(excess, valid, c.frozen_atol)
    diverged_at = h.diverged_at.numpy()
    eps, gam, nb = (p.numpy() for p in h.params[:3])
    samplers = h.params.sampler_codes.numpy()
    acc = h.draw_acceptance
    ids, groups, blocks = _groups(h.setting_index.numpy())
    num_settings = ids.size

    # R-hat, ESS, pooled sd and acceptance of the valid chains of every setting.
    if blocks and valid.all():
        size = num_chains // num_settings
        x3 = excess.reshape(num_settings, size, num_draws)  # a view
        r = np.atleast_1d(rhat(x3))
        e = np.atleast_1d(ess_bulk(x3))
        sd = np.atleast_1d(pooled_sd(x3))
    else:
        r, e, sd = (np.full(num_settings, np.nan) for _ in range(3))
        for i, chains in enumerate(groups):
            ok = chains[valid[chains]]
            if ok.size == 0:
                continue
            x = excess if ok.size == num_chains else excess[ok]
            r[i], e[i], sd[i] = rhat(x), ess_bulk(x), pooled_sd(x)
    sem = np.atleast_1d(mcse_from(sd, e))
    # Acceptance: per-chain sums and counts of the computed (non-NaN) values, pooled per
    # setting over its valid chains (a nanmean without a NaN-free copy of the (C, T) array).
    acc_sum = torch.nansum(acc, dim=1).numpy()
    acc_count = acc.shape[1] - acc.isnan().sum(dim=1).numpy()

    rows, notes = [], []
    for i, chains in enumerate(groups):
        ok = valid[chains]
        k = int(ok.sum())
        lam_ok = lam[chains][ok]
        mean = float(lam_ok.mean()) if k else math.nan
        first = int(chains[0])
        rows.append({
            "setting": int(ids[i]),
            "epsilon": float(eps[first]), "gamma": float(gam[first]), "nbeta": float(nb[first]),
            "sampler": sampler_name(int(samplers[first])),
            "llc_mean": mean,
            "llc_std": float(lam_ok.std(ddof=1)) if k >= 2 else math.nan,
            "llc_sem": float(sem[i]) if k else math.nan,
            "rhat": float(r[i]) if k else math.nan,
            "ess": float(e[i]) if k else math.nan,
            "acceptance": _pooled_mean(acc_sum[chains][ok], acc_count[chains][ok]),
            "num_chains": int(chains.size),
            "n_diverged": int(chains.size - k),
        })  # fmt: skip
        if num_draws == 0:
            notes.append(())
            continue
        health = SettingHealth(
            num_chains=int(chains.size),
            diverged_steps=np.sort(diverged_at[chains[~ok]]),
            llc_mean=mean,
            acceptance=rows[-1]["acceptance"],
            rhat=rows[-1]["rhat"],
            ess=rows[-1]["ess"],
            num_frozen=int(frozen[chains].sum()),
        )
        notes.append(tuple(advice(health, c)))
    return Summary(
        table=pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)),
        setting_warnings=tuple(notes),
        per_chain=lam,
        diverged_chains=np.flatnonzero(~valid),
        complete=bool(h.complete),
        steps_done=int(h.meta.get("steps_done", h.num_steps_total if h.complete else 0)),
        num_steps_total=int(h.num_steps_total),
        criteria=c,
    )


def llc_by_setting(trace: Trace) -> pd.DataFrame:
    """One row per hyperparameter setting: ``summarize(trace).table`` (:data:`SUMMARY_COLUMNS`)."""
    return summarize(trace).table


def warnings_for(trace: Trace, setting: int | None = None, criteria: Criteria | None = None) -> list[str]:
    """Plain-language warnings, each saying what to change (primer §3; the checks of
    :func:`lltools.estimation.health.advice`).

    ``setting=None`` checks every setting and, on a sweep, prefixes each message with the
    setting's index and hyperparameters; a given ``setting`` returns its own (unprefixed)
    warnings.  An empty list means nothing looked wrong.
    """
    s = summarize(trace, criteria)
    return s.warnings if setting is None else s.row(setting)["warnings"]


__all__ = [
    "LLC_TABLE_COLUMNS",
    "SUMMARY_COLUMNS",
    "Summary",
    "llc_by_setting",
    "plain",
    "summarize",
    "warnings_for",
]
