"""Weight restrictions: which coordinates of a network's flat parameter vector a refined LLC
samples (primer §7, "restricted LLC").

A :class:`Restriction` is a named boolean mask over the flat vector ``w`` of shape (d,) —
the module's ``named_parameters()`` concatenated in order, exactly the layout of
:class:`~lltools.targets.networks.NetworkTarget`.  Sampling with a restriction moves only
the masked coordinates; the others stay at w*, so λ̂ is the LLC of the loss restricted to
that affine slice through w*.

Restrictions are made three ways:

- :func:`by_glob` — every parameter whose name matches a shell pattern
  (``"layers.0.*"``, ``"*.weight"``, ``"unembed.weight"``);
- :func:`each_layer` — one restriction per *layer*: the parameter name up to and including
  its first numeric component (``layers.0.q.weight`` → ``layers.0``, ``0.bias`` → ``0``),
  or its module path when there is none (``embed.weight`` → ``embed``, a root parameter
  ``pos`` → ``pos``);
- :func:`each_head` — one restriction per attention head, for modules that declare their
  heads: a module with an integer ``num_heads`` and ``Linear`` children ``q``, ``k``,
  ``v``, ``o`` (head h owns rows ``h·d_head:(h+1)·d_head`` of q, k, v and those columns of
  o), or :class:`torch.nn.MultiheadAttention` (the same rows of each third of
  ``in_proj_weight``/``in_proj_bias`` and columns of ``out_proj.weight``).  The head's
  restriction may be narrowed to some of its projections (``parts="qk"``).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lltools.targets.base import TargetError

#: ``--restrict-each`` choices.
EACH_KINDS: tuple[str, ...] = ("layer", "head")
#: The name of the restriction to every parameter (the unrestricted λ̂); ``--restrict '*'``.
WHOLE = "all"
#: Projections of an attention head.
HEAD_PARTS = "qkvo"


class RestrictionError(TargetError):
    """A restriction that matches nothing or cannot be built; one line."""


@dataclass(frozen=True)
class Restriction:
    """A named set of coordinates of the flat parameter vector.

    Attributes
    ----------
    name : str
        The label shown in tables (``"all"``, a glob, ``"layers.0"``, ``"layers.1.head0"``).
    mask : Tensor, shape (d,), bool
        True where the coordinate is sampled.
    """

    name: str
    mask: Tensor

    @property
    def dim(self) -> int:
        """The restricted dimension: how many coordinates are sampled."""
        return int(self.mask.sum())


def layout(module: nn.Module) -> list[tuple[str, slice, torch.Size]]:
    """``(name, slice of w, shape)`` of every parameter, in ``named_parameters()`` order."""
    out, offset = [], 0
    for name, p in module.named_parameters():
        out.append((name, slice(offset, offset + p.numel()), p.shape))
        offset += p.numel()
    return out


def num_coordinates(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def everything(module: nn.Module) -> Restriction:
    """All coordinates: the unrestricted LLC."""
    return Restriction(WHOLE, torch.ones(num_coordinates(module), dtype=torch.bool))


def by_glob(module: nn.Module, pattern: str) -> Restriction:
    """The parameters whose names match ``pattern`` (:mod:`fnmatch`, case-sensitive).

    Raises
    ------
    RestrictionError
        When nothing matches (the message lists a few parameter names).
    """
    pattern = pattern.strip()
    mask = torch.zeros(num_coordinates(module), dtype=torch.bool)
    names = []
    for name, where, _ in layout(module):
        if fnmatch.fnmatchcase(name, pattern):
            mask[where] = True
            names.append(name)
    if not names:
        known = ", ".join(name for name, _, _ in layout(module)[:6])
        raise RestrictionError(f"--restrict {pattern!r} matches no parameter (parameters: {known}, …)")
    return Restriction(WHOLE if pattern == "*" else pattern, mask)


def layer_of(name: str) -> str:
    """The layer a parameter belongs to (see the module docstring)."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if re.fullmatch(r"\d+", part):
            return ".".join(parts[: i + 1])
    return ".".join(parts[:-1]) or parts[0]


def each_layer(module: nn.Module) -> list[Restriction]:
    """One restriction per layer, in parameter order."""
    d = num_coordinates(module)
    masks: dict[str, Tensor] = {}
    for name, where, _ in layout(module):
        masks.setdefault(layer_of(name), torch.zeros(d, dtype=torch.bool))[where] = True
    return [Restriction(name, mask) for name, mask in masks.items()]


