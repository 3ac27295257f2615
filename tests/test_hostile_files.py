"""Hostile files (issue 14): model cards, safetensors headers, .pt payloads, output paths.

Every malformed file gets a one-line error naming what is wrong, never a traceback, through
the API (``read_card`` / ``load_checkpoint``), the CLI and the app's loaders
(``list_sample_models``, which the Networks page reads).  Hypothesis generates both valid
structure with hostile values and hostile structure.
"""

from __future__ import annotations

import copy
import json
import shutil
import struct
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lltools.targets.cards import CardError, validate_card
from lltools.targets.checkpoints import CheckpointError, load_checkpoint, read_safetensors_header
from lltools.targets.models import list_sample_models, read_card
from tests.test_fuzz_cli import Outcome, check, invoke

MODEL = Path(__file__).resolve().parents[1] / "sample_models" / "deep_linear" / "dln_8_6_6_4_r2"
CARD = json.loads((MODEL / "model.json").read_text())
FAST = ["--chains", "1", "--draws", "2", "--burnin", "0", "--no-progress", "--device", "cpu"]
FILES = settings(max_examples=40, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of a small sample model (the card is rewritten by the tests), without its
    model.py: a card-only folder, whose card must describe the whole model."""
    folder = tmp_path_factory.mktemp("model") / "dln"
    shutil.copytree(MODEL, folder, ignore=shutil.ignore_patterns("*.parquet", "*.csv", "model.py"))
    return folder


def one_error(o: Outcome) -> str:
    """A refusal: exit 2, exactly one ``error:`` line, no traceback, no terminal escapes."""
    check(o)
    assert o.code != 0, o
    assert "\x1b" not in o.stderr + o.stdout
    (line,) = [ln for ln in o.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: ") and len(line) <= 520, line[:300]
    return line


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
CARD_PATHS = [("name",), ("architecture",), ("architecture", "kind"), ("architecture", "widths"),
              ("architecture", "bias"), ("data",), ("data", "n"), ("data", "widths"), ("data", "rank"),
              ("data", "val_n"), ("loss",), ("theory",), ("theory", "llc"), ("default_sampler",),
              ("default_sampler", "epsilon"), ("default_sampler", "chains"), ("final_checkpoint",)]


def _with(card: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(card)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _loaders_refuse_or_accept(folder: Path, text: str) -> None:
    """API, app loader and CLI on one ``model.json`` text: a result or one clean error."""
    (folder / "model.json").write_text(text)
    try:
        read_card(folder)
        accepted = True
    except CardError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        accepted = False
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        cards = list_sample_models(folder.parent)  # the Networks page's loader: skips, never raises
    assert len(cards) == int(accepted)
    o = invoke(["estimate", "--model", str(folder), *FAST])
    check(o)
    if not accepted:
        one_error(o)


@FILES
@given(path=st.sampled_from(CARD_PATHS), value=json_values)
def test_fuzzed_card_values(model_dir: Path, path: tuple[str, ...], value: Any) -> None:
    _loaders_refuse_or_accept(model_dir, json.dumps(_with(CARD, path, value)))


HOSTILE_CARDS = [
    "[" * 100_000 + "]" * 100_000, '"text"', "5", "null", "[]", "{", "NaN", "\x00\xff",
    json.dumps({"a": "[" * 50}),
    json.dumps(_with(CARD, ("architecture",), [1, 2])),
    json.dumps(_with(CARD, ("theory",), ["llc"])),
    json.dumps(_with(CARD, ("default_sampler",), [])),
    json.dumps(_with(CARD, ("final_checkpoint",), None)),
    json.dumps(_with(CARD, ("final_checkpoint",), 7)),
    json.dumps(_with(CARD, ("default_sampler", "epsilon"), "abc")),
    json.dumps(_with(CARD, ("architecture", "widths"), [60000, 60000])),
    json.dumps(_with(CARD, ("architecture", "widths"), [8] * 100_001)),
    json.dumps(_with(CARD, ("data", "n"), 10**10)),
]  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE_CARDS, ids=lambda t: t[:30])
def test_hostile_cards_are_refused_in_one_line(model_dir: Path, text: str) -> None:
    _loaders_refuse_or_accept(model_dir, text)
    (model_dir / "model.json").write_text(text)
    o = invoke(["trajectory", str(model_dir), "--out", str(model_dir / "t.csv"), *FAST[:6], "--no-progress"])
    one_error(o)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [(("default_sampler", "epsilon"), "abc", "default_sampler.epsilon"),
     (("architecture", "widths"), [60000, 60000], "architecture"),
     (("data", "n"), 10**10, "data"),
     (("final_checkpoint",), None, "final_checkpoint"),
     (("loss",), "hinge", "loss"),
     (("first_run",), {"epsilon": -1.0}, "first_run.epsilon")],
)  # fmt: skip
def test_card_errors_name_the_field(path: tuple[str, ...], value: Any, field: str) -> None:
    with pytest.raises(CardError) as info:
        validate_card(_with(CARD, path, value))
    assert f"model.json: {field}" in str(info.value)


def test_a_terminal_escape_in_a_card_name_never_reaches_the_terminal(model_dir: Path) -> None:
    (model_dir / "model.json").write_text(json.dumps(_with(CARD, ("name",), "\x1b]0;pwned\x07evil\x1b[2J")))
    o = check(invoke(["estimate", "--model", str(model_dir), *FAST]))
    assert o.code == 0, o
    assert "evil" in o.stdout and "\x1b" not in o.stdout + o.stderr and "\x07" not in o.stdout


# ------------------------------------------------------------------ safetensors headers
def _safetensors(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


headers = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=8), st.fixed_dictionaries(
        {"dtype": st.sampled_from(["F32", "F64", "I8", "X9", 3]),
         "shape": st.lists(st.integers(-2, 10**12), max_size=3) | json_values,
         "data_offsets": st.lists(st.integers(-1, 10**12), max_size=3) | json_values}),
        max_size=3).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=64),
    st.just(b"[" * 100_000 + b"]" * 100_000),
)


@FILES
@given(header=headers, data=st.binary(max_size=64))
def test_fuzzed_safetensors_headers(model_dir: Path, header: bytes, data: bytes) -> None:
    file = model_dir / "fuzz.safetensors"
    file.write_bytes(_safetensors(header, data))
    for call in (lambda: read_safetensors_header(file), lambda: load_checkpoint(file)):
        try:
            call()
        except CheckpointError as exc:
            assert "\n" not in str(exc).strip()
    o = check(invoke(["estimate", "--model", str(model_dir), "--checkpoint", str(file), *FAST]))
    if o.code != 0:
        one_error(o)


# ------------------------------------------------------------------ .pt payloads
def test_sparse_and_expanded_tensors_are_refused(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.pt"
    torch.save({"w": torch.eye(3).to_sparse()}, sparse)
    with pytest.raises(CheckpointError, match="only dense tensors"):
        load_checkpoint(sparse)
    expanded = tmp_path / "expanded.pt"
    torch.save({"w": torch.zeros(1).expand(10**5, 10**5)}, expanded)
    assert expanded.stat().st_size < 4000
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="expanded or overlapping view"):
        load_checkpoint(expanded)
    assert time.perf_counter() - t0 < 2.0


# ------------------------------------------------------------------ 11. output paths
@pytest.mark.parametrize(
    "argv",
    [["estimate", "--potential", "x**2+y**2", "--trace-out", "{tmp}/t.txt"],
     ["estimate", "--potential", "x**2+y**2", "--trace-out", "{tmp}/missing_dir/t.csv"],
     ["estimate", "--potential", "x**2+y**2", "--trace-out", "{tmp}"],
     ["sweep", "--potential", "x**2+y**2", "--nbeta", "10,20", "--out", "{tmp}/missing_dir/s.csv"],
     ["trajectory", str(MODEL), "--out", "{tmp}/missing_dir/t.parquet"]],
)  # fmt: skip
def test_output_paths_are_checked_before_sampling(tmp_path: Path, argv: list[str]) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    t0 = time.perf_counter()
    o = invoke([*argv, "--draws", "1000000", "--no-progress"])  # sampling would take minutes
    line = one_error(o)
    assert time.perf_counter() - t0 < 5.0
    assert "--out" in line or "--trace-out" in line
