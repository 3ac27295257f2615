"""Weight restrictions: masks over the flat parameter vector select exactly the named
parameters, layers and attention heads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from lltools.targets import restrictions as R

ROOT = Path(__file__).resolve().parents[2]


def transformer() -> nn.Module:
    spec = importlib.util.spec_from_file_location(
        "induction_model", ROOT / "sample_models" / "induction_transformer" / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build()


def labelled(module: nn.Module) -> dict[str, torch.Tensor]:
    """Each parameter filled with its own flat indices, so a mask can be read back per tensor."""
    out = {}
    for name, where, shape in R.layout(module):
        out[name] = torch.arange(where.start, where.stop).view(shape)
    return out


def selected(mask: torch.Tensor) -> set[int]:
    return set(torch.nonzero(mask).flatten().tolist())


def test_layers_partition_the_parameters() -> None:
    net = transformer()
    layers = R.each_layer(net)
    assert [r.name for r in layers] == ["pos", "embed", "layers.0", "layers.1", "unembed"]
    total = torch.stack([r.mask for r in layers]).sum(0)
    assert (total == 1).all()  # disjoint and covering
    idx = labelled(net)
    assert selected(layers[2].mask) == {int(i) for k, v in idx.items() if k.startswith("layers.0.")
                                        for i in v.flatten()}
    mlp = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert [(r.name, r.dim) for r in R.each_layer(mlp)] == [("0", 16), ("2", 10)]


def test_heads_own_their_rows_of_q_k_v_and_columns_of_o() -> None:
    net = transformer()
    heads = R.each_head(net)
    assert [r.name for r in heads] == ["layers.0.head0", "layers.0.head1", "layers.1.head0", "layers.1.head1"]
    idx = labelled(net)
    d_model, d_head = 32, 16
    for r in heads:
        layer, h = r.name.rsplit(".head", 1)
        rows = slice(int(h) * d_head, (int(h) + 1) * d_head)
        want = set()
        for part in "qkv":
            want |= set(idx[f"{layer}.{part}.weight"][rows].flatten().tolist())
        want |= set(idx[f"{layer}.o.weight"][:, rows].flatten().tolist())
        assert selected(r.mask) == want and r.dim == 4 * d_head * d_model
    qk = R.each_head(net, parts="qk")[1]
    assert qk.dim == 2 * d_head * d_model and selected(qk.mask) < selected(heads[1].mask)


def test_heads_of_torch_multihead_attention() -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(embed_dim=6, num_heads=3)
    heads = R.each_head(mha)
    idx = labelled(mha)
    for h, r in enumerate(heads):
        want = set()
        for j in range(3):
            rows = slice(j * 6 + 2 * h, j * 6 + 2 * h + 2)
            want |= set(idx["in_proj_weight"][rows].flatten().tolist())
            want |= set(idx["in_proj_bias"][rows].flatten().tolist())
        want |= set(idx["out_proj.weight"][:, 2 * h: 2 * h + 2].flatten().tolist())
        assert selected(r.mask) == want
    # Moving only head 1's coordinates leaves the other heads' attention weights unchanged.
    x = torch.randn(5, 1, 6)
    w = torch.cat([p.detach().flatten() for p in mha.parameters()])
    moved = torch.where(heads[1].mask, w + torch.randn_like(w), w)
    before = mha(x, x, x, average_attn_weights=False)[1]
    torch.nn.utils.vector_to_parameters(moved, mha.parameters())
    after = mha(x, x, x, average_attn_weights=False)[1]
    assert torch.equal(before[:, [0, 2]], after[:, [0, 2]]) and not torch.equal(before[:, 1], after[:, 1])


def test_globs_resolve_and_refuse() -> None:
    net = transformer()
    found = R.resolve(net, ["layers.*.q.weight", "unembed.weight"])
    dims = [(r.name, r.dim) for r in found]
    assert dims == [("layers.*.q.weight", 2 * 32 * 32), ("unembed.weight", 16 * 32)]
    assert R.resolve(net)[0].name == "all" and R.resolve(net)[0].mask.all()
    with pytest.raises(R.RestrictionError, match="matches no parameter") as err:
        R.resolve(net, ["decoder.*"])
    assert "\n" not in str(err.value)
    with pytest.raises(R.RestrictionError, match="restrict-each"):
        R.resolve(net, each="block")
    with pytest.raises(R.RestrictionError, match="no attention heads"):
        R.each_head(nn.Linear(2, 2))
    with pytest.raises(R.RestrictionError, match="named twice"):
        R.resolve(net, ["pos", "pos"])
