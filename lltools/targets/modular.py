"""Modular addition with two-layer quadratic networks (seed 003, Cullen et al. 2026).

Everything the ``modular_addition`` sample model needs, and the generic training-dynamics
measures reported beside λ̂ (primer §5):

- :func:`modular_addition_data` — all pairs (a, b) mod p as one-hot pairs, with a fixed
  train/validation split;
- :class:`QuadraticNetwork` / :func:`build_quadratic_network` — f(x) = V σ(Wᵀx), σ(t) = t²;
- :func:`centred_mse` — the per-sample centred squared error used by training and SGLD;
- :func:`accuracy`, :func:`grokking_severity` (GSM), :func:`geometric_complexity` (GC);
- :func:`quadratic_llc_theory` — the paper's closed forms for λ, with their validity;
- :func:`output_jacobian_rank` — the numerical rank(J)/2 reference (primer §4).

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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "QuadraticNetwork",
    "accuracy",
    "build_quadratic_network",
    "centred_mse",
    "geometric_complexity",
    "grokking_severity",
    "modular_addition_data",
    "output_jacobian_rank",
    "quadratic_llc_theory",
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


def _as_float_array(values: Sequence[float] | np.ndarray | Tensor) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def grokking_severity(
    steps: Sequence[float] | np.ndarray | Tensor,
    train_acc: Sequence[float] | np.ndarray | Tensor,
    val_acc: Sequence[float] | np.ndarray | Tensor,
    threshold: float = 0.95,
) -> float:
    """Grokking severity measure (seed 003 §6.4; primer §5).

        GSM = 1{a_V(T) ≥ threshold} / T · Σ_{x=1}^{T} |a_T(x) − a_V(x)|

    Parameters
    ----------
    steps : array-like, shape (L,)
        Strictly increasing, non-negative training times (epochs or optimiser steps) at
        which the accuracies were logged.
    train_acc, val_acc : array-like, shape (L,)
        Training and validation accuracy at those times.
    threshold : float, optional
        Validation accuracy that counts as "generalised" at the end (default 0.95).

    Returns
    -------
    float
        0 when the final validation accuracy is below ``threshold``; otherwise the
        time-average of the train/validation accuracy gap over [0, T], between 0 and 1.

    Notes
    -----
    In the paper x runs over every training epoch 1..T (T = final epoch) and the sum is
    divided by T.  Logs are usually sparser (here: checkpoints), so each logged value
    stands for the interval since the previous log — a right-endpoint Riemann sum over
    [0, T] with T = ``steps[-1]``:

        GSM = 1{a_V(T) ≥ thr} / T · Σ_i (t_i − t_{i−1}) |a_T(t_i) − a_V(t_i)|,   t_{−1} = 0.

    With one log per epoch (t_i = 1, …, T) this is exactly the paper's formula; with
    evenly spaced logs it is the mean gap over the logged rows; a value logged at t = 0
    gets zero weight, as x = 0 is not in the paper's sum.  Because it is a time-average,
    GSM is in units of "fraction of training spent memorised but not generalised" and
    depends on how long training continues after grokking.
    """
    t, a_tr, a_va = (_as_float_array(v) for v in (steps, train_acc, val_acc))
    if not (t.size == a_tr.size == a_va.size) or t.size == 0:
        raise ValueError(
            f"steps, train_acc and val_acc must be non-empty and of equal length, got "
            f"{t.size}, {a_tr.size}, {a_va.size}"
        )
    if not (np.isfinite(t).all() and np.isfinite(a_tr).all() and np.isfinite(a_va).all()):
        raise ValueError("steps and accuracies must be finite")
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ValueError("steps must be non-negative and strictly increasing")
    total = t[-1]
    if total <= 0:
        raise ValueError("the final step T must be positive")
    if a_va[-1] < threshold:
        return 0.0
    widths = np.diff(t, prepend=0.0)
    return float(np.sum(widths * np.abs(a_tr - a_va)) / total)


# ---------------------------------------------------------------------------- geometric complexity
def geometric_complexity(
    module_or_fn: nn.Module | Callable[[Tensor], Tensor],
    inputs: Tensor,
    *,
    batch_size: int = 1024,
) -> float:
    """Geometric complexity (Dherin et al. 2022): GC = (1/|D|) Σ_x ‖∇_x f(x)‖²_F.

    Parameters
    ----------
    module_or_fn : nn.Module or callable
        Maps a batch of inputs (B, ...) to outputs (B, ...); any module works.  It is
        called on batches of one sample, so it must not mix samples (no batch norm in
        training mode).
    inputs : Tensor, shape (N, ...)
        The dataset D (inputs only).
    batch_size : int, optional
        Samples per vectorised Jacobian evaluation (memory: batch × out × in values).

    Returns
    -------
    float
        Mean over samples of the squared Frobenius norm of the input-output Jacobian.

    Notes
    -----
    Computed with ``torch.func.vmap(torch.func.jacrev(...))``; the module's parameters are
    constants (no graph is kept).  For a linear map f(x) = Ax, GC = ‖A‖²_F.
    """
    from torch.func import jacrev, vmap

    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError("inputs must have a non-empty leading sample dimension")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")

    def single(x: Tensor) -> Tensor:
        return module_or_fn(x.unsqueeze(0)).squeeze(0)

    jac_fn = vmap(jacrev(single))
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, inputs.shape[0], batch_size):
            chunk = inputs[start : start + batch_size]
            jac = jac_fn(chunk)
            total += jac.reshape(chunk.shape[0], -1).double().square().sum()
    return float(total.item() / inputs.shape[0])


# ---------------------------------------------------------------------------- theory
def quadratic_llc_theory(d: int, p: int, width: int) -> dict[str, Any]:
    """The closed-form λ of seed 003 for a quadratic network, with its regime and validity.

    Parameters
    ----------
    d : int
        Input dimension (2p for modular addition).
    p : int
        Number of outputs.
    width : int
        Hidden width K.

    Returns
    -------
    dict
        ``llc`` (the paper's value for the applicable regime), ``regime`` ("generic" when
        K ≥ d(d+1)/2, else "non-degenerate"), ``generic`` = p·d(d+1)/4,
        ``non_degenerate`` = K(d+p−1)/2, ``half_params`` = K(d+p)/2 (the regular value
        d_w/2), ``formula_valid`` and a plain-language ``note``.

    Notes
    -----
    Primer §4: checked against rank(J)/2 at random *true* parameters, the non-degenerate
    form K(d+p−1)/2 holds for p ≥ 2 and K(d+p−1) < p·d(d+1)/2; it fails for p = 1 and when
    K(d+p−1) exceeds p·d(d+1)/2 (then the output space caps the rank at p·d(d+1)/2, i.e.
    λ = p·d(d+1)/4).  Both forms are statements about a population minimiser realising the
    truth with generic input distribution on R^d; they do not apply as such to a trained
    checkpoint with weight decay, nor to one-hot inputs that only probe a subset of the
    entries of each Q_k (then compare with :func:`output_jacobian_rank`).
    """
    d, p, width = int(d), int(p), int(width)
    sym = d * (d + 1) // 2
    generic = p * d * (d + 1) / 4.0
    non_degenerate = width * (d + p - 1) / 2.0
    regime = "generic" if width >= sym else "non-degenerate"
    if regime == "generic":
        llc, valid = generic, p >= 2
        note = f"K={width} >= d(d+1)/2={sym}: generic regime, λ = p·d(d+1)/4."
    else:
        valid = p >= 2 and width * (d + p - 1) < p * sym
        llc = non_degenerate if valid else min(non_degenerate, generic)
        note = (
            f"K={width} < d(d+1)/2={sym}: non-degenerate regime, λ = K(d+p−1)/2"
            + ("" if valid else "; outside its checked validity (p = 1 or K(d+p−1) ≥ p·d(d+1)/2)")
            + "."
        )
    return {
        "llc": llc,
        "regime": regime,
        "generic": generic,
        "non_degenerate": non_degenerate,
        "half_params": width * (d + p) / 2.0,
        "formula_valid": bool(valid),
        "note": note,
    }


def output_jacobian_rank(
    module: nn.Module,
    inputs: Tensor,
    *,
    centred: bool = True,
    rtol: float | None = None,
) -> int:
    """Numerical rank of the Jacobian of the outputs on ``inputs`` w.r.t. the parameters.

    rank(J)/2 is the LLC of a minimally singular model (primer §4) — a cheap, honest
    reference beside the closed forms.

    Parameters
    ----------
    module : nn.Module
    inputs : Tensor, shape (N, ...)
    centred : bool, optional
        Project each output vector with P⊥ = I − (1/p)11ᵀ first (default), since the
        centred loss cannot see the all-ones direction.
    rtol : float, optional
        Relative singular-value cut-off (default: max(shape) · machine epsilon of float64).

    Returns
    -------
    int
        The rank, computed in float64 with an SVD.
    """
    from torch.func import functional_call, jacrev

    params = {k: v.detach().double() for k, v in module.named_parameters()}
    x = inputs.double()

    def outputs(pr: dict[str, Tensor]) -> Tensor:
        out = functional_call(module, pr, (x,))
        if centred:
            out = out - out.mean(dim=-1, keepdim=True)
        return out.reshape(-1)

    jac = jacrev(outputs)(params)
    mat = torch.cat([j.reshape(j.shape[0], -1) for j in jac.values()], dim=1)
    sv = torch.linalg.svdvals(mat)
    if sv.numel() == 0:
        return 0
    tol = (rtol if rtol is not None else max(mat.shape) * torch.finfo(torch.float64).eps) * sv[0]
    return int((sv > tol).sum().item())
