"""Per-sample posterior statistics (the Bayesian influence function), streamed."""

from __future__ import annotations

import numpy as np
import pytest

from lltools.estimation.influence import LossMoments, embed_samples, gaussian_loss_covariance


def linear_gaussian(seed: int = 0, s: int = 6, d: int = 3):
    """A design X (S, d), targets y, a Gaussian posterior N(m, Σ) and exact draws from it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(s, d))
    y = x @ rng.normal(size=d) + 0.3 * rng.normal(size=s)
    m = np.linalg.lstsq(x, y, rcond=None)[0]
    a = rng.normal(size=(d, d))
    cov = 0.05 * (a @ a.T + np.eye(d))
    return x, y, m, cov, rng


def test_streamed_covariance_matches_the_closed_form_within_mc_error() -> None:
    x, y, m, cov, rng = linear_gaussian()
    exact = gaussian_loss_covariance(y - x @ m, x, cov)
    moments = LossMoments(len(y), loss_init=0.5 * (y - x @ m) ** 2)
    draws = []
    for _ in range(20):  # 20 blocks of 2 000 draws, streamed
        w = rng.multivariate_normal(m, cov, size=2000)
        block = 0.5 * (y[None, :] - w @ x.T) ** 2
        draws.append(block)
        moments.update(block)
    all_draws = np.concatenate(draws)
    # MC standard error of each covariance entry: sd of the centred products / √N.
    centred = all_draws - all_draws.mean(0)
    prods = centred[:, :, None] * centred[:, None, :]
    se = prods.std(axis=0) / np.sqrt(len(all_draws))
    z = (moments.covariance - exact) / se
    assert np.abs(z).max() < 4.5  # 36 entries, fixed seed
    # Streaming equals the batch computation on the stored draws.
    np.testing.assert_allclose(moments.covariance, np.cov(all_draws, rowvar=False), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(moments.mean, all_draws.mean(0), rtol=1e-12)
    # E[ℓ_i] − ℓ_i(m) = ½ x_iᵀ Σ x_i exactly for a Gaussian posterior centred at m.
    change_se = all_draws.std(0) / np.sqrt(len(all_draws))
    assert np.abs((moments.loss_change - 0.5 * np.einsum("id,de,ie->i", x, cov, x)) / change_se).max() < 4.5


def test_merge_equals_one_stream_and_nan_rows_are_skipped() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(70, 4)) + 1.0
    one = LossMoments(4)
    one.update(np.concatenate([a, b]))
    left, right = LossMoments(4), LossMoments(4)
    left.update(a)
    right.update(np.vstack([b, np.full((3, 4), np.nan)]))  # a diverged chain's rows
    merged = left.merge(right)
    assert merged.count == 120
    np.testing.assert_allclose(merged.covariance, one.covariance, rtol=1e-12)
    assert np.isnan(LossMoments(4).covariance).all()
    with pytest.raises(ValueError, match="positive"):
        LossMoments(0)


def test_embedding_puts_co_moving_samples_together() -> None:
    rng = np.random.default_rng(2)
    common = rng.normal(size=(4000, 2))
    # Samples 0-2 move with factor 0, samples 3-5 with factor 1.
    losses = np.hstack([common[:, :1] + 0.1 * rng.normal(size=(4000, 3)),
                        common[:, 1:] + 0.1 * rng.normal(size=(4000, 3))])
    moments = LossMoments(6)
    moments.update(losses)
    xy = embed_samples(moments.correlation)
    within = max(np.linalg.norm(xy[i] - xy[j]) for g in ((0, 1, 2), (3, 4, 5)) for i in g for j in g)
    between = min(np.linalg.norm(xy[i] - xy[j]) for i in (0, 1, 2) for j in (3, 4, 5))
    assert between > 5 * within
    table = moments.table(labels=np.array(list("aaabbb")))
    assert list(table.columns) == ["sample", "mean_loss", "loss_change", "loss_sd", "x", "y", "label"]
