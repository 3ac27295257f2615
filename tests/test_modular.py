"""Tests for :mod:`lltools.targets.modular` and the ``modular_addition`` sample model."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from lltools.targets.modular import (
    QuadraticNetwork,
    accuracy,
    build_quadratic_network,
    centred_mse,
    modular_addition_data,
)
from lltools.theory.networks import cullen_formula, output_jacobian_rank, quadratic_network_llc
from lltools.theory.training import geometric_complexity, grokking_severity

MODEL_DIR = Path(__file__).resolve().parent.parent / "sample_models" / "modular_addition"


def pair_index(x: torch.Tensor, p: int) -> torch.Tensor:
    """a·p + b of each one-hot pair row."""
    return x[:, :p].argmax(dim=1) * p + x[:, p:].argmax(dim=1)


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((MODEL_DIR / "model.json").read_text())


@pytest.fixture(scope="module")
def metrics() -> list[dict]:
    with open(MODEL_DIR / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["step"] = int(row["step"])
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            row[key] = float(row[key])
    return rows


def load_train_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modular_train", MODEL_DIR / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- data
@pytest.mark.parametrize(("p", "frac"), [(5, 0.4), (7, 0.5), (23, 0.4)])
def test_data_shapes_and_one_hot(p: int, frac: float) -> None:
    x, y, xv, yv = modular_addition_data({"p": p, "train_fraction": frac, "seed": 3})
    n = round(frac * p * p)
    assert x.shape == (n, 2 * p) and y.shape == (n, p)
    assert xv.shape == (p * p - n, 2 * p) and yv.shape == (p * p - n, p)
    for inputs, targets in ((x, y), (xv, yv)):
        assert inputs.dtype == torch.float32
        assert set(inputs.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(inputs[:, :p].sum(1), torch.ones(len(inputs)))
        assert torch.equal(inputs[:, p:].sum(1), torch.ones(len(inputs)))
        assert torch.equal(targets.sum(1), torch.ones(len(targets)))
        a, b = inputs[:, :p].argmax(1), inputs[:, p:].argmax(1)
        assert torch.equal(targets.argmax(1), (a + b) % p)
    # train and validation partition all p² pairs
    every = torch.cat((pair_index(x, p), pair_index(xv, p))).sort().values
    assert torch.equal(every, torch.arange(p * p))


def test_split_is_deterministic_and_seeded() -> None:
    spec = {"kind": "modular_addition", "p": 11, "train_fraction": 0.3, "seed": 7}
    first, second = modular_addition_data(spec), modular_addition_data(dict(spec))
    for u, v in zip(first, second, strict=True):
        assert torch.equal(u, v)
    other = modular_addition_data({**spec, "seed": 8})
    assert not torch.equal(pair_index(first[0], 11), pair_index(other[0], 11))
    # a global RNG state must not leak into the split
    torch.manual_seed(1234)
    again = modular_addition_data(spec)
    assert torch.equal(again[0], first[0])


def test_shipped_split_is_pinned(card: dict) -> None:
    """The split the shipped checkpoints were trained on must never change."""
    x, _, _, _ = modular_addition_data(card["data"])
    idx = pair_index(x, card["data"]["p"])
    assert idx[:10].tolist() == [2, 4, 5, 10, 12, 13, 14, 17, 22, 25]
    assert int(idx.sum()) == 58316
    assert len(idx) == card["n"] == 212


def test_float64_data() -> None:
    x, y, _, _ = modular_addition_data({"p": 5, "train_fraction": 0.5, "seed": 0}, dtype=torch.float64)
    assert x.dtype == y.dtype == torch.float64


@pytest.mark.parametrize(
    "spec",
    [
        {"p": 5, "train_fraction": 0.0, "seed": 0},
        {"p": 5, "train_fraction": 1.0, "seed": 0},
        {"p": 5, "train_fraction": 0.01, "seed": 0},
        {"p": 1, "train_fraction": 0.5, "seed": 0},
        {"train_fraction": 0.5, "seed": 0},
        {"p": 5, "seed": 0},
    ],
)
def test_bad_data_spec_raises(spec: dict) -> None:
    with pytest.raises(ValueError):
        modular_addition_data(spec)


# ---------------------------------------------------------------------------- network
def test_quadratic_network_parameters_and_forward() -> None:
    torch.manual_seed(0)
    net = build_quadratic_network({"kind": "quadratic", "d": 6, "width": 4, "p": 3})
    assert isinstance(net, QuadraticNetwork)
    shapes = {k: tuple(v.shape) for k, v in net.named_parameters()}
    assert shapes == {"hidden.weight": (4, 6), "out.weight": (3, 4)}
    x = torch.randn(5, 6)
    w, v = net.hidden.weight, net.out.weight
    expected = torch.stack([v @ (w @ xi) ** 2 for xi in x])
    torch.testing.assert_close(net(x), expected)
    # f(x) = Σ_j v_kj (w_jᵀx)² = xᵀ Q_k x with Q_k = Σ_j v_kj w_j w_jᵀ
    q = torch.einsum("kj,ja,jb->kab", v, w, w)
    torch.testing.assert_close(net(x), torch.einsum("na,kab,nb->nk", x, q, x))


@pytest.mark.parametrize(
    "arch",
    [{"kind": "mlp", "d": 2, "width": 2, "p": 2}, {"kind": "quadratic", "d": 2, "p": 2},
     {"d": 0, "width": 2, "p": 2}],
)
def test_bad_architecture_raises(arch: dict) -> None:
    with pytest.raises(ValueError):
        build_quadratic_network(arch)


# ---------------------------------------------------------------------------- loss and accuracy
def test_centred_mse_matches_direct_formula() -> None:
    gen = torch.Generator().manual_seed(0)
    p = 7
    out = torch.randn(9, p, generator=gen, dtype=torch.float64)
    tgt = torch.randn(9, p, generator=gen, dtype=torch.float64)
    proj = torch.eye(p, dtype=torch.float64) - torch.ones(p, p, dtype=torch.float64) / p
    expected = 0.5 * ((tgt - out) @ proj.T).square().sum(dim=1)
    loss = centred_mse(out, tgt)
    assert loss.shape == (9,)
    torch.testing.assert_close(loss, expected)
    # the mean over samples is ½‖P⊥(Y − Ŷ)‖²_F / n
    torch.testing.assert_close(loss.sum(), 0.5 * torch.linalg.matrix_norm(proj @ (tgt - out).T) ** 2)


def test_centred_mse_ignores_constant_shifts() -> None:
    gen = torch.Generator().manual_seed(1)
    out = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    tgt = torch.nn.functional.one_hot(torch.arange(6) % 5, 5).double()
    base = centred_mse(out, tgt)
    torch.testing.assert_close(centred_mse(out + 3.5, tgt), base)
    per_sample = torch.randn(6, 1, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(centred_mse(out + per_sample, tgt), base)
    torch.testing.assert_close(centred_mse(out, tgt - 2.0), base)
    # but not to a non-constant change
    assert not torch.allclose(centred_mse(out + torch.arange(5.0).double(), tgt), base)


def test_centred_mse_is_zero_at_targets_and_shape_checked() -> None:
    tgt = torch.eye(4)
    assert torch.equal(centred_mse(tgt.clone(), tgt), torch.zeros(4))
    with pytest.raises(ValueError):
        centred_mse(torch.zeros(4, 3), tgt)


def test_accuracy() -> None:
    out = torch.tensor([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 3.0]])
    labels = torch.tensor([1, 0, 0, 2])
    assert accuracy(out, labels) == pytest.approx(0.75)
    assert accuracy(out, torch.nn.functional.one_hot(labels, 3).float()) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        accuracy(out, torch.tensor([1, 0]))


# ---------------------------------------------------------------------------- grokking severity
def test_gsm_every_epoch_matches_paper_formula() -> None:
    # a_T, a_V logged at every epoch x = 1..T: GSM = (1/T) Σ |a_T − a_V|
    steps = [1, 2, 3, 4]
    train = [1.0, 1.0, 1.0, 1.0]
    val = [0.0, 0.5, 1.0, 1.0]
    assert grokking_severity(steps, train, val) == pytest.approx((1.0 + 0.5) / 4)


def test_gsm_zero_without_generalisation() -> None:
    assert grokking_severity([1, 2, 3], [1.0, 1.0, 1.0], [0.1, 0.5, 0.94]) == 0.0
    assert grokking_severity([1, 2, 3], [1.0, 1.0, 1.0], [0.1, 0.5, 0.94], threshold=0.9) == pytest.approx(
        (0.9 + 0.5 + 0.06) / 3
    )


def test_gsm_uneven_logs_weight_by_interval() -> None:
    # each logged value stands for the interval since the previous log; t = 0 has no weight
    steps = [0, 10, 20, 40]
    train = [0.0, 1.0, 1.0, 1.0]
    val = [1.0, 0.0, 1.0, 1.0]
    assert grokking_severity(steps, train, val) == pytest.approx(10 * 1.0 / 40)
    # evenly spaced logs: the mean gap over the logged rows
    assert grokking_severity([5, 10, 15, 20], [1, 1, 1, 1], [0.2, 0.6, 1.0, 1.0]) == pytest.approx(
        (0.8 + 0.4) / 4
    )


def test_gsm_accepts_tensors_and_instant_generalisation_is_zero() -> None:
    steps = torch.arange(1, 11)
    acc = torch.ones(10)
    assert grokking_severity(steps, acc, acc) == 0.0


@pytest.mark.parametrize(
    ("steps", "train", "val"),
    [([1, 1, 2], [1, 1, 1], [1, 1, 1]), ([2, 1], [1, 1], [1, 1]), ([1, 2], [1], [1, 1]), ([], [], []),
     ([0], [1], [1]), ([1, 2], [1, float("nan")], [1, 1]), ([-1, 2], [1, 1], [1, 1])],
)
def test_gsm_rejects_bad_input(steps: list, train: list, val: list) -> None:
    with pytest.raises(ValueError):
        grokking_severity(steps, train, val)


# ---------------------------------------------------------------------------- geometric complexity
def test_geometric_complexity_of_linear_map_is_frobenius_norm() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    x = torch.randn(17, 5)
    expected = float(lin.weight.detach().square().sum())
    assert geometric_complexity(lin, x) == pytest.approx(expected, rel=1e-6)
    assert geometric_complexity(lin, x, batch_size=4) == pytest.approx(expected, rel=1e-6)
    a = torch.randn(2, 5)
    assert geometric_complexity(lambda z: z @ a.T, x) == pytest.approx(float(a.square().sum()), rel=1e-6)


def test_geometric_complexity_of_quadratic_network() -> None:
    torch.manual_seed(1)
    net = QuadraticNetwork(4, 3, 2)
    x = torch.randn(6, 4, dtype=torch.float64)
    net = net.double()
    w, v = net.hidden.weight.detach(), net.out.weight.detach()
    # ∇_x f(x) = V diag(2 W x) W
    expected = sum(float((v @ torch.diag(2 * (w @ xi)) @ w).square().sum()) for xi in x) / len(x)
    assert geometric_complexity(net, x) == pytest.approx(expected, rel=1e-10)


def test_geometric_complexity_rejects_empty_inputs() -> None:
    with pytest.raises(ValueError):
        geometric_complexity(nn.Linear(2, 2), torch.zeros(0, 2))


# ---------------------------------------------------------------------------- theory helpers
def test_cullen_formula_for_the_shipped_model() -> None:
    assert cullen_formula(46, 23, 64) == (64 * (46 + 23 - 1) / 2, "non-degenerate")
    # too large for the generic-teacher rank: the formula is shown, its validity unknown
    q = quadratic_network_llc(46, 23, 64)
    assert q.llc is None and q.valid is None and q.formula == 2176.0


def test_cullen_formula_validity_is_decided_by_the_rank() -> None:
    generic = quadratic_network_llc(3, 2, 6)  # K = d(d+1)/2
    assert generic.regime == "generic" and generic.formula == 2 * 3 * 4 / 4 == generic.llc and generic.valid
    p1 = quadratic_network_llc(3, 1, 2)  # p = 1: rank-K symmetric matrices lose K(K−1)/2 dims
    assert not p1.valid and p1.llc < p1.formula
    capped = quadratic_network_llc(3, 2, 5)  # K(d+p−1) = 20 ≥ p·d(d+1)/2 = 12: the output space caps
    assert not capped.valid and capped.llc == 6.0 and "NOT agree" in capped.note


def test_jacobian_rank_matches_closed_form_at_random_parameters() -> None:
    torch.manual_seed(0)
    d, p, k = 3, 2, 2  # K(d+p−1) = 8 < p·d(d+1)/2 = 12
    net = QuadraticNetwork(d, k, p)
    x = torch.randn(30, d)
    rank = output_jacobian_rank(net, x, centred=False)
    assert rank / 2 == cullen_formula(d, p, k)[0] == quadratic_network_llc(d, p, k).llc == 4.0
    # a linear map: rank = d_in·d_out, or d_in·(d_out − 1) once the ones direction is removed
    lin = nn.Linear(4, 3, bias=False)
    assert output_jacobian_rank(lin, torch.randn(10, 4), centred=False) == 12
    assert output_jacobian_rank(lin, torch.randn(10, 4)) == 8


# ---------------------------------------------------------------------------- the sample model
def test_model_json_is_consistent(card: dict) -> None:
    p, k = card["data"]["p"], card["architecture"]["width"]
    assert card["architecture"] == {"kind": "quadratic", "d": 2 * p, "width": k, "p": p}
    assert card["data"]["kind"] == "modular_addition" and card["loss"] == "centred_mse"
    x, _, _, _ = modular_addition_data(card["data"])
    assert card["n"] == len(x)
    assert card["num_parameters"] == k * (2 * p) + p * k
    assert card["theory"]["llc"] is None and card["theory"]["multiplicity"] is None
    assert str(cullen_formula(2 * p, p, k)[0]).rstrip("0").rstrip(".") in \
        card["theory"]["source"]
    sampler = card["default_sampler"]
    assert set(sampler) == {"epsilon", "gamma", "nbeta", "chains", "draws", "burnin", "batch_size"}
    assert (MODEL_DIR / card["final_checkpoint"]).is_file()
    assert (MODEL_DIR / "MODEL_CARD.md").is_file() and (MODEL_DIR / "train.py").is_file()


def test_checkpoints_metadata_and_size(card: dict, metrics: list[dict]) -> None:
    files = sorted((MODEL_DIR / "checkpoints").glob("*.safetensors"))
    assert len(files) >= 40
    assert len(files) == len(metrics)
    assert sum(f.stat().st_size for f in files) < 5 * 1024**2
    for row in metrics:
        with safe_open(str(MODEL_DIR / row["checkpoint"]), framework="pt") as fh:
            assert fh.metadata()["step"] == str(row["step"])
            assert set(fh.keys()) == {"hidden.weight", "out.weight"}
    steps = [r["step"] for r in metrics]
    assert steps == sorted(set(steps)) and steps[0] == 0
    assert metrics[-1]["checkpoint"] == card["final_checkpoint"]


def test_checkpoints_reproduce_logged_metrics(card: dict, metrics: list[dict]) -> None:
    x, y, xv, yv = modular_addition_data(card["data"])
    net = build_quadratic_network(card["architecture"])
    for row in metrics:
        net.load_state_dict(load_file(str(MODEL_DIR / row["checkpoint"])))
        with torch.no_grad():
            out, out_v = net(x), net(xv)
        assert accuracy(out, y) == pytest.approx(row["train_acc"], abs=1e-12)
        assert accuracy(out_v, yv) == pytest.approx(row["val_acc"], abs=1e-12)
        assert float(centred_mse(out, y).mean()) == pytest.approx(row["train_loss"], rel=1e-4, abs=1e-7)
        assert float(centred_mse(out_v, yv).mean()) == pytest.approx(row["val_loss"], rel=1e-4, abs=1e-7)
    final = metrics[-1]
    assert final["train_acc"] == 1.0 and final["val_acc"] >= 0.95


def test_metrics_show_grokking(metrics: list[dict]) -> None:
    memorised = next(r["step"] for r in metrics if r["train_acc"] >= 0.99)
    generalised = next(r["step"] for r in metrics if r["val_acc"] >= 0.95)
    assert memorised <= 100
    assert generalised >= 10 * memorised  # validation accuracy rises much later
    at_memorisation = next(r for r in metrics if r["step"] == memorised)
    assert at_memorisation["val_acc"] < 0.1
    # once memorised, the training accuracy stays ≥ 0.99 while validation climbs
    assert all(r["train_acc"] >= 0.99 for r in metrics if r["step"] >= memorised)
    assert metrics[-1]["val_acc"] >= 0.95
    # validation loss goes up during memorisation and comes down by an order of magnitude
    peak_val_loss = max(r["val_loss"] for r in metrics)
    assert peak_val_loss > 2 * metrics[0]["val_loss"]
    assert metrics[-1]["val_loss"] < peak_val_loss / 10
    gsm = grokking_severity([r["step"] for r in metrics], [r["train_acc"] for r in metrics],
                            [r["val_acc"] for r in metrics])
    assert 0.25 < gsm < 0.35


def test_training_is_deterministic_and_matches_the_shipped_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metrics: list[dict]
) -> None:
    train = load_train_script()
    monkeypatch.setattr(train, "NUM_STEPS", 100)
    threads = torch.get_num_threads()
    try:
        train.train(tmp_path / "a")
        train.train(tmp_path / "b")
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)
    a_files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    b_files = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert a_files == b_files
    for rel in a_files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    # the initial weights are exactly the shipped ones; early metrics agree closely
    start = "checkpoints/step_00000.safetensors"
    shipped, rerun = load_file(str(MODEL_DIR / start)), load_file(str(tmp_path / "a" / start))
    for key in shipped:
        assert torch.equal(shipped[key], rerun[key])
    with open(tmp_path / "a" / "metrics.csv", newline="") as fh:
        short = {int(r["step"]): r for r in csv.DictReader(fh)}
    for row in metrics:
        if row["step"] in short:
            assert float(short[row["step"]]["train_loss"]) == pytest.approx(row["train_loss"], rel=1e-3)


def test_loads_through_the_generic_loader(card: dict, metrics: list[dict]) -> None:
    models = pytest.importorskip("lltools.targets.models")
    target = models.load_sample_model(MODEL_DIR)
    assert target.n == card["n"] and target.dim == card["num_parameters"]
    loss = float(target.full_loss(target.w_star[None])[0])
    assert math.isfinite(loss)
    assert loss == pytest.approx(metrics[-1]["train_loss"], rel=1e-4)


def test_final_checkpoint_has_51_active_units(card: dict) -> None:
    """Weight decay drives 13 hidden units exactly to zero after grokking (stage II, K_eff = 51)."""
    state = load_file(str(MODEL_DIR / card["final_checkpoint"]))
    strength = state["hidden.weight"].double().square().sum(1) * state["out.weight"].double().norm(dim=0)
    assert int((strength > 1e-8).sum()) == 51
    assert float(strength[strength > 1e-8].min()) > 0.1  # a clear gap between live and dead units


@pytest.mark.slow
def test_default_sampler_sees_the_llc_fall_after_grokking(card: dict) -> None:
    """λ̂ at the memorisation peak (step 400) exceeds λ̂ after grokking (step 6000) by ~100.

    The full trajectory and its thresholds are in MODEL_CARD.md; this checks the two ends
    with the shipped ``default_sampler`` (about 8 s of CPU).
    """
    from lltools.sampling.driver import run
    from lltools.sampling.sgld import make_params
    from lltools.targets.networks import NetworkTarget

    s = card["default_sampler"]
    x, y, _, _ = modular_addition_data(card["data"])
    net = build_quadratic_network(card["architecture"])
    target = NetworkTarget(net, x, y, loss=centred_mse, batch_size=s["batch_size"])
    steps = (400, 6000)
    centres = torch.stack(
        [target.flatten(load_file(str(MODEL_DIR / f"checkpoints/step_{k:05d}.safetensors"))) for k in steps]
    )
    chains = s["chains"]
    params = make_params(s["epsilon"], s["gamma"], s["nbeta"], len(steps) * chains)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trace = run(target, params, num_draws=s["draws"], num_burnin=s["burnin"], seed=0,
                    centre=centres.repeat_interleave(chains, dim=0),
                    chain_index=torch.arange(chains).repeat(len(steps)))
    finally:
        torch.set_num_threads(threads)
    trace = trace.cpu()
    assert bool((trace.diverged_at < 0).all())
    llc = (s["nbeta"] * (trace.draw_loss.mean(dim=1) - trace.loss_init)).reshape(len(steps), chains)
    acceptance = torch.nanmean(trace.draw_acceptance.reshape(len(steps), -1), dim=1)
    peak, final = llc.mean(dim=1).tolist()
    sem = (llc.std(dim=1) / math.sqrt(chains)).tolist()
    assert 640 <= peak <= 710, peak
    assert 540 <= final <= 610, final
    assert peak - final >= 60
    assert peak - final >= 10 * math.hypot(*sem)
    assert bool((acceptance >= 0.85).all()), acceptance
