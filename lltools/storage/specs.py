"""Targets of stored runs: the spec dict saved with a run, and rebuilding a target from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lltools.storage.files import RunStoreError
from lltools.targets.base import Target
from lltools.targets.models import load_sample_model
from lltools.targets.potentials import potential_target


def describe_target(spec: dict[str, Any]) -> str:
    """A short one-line description of a target spec for listings."""
    kind = spec.get("kind")
    if kind == "potential":
        return str(spec.get("spec"))
    if kind == "model":
        ckpt = spec.get("checkpoint")
        return f"{spec.get('path')}" + (f" @ {Path(str(ckpt)).name}" if ckpt else "")
    return str(spec.get("name") or spec.get("spec") or kind or "")


# ----------------------------------------------------------------------------- targets
def target_spec(
    potential: str | None = None, model: str | Path | None = None, checkpoint: str | Path | None = None
) -> dict[str, Any]:
    """The stored description of a CLI target (``--potential`` or ``--model``)."""
    if potential is not None:
        return {"kind": "potential", "spec": str(potential)}
    if model is not None:
        return {
            "kind": "model",
            "path": str(Path(model).resolve()),
            "checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
        }
    raise RunStoreError("a target spec needs a potential or a model")


def _potential(spec: dict[str, Any]) -> Target:
    return potential_target(str(spec["spec"]))


def _model(spec: dict[str, Any]) -> Target:
    path = Path(spec["path"])
    if not path.exists():
        raise RunStoreError(f"model folder not found: {path}")
    return load_sample_model(path, spec.get("checkpoint"))


#: How each stored target kind is rebuilt (``runs resume``); extendable.
TARGET_BUILDERS: dict[str, Callable[[dict[str, Any]], Target]] = {
    "potential": _potential,
    "model": _model,
}


def build_target(spec: dict[str, Any]) -> Target:
    """Rebuild a :class:`~lltools.targets.base.Target` from a stored spec."""
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


