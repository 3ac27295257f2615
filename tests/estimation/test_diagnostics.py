"""Diagnostics: R-hat/ESS/MCSE against hand computations and arviz-stats, and the trace-level
health checks on synthetic traces built to trigger each warning."""

from __future__ import annotations

import math

import helpers
import numpy as np
import pytest
import torch
from arviz_stats.base import array_stats
from scipy import stats

from lltools.estimation import diagnostics as D
from lltools.estimation import stats as S
from lltools.estimation import summary
from lltools.estimation.health import DEFAULT_CRITERIA
from lltools.sampling.trace import Trace


def synthetic_trace(loss, **kwargs) -> Trace:
    """The shared builder with nβ = 10 by default."""
    return helpers.synthetic_trace(loss, **{"nbeta": 10.0, **kwargs})


healthy_trace = helpers.gamma_draws_trace  # iid nβ(L − L*) ~ Gamma(1, 1): λ̂ ≈ 1, no warnings


def ar1(shape, phi, rng):
    x = np.empty(shape)
    x[..., 0] = rng.standard_normal(shape[:-1])
    innov = math.sqrt(1 - phi**2) * rng.standard_normal(shape)
    for t in range(1, shape[-1]):
        x[..., t] = phi * x[..., t - 1] + innov[..., t]
    return x


# ---------------------------------------------------------------------------- R-hat by hand
def classic_rhat(x: np.ndarray) -> float:
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1))
    return math.sqrt((between / within + n - 1) / n)


def rank_normalise(x: np.ndarray) -> np.ndarray:
    r = stats.rankdata(x, method="average").reshape(x.shape)
    return stats.norm.ppf((r - 3 / 8) / (x.size + 1 / 4))


def hand_rank_rhat(x: np.ndarray) -> float:
    """Vehtari et al. (2021), eqs. in §4: split chains, rank-normalise the draws (bulk) and
    the folded draws |x − median| (tail), classic R-hat of each, take the max."""
    half = x.shape[1] // 2
    split = np.vstack([x[:, :half], x[:, -half:]])
    bulk = classic_rhat(rank_normalise(split))
    tail = classic_rhat(rank_normalise(np.abs(split - np.median(split))))
    return max(bulk, tail)


TINY = np.array(
    [
        [0.3, 1.2, -0.5, 0.8, 2.1, 0.0, -1.1, 0.6, 0.9],
        [1.5, 2.2, 0.7, 1.9, 1.1, 2.8, 1.6, 0.4, 2.0],
        [-0.2, 0.1, 0.5, -0.9, 0.3, 1.0, -0.4, 0.2, 0.8],
    ]
)


def test_rhat_matches_hand_computation_tiny() -> None:
    """3 chains × 9 draws (odd: the middle draw is dropped by the split)."""
    expected = hand_rank_rhat(TINY)
    assert S.rhat(TINY) == pytest.approx(expected, rel=1e-12)
    assert expected > 1.1  # chain 2 sits higher: a real disagreement
    assert S.rhat(TINY, method="identity") == pytest.approx(classic_rhat(TINY), rel=1e-12)


def test_rhat_matches_hand_computation_random() -> None:
    x = np.random.default_rng(0).standard_normal((4, 101))
    assert S.rhat(x) == pytest.approx(hand_rank_rhat(x), rel=1e-12)
    assert S.rhat(torch.from_numpy(x)) == S.rhat(x)


def test_rhat_behaviour() -> None:
    gen = np.random.default_rng(1)
    iid = gen.standard_normal((4, 2000))
    assert S.rhat(iid) < 1.01
    shifted = iid + np.array([[0.0], [0.0], [0.0], [0.5]])
    assert S.rhat(shifted) > DEFAULT_CRITERIA.rhat_max  # a 0.5 sd shift of one chain in four: ≈ 1.026
    wider = iid * np.array([[1.0], [1.0], [1.0], [3.0]])  # same mean, different scale:
    assert S.rhat(wider) > DEFAULT_CRITERIA.rhat_max  # caught by the folded (tail) part only
    assert S.rhat(wider, method="z_scale") < 1.01


