"""Train the digits MLP sample model: 64→64→10 ReLU on scikit-learn's 8×8 digits.

Data: ``sklearn.datasets.load_digits`` (bundled with scikit-learn, nothing downloaded),
a fixed 80/20 train/validation split by seed, inputs standardised with the training
statistics (``lltools.targets.models.digits_data``).  Loss: mean cross-entropy.  Optimiser: Adam
(lr 1e-3, minibatch 64, reshuffled every epoch) for 60 epochs.  Checkpoints at step 0 and
log-spaced steps (``checkpoints/step_XXXXXX.safetensors``, metadata ``step``), train and
validation loss/accuracy in ``metrics.csv``; ``model.json`` is rewritten.

Deterministic on the CPU (one thread, fixed seeds, deterministic algorithms)::

    python sample_models/digits_mlp/train.py
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import torch
from torch import nn

from lltools.targets.checkpoints import save_checkpoint
from lltools.targets.models import build_dataset, build_module, num_parameters

HERE = Path(__file__).resolve().parent
ARCH = {"kind": "mlp", "widths": [64, 64, 10], "activation": "relu", "bias": True}
DATA = {"kind": "digits", "seed": 0, "val_fraction": 0.2}
TRAIN = {"optimizer": "Adam", "lr": 1e-3, "batch_size": 64, "epochs": 60, "num_checkpoints": 30, "seed": 0}
#: Validated with ``python sample_models/deep_linear/validate.py sample_models/digits_mlp``.
SAMPLER = {"epsilon": 3e-4, "gamma": 10.0, "nbeta": None, "chains": 8, "draws": 2000, "burnin": 1000,
           "batch_size": 64}


def checkpoint_steps(total: int, count: int) -> list[int]:
    """Step 0 plus about ``count − 1`` log-spaced steps from 10 to ``total``."""
    ratio = (total / 10) ** (1 / max(1, count - 2))
    return sorted({0, total, *(round(10 * ratio**i) for i in range(count - 1))})


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy."""
    with torch.no_grad():
        logits = model(x)
        return float(nn.functional.cross_entropy(logits, y)), float((logits.argmax(1) == y).double().mean())


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = build_dataset(DATA)
    n = data.inputs.shape[0]
    steps_per_epoch = math.ceil(n / TRAIN["batch_size"])
    total = TRAIN["epochs"] * steps_per_epoch
    save_at = set(checkpoint_steps(total, TRAIN["num_checkpoints"]))

    torch.manual_seed(TRAIN["seed"])
    model = build_module(ARCH)
    opt = torch.optim.Adam(model.parameters(), lr=TRAIN["lr"])
    gen = torch.Generator().manual_seed(TRAIN["seed"])
    ckpt_dir = HERE / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    for old in ckpt_dir.glob("*.safetensors"):
        old.unlink()

    rows, step = [], 0
    for _epoch in range(TRAIN["epochs"]):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, TRAIN["batch_size"]):
            if step in save_at:
                rows.append(checkpoint(model, data, step))
            idx = perm[start : start + TRAIN["batch_size"]]
            loss = nn.functional.cross_entropy(model(data.inputs[idx]), data.targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    rows.append(checkpoint(model, data, step))

    with open(HERE / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", "checkpoint", "train_loss", "val_loss",
                                                "train_acc", "val_acc"])
        writer.writeheader()
        writer.writerows(rows)
    write_model_json(n, rows[-1]["checkpoint"])


def checkpoint(model: nn.Module, data, step: int) -> dict:
    rel = f"checkpoints/step_{step:06d}.safetensors"
    save_checkpoint(HERE / rel, model.state_dict(), {"step": step, "role": "train", "model": "digits_mlp"})
    train_loss, train_acc = evaluate(model, data.inputs, data.targets)
    val_loss, val_acc = evaluate(model, data.val_inputs, data.val_targets)
    print(f"step {step:5d} train {train_loss:.4f} ({train_acc:.3f}) val {val_loss:.4f} ({val_acc:.3f})")
    return {"step": step, "checkpoint": rel, "train_loss": train_loss, "val_loss": val_loss,
            "train_acc": train_acc, "val_acc": val_acc}


def write_model_json(n: int, final: str) -> None:
    card = {
        "name": "digits_mlp",
        "description": "A 64→64→10 ReLU MLP classifying scikit-learn's 8×8 handwritten digits.",
        "architecture": ARCH,
        "data": DATA,
        "loss": "cross_entropy",
        "n": n,
        "num_parameters": num_parameters(build_module(ARCH)),
        "theory": {"llc": None, "multiplicity": None,
                   "source": "no closed form for a ReLU MLP; compare "
                             "lltools.theory.numeric.jacobian_rank_llc"},
        "default_sampler": {**SAMPLER, "nbeta": round(n / math.log(n), 3)},
        "final_checkpoint": final,
        "training": TRAIN,
    }
    (HERE / "model.json").write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