def _head_modules(module: nn.Module) -> Iterable[tuple[str, nn.Module]]:
    for name, sub in module.named_modules():
        declares = isinstance(getattr(sub, "num_heads", None), int) and all(
            isinstance(getattr(sub, part, None), nn.Linear) for part in HEAD_PARTS
        )
        if isinstance(sub, nn.MultiheadAttention) or declares:
            yield name, sub


def _rows(where: slice, shape: torch.Size, rows: range) -> Tensor:
    """Flat indices of ``rows`` of a parameter of ``shape`` stored at ``where``."""
    per_row = math.prod(shape[1:]) if len(shape) > 1 else 1
    idx = torch.arange(where.start, where.stop).view(shape[0], per_row)
    return idx[rows.start: rows.stop].reshape(-1)


def _cols(where: slice, shape: torch.Size, cols: range) -> Tensor:
    idx = torch.arange(where.start, where.stop).view(shape[0], -1)
    return idx[:, cols.start: cols.stop].reshape(-1)


def each_head(module: nn.Module, parts: str = HEAD_PARTS) -> list[Restriction]:
    """One restriction per attention head (see the module docstring).

    Raises
    ------
    RestrictionError
        When the module declares no attention heads, or ``parts`` is not a subset of "qkvo".
    """
    if not parts or set(parts) - set(HEAD_PARTS):
        raise RestrictionError(f"head parts must be letters of {HEAD_PARTS!r}, got {parts!r}")
    where = {name: (sl, shape) for name, sl, shape in layout(module)}
    d = num_coordinates(module)
    out = []
    for prefix, sub in _head_modules(module):
        dot = f"{prefix}." if prefix else ""
        num_heads = int(sub.num_heads)
        if isinstance(sub, nn.MultiheadAttention):
            embed = int(sub.embed_dim)
            d_head = embed // num_heads
            proj = {f"{dot}in_proj_weight", f"{dot}in_proj_bias"}
            for h in range(num_heads):
                mask = torch.zeros(d, dtype=torch.bool)
                for j, part in enumerate("qkv"):
                    if part not in parts:
                        continue
                    rows = range(j * embed + h * d_head, j * embed + (h + 1) * d_head)
                    for key in proj & where.keys():
                        mask[_rows(*where[key], rows)] = True
                if "o" in parts:
                    mask[_cols(*where[f"{dot}out_proj.weight"], range(h * d_head, (h + 1) * d_head))] = True
                out.append(Restriction(f"{dot}head{h}", mask))
            continue
        d_head = int(sub.q.out_features) // num_heads
        for h in range(num_heads):
            mask = torch.zeros(d, dtype=torch.bool)
            span = range(h * d_head, (h + 1) * d_head)
            for part in parts:
                if part == "o":
                    mask[_cols(*where[f"{dot}o.weight"], span)] = True
                else:
                    mask[_rows(*where[f"{dot}{part}.weight"], span)] = True
                    if f"{dot}{part}.bias" in where:
                        mask[_rows(*where[f"{dot}{part}.bias"], span)] = True
            out.append(Restriction(f"{dot}head{h}", mask))
    if not out:
        raise RestrictionError(
            "the model declares no attention heads (a module with num_heads and q, k, v, o Linear "
            "children, or nn.MultiheadAttention)"
        )
    return out


def resolve(module: nn.Module, globs: Sequence[str] = (), each: str | None = None) -> list[Restriction]:
    """The restrictions the CLI's ``--restrict GLOB`` (repeatable) and ``--restrict-each``
    name, in that order; ``[everything(module)]`` when neither is given.

    Raises
    ------
    RestrictionError
        For an unknown ``each``, a glob matching nothing, or duplicate names.
    """
    out = [by_glob(module, g) for g in globs]
    if each is not None:
        if each not in EACH_KINDS:
            raise RestrictionError(f"--restrict-each must be one of {', '.join(EACH_KINDS)}, got {each!r}")
        out += each_layer(module) if each == "layer" else each_head(module)
    if not out:
        return [everything(module)]
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise RestrictionError(f"restrictions named twice: {twice}")
    return out


def embed(restricted: Tensor, centre: Tensor, mask: Tensor) -> Tensor:
    """The full parameter vector(s) w* + m ⊙ (w − w*): ``restricted`` and ``centre`` (…, d),
    ``mask`` (…, d) or (d,) bool — the slice a restricted chain lives on."""
    return torch.where(mask, restricted, centre)
