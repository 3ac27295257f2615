"""Convergence and health diagnostics for SGLD traces (primer §3), ArviZ style.

Two layers:

- **Array functions** over a ``(C, T)`` array of draws (chains × draws): :func:`rhat`,
  :func:`ess_bulk`, :func:`mcse_mean`.  They are thin wrappers over the array interface of
  arviz-stats (``arviz_stats.base.array_stats``), which implements the rank-normalised
  split R-hat and bulk ESS of Vehtari et al. (2021); nothing is re-derived here.
- **Trace functions** over a :class:`~lltools.sampling.driver.Trace`: :func:`acceptance_mean`,
  :func:`divergence_report`, :func:`frozen_chains` and :func:`warnings_for`, which turns
  the numbers into plain-language advice ("ε too large: lower it").

Chains that diverged (``trace.diverged_at >= 0``) are excluded everywhere, as in the
estimators.  ``setting`` selects one hyperparameter setting of a sweep
(``trace.setting_index``); ``None`` means the whole trace unless stated otherwise.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from arviz_stats.base import array_stats

from lltools.sampling.driver import Trace

#: Mean MALA acceptance below this suggests ε is too large (primer §3: ≈0.9+ is healthy).
ACCEPTANCE_MIN = 0.5
#: Rank-normalised split R-hat above this means the chains disagree (Vehtari et al. 2021).
RHAT_MAX = 1.01
#: Bulk ESS below this makes λ̂ and its standard error unreliable.
ESS_MIN = 100.0
#: A chain is "frozen" when nβ·sd(L) and |λ̂_c| are both below this (units of λ).
FROZEN_ATOL = 1e-2

#: R-hat and ESS of more chains than this are computed on an evenly spaced subset of them ...
MAX_DIAGNOSTIC_CHAINS = 4096
#: ... of at most this many draws in all (but never fewer than MIN_DIAGNOSTIC_CHAINS chains).
MAX_DIAGNOSTIC_VALUES = 1_000_000
MIN_DIAGNOSTIC_CHAINS = 256

RHAT_METHODS = ("rank", "split", "folded", "z_scale", "identity")
MCSE_METHODS = ("bulk", "mean")


# ---------------------------------------------------------------------------- arrays
def _as_draws(draws: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float64 ``(C, T)`` numpy array; a 1-D input is one chain."""
    if isinstance(draws, torch.Tensor):
        draws = draws.detach().cpu().double().numpy()
    ary = np.asarray(draws, dtype=np.float64)
    if ary.ndim == 1:
        ary = ary[None, :]
    if ary.ndim != 2:
        raise ValueError(f"draws must have shape (chains, draws), got {ary.shape}")
    return ary


def chain_subset(ary: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, float]:
    """At most ``limit`` evenly spaced chains of a ``(C, T)`` array, and the factor C / C_sub.

    Rank normalisation sorts all C·T draws; at 65 536 chains that is seconds per call, while
    R-hat and bulk ESS of independent, identically run chains are estimated as well from a
    few thousand of them.  The default limit is ``MAX_DIAGNOSTIC_CHAINS`` chains and
    ``MAX_DIAGNOSTIC_VALUES`` draws in all (at least ``MIN_DIAGNOSTIC_CHAINS`` chains).  The
    subset is deterministic (the same rows every time).
    """
    num_chains = ary.shape[0]
    if limit is None:
        by_values = MAX_DIAGNOSTIC_VALUES // max(1, ary.shape[1])
        limit = min(MAX_DIAGNOSTIC_CHAINS, max(MIN_DIAGNOSTIC_CHAINS, by_values))
    if num_chains <= limit:
        return ary, 1.0
    rows = np.unique(np.linspace(0, num_chains - 1, limit).round().astype(np.int64))
    return ary[rows], num_chains / rows.size


_CACHE_SIZE = 32
_cache: OrderedDict[tuple, float] = OrderedDict()
_cache_lock = threading.Lock()


