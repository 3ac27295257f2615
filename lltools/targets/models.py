"""Network targets with known answers and the sample-model registry.

- :func:`deep_linear_target` — teacher–student deep linear regression whose centre w* is a
  true parameter with every layer of rank exactly r, so λ(w*) is Aoyagi's (primer §4).
- :func:`build_module` / :func:`build_dataset` — the architecture and data kinds a
  ``model.json`` may name.
- :func:`load_model_folder` (alias :func:`load_sample_model`), :func:`list_sample_models`,
  :func:`list_checkpoints` — the model-folder format (``model.py``, ``model.json``,
  ``checkpoints/*.safetensors``, ``metrics.csv``; :mod:`lltools.targets.folders`), the same
  for the shipped ``sample_models/<name>/`` and any user's folder.

Deep linear data and noise
--------------------------
Inputs are x ~ N(0, I) and targets y = f(x; w*) + σ·ξ with ``noise_std`` σ = 0 by default.
With σ = 0 the teacher w* is an exact minimum of the *empirical* loss (L_n(w*) = 0) and
L_n(w) − L_n(w*) = ½ tr((A(w) − A*) Σ̂ (A(w) − A*)ᵀ) has the same zero set and the same
volume scaling as the population loss, so λ̂ estimates Aoyagi's λ with only the sampler's
bias.  With σ > 0, w* remains the *population* true parameter but is no longer the
empirical minimum: the sampler can lower L_n by fitting the noise, by about σ²·k/(2n) for
k identifiable directions, which pulls λ̂ = nβ(E[L_n] − L_n(w*)) down by about
σ²·k/(2 log n) at nβ = n/log n; keep σ small (≲ 0.1) if you use it.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from lltools.targets.base import TargetError
from lltools.targets.cards import read_card_file
from lltools.targets.checkpoints import CheckpointError, load_checkpoint, read_metadata
from lltools.targets.folders import (
    CARD_FILE,
    ModelFolderError,
    call_build,
    call_user,
    folder_of,
    has_code,
    load_model_code,
)
from lltools.targets.modular import build_quadratic_network, centred_mse, modular_addition_data
from lltools.targets.networks import NetworkTarget, resolve_loss

ARCHITECTURE_KINDS = ("deep_linear", "mlp", "quadratic")
DATA_KINDS = ("deep_linear_teacher", "digits", "modular_addition")
LOSS_NAMES = ("mse", "cross_entropy", "centred_mse")
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
REQUIRED_CARD_KEYS = ("name", "architecture", "data", "loss", "final_checkpoint")

#: Where the repository's sample models live (used when ``root`` is relative and missing).
REPO_SAMPLE_MODELS = Path(__file__).resolve().parent.parent / "sample_models"


class Dataset(NamedTuple):
    """Training data and an optional validation split (leading axis = samples)."""

    inputs: Tensor
    targets: Tensor
    val_inputs: Tensor | None = None
    val_targets: Tensor | None = None


# ---------------------------------------------------------------------- random streams
def _generator(seed: int, stream: int) -> torch.Generator:
    """An independent torch generator for (seed, stream) (teacher, inputs, val, noise)."""
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


STREAM_TEACHER, STREAM_INPUTS, STREAM_VAL, STREAM_NOISE = 0, 1, 2, 3


# ---------------------------------------------------------------------- architectures
def _widths(spec: dict[str, Any], what: str) -> list[int]:
    widths = [int(w) for w in spec.get("widths", [])]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"{what} needs 'widths' with at least 2 positive entries, got {spec.get('widths')}")
    return widths


def deep_linear_module(widths: Sequence[int], bias: bool = False) -> nn.Sequential:
    """x ↦ W_L ⋯ W_1 x (+ biases): ``nn.Sequential`` of ``nn.Linear`` (input → output widths)."""
    widths = list(widths)
    return nn.Sequential(*(nn.Linear(a, b, bias=bias) for a, b in pairwise(widths)))


def mlp_module(widths: Sequence[int], activation: str = "relu", bias: bool = True) -> nn.Sequential:
    """Linear–activation–…–Linear with the given widths (input → output)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    widths = list(widths)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(widths)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def build_module(arch: dict[str, Any]) -> nn.Module:
    """The network of a ``model.json`` ``architecture`` block (fresh default initialisation).

    Kinds: ``"deep_linear"`` (``widths``, ``bias``), ``"mlp"`` (``widths``, ``activation``
    in {relu, tanh}, ``bias``), ``"quadratic"`` (see :mod:`lltools.targets.modular`).
    """
    kind = arch.get("kind")
    if kind == "deep_linear":
        return deep_linear_module(_widths(arch, "deep_linear"), bool(arch.get("bias", False)))
    if kind == "mlp":
        return mlp_module(_widths(arch, "mlp"), str(arch.get("activation", "relu")),
                          bool(arch.get("bias", True)))
    if kind == "quadratic":
        return build_quadratic_network(arch)
    raise ValueError(f"unknown architecture kind {kind!r}; valid kinds: {', '.join(ARCHITECTURE_KINDS)}")


