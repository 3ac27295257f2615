"""ONE description of a target: :class:`TargetSpec` (parse / describe / build).

The CLI's ``--potential`` / ``--model`` / ``--checkpoint`` flags, a stored run's ``target``
dict, the app's selections (and their URLs) and the Ray workers all describe what is
sampled with this one frozen value, and rebuild the :class:`~lltools.targets.base.Target`
with :meth:`TargetSpec.build`.

Kinds
-----
``potential``
    A built-in name or a user expression in x, y (or w1..wd): ``expression``.
``model``
    A sample-model folder ``path`` centred at ``checkpoint`` (default: its last one).
``upload``
    A checkpoint uploaded into the app (``path`` of its model, ``sha256`` of the file); it
    is described but cannot be rebuilt outside the session that received it.

The stored form (:meth:`TargetSpec.to_dict`) is the run store's historical JSON —
``{"kind": "potential", "spec": EXPR}``, ``{"kind": "model", "path": ..., "checkpoint": ...}``,
``{"kind": "upload", "path": ..., "sha256": ...}`` — so existing runs still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from lltools.targets.base import Target
from lltools.targets.models import load_sample_model
from lltools.targets.potentials import potential_target

SpecKind = Literal["potential", "model", "upload"]
KINDS: tuple[str, ...] = ("potential", "model", "upload")
#: Kinds that :meth:`TargetSpec.build` can rebuild anywhere.
BUILDABLE: tuple[str, ...] = ("potential", "model")


class TargetSpecError(ValueError):
    """A target description that cannot be parsed or built; one line, no traceback."""


@dataclass(frozen=True)
class TargetSpec:
    """What is sampled, as plain values.

    Attributes
    ----------
    kind : {"potential", "model", "upload"}
    expression : str, optional
        The potential's built-in name or expression (kind ``potential``).
    path : str, optional
        The sample-model folder (kinds ``model`` and ``upload``), absolute.
    checkpoint : str, optional
        The checkpoint file (kind ``model``); None = the model's default.
    sha256 : str, optional
        The uploaded checkpoint's digest (kind ``upload``).
    device, dtype : str, optional
        Where to build the target (default: CPU, float32 for potentials, the checkpoint's
        dtype for models); not part of the stored form.
    """

    kind: SpecKind
    expression: str | None = None
    path: str | None = None
    checkpoint: str | None = None
    sha256: str | None = None
    device: str | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TargetSpecError(f"unknown target kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.kind == "potential" and not (self.expression and self.expression.strip()):
            raise TargetSpecError("a potential target needs an expression or a built-in name")
        if self.kind in ("model", "upload") and not self.path:
            raise TargetSpecError(f"a {self.kind} target needs a model folder path")

    # ............................................................ constructors
    @classmethod
    def potential(cls, expression: str) -> TargetSpec:
        """A potential: built-in name or expression."""
        return cls("potential", expression=str(expression))

    @classmethod
    def model(cls, path: str | Path, checkpoint: str | Path | None = None) -> TargetSpec:
        """A sample model at a checkpoint (paths made absolute)."""
        return cls(
            "model",
            path=str(Path(path).resolve()),
            checkpoint=None if checkpoint is None else str(Path(checkpoint).resolve()),
        )

    @classmethod
    def from_cli(
        cls,
        potential: str | None = None,
        model: str | Path | None = None,
        checkpoint: str | Path | None = None,
    ) -> TargetSpec:
        """From the CLI's ``--potential`` / ``--model`` / ``--checkpoint`` (exactly one target).

        Raises
        ------
        TargetSpecError
            Neither or both of potential and model; a checkpoint without a model.
        """
        if (potential is None) == (model is None):
            raise TargetSpecError("give exactly one of --potential EXPR or --model PATH")
        if potential is not None:
            if checkpoint is not None:
                raise TargetSpecError("--checkpoint applies only with --model")
            return cls.potential(potential)
        assert model is not None
        return cls.model(model, checkpoint)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetSpec:
        """From the stored form (:meth:`to_dict`); ``expression`` is accepted for ``spec``.

        Raises
        ------
        TargetSpecError
            Not a mapping, or an unknown kind / missing field.
        """
        if not isinstance(data, Mapping):
            raise TargetSpecError(f"a target spec must be a mapping, got {type(data).__name__}")
        kind = data.get("kind")
        if kind == "potential":
            return cls("potential", expression=_text(data.get("spec", data.get("expression"))))
        if kind == "model":
            return cls("model", path=_text(data.get("path")), checkpoint=_text(data.get("checkpoint")))
        if kind == "upload":
            return cls("upload", path=_text(data.get("path")), sha256=_text(data.get("sha256")))
        raise TargetSpecError(f"unknown target kind {kind!r}; use one of {', '.join(KINDS)}")

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> TargetSpec:
        """From URL query parameters: ``potential=EXPR`` or ``model=PATH[&checkpoint=FILE]``."""
        return cls.from_cli(params.get("potential"), params.get("model"), params.get("checkpoint"))

    @classmethod
    def parse(cls, value: str | Mapping[str, Any] | TargetSpec) -> TargetSpec:
        """A spec from any of its forms: a spec, a stored dict, or a potential expression."""
        if isinstance(value, TargetSpec):
            return value
        if isinstance(value, str):
            return cls.potential(value)
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise TypeError(f"cannot make a target spec from {type(value).__name__}")

    # ............................................................ outputs
    def to_dict(self) -> dict[str, Any]:
        """The stored form (backward compatible with runs saved before this class)."""
        if self.kind == "potential":
            return {"kind": "potential", "spec": self.expression}
        if self.kind == "model":
            return {"kind": "model", "path": self.path, "checkpoint": self.checkpoint}
        return {"kind": "upload", "path": self.path, "sha256": self.sha256}

    def to_query(self) -> dict[str, str]:
        """URL query parameters (:meth:`from_query` reads them back); empty for uploads."""
        if self.kind == "potential":
            return {"potential": str(self.expression)}
        if self.kind == "model":
            out = {"model": str(self.path)}
            if self.checkpoint:
                out["checkpoint"] = self.checkpoint
            return out
        return {}

    def describe(self) -> str:
        """One line: the expression, or ``PATH @ CHECKPOINT``."""
        if self.kind == "potential":
            return str(self.expression)
        if self.kind == "model":
            return str(self.path) + (f" @ {Path(self.checkpoint).name}" if self.checkpoint else "")
        return f"{self.path} @ uploaded checkpoint" + (f" {self.sha256[:12]}" if self.sha256 else "")

    @property
    def buildable(self) -> bool:
        """Whether :meth:`build` can rebuild it (not an app upload)."""
        return self.kind in BUILDABLE

    def build(self) -> Target:
        """The :class:`~lltools.targets.base.Target` it describes.

        Raises
        ------
        TargetSpecError
            A missing model folder, or an upload (not rebuildable here).
        """
        dtype = None if self.dtype is None else getattr(torch, self.dtype, None)
        if self.dtype is not None and not isinstance(dtype, torch.dtype):
            raise TargetSpecError(f"unknown dtype {self.dtype!r}; use float32 or float64")
        if self.kind == "potential":
            return potential_target(str(self.expression), device=self.device, dtype=dtype or torch.float32)
        if self.kind == "model":
            if not Path(str(self.path)).exists():
                raise TargetSpecError(f"model folder not found: {self.path}")
            return load_sample_model(str(self.path), self.checkpoint, device=self.device, dtype=dtype)
        raise TargetSpecError(
            "an uploaded checkpoint cannot be rebuilt outside the app session that received it"
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


__all__ = ["BUILDABLE", "KINDS", "TargetSpec", "TargetSpecError"]