def _memoised(kind: str, ary: np.ndarray, compute: Callable[[np.ndarray], float]) -> float:
    """``compute(ary)``, remembered by the array's content: the estimators and the warnings
    ask for the same R-hat/ESS of the same draws, and each costs a full sort of them."""
    data = np.ascontiguousarray(ary)
    key = (kind, data.shape, hashlib.blake2b(data.view(np.uint8), digest_size=16).digest())
    with _cache_lock:  # the app's sessions run in threads
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    with np.errstate(divide="ignore", invalid="ignore"):  # constant draws: R-hat is 0/0 = NaN
        value = compute(data)
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def _check_method(method: str, valid: tuple[str, ...]) -> str:
    if method not in valid:
        raise ValueError(f"unknown method {method!r}; valid methods are {', '.join(valid)}")
    return method


def rhat(draws: np.ndarray | torch.Tensor, *, method: str = "rank") -> float:
    """Potential scale reduction factor R-hat of a ``(C, T)`` array of draws.

    The default ``method="rank"`` is the rank-normalised split R-hat of Vehtari et al.
    (2021): split every chain in half (2C chains of T//2 draws), replace the draws by
    normal scores z = Φ⁻¹((r − 3/8)/(N + 1/4)) of their pooled ranks r, compute the
    classic R-hat = √((B/W + T' − 1)/T') (B: T'× variance of chain means, W: mean
    within-chain variance), once on z and once on the folded draws |x − median|, and
    return the larger.  Computed by ``arviz_stats.base.array_stats.rhat``; with more than
    ``MAX_DIAGNOSTIC_CHAINS`` chains, on an evenly spaced subset of them (:func:`chain_subset`).

    Parameters
    ----------
    draws : array or Tensor, shape (C, T)
        Draws per chain (a 1-D array is one chain).
    method : {"rank", "split", "folded", "z_scale", "identity"}
        arviz-stats' variants; "rank" is the recommended one.

    Returns
    -------
    float
        R-hat (≈1 when the chains agree; > 1.01 is a warning), NaN with fewer than 2
        chains or 4 draws, or when the draws contain NaN.
    """
    _check_method(method, RHAT_METHODS)
    ary = _as_draws(draws)
    if ary.shape[0] < 2 or ary.shape[1] < 4 or not np.isfinite(ary).all():
        return float("nan")
    sub, _ = chain_subset(ary)
    return _memoised(f"rhat-{method}", sub, lambda a: float(array_stats.rhat(a, method=method)))


def ess_bulk(draws: np.ndarray | torch.Tensor) -> float:
    """Bulk effective sample size of a ``(C, T)`` array of draws (Vehtari et al. 2021).

    Split chains, rank-normalise as in :func:`rhat`, then Geyer's initial-positive-sequence
    estimate ESS = C·T / (1 + 2 Σ_t ρ̂_t) of the autocorrelations ρ̂_t pooled over chains.
    Computed by ``arviz_stats.base.array_stats.ess(method="bulk")``.  With more than
    ``MAX_DIAGNOSTIC_CHAINS`` chains it is computed on an evenly spaced subset of C_sub chains
    and scaled by C / C_sub (chains are independent, so ESS adds up over chains).

    Returns
    -------
    float
        ESS in draws (can slightly exceed C·T for anticorrelated draws); NaN with fewer than
        4 draws or non-finite values.
    """
    ary = _as_draws(draws)
    if ary.shape[1] < 4 or not np.isfinite(ary).all():
        return float("nan")
    sub, scale = chain_subset(ary)
    return scale * _memoised("ess-bulk", sub, lambda a: float(array_stats.ess(a, method="bulk")))


def mcse_mean(draws: np.ndarray | torch.Tensor, *, method: str = "bulk") -> float:
    """Monte Carlo standard error of the pooled mean of a ``(C, T)`` array of draws.

    MCSE = sd / √ESS, with sd the standard deviation of all C·T draws (ddof=1) and ESS

    - ``method="bulk"`` (default, the convention of :func:`lltools.estimation.llc.llc`): the
      rank-normalised bulk ESS of :func:`ess_bulk`, robust to heavy tails;
    - ``method="mean"``: arviz-stats' ``mcse(method="mean")``, whose ESS is computed on the
      split draws without rank normalisation.

    The two agree closely for near-Gaussian draws.  Returns NaN with fewer than 4 draws or
    non-finite values.
    """
    _check_method(method, MCSE_METHODS)
    ary = _as_draws(draws)
    if ary.shape[1] < 4 or not np.isfinite(ary).all():
        return float("nan")
    if method == "mean":
        return float(array_stats.mcse(ary, method="mean"))
    sd = float(torch.from_numpy(ary).std())  # ddof=1; torch's reduction is threaded, numpy's is not
    return sd / math.sqrt(ess_bulk(ary))


