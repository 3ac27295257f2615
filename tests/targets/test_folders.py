"""Model folders (lltools.targets.folders + models.load_model_folder) and any-data network targets.

- every folder problem is ONE line naming the folder and the problem (API and CLI);
- the same λ̂ to the last bit from tensors, a Dataset and a DataLoader (same seed);
- BatchNorm buffers + token inputs, dict batches, evaluate(), tuple outputs, a streamed loader.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import lltools
from lltools.targets.base import TargetError
from lltools.targets.checkpoints import save_checkpoint
from lltools.targets.folders import ModelFolderError, pack_folder, unpack_folder
from lltools.targets.models import list_sample_models, load_model_folder
from lltools.targets.networks import NetworkTarget, StreamingNetworkTarget
from tests.helpers import run_cli

USER_DLN = Path(__file__).resolve().parents[1] / "data" / "user_dln"
FAST = {"epsilon": 1e-4, "gamma": 10.0, "chains": 2, "draws": 20, "burnin": 5, "seed": 3, "device": "cpu"}

GOOD_BUILD = "def build():\n    return torch.nn.Linear(3, 2)\n"
GOOD_DATA = "def data():\n    return torch.randn(10, 3), torch.randn(10, 2)\n"
BROKEN = {
    "build() raised": GOOD_DATA + "def build():\n    raise RuntimeError('out of coffee')\n",
    "disagree on the number of samples": GOOD_BUILD
    + "def data():\n    return torch.randn(10, 3), torch.randn(9, 2)\n",
    "per-sample losses": GOOD_BUILD + GOOD_DATA
    + "def loss(outputs, batch):\n    return ((outputs - batch[1]) ** 2).mean()\n",
    "defines no build": GOOD_DATA,
    "defines no data": GOOD_BUILD,
    "syntax error": GOOD_BUILD + GOOD_DATA + "def oops(:\n",
    "data() raised": GOOD_BUILD + "def data():\n    return 1 / 0\n",
    "must return a torch.nn.Module": GOOD_DATA + "def build():\n    return 'a string'\n",
    "cannot be evaluated": GOOD_DATA + "def build():\n    return torch.nn.Linear(5, 2)\n",
}


def write_folder(root: Path, code: str, name: str = "mine") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text("import torch\n" + code)
    return folder


@pytest.mark.parametrize("problem", list(BROKEN))
def test_folder_problems_are_one_line_naming_the_folder(tmp_path: Path, problem: str) -> None:
    folder = write_folder(tmp_path, BROKEN[problem])
    with pytest.raises(ModelFolderError) as info:
        load_model_folder(folder)
    message = str(info.value)
    assert isinstance(info.value, TargetError) and isinstance(info.value, ValueError)
    assert "\n" not in message and str(folder) in message and problem in message, message


@pytest.mark.parametrize(
    "problem", ["build() raised", "disagree on the number of samples", "per-sample losses", "syntax error"]
)
def test_the_cli_prints_folder_problems_in_one_line(tmp_path: Path, problem: str) -> None:
    folder = write_folder(tmp_path, BROKEN[problem])
    out = run_cli("estimate", "--model", str(folder), "--json", "--no-progress", "--draws", "5")
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and out.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(folder) in lines[0], out.stderr
    assert problem in lines[0] and "Traceback" not in out.stderr


def test_a_folder_without_card_or_weights_centres_at_build(tmp_path: Path) -> None:
    """No model.json, no safetensors: w* is build()'s module; nβ defaults to n/log n; the
    folder is listed like the sample models; a checkpoint (with buffers) moves the centre."""
    folder = shutil.copytree(USER_DLN, tmp_path / "user_dln")
    target = load_model_folder(folder)
    assert target.card == {} and target.checkpoint_path is None and target.name == "user_dln"
    assert target.n == 1000
    assert target.default_nbeta == pytest.approx(1000 / torch.log(torch.tensor(1000.0)).item())
    assert float(target.full_loss(target.w_star[None])) < 1e-12
    assert [c["name"] for c in list_sample_models(tmp_path)] == ["user_dln"]
    state = {k: v + 0.5 for k, v in target.module.state_dict().items()}
    save_checkpoint(folder / "step_7.safetensors", state, metadata={"step": "7"})
    moved = load_model_folder(folder)
    assert moved.checkpoint_path == folder / "step_7.safetensors"
    assert torch.equal(moved.w_star, target.w_star + 0.5)


def test_pack_and_unpack_a_folder_for_workers(tmp_path: Path) -> None:
    folder = shutil.copytree(USER_DLN, tmp_path / "user_dln", ignore=shutil.ignore_patterns("__pycache__"))
    copy = unpack_folder(pack_folder(folder))
    assert copy != folder and (copy / "model.py").read_text() == (folder / "model.py").read_text()
    assert torch.equal(load_model_folder(copy).w_star, load_model_folder(folder).w_star)


# ---------------------------------------------------------------------- the same λ̂ from any data form
def test_tensors_dataset_and_dataloader_give_the_same_llc() -> None:
    """Indexable data: minibatches are counter-based per chain whatever the form, so the same
    seed gives bit-identical traces (a DataLoader's own shuffling is not used)."""
    target = load_model_folder(USER_DLN)
    x, y = target.data
    module = target.module
    kwargs = {**FAST, "batch_size": 50, "epsilon": 2e-4, "gamma": 1.0, "draws": 60}
    results = [
        lltools.estimate(module, (x, y), **kwargs),
        lltools.estimate(module, TensorDataset(x, y), **kwargs),
        lltools.estimate(module, _ListDataset(x, y), **kwargs),  # a generic map-style Dataset
        lltools.estimate(module, DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True), **{
            k: v for k, v in kwargs.items() if k != "batch_size"}),
    ]
    first = results[0]
    assert first.settings.batch_size == 50 and all(r.settings.batch_size == 50 for r in results)
    for r in results[1:]:
        assert torch.equal(r.trace.loss, first.trace.loss)
        assert r.llc_mean == first.llc_mean
    assert first.llc_mean > 0


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


