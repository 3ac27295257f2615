"""Deep linear targets with known λ, the architecture/data registry and the sample models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from lltools.estimation.llc import llc
from lltools.sampling.driver import run
from lltools.sampling.sgld import make_params
from lltools.targets.checkpoints import CheckpointError, save_checkpoint
from lltools.targets.models import (
    build_dataset,
    build_module,
    deep_linear_target,
    deep_linear_teacher,
    list_checkpoints,
    list_sample_models,
    load_sample_model,
    num_parameters,
    resolve_card_loss,
)
from lltools.theory.closed_forms import deep_linear_llc
from lltools.theory.record import theory_for

SAMPLE_MODELS = Path(__file__).resolve().parent.parent / "sample_models"
MY_MODELS = ["deep_linear/rrr_6_4_5_r2", "deep_linear/dln_8_6_6_4_r2", "deep_linear/dln_100_50_50_100_r5",
             "digits_mlp"]


# ---------------------------------------------------------------------- deep linear teacher
@pytest.mark.parametrize(("widths", "rank"), [([6, 4, 5], 2), ([8, 6, 6, 4], 2), ([3, 5, 2], 2), ([4, 3], 1)])
def test_teacher_layers_and_product_have_rank_exactly_r(widths: list[int], rank: int) -> None:
    state = deep_linear_teacher(widths, rank, seed=3)
    product = torch.eye(widths[0], dtype=torch.float64)
    for i in range(len(widths) - 1):
        weight = state[f"{i}.weight"]
        assert weight.shape == (widths[i + 1], widths[i])
        assert int(torch.linalg.matrix_rank(weight)) == rank
        product = weight @ product
    svals = torch.linalg.svdvals(product)
    assert int(torch.linalg.matrix_rank(product)) == rank
    assert float(svals[rank - 1]) > 0.3  # well conditioned: not nearly rank r − 1


def test_teacher_rank_zero_is_zero_and_seeded() -> None:
    assert all(bool((v == 0).all()) for v in deep_linear_teacher([3, 2, 3], 0, seed=0).values())
    a, b = deep_linear_teacher([3, 2, 3], 1, seed=5), deep_linear_teacher([3, 2, 3], 1, seed=5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], deep_linear_teacher([3, 2, 3], 1, seed=6)["0.weight"])
    with pytest.raises(ValueError, match="rank must be in"):
        deep_linear_teacher([3, 2, 3], 3, seed=0)


@pytest.mark.parametrize("bias", [False, True])
def test_deep_linear_target_is_centred_at_the_teacher(bias: bool) -> None:
    target = deep_linear_target([4, 3, 2], 1, n=300, seed=0, bias=bias, dtype=torch.float64)
    assert target.n == 300 and target.dim == 4 * 3 + 3 * 2 + (3 + 2 if bias else 0)
    assert float(target.full_loss(target.w_star[None])) < 1e-25  # noise-free: exact minimum
    assert theory_for(target).llc == deep_linear_llc([4, 3, 2], 1, bias=bias)[0] and theory_for(target).exact
    teacher = deep_linear_teacher([4, 3, 2], 1, 0, bias)
    assert torch.equal(target.w_star, torch.cat([v.reshape(-1) for v in teacher.values()]))
    noisy = deep_linear_target([4, 3, 2], 1, n=300, seed=0, bias=bias, noise_std=0.1, dtype=torch.float64)
    assert 0.5 * 0.01 * 2 * 0.7 < float(noisy.full_loss(noisy.w_star[None])) < 0.5 * 0.01 * 2 * 1.3


def test_llc_of_a_small_deep_linear_network_matches_aoyagi() -> None:
    """λ̂ at the teacher of 4→3→2, r = 1 (λ = 7/2, multiplicity 1) within 4 SEM + bias.

    Settings: n = 2000 (nβ = n/log n ≈ 263), full-batch gradients, ε = 2e-4 (MALA
    acceptance ≈ 0.99), γ = 1, 8 chains × (300 burn-in + 1500 draws), float32.  Bias
    allowance 0.15 (4 % of λ): over seeds 0–4 the estimates were 3.39, 3.51, 3.49, 3.30,
    3.44 (SEM ≈ 0.10 each), a mean bias of −0.07; at ε = 1e-3 (acceptance 0.81) the same
    run gives 4.5, so the test catches a too-large effective step or a dropped ½.
    """
    target = deep_linear_target([4, 3, 2], 1, n=2000, seed=0)
    assert theory_for(target).llc == 3.5
    params = make_params(2e-4, 1.0, target.default_nbeta, 8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    try:
        trace = run(target, params, num_draws=1500, num_burnin=300, seed=0)
    finally:
        torch.set_num_threads(threads)
    result = llc(trace)
    assert result.num_valid == 8
    assert float(trace.cpu().draw_acceptance.nanmean()) > 0.95
    assert abs(result.mean - 3.5) < 4 * result.sem + 0.15, (result.mean, result.sem)


# ---------------------------------------------------------------------- registry
def test_build_module_kinds() -> None:
    dl = build_module({"kind": "deep_linear", "widths": [5, 3, 2], "bias": False})
    assert num_parameters(dl) == 5 * 3 + 3 * 2
    mlp = build_module({"kind": "mlp", "widths": [64, 32, 10], "activation": "tanh"})
    assert num_parameters(mlp) == 64 * 32 + 32 + 32 * 10 + 10
    assert isinstance(mlp[1], torch.nn.Tanh) and len(mlp) == 3
    quad = build_module({"kind": "quadratic", "d": 10, "width": 4, "p": 5})
    assert num_parameters(quad) == 10 * 4 + 4 * 5
    with pytest.raises(ValueError, match="deep_linear, mlp, quadratic"):
        build_module({"kind": "resnet"})
    with pytest.raises(ValueError, match="relu, tanh"):
        build_module({"kind": "mlp", "widths": [2, 2], "activation": "gelu"})
    with pytest.raises(ValueError, match="widths"):
        build_module({"kind": "mlp", "widths": [2]})


def test_build_dataset_kinds() -> None:
    digits = build_dataset({"kind": "digits", "seed": 0, "val_fraction": 0.2})
    assert digits.inputs.shape == (1438, 64) and digits.val_inputs.shape == (359, 64)
    assert digits.targets.dtype == torch.int64 and set(digits.targets.tolist()) == set(range(10))
    assert torch.allclose(digits.inputs.mean(0), torch.zeros(64), atol=1e-5)
    again = build_dataset({"kind": "digits", "seed": 0, "val_fraction": 0.2})
    assert torch.equal(digits.inputs, again.inputs)
    other = build_dataset({"kind": "digits", "seed": 1, "val_fraction": 0.2})
    assert not torch.equal(digits.targets, other.targets)

    spec = {"kind": "deep_linear_teacher", "widths": [3, 2, 3], "rank": 1, "n": 50, "seed": 0, "val_n": 20}
    dl = build_dataset(spec)
    assert dl.inputs.shape == (50, 3) and dl.targets.shape == (50, 3) and dl.val_inputs.shape == (20, 3)
    assert torch.equal(dl.targets, build_dataset(spec).targets)

    mod = build_dataset({"kind": "modular_addition", "p": 5, "train_fraction": 0.4, "seed": 0})
    assert mod.inputs.shape == (10, 10) and mod.val_targets.shape == (15, 5)
    assert callable(resolve_card_loss("centred_mse"))
    with pytest.raises(ValueError, match="deep_linear_teacher, digits, modular_addition"):
        build_dataset({"kind": "mnist"})
    with pytest.raises(ValueError, match="centred_mse"):
        resolve_card_loss("hinge")


# ---------------------------------------------------------------------- sample models
def test_list_sample_models_finds_nested_configurations() -> None:
    cards = list_sample_models()
    found = {Path(card["path"]).resolve().relative_to(SAMPLE_MODELS).as_posix() for card in cards}
    assert set(MY_MODELS) <= found
    for card in list_sample_models(SAMPLE_MODELS):
        assert {"name", "path", "final_checkpoint"} <= set(card)
        folder = Path(card["path"])
        if (folder / "model.json").is_file() and not (folder / "model.py").is_file():
            # a card-only folder: the card describes the whole model
            assert {"architecture", "data", "loss", "final_checkpoint", "default_sampler"} <= set(card)
        else:  # every shipped model is a model folder with model.py (its card is optional metadata)
            assert (folder / "model.py").is_file()


def _metrics(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("name", MY_MODELS)
def test_sample_model_card_and_checkpoints_are_consistent(name: str) -> None:
    folder = SAMPLE_MODELS / name
    card = json.loads((folder / "model.json").read_text())
    target = load_sample_model(folder)
    assert target.n == card["n"] and target.dim == card["num_parameters"]
    assert target.batch_size == card["default_sampler"]["batch_size"]
    assert (folder / "MODEL_CARD.md").is_file() and (folder / "train.py").is_file()
    paths = list_checkpoints(folder)
    rows = _metrics(folder)
    assert [folder / r["checkpoint"] for r in rows] == paths  # sorted by step, teacher excluded
    assert [int(r["step"]) for r in rows] == sorted(int(r["step"]) for r in rows)
    assert sum(p.stat().st_size for p in (folder / "checkpoints").glob("*")) < 2_000_000
    if card["architecture"]["kind"] == "deep_linear":
        assert card["final_checkpoint"] == "checkpoints/teacher.safetensors"
        widths, rank = card["architecture"]["widths"], card["data"]["rank"]
        assert card["theory"]["llc"] == deep_linear_llc(widths, rank)[0]
        assert float(target.full_loss(target.w_star[None])) < 1e-10  # the teacher is a true parameter


@pytest.mark.parametrize("name", MY_MODELS)
def test_committed_checkpoints_reproduce_logged_metrics(name: str) -> None:
    """The last training checkpoint's train/val loss (and accuracy) recomputed from the data."""
    folder = SAMPLE_MODELS / name
    last = _metrics(folder)[-1]
    target = load_sample_model(folder, last["checkpoint"], dtype=torch.float64)
    train_loss = float(target.full_loss(target.w_star[None]))
    assert train_loss == pytest.approx(float(last["train_loss"]), rel=1e-3, abs=1e-9)
    val_out = target.outputs(target.w_star, target.val_inputs)
    if target.loss_name == "cross_entropy":
        val_loss = float(torch.nn.functional.cross_entropy(val_out, target.val_targets))
        train_acc = float((target.outputs(target.w_star).argmax(1) == target.targets).double().mean())
        val_acc = float((val_out.argmax(1) == target.val_targets).double().mean())
        assert train_acc == pytest.approx(float(last["train_acc"]), abs=1e-9)
        assert val_acc == pytest.approx(float(last["val_acc"]), abs=1e-9)
        assert train_acc == 1.0 and val_acc > 0.97
    else:
        val_loss = float(0.5 * ((val_out - target.val_targets) ** 2).sum(1).mean())
        assert last["train_acc"] == "" and train_loss < 1e-7
    assert val_loss == pytest.approx(float(last["val_loss"]), rel=1e-3, abs=1e-9)