def test_rhat_edge_cases_and_method_validation() -> None:
    assert math.isnan(S.rhat(np.zeros((1, 100))))
    assert math.isnan(S.rhat(np.ones((2, 3))))
    bad = np.ones((2, 10))
    bad[0, 3] = np.nan
    assert math.isnan(S.rhat(bad))
    with pytest.raises(ValueError, match="rank, split, folded, z_scale, identity"):
        S.rhat(TINY, method="bogus")
    with pytest.raises(ValueError, match="shape"):
        S.rhat(np.float64(1.0))
    # Leading axes are batch axes: one value per entry, NaN only where that entry has NaN.
    both = np.stack([TINY, TINY + 1.0, TINY * np.nan])
    batched = S.rhat(both)
    assert batched.shape == (3,) and batched[0] == pytest.approx(S.rhat(TINY), rel=1e-12)
    assert batched[1] == pytest.approx(S.rhat(TINY + 1.0), rel=1e-12) and math.isnan(batched[2])


# ---------------------------------------------------------------------------- ESS / MCSE
def test_ess_bulk_equals_arviz() -> None:
    x = np.random.default_rng(2).standard_normal((4, 300))
    assert S.ess_bulk(x) == pytest.approx(float(array_stats.ess(x, method="bulk")), rel=1e-12)
    assert S.ess_bulk(x[0]) == pytest.approx(float(array_stats.ess(x[:1], method="bulk")), rel=1e-12)


def test_ess_ar1_known_behaviour() -> None:
    """For AR(1) with coefficient φ the ESS of the mean is N(1 − φ)/(1 + φ); the bulk ESS of a
    Gaussian AR(1) is within 15% of it (4 chains × 20000 draws), and iid draws give ≈ N."""
    gen = np.random.default_rng(3)
    for phi in (0.0, 0.5, 0.9):
        x = ar1((4, 20_000), phi, gen)
        theory = x.size * (1 - phi) / (1 + phi)
        assert S.ess_bulk(x) == pytest.approx(theory, rel=0.15), phi


def test_mcse_mean_methods() -> None:
    gen = np.random.default_rng(4)
    x = ar1((4, 2000), 0.7, gen)
    bulk = S.mcse_mean(x)
    assert bulk == pytest.approx(x.std(ddof=1) / math.sqrt(S.ess_bulk(x)), rel=1e-12)
    assert S.mcse_mean(x, method="mean") == pytest.approx(float(array_stats.mcse(x, method="mean")))
    # Theory: sd·√((1+φ)/(1−φ)/N).
    theory = math.sqrt((1 + 0.7) / (1 - 0.7) / x.size)
    assert bulk == pytest.approx(theory, rel=0.15)
    assert S.mcse_mean(x, method="mean") == pytest.approx(theory, rel=0.15)
    with pytest.raises(ValueError, match="bulk, mean"):
        S.mcse_mean(x, method="median")


def test_mcse_is_calibrated_over_replicates() -> None:
    """The spread of the pooled mean over 300 independent AR(1) replicates (φ = 0.9, 4 × 400)
    matches the average reported MCSE within 15%."""
    gen = np.random.default_rng(5)
    reps = ar1((300, 4, 400), 0.9, gen)
    means = reps.mean(axis=(1, 2))
    mcse = np.array([S.mcse_mean(r) for r in reps])
    assert mcse.mean() / means.std(ddof=1) == pytest.approx(1.0, abs=0.15)


def test_short_or_nan_draws_give_nan() -> None:
    assert math.isnan(S.ess_bulk(np.zeros((2, 3))))
    assert math.isnan(S.mcse_mean(np.zeros((2, 3))))
    assert math.isnan(S.ess_bulk(np.zeros((2, 0))))
    x = np.ones((2, 10))
    x[1, 1] = np.inf
    assert math.isnan(S.ess_bulk(x)) and math.isnan(S.mcse_mean(x))


# ---------------------------------------------------------------------------- acceptance
def test_acceptance_mean_nanmean_valid_chains_and_settings() -> None:
    acc = np.array([[0.9, np.nan, 0.7, np.nan], [0.5, np.nan, 0.5, np.nan], [0.1, 0.1, 0.1, 0.1]])
    tr = synthetic_trace(np.zeros((3, 4)), acceptance=acc, setting_index=[0, 1, 1], diverged_at=[-1, -1, 2])
    assert D.acceptance_mean(tr, 0) == pytest.approx(0.8)
    assert D.acceptance_mean(tr, 1) == pytest.approx(0.5)  # chain 2 diverged: excluded
    assert D.acceptance_mean(tr) == pytest.approx(0.65)  # pooled over settings
    none = synthetic_trace(np.zeros((1, 4)), acceptance=np.full((1, 4), np.nan))
    assert math.isnan(D.acceptance_mean(none))


