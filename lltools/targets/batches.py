"""What data a user may hand over, as the fields a :class:`~lltools.targets.networks.NetworkTarget` reads.

A network target needs its dataset as *fields*: tensors with a common leading sample axis
``n`` that a chain's minibatch indexes row by row (counter-based, per chain:
:mod:`lltools.base.rng`).  :func:`normalise_data` turns what researchers have into fields:

- a tuple or list of tensors ``(x, y, ...)`` (arrays are converted with ``torch.as_tensor``);
- a dict of tensors ``{"input_ids": ..., "labels": ...}`` (dict batches);
- a map-style ``torch.utils.data.Dataset`` (``len`` and integer indexing): materialised ONCE
  by collating every item with ``torch.utils.data.default_collate`` (a ``TensorDataset``
  gives its own tensors, no copy), so it must fit in memory;
- a ``DataLoader`` over a map-style dataset: its dataset, and its ``batch_size`` as the
  minibatch size.  The loader's own sampler/shuffling is NOT used: minibatches stay
  counter-based per chain, so the same seed gives the same λ̂ from tensors, the Dataset or
  the DataLoader;
- an iterable-only loader (a ``DataLoader`` over an ``IterableDataset``, or any re-iterable
  object yielding batches): streamed.  Then every chain sees the SAME batch at a step (the
  loader's t-th batch, cycling through the loader), the loader's own order decides the
  batches, and ``n`` is counted by one pass over it.  See
  :class:`~lltools.targets.networks.StreamingNetworkTarget`.

A dict ``{"train": data, "val": data}`` gives a validation split (both in any form above).

Shapes
------
Every field has shape ``(n, ...)``; a batch built from rows ``(m, ...)`` has the structure
of the user's data: a tuple ``(x, y, ...)`` or a dict ``{key: (m, ...)}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, TensorDataset, default_collate

from lltools.targets.base import TargetError

#: Keys of a dict batch taken as the target of the default loss (first match).
TARGET_KEYS: tuple[str, ...] = ("y", "labels", "label", "targets", "target")
#: Largest map-style Dataset materialised item by item.
MAX_DATASET_ITEMS = 10_000_000


@dataclass(frozen=True)
class Fields:
    """A dataset as tensors with a common leading axis, and how a batch is built from them.

    Attributes
    ----------
    tensors : tuple of Tensor
        Each of shape ``(n, ...)``.
    keys : tuple of str, optional
        The dict keys of a dict batch (one per tensor); ``None`` for tuple batches.
    """

    tensors: tuple[Tensor, ...]
    keys: tuple[str, ...] | None = None

    @property
    def n(self) -> int:
        """Number of samples (the common leading axis)."""
        return int(self.tensors[0].shape[0])

    def batch(self, rows: Sequence[Tensor]) -> tuple[Tensor, ...] | dict[str, Tensor]:
        """The user-facing batch of ``rows`` (one tensor per field): a tuple or a dict."""
        if self.keys is None:
            return tuple(rows)
        return dict(zip(self.keys, rows, strict=True))

    def take(self, index: slice | Tensor) -> Fields:
        """The rows ``index`` of every field."""
        return Fields(tuple(t[index] for t in self.tensors), self.keys)

    def to(self, device: torch.device | str | None, dtype: torch.dtype | None) -> Fields:
        """Moved to ``device``; floating fields cast to ``dtype`` (integer fields keep theirs)."""
        return Fields(
            tuple(t.to(device=device, dtype=dtype if t.is_floating_point() else None) for t in self.tensors),
            self.keys,
        )

    @property
    def target_position(self) -> int | None:
        """Which field is the target of the default loss: the second of a tuple, the first
        :data:`TARGET_KEYS` key of a dict; ``None`` when there is none."""
        if self.keys is None:
            return 1 if len(self.tensors) >= 2 else None
        for key in TARGET_KEYS:
            if key in self.keys:
                return self.keys.index(key)
        return None

    def describe(self) -> str:
        """``x (n, 4) float32, y (n,) int64`` — for error messages."""
        names = self.keys or tuple(f"field {i}" for i in range(len(self.tensors)))
        return ", ".join(f"{k} {tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"
                         for k, t in zip(names, self.tensors, strict=True))


@dataclass(frozen=True)
class NormalisedData:
    """:func:`normalise_data`'s answer.

    Attributes
    ----------
    fields : Fields, optional
        Indexable training data; ``None`` for an iterable-only loader.
    loader : Iterable, optional
        The iterable-only loader (then ``fields`` is None).
    batch_size : int, optional
        A DataLoader's ``batch_size`` (the minibatch size it implies).
    val : Fields, optional
        A validation split, when given as ``{"train": ..., "val": ...}``.
    """

    fields: Fields | None
    loader: Iterable[Any] | None = None
    batch_size: int | None = None
    val: Fields | None = None


def _tensor(value: Any, what: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, (np.ndarray, list, int, float)):
        try:
            return torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise TargetError(f"{what} is not numeric: {exc}") from None
    raise TargetError(f"{what} must be a tensor or an array, got {type(value).__name__}")


def _check_lengths(fields: Fields, what: str) -> Fields:
    if not fields.tensors:
        raise TargetError(f"{what} is empty (no tensors)")
    for t in fields.tensors:
        if t.ndim == 0:
            raise TargetError(f"{what}: every tensor needs a leading sample axis ({fields.describe()})")
    sizes = {int(t.shape[0]) for t in fields.tensors}
    if len(sizes) > 1:
        raise TargetError(f"{what}: tensors disagree on the number of samples ({fields.describe()})")
    if fields.n < 1:
        raise TargetError(f"{what} has no samples")
    return fields


def as_fields(data: Any, what: str = "data") -> Fields:
    """Indexable data (tensors, a dict of tensors, a map-style Dataset) as :class:`Fields`.

    Raises
    ------
    TargetError
        Mismatched lengths, non-tensor values, an empty dataset, or an unsupported type.
    """
    if isinstance(data, Tensor):
        raise TargetError(f"{what}: give (inputs, targets) or a dict of tensors, not a single tensor")
    if isinstance(data, TensorDataset):
        return _check_lengths(Fields(tuple(t.detach() for t in data.tensors)), what)
    if isinstance(data, Mapping):
        keys = tuple(str(k) for k in data)
        tensors = tuple(_tensor(v, f"{what}[{k!r}]") for k, v in data.items())
        return _check_lengths(Fields(tensors, keys), what)
    if isinstance(data, (tuple, list)):
        tensors = tuple(_tensor(v, f"{what}[{i}]") for i, v in enumerate(data))
        return _check_lengths(Fields(tensors), what)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__") and not isinstance(data, IterableDataset):
        return _check_lengths(_collate_dataset(data, what), what)
    raise TargetError(f"{what}: unsupported data of type {type(data).__name__}; give tensors (x, y), "
                      "a dict of tensors, a Dataset or a DataLoader")


def _collate_dataset(dataset: Any, what: str) -> Fields:
    """Every item of a map-style dataset collated into fields (items: tuples or dicts of tensors)."""
    n = len(dataset)
    if n < 1:
        raise TargetError(f"{what} has no samples")
    if n > MAX_DATASET_ITEMS:
        raise TargetError(f"{what} has {n:,} items; the limit is {MAX_DATASET_ITEMS:,}")
    try:
        batch = default_collate([dataset[i] for i in range(n)])
    except (TypeError, RuntimeError, ValueError, IndexError, KeyError) as exc:
        raise TargetError(f"{what}: the Dataset's items cannot be stacked: {exc}") from None
    return batch_fields(batch, what)


def batch_fields(batch: Any, what: str = "batch") -> Fields:
    """One collated batch (a tensor tuple/list or a dict of tensors) as :class:`Fields`."""
    if isinstance(batch, Mapping):
        return _check_lengths(Fields(tuple(_tensor(v, f"{what}[{k!r}]") for k, v in batch.items()),
                                     tuple(str(k) for k in batch)), what)
    if isinstance(batch, (tuple, list)):
        return _check_lengths(Fields(tuple(_tensor(v, f"{what}[{i}]") for i, v in enumerate(batch))), what)
    raise TargetError(f"{what} must be a tuple or a dict of tensors, got {type(batch).__name__}")


def is_streaming(data: Any) -> bool:
    """True for an iterable-only loader: not indexable, not a tuple/dict of tensors."""
    if isinstance(data, DataLoader):
        return isinstance(data.dataset, IterableDataset)
    if isinstance(data, (Tensor, Mapping, tuple, list)):
        return False
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return isinstance(data, IterableDataset)
    return isinstance(data, Iterable)


def normalise_data(data: Any, what: str = "data") -> NormalisedData:
    """Any accepted data form (module notes) as :class:`NormalisedData`.

    ``{"train": ..., "val": ...}`` (exactly those keys, or only ``"train"``) is a split.
    """
    if isinstance(data, Mapping) and set(data) in ({"train"}, {"train", "val"}):
        train = normalise_data(data["train"], f"{what}['train']")
        val = None
        if "val" in data and data["val"] is not None:
            val_data = data["val"]
            if isinstance(val_data, DataLoader) and not is_streaming(val_data):
                val_data = val_data.dataset
            val = None if is_streaming(val_data) else as_fields(val_data, f"{what}['val']")
        return NormalisedData(train.fields, train.loader, train.batch_size, val)
    if is_streaming(data):
        if isinstance(data, Iterable) and iter(data) is data:
            raise TargetError(f"{what}: a one-shot iterator cannot be re-read; give a DataLoader or "
                              "an object whose iter() starts again")
        batch_size = getattr(data, "batch_size", None)
        return NormalisedData(None, data, int(batch_size) if batch_size else None)
    if isinstance(data, DataLoader):
        batch_size = data.batch_size
        return NormalisedData(as_fields(data.dataset, what), None,
                              int(batch_size) if batch_size is not None else None)
    return NormalisedData(as_fields(data, what))


__all__ = ["TARGET_KEYS", "Fields", "NormalisedData", "as_fields", "batch_fields", "is_streaming",
           "normalise_data"]
