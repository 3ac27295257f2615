"""Targets of stored runs: the spec dict saved with a run (the stored form of
:class:`lltools.targets.specs.TargetSpec`), and rebuilding a target from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lltools.storage.files import RunStoreError
from lltools.targets.base import Target
from lltools.targets.specs import BUILDABLE, TargetSpec, TargetSpecError


def describe_target(spec: dict[str, Any]) -> str:
    """A short one-line description of a stored target spec for listings
    (:meth:`lltools.targets.specs.TargetSpec.describe`; unknown kinds by name)."""
    try:
        return TargetSpec.from_dict(spec).describe()
    except TargetSpecError:
        return str(spec.get("name") or spec.get("spec") or spec.get("kind") or "")


# ----------------------------------------------------------------------------- targets
def target_spec(
    potential: str | None = None, model: str | Path | None = None, checkpoint: str | Path | None = None
) -> dict[str, Any]:
    """The stored description of a CLI target (``--potential`` or ``--model``):
    :meth:`TargetSpec.from_cli(...).to_dict() <lltools.targets.specs.TargetSpec.to_dict>`."""
    if potential is None and model is None:
        raise RunStoreError("a target spec needs a potential or a model")
    try:
        return TargetSpec.from_cli(potential, model, checkpoint).to_dict()
    except TargetSpecError as exc:
        raise RunStoreError(str(exc)) from None


def _build(spec: dict[str, Any]) -> Target:
    try:
        return TargetSpec.from_dict(spec).build()
    except TargetSpecError as exc:
        raise RunStoreError(str(exc)) from None


#: How each stored target kind is rebuilt (``runs resume``); extendable.
TARGET_BUILDERS: dict[str, Callable[[dict[str, Any]], Target]] = {kind: _build for kind in BUILDABLE}


def build_target(spec: dict[str, Any]) -> Target:
    """Rebuild a :class:`~lltools.targets.base.Target` from a stored spec (:class:`TargetSpec`)."""
    kind = spec.get("kind")
    if kind not in TARGET_BUILDERS:
        known = ", ".join(TARGET_BUILDERS)
        raise RunStoreError(f"cannot rebuild a target of kind {kind!r} (known: {known})")
    return TARGET_BUILDERS[kind](spec)


def total_steps(settings: dict[str, Any]) -> int:
    """Sampler steps per chain of stored settings: burn-in + draws × thinning."""
    return int(settings.get("burnin", 200)) + int(settings.get("draws", 1000)) * int(
        settings.get("thinning", 1)
    )