def test_user_checkpoint_is_validated_against_the_architecture(tmp_path: Path) -> None:
    folder = SAMPLE_MODELS / "deep_linear" / "rrr_6_4_5_r2"
    transposed = {"0.weight": torch.zeros(4, 6), "1.weight": torch.zeros(4, 5)}
    bad = save_checkpoint(tmp_path / "bad.safetensors", transposed)
    with pytest.raises(CheckpointError, match=r"'1\.weight' has shape \(4, 5\), expected \(5, 4\)"):
        load_sample_model(folder, bad)
    missing = save_checkpoint(tmp_path / "missing.safetensors", {"0.weight": torch.zeros(4, 6)})
    with pytest.raises(CheckpointError, match=r"missing keys \['1\.weight'\]"):
        load_sample_model(folder, missing)
    ok = save_checkpoint(tmp_path / "ok.safetensors", {"0.weight": torch.ones(4, 6, dtype=torch.float64),
                                                       "1.weight": torch.ones(5, 4, dtype=torch.float64)})
    target = load_sample_model(folder, ok)
    assert torch.equal(target.w_star, torch.ones(44))


def test_list_checkpoints_orders_by_step_metadata(tmp_path: Path) -> None:
    state = {"w": torch.zeros(1)}
    for step in (100, 5, 20):
        save_checkpoint(tmp_path / "checkpoints" / f"ckpt_{step}.safetensors", state, {"step": step})
    save_checkpoint(tmp_path / "checkpoints" / "teacher.safetensors", state, {"step": -1, "role": "teacher"})
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_5.safetensors", "ckpt_20.safetensors",
                                                            "ckpt_100.safetensors"]


def test_outputs_feed_the_jacobian_rank() -> None:
    from lltools.theory.numeric import jacobian_rank_llc

    target = deep_linear_target([3, 2, 3], 1, n=40, seed=0, dtype=torch.float64)
    result = jacobian_rank_llc(target)
    # J of x ↦ W2 W1 x at a rank-1 teacher spans {dW2 W1} + {W2 dW1} = {a uᵀ} + {v bᵀ}
    # (3 + 3 dimensions meeting in span(v uᵀ)): rank 5, so rank(J)/2 = 2.5 < λ = 3.5 —
    # deep linear networks are not minimally singular.
    assert result.dim == 12 and result.rank == 5