# ---------------------------------------------------------------------------- trace helpers
def host(trace: Trace) -> Trace:
    """``trace.cpu()`` unless the trace already is a host float64 copy."""
    if trace.loss.device.type == "cpu" and trace.loss.dtype == torch.float64:
        return trace
    return trace.cpu()


def settings_of(trace: Trace) -> list[int]:
    """The distinct setting indices of a trace, sorted."""
    return sorted(int(s) for s in torch.unique(trace.setting_index.cpu()).tolist())


def setting_chains(trace: Trace, setting: int | None = None, *, pooled: bool = False) -> np.ndarray:
    """Global indices of the chains of one hyperparameter setting, shape (k,).

    ``setting=None`` selects every chain; unless ``pooled`` it then requires the trace to
    hold a single setting (pooling chains with different ε, γ, nβ would mix estimands).

    Raises
    ------
    ValueError
        For an unknown ``setting``, or ``setting=None`` on a sweep without ``pooled``.
    """
    index = trace.setting_index.cpu().numpy()
    if setting is None:
        if not pooled and len(np.unique(index)) > 1:
            raise ValueError(
                f"the trace holds {len(np.unique(index))} hyperparameter settings; "
                "pass setting=<index> (see trace.setting_index)"
            )
        return np.arange(index.shape[0])
    chains = np.flatnonzero(index == setting)
    if chains.size == 0:
        raise ValueError(f"no chains with setting {setting}; settings are {settings_of(trace)}")
    return chains


def valid_chains(trace: Trace) -> np.ndarray:
    """Boolean mask (C,): chains that never diverged (``diverged_at == -1``)."""
    return trace.diverged_at.cpu().numpy() < 0


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def setting_label(trace: Trace, chains: np.ndarray) -> str:
    """'ε=0.001, γ=1, nβ=100' for the (first) chain of a group."""
    c = int(chains[0])
    p = trace.params
    return f"ε={_fmt(float(p.epsilon[c]))}, γ={_fmt(float(p.gamma[c]))}, nβ={_fmt(float(p.nbeta[c]))}"


# ---------------------------------------------------------------------------- trace diagnostics
def acceptance_mean(trace: Trace, setting: int | None = None) -> float:
    """Mean MALA acceptance probability over the draws of the valid chains (primer §3).

    A nanmean: steps where the acceptance was not computed (``acceptance_every > 1``) are
    NaN and skipped.  ``setting=None`` pools every chain of the trace.  NaN when nothing is
    left (all chains diverged, or no acceptance computed).
    """
    h = host(trace)
    if setting is None and len(settings_of(h)) == 1:
        setting = settings_of(h)[0]  # one cache entry for "the" setting
    return h.derived(f"acceptance_mean-{setting}", lambda t: _acceptance_mean(t, setting))


def _acceptance_mean(h: Trace, setting: int | None) -> float:
    chains = setting_chains(h, setting, pooled=True)
    chains = chains[valid_chains(h)[chains]]
    every = chains.size == h.num_chains  # every chain, in order: use the (C, T) view, no copy
    acc = h.draw_acceptance if every else h.draw_acceptance[chains]
    if acc.numel() == 0:
        return float("nan")
    value = float(torch.nanmean(acc))  # no NaN-free copy of the (C, T) array, unlike np.nanmean
    return value if math.isfinite(value) else float("nan")