# ---------------------------------------------------------------------------- divergences
def test_divergence_report_message_and_fields() -> None:
    diverged_at = [-1] * 16
    for chain, step in ((3, 40), (5, 12), (9, 41)):
        diverged_at[chain] = step
    tr = synthetic_trace(np.zeros((16, 60)), epsilon=0.1, gamma=1.0, nbeta=100.0, diverged_at=diverged_at)
    rep = D.divergence_report(tr)
    assert rep.count == 3 and rep.num_chains == 16 and not rep.all_diverged
    assert rep.chains.tolist() == [3, 5, 9]
    assert rep.steps.tolist() == [40, 12, 41]
    np.testing.assert_allclose(rep.epsilon, 0.1)
    assert rep.message == (
        "3 of 16 chains diverged (ε=0.1, γ=1, nβ=100 at steps 12, 40, 41); they are excluded from λ̂."
    )


def test_divergence_report_groups_and_all() -> None:
    tr = synthetic_trace(np.zeros((3, 10)), epsilon=[0.5, 0.5, 2.0], diverged_at=[4, 5, 1],
                         setting_index=[0, 0, 1])
    rep = D.divergence_report(tr)
    assert rep.all_diverged and rep.settings.tolist() == [0, 0, 1]
    assert "(ε=0.5, γ=1, nβ=10 at steps 4, 5; ε=2, γ=1, nβ=10 at step 1)" in rep.message
    assert "All chains diverged" in rep.message
    ok = D.divergence_report(healthy_trace(num_chains=2, num_draws=10))
    assert ok.count == 0 and ok.message == "No chains diverged (0 of 2)."


# ---------------------------------------------------------------------------- frozen chains
def test_frozen_chains() -> None:
    gen = np.random.default_rng(6)
    loss = gen.gamma(1.0, 1.0, size=(4, 200)) / 10.0
    loss[1] = 1e-6 * gen.standard_normal(200) ** 2  # barely moved from L* = 0
    loss[3] = 0.0
    tr = synthetic_trace(loss, nbeta=10.0, diverged_at=[-1, -1, -1, 150])
    assert D.frozen_chains(tr).tolist() == [1]  # chain 3 diverged: not reported as frozen
    assert D.frozen_chains(healthy_trace()).size == 0


# ---------------------------------------------------------------------------- warnings
def test_healthy_trace_has_no_warnings() -> None:
    assert summary.warnings_for(healthy_trace()) == []


def _one(messages: list[str], needle: str) -> str:
    hits = [m for m in messages if needle in m]
    assert len(hits) == 1, messages
    return hits[0]


def test_warning_negative_llc() -> None:
    tr = healthy_trace(loss_init=0.5)  # sampled loss well below L(w*)
    msg = _one(summary.warnings_for(tr), "w* may not be a local minimum")
    assert "the sampler found lower loss" in msg and msg.startswith("λ̂ = -")


def test_warning_low_acceptance() -> None:
    tr = healthy_trace(acceptance=np.full((8, 1000), 0.3))
    assert "ε too large: lower it" in _one(summary.warnings_for(tr), "acceptance 0.30")


def test_warning_rhat() -> None:
    gen = np.random.default_rng(7)
    loss = gen.gamma(1.0, 1.0, size=(8, 1000)) / 10.0
    loss[0] += 0.05  # one chain stuck elsewhere
    assert "chains disagree: more draws/burn-in" in _one(summary.warnings_for(synthetic_trace(loss)), "R-hat")


def test_warning_frozen() -> None:
    gen = np.random.default_rng(8)
    loss = gen.gamma(1.0, 1.0, size=(8, 1000)) / 10.0
    loss[2] = 0.0
    msg = _one(summary.warnings_for(synthetic_trace(loss)), "barely moved")
    assert "1 of 8 chains" in msg and "ε too small or γ too large" in msg