def resolve_card_loss(name: str) -> str | Callable[[Tensor, Tensor], Tensor]:
    """The loss of a ``model.json``: a NetworkTarget loss name or a callable."""
    if name in ("mse", "cross_entropy"):
        return name
    if name == "centred_mse":
        return centred_mse
    raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSS_NAMES)}")


def card_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The per-sample loss ``(outputs, targets) -> (m,)`` a ``model.json`` names."""
    loss = resolve_card_loss(name)
    return resolve_loss(loss)[1] if isinstance(loss, str) else loss


# ---------------------------------------------------------------------- deep linear teacher
def _orthonormal(rows: int, cols: int, gen: torch.Generator) -> Tensor:
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=gen, dtype=torch.float64))
    return q  # (rows, cols), orthonormal columns


def deep_linear_teacher(
    widths: Sequence[int], rank: int, seed: int, bias: bool = False
) -> dict[str, Tensor]:
    """Teacher weights w* with every layer of rank exactly ``rank`` (float64 state dict).

    Layer i maps width h_i to h_{i+1}: W_i = U_{i+1} S_i U_iᵀ with U_i (h_i, r) orthonormal
    columns shared by consecutive layers and S_i (r, r) with singular values in [0.8, 1.25],
    so each W_i and the product W_L ⋯ W_1 = U_L (S_L ⋯ S_1) U_0ᵀ have rank exactly r
    (all zeros when r = 0).  Biases, if any, are N(0, 0.5²); they do not change λ beyond
    the output-dim/2 that biases add (primer §4).
    """
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths needs at least 2 positive entries, got {widths}")
    if not 0 <= rank <= min(widths):
        raise ValueError(f"rank must be in [0, min(widths)] = [0, {min(widths)}], got {rank}")
    gen = _generator(seed, STREAM_TEACHER)
    bases = [_orthonormal(h, rank, gen) for h in widths]
    names = [k for k, _ in deep_linear_module(widths, bias).named_parameters()]
    state: dict[str, Tensor] = {}
    for i, h_out in enumerate(widths[1:]):
        q1, q2 = _orthonormal(rank, rank, gen), _orthonormal(rank, rank, gen)
        svals = 0.8 + 0.45 * torch.rand(rank, generator=gen, dtype=torch.float64)
        core = q1 @ torch.diag(svals) @ q2.T  # (r, r), invertible
        state[f"{i}.weight"] = bases[i + 1] @ core @ bases[i].T  # (h_out, h_in)
        if bias:
            state[f"{i}.bias"] = 0.5 * torch.randn(h_out, generator=gen, dtype=torch.float64)
    assert list(state) == names
    return state


def _deep_linear_forward(state: dict[str, Tensor], x: Tensor, layers: int) -> Tensor:
    for i in range(layers):
        x = x @ state[f"{i}.weight"].T
        if f"{i}.bias" in state:
            x = x + state[f"{i}.bias"]
    return x


def deep_linear_data(spec: dict[str, Any], dtype: torch.dtype = torch.float32) -> Dataset:
    """Teacher–student data: x ~ N(0, I) (n, h_0), y = f(x; w*) + σξ (n, h_L), and val.

    ``spec``: ``widths``, ``rank``, ``n``, ``seed``, optional ``bias`` (False),
    ``noise_std`` (0.0) and ``val_n`` (1000).  Regenerated bit-for-bit from the seed.
    """
    widths = _widths(spec, "deep_linear_teacher")
    rank, n, seed = int(spec["rank"]), int(spec["n"]), int(spec["seed"])
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    noise_std, val_n = float(spec.get("noise_std", 0.0)), int(spec.get("val_n", 1000))
    teacher = deep_linear_teacher(widths, rank, seed, bool(spec.get("bias", False)))
    layers = len(widths) - 1
    x = torch.randn(n, widths[0], generator=_generator(seed, STREAM_INPUTS), dtype=torch.float64)
    xv = torch.randn(val_n, widths[0], generator=_generator(seed, STREAM_VAL), dtype=torch.float64)
    y = _deep_linear_forward(teacher, x, layers)
    yv = _deep_linear_forward(teacher, xv, layers)
    if noise_std > 0:
        gen = _generator(seed, STREAM_NOISE)
        y = y + noise_std * torch.randn(y.shape, generator=gen, dtype=torch.float64)
        yv = yv + noise_std * torch.randn(yv.shape, generator=gen, dtype=torch.float64)
    return Dataset(x.to(dtype), y.to(dtype), xv.to(dtype), yv.to(dtype))


def deep_linear_target(
    widths: Sequence[int],
    rank: int,
    n: int,
    seed: int,
    bias: bool = False,
    *,
    batch_size: int | None = None,
    noise_std: float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> NetworkTarget:
    """Teacher–student deep linear regression centred at the teacher w* (MSE loss).

    Parameters
    ----------
    widths : sequence of int
        Layer widths from input to output, e.g. ``(4, 3, 2)``.
    rank : int
        Rank r of every teacher layer (and of the product); 0 gives w* = 0.
    n : int
        Training samples x ~ N(0, I).
    seed : int
        Fixes teacher and data.
    bias : bool
        Biases on every layer (adds output-dim/2 to λ).
    batch_size : int, optional
        SGLD minibatch size; ``None`` for full batch.
    noise_std : float
        Label noise σ (default 0: w* is the exact empirical minimum; see module notes).

    Returns
    -------
    NetworkTarget
        ``w_star`` the teacher; ``deep_linear = (widths, rank, bias)`` (its λ is Aoyagi's,
        :func:`lltools.theory.record.theory_for`); ``val_inputs``/``val_targets`` attached.
    """
    spec = {"kind": "deep_linear_teacher", "widths": list(widths), "rank": int(rank), "n": int(n),
            "seed": int(seed), "bias": bool(bias), "noise_std": float(noise_std)}
    data = deep_linear_data(spec, dtype)
    module = deep_linear_module(widths, bias)
    teacher = deep_linear_teacher(widths, rank, seed, bias)
    module.load_state_dict({k: v.to(torch.float32) for k, v in teacher.items()})
    name = f"deep linear {'-'.join(map(str, widths))} r={rank}" + (" +bias" if bias else "")
    target = NetworkTarget(module, data.inputs, data.targets, "mse", batch_size=batch_size,
                           w_star=torch.cat([v.reshape(-1) for v in teacher.values()]), name=name,
                           device=device, dtype=dtype)
    target.deep_linear = (tuple(int(w) for w in widths), int(rank), bool(bias))
    target.val_inputs, target.val_targets = data.val_inputs, data.val_targets
    return target


# ---------------------------------------------------------------------- digits
def digits_data(spec: dict[str, Any], dtype: torch.dtype = torch.float32) -> Dataset:
    """scikit-learn's 8×8 digits (1797 samples, bundled, no download), split and standardised.

    ``spec``: ``seed`` (0) and ``val_fraction`` (0.2).  A ``torch.Generator`` seeded with
    ``seed`` permutes the samples; inputs are standardised with the *training* mean and
    standard deviation (pixels constant on the training set are left centred, std 1).
    Targets are int64 labels 0–9.
    """
    from sklearn.datasets import load_digits

    seed, val_fraction = int(spec.get("seed", 0)), float(spec.get("val_fraction", 0.2))
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float64)
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_val = round(val_fraction * len(x))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    mean = x[train_idx].mean(dim=0)
    std = x[train_idx].std(dim=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    x = (x - mean) / std
    return Dataset(x[train_idx].to(dtype), y[train_idx], x[val_idx].to(dtype), y[val_idx])


def build_dataset(data: dict[str, Any], dtype: torch.dtype = torch.float32) -> Dataset:
    """The data of a ``model.json`` ``data`` block.

    Kinds: ``"deep_linear_teacher"`` (:func:`deep_linear_data`), ``"digits"``
    (:func:`digits_data`), ``"modular_addition"`` (:mod:`lltools.targets.modular`).
    """
    kind = data.get("kind")
    if kind == "deep_linear_teacher":
        return deep_linear_data(data, dtype)
    if kind == "digits":
        return digits_data(data, dtype)
    if kind == "modular_addition":
        return Dataset(*modular_addition_data(data, dtype=dtype))
    raise ValueError(f"unknown data kind {kind!r}; valid kinds: {', '.join(DATA_KINDS)}")


# ---------------------------------------------------------------------- model folders
def _model_dir(path: str | Path) -> Path:
    path = folder_of(path)
    if not (path / CARD_FILE).is_file():
        if has_code(path):
            return path
        raise FileNotFoundError(f"no model.py or model.json in {path}")
    return path


def read_card(path: str | Path) -> dict[str, Any]:
    """The validated ``model.json`` of a model folder (:mod:`lltools.targets.cards`); ``{}``
    for a folder with ``model.py`` and no card.

    Raises :class:`~lltools.targets.cards.CardError` (a ``ValueError``, one line naming the
    field) for a card that is not JSON, too large or deep, of the wrong types, or declaring
    more parameters or data than the limits -- before anything is built.  Without
    ``model.py`` the card must name the architecture, data, loss and final checkpoint.
    """
    folder = _model_dir(path)
    if not (folder / CARD_FILE).is_file():
        return {}
    return read_card_file(folder / CARD_FILE, builtin=not has_code(folder))


def _resolve_checkpoint(folder: Path, checkpoint: str | Path) -> Path:
    path = Path(checkpoint)
    if path.is_absolute():
        return path
    return folder / path if (folder / path).exists() or not path.exists() else path


def expected_state(module: nn.Module) -> dict[str, tuple[tuple[int, ...], None]]:
    """``{name: (shape, None)}`` for every parameter and persistent buffer of ``module``."""
    return {k: (tuple(v.shape), None) for k, v in module.state_dict().items()}


def default_checkpoint(folder: str | Path, card: dict[str, Any] | None = None) -> Path | None:
    """The centre's weights: the card's ``final_checkpoint``, else the last training
    checkpoint (:func:`list_checkpoints`), else the last ``*.safetensors`` by name (teachers
    excepted), else ``None`` (w* is the module ``build()`` returns)."""
    folder = Path(folder)
    if card and card.get("final_checkpoint"):
        return _resolve_checkpoint(folder, card["final_checkpoint"])
    stepped = list_checkpoints(folder)
    if stepped:
        return stepped[-1]
    files = sorted(p for d in (folder, folder / "checkpoints") if d.is_dir() for p in d.glob("*.safetensors")
                   if _role(p) != "teacher")
    return files[-1] if files else None


def _role(path: Path) -> str | None:
    try:
        return read_metadata(path).get("role")
    except CheckpointError:
        return None


def _load_weights(module: nn.Module, ckpt: Path) -> None:
    """Load a checkpoint into ``module`` (exact key set and shapes, floating values as float32)."""
    state = load_checkpoint(ckpt, expected=expected_state(module))
    module.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()})


def load_model_folder(
    path: str | Path,
    checkpoint: str | Path | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    batch_size: int | None = None,
) -> NetworkTarget:
    """A model folder as a :class:`NetworkTarget` centred at one of its checkpoints.

    A folder with ``model.py`` (:mod:`lltools.targets.folders`: ``build()``, ``data()``,
    optionally ``loss``/``evaluate``) RUNS that file; a folder with only ``model.json`` uses
    the card's built-in architecture and data kinds.  The shipped sample models are folders
    of the first kind whose ``model.py`` reads their card.

    Parameters
    ----------
    path : str or Path
        The model folder (or its ``model.py`` / ``model.json``).
    checkpoint : str or Path, optional
        A checkpoint file (relative to the folder, or any path); default
        :func:`default_checkpoint` (none: the weights ``build()`` returns).  Validated
        against the module's exact key set (parameters and buffers) and shapes with
        :func:`lltools.targets.checkpoints.load_checkpoint`.
    device, dtype : optional
        Where to evaluate (default CPU, the module's dtype).
    batch_size : int, optional
        SGLD minibatch size; default the card's ``default_sampler.batch_size``, else a
        DataLoader's ``batch_size``, else full batch.

    Returns
    -------
    NetworkTarget
        With ``card`` (the parsed ``model.json``, ``{}`` without one), ``model_dir``,
        ``checkpoint_path`` (None: build()'s weights) and, with a validation split,
        ``val_inputs``/``val_targets`` attached.

    Raises
    ------
    ModelFolderError
        A problem with the folder's code or data (one line naming the folder).
    CheckpointError, CardError
        An unsafe, corrupt or mismatched checkpoint; an invalid card.
    """
    folder = _model_dir(path)
    card = read_card(folder)
    if batch_size is None:
        batch_size = (card.get("default_sampler") or {}).get("batch_size")
    theory = (card.get("theory") or {}).get("llc")
    common = {"batch_size": batch_size, "name": str(card.get("name") or folder.name),
              "theory_llc": None if theory is None else float(theory), "device": device, "dtype": dtype}
    if has_code(folder):
        code = load_model_code(folder)
        module = call_build(code)
        ckpt = _resolve_checkpoint(folder, checkpoint) if checkpoint else default_checkpoint(folder, card)
        if ckpt is not None:
            _load_weights(module, ckpt)
        data = call_user(folder, code.data, "data()")
        try:
            target = NetworkTarget.from_data(module, data, loss=code.loss, evaluate=code.evaluate, **common)
        except ModelFolderError:
            raise
        except TargetError as exc:
            raise ModelFolderError(folder, str(exc)) from None
    else:
        module = build_module(card["architecture"])
        ckpt = _resolve_checkpoint(folder, checkpoint or card["final_checkpoint"])
        _load_weights(module, ckpt)
        dataset = build_dataset(card["data"], dtype or torch.float32)
        target = NetworkTarget(module, dataset.inputs, dataset.targets, resolve_card_loss(card["loss"]),
                               **common)
        target.val_inputs, target.val_targets = dataset.val_inputs, dataset.val_targets
    if card.get("loss"):
        target.loss_name = str(card["loss"])
    target.card, target.model_dir, target.checkpoint_path = card, folder, ckpt
    return target


#: The historical name of :func:`load_model_folder` (sample models are model folders).
load_sample_model = load_model_folder


def list_sample_models(root: str | Path = "sample_models") -> list[dict[str, Any]]:
    """Every model folder (``model.json`` or ``model.py``) up to two folders below ``root``,
    as its card with the folder as ``"path"``.

    A relative ``root`` that does not exist is looked up in the repository.  Folders whose
    card cannot be read are skipped with a warning.  Sorted by path.
    """
    root = Path(root)
    if not root.exists() and not root.is_absolute():
        root = REPO_SAMPLE_MODELS.parent / root
    found = sorted({p.parent for pattern in ("*/model.json", "*/*/model.json", "*/model.py", "*/*/model.py")
                    for p in root.glob(pattern)})
    return [card for folder in found if (card := folder_card(folder)) is not None]


def folder_card(folder: str | Path) -> dict[str, Any] | None:
    """A model folder's card with its ``"path"``, ``"name"`` defaulting to the folder's name and
    ``"final_checkpoint"`` to :func:`default_checkpoint` (relative; ``""``: the weights
    ``build()`` returns), or ``None`` with a warning when the card cannot be read."""
    folder = Path(folder)
    try:
        card = read_card(folder)
    except (ValueError, OSError) as exc:
        warnings.warn(f"skipping {folder}: {exc}", stacklevel=2)
        return None
    out = {**card, "name": card.get("name") or folder.name, "path": str(folder)}
    if not out.get("final_checkpoint"):  # the default centre, relative to the folder ("" = build()'s)
        ckpt = default_checkpoint(folder, card)
        out["final_checkpoint"] = "" if ckpt is None else (
            str(ckpt.relative_to(folder)) if ckpt.is_relative_to(folder) else str(ckpt))
    return out


def _step_of(path: Path) -> int | None:
    try:
        meta = read_metadata(path)
    except CheckpointError:
        meta = {}
    if meta.get("role") == "teacher":
        return None
    if str(meta.get("step", "")).lstrip("-").isdigit():
        return int(meta["step"])
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else None


def list_checkpoints(path: str | Path) -> list[Path]:
    """The training checkpoints of a sample model, sorted by training step.

    The step is the safetensors metadata ``"step"`` (else the last number in the file
    name).  Files whose metadata says ``role = "teacher"`` are not points of a training
    run (the deep linear teacher w*) and are left out; so are files with no step.
    """
    folder = Path(path)
    ckpt_dir = folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder
    steps = [(s, p) for p in ckpt_dir.glob("*.safetensors") if (s := _step_of(p)) is not None]
    return [p for _, p in sorted(steps, key=lambda sp: (sp[0], sp[1].name))]


def num_parameters(module: nn.Module) -> int:
    """Total number of parameters d."""
    return int(sum(math.prod(p.shape) for p in module.parameters()))


__all__ = [
    "Dataset",
    "TargetError",
    "build_dataset",
    "build_module",
    "card_loss",
    "deep_linear_data",
    "deep_linear_module",
    "deep_linear_target",
    "deep_linear_teacher",
    "default_checkpoint",
    "digits_data",
    "expected_state",
    "folder_card",
    "list_checkpoints",
    "list_sample_models",
    "load_model_folder",
    "load_sample_model",
    "mlp_module",
    "num_parameters",
    "read_card",
]


def data_subsets(path: str | Path) -> dict[str, Tensor]:
    """The named data subsets a folder's ``model.py`` declares with ``subsets()`` (for
    data-restricted LLCs, :meth:`NetworkTarget.restrict_data`): name → bool mask (n,) or
    int64 indices.  ``{}`` when it declares none.

    Raises
    ------
    ModelFolderError
        When ``subsets()`` raises or returns something other than a dict of tensors.
    """
    folder = _model_dir(path)
    if not has_code(folder):
        return {}
    code = load_model_code(folder)
    if code.subsets is None:
        return {}
    found = call_user(folder, code.subsets, "subsets()")
    if not isinstance(found, dict) or not all(isinstance(k, str) for k in found):
        raise ModelFolderError(folder, "subsets() must return a dict of name -> mask or indices")
    out = {}
    for name, value in found.items():
        tensor = torch.as_tensor(value)
        if tensor.ndim != 1 or not (tensor.dtype == torch.bool or not tensor.is_floating_point()):
            raise ModelFolderError(folder, f"subsets()[{name!r}] must be a 1-D bool mask or integer indices")
        out[name] = tensor
    return out


class CardModel:
    """The ``model.py`` functions of a folder whose card names a built-in architecture, data
    kind and loss (the shipped sample models): ``build()``, ``data()`` (training and
    validation data regenerated from the card, float64; cast on loading) and
    ``loss(outputs, batch)`` (the card's per-sample loss against ``batch[1]``).

    A sample model's ``model.py`` is then three lines::

        from pathlib import Path
        from lltools.targets.models import CardModel
        build, data, loss = CardModel(Path(__file__).resolve().parent).functions
    """

    def __init__(self, folder: str | Path) -> None:
        self.card = read_card(folder)
        self._per_sample = card_loss(self.card["loss"])

    def build(self) -> nn.Module:
        """The card's architecture (fresh initialisation; the checkpoints hold the weights)."""
        return build_module(self.card["architecture"])

    def data(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Training and validation data, regenerated from the card."""
        d = build_dataset(self.card["data"], torch.float64)
        return {"train": (d.inputs, d.targets), "val": (d.val_inputs, d.val_targets)}

    def loss(self, outputs: Tensor, batch: tuple[Tensor, ...]) -> Tensor:
        """The card's per-sample loss of ``outputs`` against the targets ``batch[1]``, shape (m,)."""
        return self._per_sample(outputs, batch[1])

    @property
    def functions(self) -> tuple[Callable[[], nn.Module], Callable[[], Any], Callable[..., Tensor]]:
        """``(build, data, loss)``."""
        return self.build, self.data, self.loss