@dataclass(frozen=True)
class DivergenceReport:
    """Which chains diverged, when, and with which hyperparameters.

    Attributes
    ----------
    count, num_chains : int
        Diverged chains and all chains.
    chains : np.ndarray, shape (count,)
        Global indices of the diverged chains.
    steps : np.ndarray, shape (count,)
        SGLD step at which each diverged.
    settings : np.ndarray, shape (count,)
        Their setting indices.
    epsilon, gamma, nbeta : np.ndarray, shape (count,)
        Their hyperparameters.
    all_diverged : bool
        True when every chain diverged (then λ̂ is undefined).
    message : str
        A plain sentence for the user.
    """

    count: int
    num_chains: int
    chains: np.ndarray
    steps: np.ndarray
    settings: np.ndarray
    epsilon: np.ndarray
    gamma: np.ndarray
    nbeta: np.ndarray
    all_diverged: bool
    message: str


def _steps_text(steps: np.ndarray, limit: int = 6) -> str:
    shown = ", ".join(str(int(s)) for s in steps[:limit])
    more = f", … ({len(steps) - limit} more)" if len(steps) > limit else ""
    word = "step" if len(steps) == 1 else "steps"
    return f"{word} {shown}{more}"


def divergence_report(trace: Trace) -> DivergenceReport:
    """Summarise the diverged chains of a trace.

    Example message: "3 of 16 chains diverged (ε=0.1, γ=1, nβ=100 at steps 12, 40, 41);
    they are excluded from λ̂."  Chains are grouped by (ε, γ, nβ).
    """
    h = host(trace)
    diverged_at = h.diverged_at.numpy()
    chains = np.flatnonzero(diverged_at >= 0)
    steps = diverged_at[chains]
    p = h.params
    eps, gam, nb = (x.numpy()[chains] for x in (p.epsilon, p.gamma, p.nbeta))
    total = h.num_chains
    count = int(chains.size)
    all_diverged = total > 0 and count == total
    if count == 0:
        message = f"No chains diverged (0 of {total})."
    else:
        groups = []
        for key in dict.fromkeys(zip(eps.tolist(), gam.tolist(), nb.tolist(), strict=True)):
            members = chains[(eps == key[0]) & (gam == key[1]) & (nb == key[2])]
            label = setting_label(h, members)
            groups.append(f"{label} at {_steps_text(np.sort(diverged_at[members]))}")
        message = (
            f"{count} of {total} chains diverged ({'; '.join(groups)}); they are excluded from λ̂."
        )
        if all_diverged:
            message += " All chains diverged: λ̂ is undefined; lower ε (e.g. by 10×)."
    return DivergenceReport(
        count=count,
        num_chains=total,
        chains=chains,
        steps=steps,
        settings=h.setting_index.numpy()[chains],
        epsilon=eps,
        gamma=gam,
        nbeta=nb,
        all_diverged=all_diverged,
        message=message,
    )


def frozen_chains(trace: Trace, *, atol: float = FROZEN_ATOL) -> np.ndarray:
    """Indices of valid chains that barely moved: ε too small (or γ too large).

    A chain is frozen when both nβ·sd_t(L_t) < ``atol`` and |λ̂_c| < ``atol``: its loss
    fluctuates by much less than 1/nβ (a healthy chain at equilibrium has nβ·sd(L) of order
    √λ) and it has not left L(w*).  For data targets the minibatch noise of L_B keeps
    nβ·sd(L) large even for a frozen chain, so this check is mainly for potentials; slow
    drift is caught by the split R-hat instead.

    Returns
    -------
    np.ndarray of int, shape (k,)
        Global chain indices.
    """
    from lltools.estimation.llc import excess_loss_draws, llc_per_chain  # estimators imports this module

    h = host(trace)
    if h.draw_loss.shape[1] < 2:
        return np.zeros(0, dtype=np.int64)
    excess = excess_loss_draws(h)  # nβ(L − L(w*)): its sd is nβ·sd(L), its mean λ̂_c
    with np.errstate(invalid="ignore"):
        spread = excess.std(axis=1, ddof=1)
        level = np.abs(llc_per_chain(h).numpy())
    frozen = valid_chains(h) & (spread < atol) & (level < atol)
    return np.flatnonzero(frozen)


