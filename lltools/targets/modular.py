"""Modular addition with two-layer quadratic networks (seed 003, Cullen et al. 2026).

Everything the ``modular_addition`` sample model needs:

- :func:`modular_addition_data` — all pairs (a, b) mod p as one-hot pairs, with a fixed
  train/validation split;
- :class:`QuadraticNetwork` / :func:`build_quadratic_network` — f(x) = V σ(Wᵀx), σ(t) = t²;
- :func:`centred_mse` — the per-sample centred squared error used by training and SGLD;
- :func:`accuracy`.

The theory (λ = rank(J)/2 beside the Cullen et al. formula) is
:func:`lltools.theory.networks.quadratic_network_llc`; the training-dynamics measures are in
:mod:`lltools.theory.training`.

The centred loss
----------------
Seed 003 writes the objective as ½‖P⊥(Y − Ŷ)‖²_F with Y, Ŷ ∈ R^{p×N} and calls P⊥ =
I − 11ᵀ/n "the zero-mean projection along the sample dimension"; but P⊥ multiplies Y from
the left, so as written it acts on the p output coordinates.  We follow the left
multiplication (and primer §4): P⊥ = I_p − (1/p)11ᵀ removes the all-ones direction from each
sample's residual.  This reading is per-sample decomposable — required for minibatch SGLD
and for L_n to be a mean over samples — and makes the loss invariant to adding a constant
to all p outputs, which is the "trivial constant-bias fitting" the paper says the
projection eliminates.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "QuadraticNetwork",
    "accuracy",
    "build_quadratic_network",
    "centred_mse",
    "modular_addition_data",
]


# ---------------------------------------------------------------------------- data
def _spec_int(spec: dict[str, Any], key: str) -> int:
    if key not in spec:
        raise ValueError(f"modular addition spec is missing {key!r}")
    return int(spec[key])


def modular_addition_data(
    spec: dict[str, Any], *, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """All pairs (a, b) mod p as one-hot inputs and targets, split into train and validation.

    Parameters
    ----------
    spec : dict
        The ``data`` block of ``model.json``: ``p`` (modulus, ≥ 2), ``train_fraction`` in
        (0, 1) and ``seed``.  Other keys (e.g. ``kind``) are ignored.
    dtype : torch.dtype, optional
        Floating dtype of the returned tensors (default float32).

    Returns
    -------
    x_train : Tensor, shape (n, 2p)
        Concatenated one-hot pairs [e_a; e_b].
    y_train : Tensor, shape (n, p)
        One-hot targets e_{(a+b) mod p}.
    x_val : Tensor, shape (p² − n, 2p)
    y_val : Tensor, shape (p² − n, p)

    Notes
    -----
    Pair (a, b) has index a·p + b.  A ``torch.Generator`` seeded with ``seed`` draws one
    permutation of the p² indices; the first n = round(train_fraction · p²) form the
    training set.  Each split is returned in increasing index order, so the split (and the
    row order) depends only on (p, train_fraction, seed).
    """
    p = _spec_int(spec, "p")
    seed = _spec_int(spec, "seed")
    if p < 2:
        raise ValueError(f"p must be >= 2, got {p}")
    frac = float(spec.get("train_fraction", float("nan")))
    if not 0.0 < frac < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {spec.get('train_fraction')!r}")
    total = p * p
    n_train = round(frac * total)
    if not 1 <= n_train < total:
        raise ValueError(f"train_fraction {frac} leaves an empty train or validation split for p={p}")

    a = torch.arange(total) // p
    b = torch.arange(total) % p
    x = torch.cat(
        (nn.functional.one_hot(a, p), nn.functional.one_hot(b, p)), dim=1
    ).to(dtype)
    y = nn.functional.one_hot((a + b) % p, p).to(dtype)

    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(total, generator=gen)
    train_idx = perm[:n_train].sort().values
    val_idx = perm[n_train:].sort().values
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


# ---------------------------------------------------------------------------- model
class QuadraticNetwork(nn.Module):
    """Two-layer quadratic network without biases: f(x) = V σ(Wᵀx), σ(t) = t².

    Parameters
    ----------
    d : int
        Input dimension (2p for modular addition).
    width : int
        Hidden width K.
    p : int
        Output dimension.

    Attributes
    ----------
    hidden : nn.Linear
        ``hidden.weight`` has shape (K, d): row j is the hidden unit w_j (Wᵀ in the paper).
    out : nn.Linear
        ``out.weight`` has shape (p, K): the output matrix V.
    """

    def __init__(self, d: int, width: int, p: int) -> None:
        super().__init__()
        if min(d, width, p) < 1:
            raise ValueError(f"d, width and p must be positive, got d={d}, width={width}, p={p}")
        self.d, self.width, self.p = int(d), int(width), int(p)
        self.hidden = nn.Linear(self.d, self.width, bias=False)
        self.out = nn.Linear(self.width, self.p, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Outputs V σ(Wᵀx): ``x`` (..., d) -> (..., p)."""
        return self.out(self.hidden(x).square())

    def extra_repr(self) -> str:
        return f"d={self.d}, width={self.width}, p={self.p}, activation=square"


