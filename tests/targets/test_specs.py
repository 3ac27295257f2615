"""TargetSpec: one description of a target for the CLI, the store, the app and Ray workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lltools.storage.specs import build_target, describe_target, target_spec
from lltools.targets.specs import TargetSpec, TargetSpecError
from lltools.workflows.distributed import resolve_target

SAMPLE_MODELS = Path(__file__).resolve().parents[2] / "sample_models"


def a_model_with_checkpoints() -> tuple[Path, Path]:
    for card in sorted(SAMPLE_MODELS.glob("**/model.json")):
        ckpts = sorted((card.parent / "checkpoints").glob("*.safetensors"))
        if ckpts:
            return card.parent, ckpts[-1]
    pytest.skip("no sample model with checkpoints in this checkout")


@pytest.mark.parametrize(
    "stored",
    [
        {"kind": "potential", "spec": "x**2 * y**4"},
        {"kind": "model", "path": "/abs/models/m", "checkpoint": None},
        {"kind": "model", "path": "/abs/m", "checkpoint": "/abs/m/checkpoints/step_10.safetensors"},
        {"kind": "upload", "path": "/abs/models/m", "sha256": "ab" * 32},
    ],
)
def test_stored_json_round_trips_unchanged(stored: dict) -> None:
    """Runs stored before TargetSpec existed load, and are written back byte for byte."""
    spec = TargetSpec.from_dict(json.loads(json.dumps(stored)))
    assert spec.to_dict() == stored
    assert TargetSpec.parse(stored) == spec and TargetSpec.parse(spec) is spec


def test_describe_is_one_line_and_store_listing_uses_it() -> None:
    assert TargetSpec.potential("x**2 + y**2").describe() == "x**2 + y**2"
    model = {"kind": "model", "path": "/m", "checkpoint": "/m/checkpoints/step_000200.safetensors"}
    assert describe_target(model) == "/m @ step_000200.safetensors"
    assert describe_target({"kind": "model", "path": "/m", "checkpoint": None}) == "/m"
    assert describe_target({"kind": "someday", "name": "mine"}) == "mine"  # unknown kinds still list


def test_cli_flags_parse_or_refuse_in_one_line(tmp_path: Path) -> None:
    assert TargetSpec.from_cli(potential="quadratic") == TargetSpec("potential", expression="quadratic")
    ckpt = tmp_path / "c.safetensors"
    spec = TargetSpec.from_cli(model=tmp_path, checkpoint=ckpt)
    assert spec.path == str(tmp_path.resolve()) and spec.checkpoint == str(ckpt.resolve())
    stored = {"kind": "model", "path": str(tmp_path.resolve()), "checkpoint": None}
    assert target_spec(model=tmp_path) == stored
    for kwargs, needle in (({}, "exactly one"), ({"potential": "x", "model": tmp_path}, "exactly one"),
                           ({"potential": "x", "checkpoint": "c"}, "only with --model")):
        with pytest.raises(TargetSpecError, match=needle) as info:
            TargetSpec.from_cli(**kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(TargetSpecError, match="unknown target kind"):
        TargetSpec.from_dict({"kind": "nope"})
    with pytest.raises(TargetSpecError, match="needs an expression"):
        TargetSpec.from_dict({"kind": "potential", "spec": "  "})


def test_query_round_trip(tmp_path: Path) -> None:
    for spec in (TargetSpec.potential("x**2*y**4"), TargetSpec.model(tmp_path, tmp_path / "c.safetensors")):
        assert TargetSpec.from_query(spec.to_query()) == spec


def test_build_potential_and_model_everywhere_the_same() -> None:
    """CLI, store and Ray build the same target from the same spec."""
    stored = {"kind": "potential", "spec": "x2y4"}
    names = {build_target(stored).name, resolve_target(stored).name, resolve_target("x2y4").name,
             TargetSpec.parse(stored).build().name}
    assert names == {"x**2 * y**4"}
    path, ckpt = a_model_with_checkpoints()
    spec = TargetSpec.model(path, ckpt)
    a, b = spec.build(), build_target(spec.to_dict())
    assert a.dim == b.dim and bool((a.w_star == b.w_star).all())
    assert resolve_target(spec).dim == a.dim


def test_build_refusals_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(TargetSpecError, match="model folder not found"):
        TargetSpec.model(tmp_path / "missing").build()
    upload = TargetSpec("upload", path=str(tmp_path), sha256="00")
    assert not upload.buildable
    with pytest.raises(TargetSpecError, match="cannot be rebuilt"):
        upload.build()
    with pytest.raises(ValueError, match="cannot rebuild a target of kind 'upload'"):
        build_target(upload.to_dict())
    with pytest.raises(TypeError):
        resolve_target(3)  # type: ignore[arg-type]