def test_warning_divergences_and_all_diverged() -> None:
    tr = healthy_trace(diverged_at=[-1, -1, -1, -1, -1, -1, 30, 70])
    msg = _one(summary.warnings_for(tr), "chains diverged")
    assert msg.startswith("2 of 8 chains diverged (at steps 30, 70)") and "Lower ε" in msg
    dead = healthy_trace(num_chains=3, diverged_at=[5, 6, 7])
    (only,) = summary.warnings_for(dead)
    assert "all chains diverged" in only.lower() and "Lower ε" in only


def test_warning_small_ess() -> None:
    gen = np.random.default_rng(9)
    loss = 0.1 + 0.01 * ar1((4, 400), 0.98, gen)
    msgs = summary.warnings_for(synthetic_trace(loss, loss_init=0.0))
    assert "run more draws" in _one(msgs, "Effective sample size")


def test_warnings_per_setting_are_prefixed() -> None:
    gen = np.random.default_rng(10)
    loss = gen.gamma(1.0, 1.0, size=(8, 500)) / 10.0
    acc = np.full((8, 500), 0.95)
    acc[4:] = 0.2
    tr = synthetic_trace(
        loss, acceptance=acc, epsilon=[1e-3] * 4 + [0.1] * 4, setting_index=[0] * 4 + [1] * 4
    )
    msgs = summary.warnings_for(tr)
    msg = _one(msgs, "ε too large")
    assert msg.startswith("Setting 1 (ε=0.1, γ=1, nβ=10): Mean MALA acceptance 0.20")
    assert summary.warnings_for(tr, 0) == [m for m in msgs if m.startswith("Setting 0")]


def test_many_chains_use_a_scaled_subset() -> None:
    """Above MAX_DIAGNOSTIC_CHAINS chains, ESS is the subset's ESS × C/C_sub: it matches
    arviz on all C chains (it would be 4× too small without the scaling), and R-hat of iid
    draws stays ≈ 1 while a shifted half of the chains is still caught."""
    rng = np.random.default_rng(3)
    num_chains, num_draws = 4 * S.MAX_DIAGNOSTIC_CHAINS, 40
    iid = rng.standard_normal((num_chains, num_draws))
    sub, scale = S.chain_subset(iid)
    assert sub.shape == (S.MAX_DIAGNOSTIC_CHAINS, num_draws) and scale == pytest.approx(4.0, rel=1e-3)
    ess = S.ess_bulk(iid)
    # The subset's ESS estimate has a relative sd of well under 1 % here; 3 % is a wide margin.
    assert ess == pytest.approx(float(array_stats.ess(iid, method="bulk")), rel=0.03)
    assert abs(S.rhat(iid) - 1.0) < 0.01
    shifted = iid.copy()
    shifted[::2] += 1.0
    assert S.rhat(shifted) > 1.1


def test_summarize_ranks_once_for_all_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """One pass: a sweep of 3 equal settings costs ONE arviz R-hat and ONE ESS call (batched
    over settings), and the batched values equal the setting-by-setting ones."""
    calls = {"ess": 0, "rhat": 0}
    real_ess, real_rhat = array_stats.ess, array_stats.rhat

    def counting_ess(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["ess"] += 1
        return real_ess(*args, **kwargs)

    def counting_rhat(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["rhat"] += 1
        return real_rhat(*args, **kwargs)

    gen = np.random.default_rng(11)
    loss = gen.gamma(1.0, 1.0, size=(12, 200)) / 10.0
    loss[4:8] += 0.02 * np.arange(4)[:, None]  # setting 1: chains disagree
    tr = synthetic_trace(loss, setting_index=np.repeat([0, 1, 2], 4))
    expected = [(S.rhat(10.0 * loss[k:k + 4]), S.ess_bulk(10.0 * loss[k:k + 4])) for k in (0, 4, 8)]
    monkeypatch.setattr(S.array_stats, "ess", counting_ess)
    monkeypatch.setattr(S.array_stats, "rhat", counting_rhat)
    table = summary.summarize(tr).table
    assert calls == {"ess": 1, "rhat": 1}
    for (r, e), (_, row) in zip(expected, table.iterrows(), strict=True):
        assert row["rhat"] == pytest.approx(r, rel=1e-12) and row["ess"] == pytest.approx(e, rel=1e-12)
    assert table["rhat"].iloc[1] > DEFAULT_CRITERIA.rhat_max > table["rhat"].iloc[0]