# ---------------------------------------------------------------------- buffers, tokens, dicts, tuples
class TokenNet(nn.Module):
    """Embedding of token ids → mean over positions → BatchNorm → MLP → (logits, features)."""

    def __init__(self, vocab: int = 11, dim: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.BatchNorm1d(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 8), nn.Tanh(), nn.Linear(8, classes))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.norm(self.embed(tokens).mean(dim=1))
        return self.mlp(features), features


def _token_data(n: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 11, (n, 5), generator=gen)
    labels = tokens[:, 0] % 3
    return tokens, labels


def _trained_token_net() -> TokenNet:
    """A TokenNet whose BatchNorm running statistics have been filled (train-mode passes)."""
    torch.manual_seed(0)
    net = TokenNet()
    tokens, _ = _token_data()
    net.train()
    with torch.no_grad():
        for _ in range(5):
            net(tokens)
    return net.eval()


def test_batchnorm_buffers_and_token_inputs_end_to_end() -> None:
    """Int64 token ids stay integers, the BatchNorm running statistics are used (eval mode)
    and never updated, tuple outputs use their first element, labels give cross-entropy."""
    net = _trained_token_net()
    tokens, labels = _token_data()
    running = net.norm.running_mean.clone()
    assert running.abs().sum() > 0  # trained: the buffers are not the defaults
    target = NetworkTarget.from_data(net, (tokens, labels))
    assert target.loss_name == "cross_entropy" and target.inputs.dtype == torch.int64
    expected = nn.functional.cross_entropy(net(tokens)[0], labels)
    assert float(target.full_loss(target.w_star[None])) == pytest.approx(float(expected.detach()), rel=1e-5)
    result = lltools.estimate(net, (tokens, labels), batch_size=32, **FAST)
    assert result.num_chains == 2 and result.llc_mean == result.llc_mean  # finite, not NaN
    assert torch.equal(net.norm.running_mean, running)  # the user's module is untouched
    assert torch.equal(target.module.norm.running_mean, running)


