"""Checkpoints are untrusted input: hostile files raise CheckpointError and never run code."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch

from lltools.targets.checkpoints import (
    CheckpointError,
    load_checkpoint,
    read_metadata,
    read_safetensors_header,
    save_checkpoint,
)

STATE = {"0.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "0.bias": torch.ones(2)}
EXPECTED = {"0.weight": ((2, 3), torch.float32), "0.bias": ((2,), torch.float32)}


class MakesMarker:
    """Unpickling this would create a marker file (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _raw_safetensors(path: Path, header: dict, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_roundtrip_with_metadata_and_expected(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ckpt.safetensors", STATE, {"step": 120, "role": "train"})
    loaded = load_checkpoint(path, expected=EXPECTED)
    assert set(loaded) == set(STATE) and all(torch.equal(loaded[k], STATE[k]) for k in STATE)
    assert read_metadata(path) == {"step": "120", "role": "train"}
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves nothing behind


def test_weights_only_torch_file_loads(tmp_path: Path) -> None:
    torch.save({"state_dict": STATE}, tmp_path / "model.pt")
    loaded = load_checkpoint(tmp_path / "model.pt", expected=EXPECTED)
    assert torch.equal(loaded["0.weight"], STATE["0.weight"])


@pytest.mark.parametrize("how", ["torch.save", "raw pickle"])
def test_code_running_pickle_is_refused_without_running(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"0.weight": MakesMarker(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="refused: the file contains pickled objects"):
        load_checkpoint(path)
    assert not marker.exists()


def test_code_running_pickle_with_safetensors_name_is_not_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(MakesMarker(marker)))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_safetensors(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "good.safetensors", STATE).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good[:-5])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(cut)
    cut.write_bytes(good[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(cut)
    cut.write_bytes(good[:40])  # header length field larger than what follows
    with pytest.raises(CheckpointError, match="header length"):
        load_checkpoint(cut)


def test_header_declaring_terabytes_is_refused_before_allocating(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [800_000, 1_000_000], "data_offsets": [0, 3_200_000_000_000]}}
    path = _raw_safetensors(tmp_path / "huge.safetensors", header, b"\0" * 64)
    with pytest.raises(CheckpointError, match=r"3\.2 TB"):
        load_checkpoint(path)


def test_absurd_header_length(tmp_path: Path) -> None:
    path = tmp_path / "absurd.safetensors"
    path.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(CheckpointError, match="header length"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}, "needs 24 B"),
        ({"dtype": "X9", "shape": [2], "data_offsets": [0, 8]}, "unsupported dtype"),
        ({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}, "invalid shape"),
        ({"dtype": "F32", "shape": [2]}, "lacks"),
    ],
)
def test_malformed_header_entries(tmp_path: Path, entry: dict, message: str) -> None:
    path = _raw_safetensors(tmp_path / "bad.safetensors", {"w": entry}, b"\0" * 24)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_not_json_header(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{[" + b"\0" * 8)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)


def test_wrong_shape_names_key_and_shapes(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", {**STATE, "0.weight": torch.zeros(3, 2)})
    with pytest.raises(CheckpointError, match=r"'0\.weight' has shape \(3, 2\), expected \(2, 3\)"):
        load_checkpoint(path, expected=EXPECTED)


def test_wrong_dtype(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", {**STATE, "0.bias": torch.ones(2, dtype=torch.int64)})
    with pytest.raises(CheckpointError, match=r"'0\.bias' has dtype torch\.int64, expected torch\.float32"):
        load_checkpoint(path, expected=EXPECTED)
    with pytest.raises(CheckpointError, match="expected a floating dtype"):
        load_checkpoint(path, expected={"0.weight": ((2, 3), None), "0.bias": ((2,), None)})


def test_missing_and_unexpected_keys(tmp_path: Path) -> None:
    state = {"0.weight": STATE["0.weight"], "extra": torch.ones(1)}
    path = save_checkpoint(tmp_path / "c.safetensors", state)
    with pytest.raises(CheckpointError, match=r"missing keys \['0\.bias'\] and unexpected keys \['extra'\]"):
        load_checkpoint(path, expected=EXPECTED)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights(tmp_path: Path, bad: float) -> None:
    weight = STATE["0.weight"].clone()
    weight[1, 2] = bad
    path = save_checkpoint(tmp_path / "c.safetensors", {**STATE, "0.weight": weight})
    with pytest.raises(CheckpointError, match=r"'0\.weight' contains 1 NaN/inf"):
        load_checkpoint(path)


def test_non_tensor_content(tmp_path: Path) -> None:
    torch.save({"0.weight": STATE["0.weight"], "epoch": 3}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="'epoch' is a int, not a tensor"):
        load_checkpoint(tmp_path / "c.pt")
    torch.save([STATE["0.weight"]], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="expected a dict of tensors, got list"):
        load_checkpoint(tmp_path / "list.pt")


def test_truncated_and_garbage_torch_files(tmp_path: Path) -> None:
    torch.save(STATE, tmp_path / "c.pt")
    raw = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt: cannot read"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "noise.pth").write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "noise.pth")


def test_missing_file_directory_and_size_limit(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(tmp_path)
    path = save_checkpoint(tmp_path / "c.safetensors", STATE)
    with pytest.raises(CheckpointError, match="above the limit"):
        load_checkpoint(path, max_bytes=64)
    torch.save(STATE, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="above the limit"):
        load_checkpoint(tmp_path / "c.pt", max_bytes=64)


def test_header_reader_does_not_load_tensors(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", STATE, {"step": "5"})
    header = read_safetensors_header(path)
    assert header["0.weight"]["shape"] == [2, 3] and header["__metadata__"] == {"step": "5"}


def test_save_rejects_non_tensors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a tensor"):
        save_checkpoint(tmp_path / "c.safetensors", {"w": [1.0, 2.0]})


def test_saved_files_are_byte_deterministic_and_load_with_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    state = {**STATE, "steps": torch.arange(3), "half": torch.ones(2, dtype=torch.bfloat16),
             "mask": torch.tensor([True, False]), "empty": torch.zeros(0, 4)}
    meta = {"step": 7, "role": "train", "model": "m", "a": "1", "b": "2"}
    first = save_checkpoint(tmp_path / "a.safetensors", state, meta).read_bytes()
    second = save_checkpoint(tmp_path / "b.safetensors", state, dict(reversed(meta.items()))).read_bytes()
    assert struct.unpack("<Q", first[:8])[0] % 8 == 0  # header padded: tensor data stays aligned
    library = load_file(str(tmp_path / "a.safetensors"))
    assert all(torch.equal(library[k], state[k]) for k in state)
    assert read_metadata(tmp_path / "a.safetensors") == {k: str(v) for k, v in meta.items()}
    assert first == save_checkpoint(tmp_path / "c.safetensors", state, meta).read_bytes()
    assert second != first  # metadata order is the caller's; same order -> same bytes