def _warnings_one(h: Trace, setting: int) -> list[str]:
    from lltools.estimation.llc import excess_loss_draws, llc  # estimators depends on this module

    chains = setting_chains(h, setting, pooled=True)
    diverged = chains[~valid_chains(h)[chains]]
    n = len(chains)
    diverged_steps = np.sort(h.diverged_at.numpy()[diverged])
    if len(diverged) == n:
        return [
            f"All chains diverged ({n} of {n}, at {_steps_text(diverged_steps)}): λ̂ is undefined. "
            "Lower ε (e.g. by 10×); a larger γ also keeps chains near w*."
        ]
    out = []
    if len(diverged):
        out.append(
            f"{len(diverged)} of {n} chains diverged (at {_steps_text(diverged_steps)}); they are "
            "excluded from λ̂. Lower ε to keep every chain."
        )
    res = llc(h, setting)
    if res.mean < 0:
        out.append(
            f"λ̂ = {res.mean:.3g} < 0: w* may not be a local minimum; the sampler found lower loss. "
            "Train w* further (or check it is a minimum), or raise γ to stay closer to w*."
        )
    acc = acceptance_mean(h, setting)
    if acc < ACCEPTANCE_MIN:
        out.append(
            f"Mean MALA acceptance {acc:.2f} < {ACCEPTANCE_MIN}: ε too large: lower it "
            "(healthy runs have acceptance ≈ 0.9 or above)."
        )
    valid = chains[valid_chains(h)[chains]]
    r = rhat(excess_loss_draws(h)[valid])
    if r > RHAT_MAX:
        out.append(
            f"R-hat = {r:.3f} > {RHAT_MAX}: chains disagree: more draws/burn-in "
            "(if it persists, chains may sit in different basins: raise γ)."
        )
    frozen = np.intersect1d(frozen_chains(h), chains)
    if frozen.size:
        out.append(
            f"{frozen.size} of {n} chains barely moved (λ̂_c ≈ 0): ε too small or γ too large: "
            "raise ε or lower γ."
        )
    if res.ess < ESS_MIN:
        out.append(
            f"Effective sample size {res.ess:.0f} < {ESS_MIN:.0f}: too few independent draws for "
            "a reliable λ̂ and error bar: run more draws or chains."
        )
    return out


def warnings_for(trace: Trace, setting: int | None = None) -> list[str]:
    """Plain-language warnings, each saying what to change (primer §3).

    Checks, per setting: all chains diverged; some chains diverged; λ̂ < 0 (w* may not be a
    local minimum); mean MALA acceptance < ``ACCEPTANCE_MIN`` (ε too large); rank-normalised
    split R-hat of nβ(L − L(w*)) > ``RHAT_MAX`` (more draws/burn-in); frozen chains (ε too
    small or γ too large); bulk ESS < ``ESS_MIN``.

    ``setting=None`` on a sweep checks every setting and prefixes each message with the
    setting's index and hyperparameters.  An empty list means nothing looked wrong.
    """
    h = host(trace)
    if h.draw_loss.shape[1] == 0:
        return []
    if setting is not None:
        return _warnings_one(h, setting)
    ids = settings_of(h)
    if len(ids) == 1:
        return _warnings_one(h, ids[0])
    out = []
    for s in ids:
        label = setting_label(h, setting_chains(h, s))
        out.extend(f"Setting {s} ({label}): {msg}" for msg in _warnings_one(h, s))
    return out


__all__ = [
    "ACCEPTANCE_MIN",
    "ESS_MIN",
    "FROZEN_ATOL",
    "MAX_DIAGNOSTIC_CHAINS",
    "MAX_DIAGNOSTIC_VALUES",
    "MCSE_METHODS",
    "MIN_DIAGNOSTIC_CHAINS",
    "RHAT_MAX",
    "RHAT_METHODS",
    "DivergenceReport",
    "acceptance_mean",
    "chain_subset",
    "divergence_report",
    "ess_bulk",
    "frozen_chains",
    "host",
    "mcse_mean",
    "rhat",
    "setting_chains",
    "setting_label",
    "settings_of",
    "valid_chains",
    "warnings_for",
]
