"""Per-sample posterior statistics, streamed: each probe sample's expected loss change and
the posterior covariance of per-sample losses — the Bayesian influence function (BIF) of
Kreer et al. 2025 (primer §7):

    BIF(i, j) = Cov_p(ℓ_i(w), ℓ_j(w))

under the localised tempered posterior p that the SGLD draws sample.  The draws arrive in
blocks of per-sample losses of shape (draws, S) (any number of chains × draws flattened
together: every chain of one setting samples the same posterior); :class:`LossMoments`
keeps only a running mean (S,) and a running co-moment (S, S) — never the (draws × S) array —
combined with the pairwise update of Chan, Golub & LeVeque (1979), which is exact in
exact arithmetic and stable in float64.

:func:`embed_samples` places the probe samples in the plane by their loss covariance
(classical MDS on the correlation matrix: samples whose losses move together across the
posterior land close together).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from torch import Tensor


@dataclass
class LossMoments:
    """Running mean and covariance of per-sample losses across posterior draws.

    Parameters
    ----------
    num_samples : int
        S, the number of probe samples.
    loss_init : array (S,), optional
        ℓ_i(w*), to report each sample's expected loss change E_p[ℓ_i] − ℓ_i(w*).
    """

    num_samples: int
    loss_init: np.ndarray | None = None
    count: int = 0
    mean: np.ndarray = field(init=False)
    comoment: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {self.num_samples}")
        self.mean = np.zeros(self.num_samples)
        self.comoment = np.zeros((self.num_samples, self.num_samples))
        if self.loss_init is not None:
            self.loss_init = np.asarray(self.loss_init, dtype=np.float64).reshape(self.num_samples)

    def update(self, losses: Tensor | np.ndarray) -> None:
        """Add a block of draws: per-sample losses of shape (draws, S) (NaN rows — diverged
        chains — are skipped)."""
        if isinstance(losses, Tensor):
            losses = losses.detach().double().cpu().numpy()
        block = np.asarray(losses, dtype=np.float64).reshape(-1, self.num_samples)
        block = block[np.isfinite(block).all(axis=1)]
        m = block.shape[0]
        if m == 0:
            return
        block_mean = block.mean(axis=0)
        centred = block - block_mean
        block_comoment = centred.T @ centred
        n = self.count
        delta = block_mean - self.mean
        total = n + m
        self.mean = self.mean + delta * (m / total)
        self.comoment += block_comoment + np.outer(delta, delta) * (n * m / total)
        self.count = total

    def merge(self, other: LossMoments) -> LossMoments:
        """The moments of both sets of draws together (e.g. shards of one setting)."""
        out = LossMoments(self.num_samples, self.loss_init)
        out.count, out.mean, out.comoment = self.count, self.mean.copy(), self.comoment.copy()
        if other.count:
            n, m = out.count, other.count
            delta = other.mean - out.mean
            out.mean = out.mean + delta * (m / (n + m))
            out.comoment += other.comoment + np.outer(delta, delta) * (n * m / (n + m))
            out.count = n + m
        return out

    @property
    def covariance(self) -> np.ndarray:
        """BIF(i, j) = Cov_p(ℓ_i, ℓ_j), shape (S, S) (unbiased; NaN before two draws)."""
        if self.count < 2:
            return np.full_like(self.comoment, np.nan)
        return self.comoment / (self.count - 1)

    @property
    def correlation(self) -> np.ndarray:
        cov = self.covariance
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            return cov / np.outer(sd, sd)

    @property
    def loss_change(self) -> np.ndarray:
        """E_p[ℓ_i] − ℓ_i(w*), shape (S,) (NaN without ``loss_init``)."""
        if self.loss_init is None:
            return np.full(self.num_samples, np.nan)
        return self.mean - self.loss_init

    def table(self, labels: np.ndarray | None = None) -> pd.DataFrame:
        """One row per probe sample: ``sample, mean_loss, loss_change, loss_sd, x, y`` (the
        2-D embedding of :func:`embed_samples`) and ``label`` when given."""
        xy = embed_samples(self.correlation)
        frame = pd.DataFrame({
            "sample": np.arange(self.num_samples),
            "mean_loss": self.mean,
            "loss_change": self.loss_change,
            "loss_sd": np.sqrt(np.clip(np.diag(self.covariance), 0.0, None)),
            "x": xy[:, 0],
            "y": xy[:, 1],
        })
        if labels is not None:
            frame["label"] = np.asarray(labels)
        return frame


def to_dataset(moments: LossMoments, labels: dict[str, np.ndarray] | None = None) -> xr.Dataset:
    """The moments as an :class:`xarray.Dataset` (what ``.to_netcdf`` writes and xarray /
    ArviZ read): ``mean_loss``, ``loss_change``, ``x``, ``y`` over ``sample`` and the BIF
    ``covariance`` over ``(sample, sample_j)``; ``labels`` become coordinates of ``sample``."""
    table = moments.table()
    coords: dict[str, object] = {"sample": table["sample"].to_numpy(),
                                 "sample_j": table["sample"].to_numpy()}
    for name, values in (labels or {}).items():
        coords[name] = ("sample", np.asarray(values))
    return xr.Dataset(
        {
            "mean_loss": ("sample", table["mean_loss"].to_numpy()),
            "loss_change": ("sample", table["loss_change"].to_numpy()),
            "x": ("sample", table["x"].to_numpy()),
            "y": ("sample", table["y"].to_numpy()),
            "covariance": (("sample", "sample_j"), moments.covariance),
        },
        coords=coords,
        attrs={"draws": int(moments.count), "description": "Bayesian influence function: posterior "
               "covariance of per-sample losses (lltools.estimation.influence)"},
    )


def embed_samples(similarity: np.ndarray, dims: int = 2) -> np.ndarray:
    """Classical MDS of samples from a correlation (similarity) matrix, shape (S, dims).

    The distance d_ij² = 2(1 − ρ_ij) is double-centred into a Gram matrix whose top
    eigenvectors (scaled by √eigenvalue) are the coordinates; NaN correlations (a sample
    whose loss never moves) count as uncorrelated.  Signs are fixed so each axis's largest
    coordinate is positive (reproducible pictures).
    """
    rho = np.nan_to_num(np.asarray(similarity, dtype=np.float64), nan=0.0)
    np.fill_diagonal(rho, 1.0)
    s = rho.shape[0]
    d2 = 2.0 * (1.0 - rho)
    centre = np.eye(s) - np.full((s, s), 1.0 / s)
    gram = -0.5 * centre @ d2 @ centre
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1][:dims]
    coords = vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
    flip = np.sign(coords[np.argmax(np.abs(coords), axis=0), np.arange(coords.shape[1])])
    coords = coords * np.where(flip == 0, 1.0, flip)
    if coords.shape[1] < dims:
        coords = np.pad(coords, ((0, 0), (0, dims - coords.shape[1])))
    return coords


def gaussian_loss_covariance(
    residuals: np.ndarray, design: np.ndarray, posterior_cov: np.ndarray
) -> np.ndarray:
    """Exact Cov(ℓ_i, ℓ_j) for squared-error losses ℓ_i = ½(y_i − x_iᵀw)² under a Gaussian
    posterior w ~ N(m, Σ): with r = y − X m and C = X Σ Xᵀ,

        Cov(ℓ_i, ℓ_j) = r_i r_j C_ij + ½ C_ij²

    (odd moments of a centred Gaussian vanish; Cov(a², b²) = 2 Cov(a, b)²).  The reference
    the BIF estimator is tested against.
    """
    c = design @ posterior_cov @ design.T
    return np.outer(residuals, residuals) * c + 0.5 * c**2