def build_quadratic_network(arch: dict[str, Any]) -> QuadraticNetwork:
    """Build a :class:`QuadraticNetwork` from the ``architecture`` block of ``model.json``.

    Parameters
    ----------
    arch : dict
        ``{"kind": "quadratic", "d": int, "width": int, "p": int}``; ``kind`` is optional
        but, when present, must be ``"quadratic"``.

    Returns
    -------
    QuadraticNetwork
        Freshly initialised (PyTorch's default ``nn.Linear`` initialisation).
    """
    kind = arch.get("kind", "quadratic")
    if kind != "quadratic":
        raise ValueError(f"expected architecture kind 'quadratic', got {kind!r}")
    missing = [k for k in ("d", "width", "p") if k not in arch]
    if missing:
        raise ValueError(f"quadratic architecture is missing {missing}")
    return QuadraticNetwork(int(arch["d"]), int(arch["width"]), int(arch["p"]))


# ---------------------------------------------------------------------------- loss, metrics
def centred_mse(outputs: Tensor, targets: Tensor) -> Tensor:
    """Per-sample centred squared error ½‖P⊥(y − ŷ)‖², P⊥ = I − (1/p)11ᵀ.

    Parameters
    ----------
    outputs : Tensor, shape (..., p)
        Network outputs ŷ.
    targets : Tensor, shape (..., p)
        One-hot (or any real) targets y.

    Returns
    -------
    Tensor, shape (...)
        One loss per sample; average it for L_n.  Invariant to adding the same constant to
        all p outputs of a sample (see the module notes for the reading of seed 003).
    """
    if outputs.shape != targets.shape:
        raise ValueError(
            f"outputs and targets must have the same shape, got {tuple(outputs.shape)} "
            f"and {tuple(targets.shape)}"
        )
    residual = targets - outputs
    residual = residual - residual.mean(dim=-1, keepdim=True)
    return 0.5 * residual.square().sum(dim=-1)


def accuracy(outputs: Tensor, targets: Tensor) -> float:
    """Fraction of samples whose largest output is the target class.

    Parameters
    ----------
    outputs : Tensor, shape (N, p)
    targets : Tensor, shape (N, p) one-hot, or shape (N,) integer class labels

    Returns
    -------
    float
        In [0, 1].  Ties resolve to the lowest index (``argmax``).
    """
    labels = targets.argmax(dim=-1) if targets.ndim == outputs.ndim else targets
    if labels.shape != outputs.shape[:-1]:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} does not match outputs {tuple(outputs.shape)}"
        )
    if labels.numel() == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((outputs.argmax(dim=-1) == labels).to(torch.float64).mean().item())