def test_dict_batches_and_evaluate() -> None:
    """A dict of tensors: the model gets the non-target field, the default loss the 'labels';
    evaluate(model, batch) gives the same numbers; a scalar-returning evaluate is refused."""
    net = _trained_token_net()
    tokens, labels = _token_data()
    data = {"tokens": tokens, "labels": labels}
    by_dict = NetworkTarget.from_data(net, data, batch_size=16)

    def evaluate(model, batch):
        return nn.functional.cross_entropy(model(batch["tokens"])[0], batch["labels"], reduction="none")

    by_eval = NetworkTarget.from_data(net, data, evaluate=evaluate, batch_size=16)
    by_tuple = NetworkTarget.from_data(net, (tokens, labels), batch_size=16)
    w = by_dict.w_star + 0.01 * torch.randn(3, by_dict.dim, generator=torch.Generator().manual_seed(1))
    idx = by_dict.sample_batch(torch.arange(3), 4)
    ref_loss, ref_grad = by_tuple.loss_and_grad(w, idx)
    for t in (by_dict, by_eval):
        loss, grad = t.loss_and_grad(w, idx)
        torch.testing.assert_close(loss, ref_loss)
        torch.testing.assert_close(grad, ref_grad)
    with pytest.raises(TargetError, match="per-sample losses"):
        NetworkTarget.from_data(net, data, evaluate=lambda m, b: evaluate(m, b).mean())


class _Stream(IterableDataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, size: int) -> None:
        self.x, self.y, self.size = x, y, size

    def __iter__(self):
        for i in range(0, len(self.x), self.size):
            yield self.x[i : i + self.size], self.y[i : i + self.size]


def test_an_iterable_only_loader_streams_one_batch_shared_by_all_chains() -> None:
    target = load_model_folder(USER_DLN)
    x, y = target.data
    stream = _Stream(x, y, 100)
    streamed = NetworkTarget.from_data(target.module, stream)
    assert isinstance(streamed, StreamingNetworkTarget)
    assert streamed.n == 1000 and streamed.batch_size == 100 and streamed.kernel_kind == "custom"
    batch = streamed.sample_batch(torch.arange(4), 3)  # step 3 -> the 4th batch, for every chain
    assert torch.equal(batch[0], x[300:400])
    w = target.w_star + 0.01 * torch.randn(2, target.dim, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(streamed.full_loss(w), target.full_loss(w))
    assert torch.equal(streamed.sample_batch(torch.arange(4), 12)[0], x[200:300])  # cycles
    result = lltools.estimate(target.module, DataLoader(stream, batch_size=None), **FAST)
    assert result.num_chains == 2 and result.settings.batch_size == 100


def test_a_module_needs_data_and_a_target_takes_none() -> None:
    target = load_model_folder(USER_DLN)
    with pytest.raises(TargetError, match="give the model's data"):
        lltools.estimate(target.module, **FAST)
    with pytest.raises(TargetError, match=r"apply to an nn\.Module"):
        lltools.estimate(target, (target.inputs, target.targets), **FAST)


def test_a_folder_defining_evaluate(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        def build():
            torch.manual_seed(0)
            return torch.nn.Linear(3, 1)

        def data():
            g = torch.Generator().manual_seed(0)
            return {"features": torch.randn(40, 3, generator=g), "y": torch.randn(40, 1, generator=g)}

        def evaluate(model, batch):
            return (model(batch["features"]) - batch["y"]).pow(2).sum(1)
    """)
    target = load_model_folder(write_folder(tmp_path, code))
    assert target.n == 40 and target.loss_name == "evaluate"
    assert lltools.estimate(target, **FAST).num_chains == 2
