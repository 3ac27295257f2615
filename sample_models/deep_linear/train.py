"""Build the deep linear sample models: the teacher w* and an honest student training run.

Every configuration lives in ``sample_models/deep_linear/<config>/`` in the shared sample
model format.  For each one this script

1. regenerates the teacher–student data from the seed (``lltools.targets.models.deep_linear_data``:
   x ~ N(0, I), y = f(x; w*), no label noise);
2. writes the teacher w* — every layer of rank exactly r, so λ(w*) is Aoyagi's — to
   ``checkpoints/teacher.safetensors`` (metadata ``role = "teacher"``); this is the card's
   ``final_checkpoint``;
3. trains a student from PyTorch's default initialisation with Adam (minibatch 256,
   cosine-decayed learning rate) to near-zero loss, saving ``checkpoints/step_XXXXXX.safetensors``
   at log-spaced steps (metadata ``role = "train"``, ``step``) and ``metrics.csv``;
4. writes ``model.json``.

Deterministic on the CPU (one thread, fixed seeds, deterministic algorithms)::

    python sample_models/deep_linear/train.py                 # every configuration
    python sample_models/deep_linear/train.py --config rrr_6_4_5_r2
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import torch
from torch import nn

from lltools.targets.checkpoints import save_checkpoint
from lltools.targets.models import build_dataset, build_module, deep_linear_teacher, num_parameters
from lltools.theory.closed_forms import deep_linear_llc

HERE = Path(__file__).resolve().parent

#: Sampler settings validated with ``validate.py`` (see each MODEL_CARD.md).
CONFIGS: dict[str, dict] = {
    "rrr_6_4_5_r2": {
        "description": "Two-layer reduced-rank regression 6→4→5, true rank 2 (Aoyagi & Watanabe 2005).",
        "widths": [6, 4, 5], "rank": 2, "n": 5000, "seed": 0,
        "train": {"steps": 3000, "lr": 1e-2, "batch_size": 256, "num_checkpoints": 20, "seed": 1},
        "sampler": {"epsilon": 1e-4, "gamma": 5.0, "nbeta": None, "chains": 8, "draws": 6000,
                    "burnin": 2000, "batch_size": 256},
        # the Networks page's first click: healthy in ~7 s of CPU (benchmarks/RESULTS.md §11)
        "first_run": {"epsilon": 2.2e-4, "chains": 32, "draws": 2600, "burnin": 400},
    },
    "dln_8_6_6_4_r2": {
        "description": "Three-layer deep linear network 8→6→6→4, every teacher layer of rank 2.",
        "widths": [8, 6, 6, 4], "rank": 2, "n": 20000, "seed": 0,
        "train": {"steps": 4000, "lr": 1e-2, "batch_size": 256, "num_checkpoints": 20, "seed": 1},
        "sampler": {"epsilon": 3e-5, "gamma": 3.0, "nbeta": None, "chains": 8, "draws": 4000,
                    "burnin": 2000, "batch_size": 256},
    },
    "dln_100_50_50_100_r5": {
        "description": "Three-layer deep linear network 100→50→50→100 (12 500 parameters), "
                       "every teacher layer of rank 5.",
        "widths": [100, 50, 50, 100], "rank": 5, "n": 20000, "seed": 0,
        "train": {"steps": 4000, "lr": 3e-3, "batch_size": 256, "num_checkpoints": 16, "seed": 1},
        "sampler": {"epsilon": 1e-5, "gamma": 10.0, "nbeta": None, "chains": 4, "draws": 2000,
                    "burnin": 1000, "batch_size": 256},
    },
}


def data_spec(cfg: dict) -> dict:
    return {"kind": "deep_linear_teacher", "widths": cfg["widths"], "rank": cfg["rank"], "n": cfg["n"],
            "seed": cfg["seed"], "bias": False, "noise_std": 0.0, "val_n": 2000}


def arch_spec(cfg: dict) -> dict:
    return {"kind": "deep_linear", "widths": cfg["widths"], "bias": False}


def checkpoint_steps(total: int, count: int) -> list[int]:
    """Step 0 plus about ``count − 1`` log-spaced steps from 10 to ``total``."""
    ratio = (total / 10) ** (1 / max(1, count - 2))
    return sorted({0, total, *(round(10 * ratio**i) for i in range(count - 1))})


def mse(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(0.5 * ((module(x) - y) ** 2).sum(dim=1).mean())


def train_student(name: str, cfg: dict, folder: Path) -> list[dict]:
    """Adam from the default initialisation; checkpoints + metrics rows."""
    tr = cfg["train"]
    data = build_dataset(data_spec(cfg))
    torch.manual_seed(tr["seed"])
    student = build_module(arch_spec(cfg))
    opt = torch.optim.Adam(student.parameters(), lr=tr["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tr["steps"], eta_min=tr["lr"] * 1e-3)
    gen = torch.Generator().manual_seed(tr["seed"])
    save_at = set(checkpoint_steps(tr["steps"], tr["num_checkpoints"]))
    rows = []
    for step in range(tr["steps"] + 1):
        if step in save_at:
            rel = f"checkpoints/step_{step:06d}.safetensors"
            meta = {"step": step, "role": "train", "model": name}
            save_checkpoint(folder / rel, student.state_dict(), meta)
            rows.append({"step": step, "checkpoint": rel,
                         "train_loss": mse(student, data.inputs, data.targets),
                         "val_loss": mse(student, data.val_inputs, data.val_targets),
                         "train_acc": "", "val_acc": ""})
            print(f"{name} step {step:5d} train {rows[-1]['train_loss']:.3e} val {rows[-1]['val_loss']:.3e}")
        if step == tr["steps"]:
            break
        idx = torch.randint(0, data.inputs.shape[0], (tr["batch_size"],), generator=gen)
        loss = 0.5 * ((student(data.inputs[idx]) - data.targets[idx]) ** 2).sum(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return rows


def write_model_json(name: str, cfg: dict, folder: Path) -> None:
    lam, mult = deep_linear_llc(cfg["widths"], cfg["rank"])
    card = {
        "name": f"deep_linear/{name}",
        "description": cfg["description"],
        "architecture": arch_spec(cfg),
        "data": data_spec(cfg),
        "loss": "mse",
        "n": cfg["n"],
        "num_parameters": num_parameters(build_module(arch_spec(cfg))),
        "theory": {"llc": lam, "multiplicity": mult,
                   "source": "Aoyagi (2024) deep linear networks, at the teacher w* whose every layer "
                             "has rank exactly r (lltools.theory.closed_forms.deep_linear_llc); not the LLC "
                             "of the trained student checkpoints"},
        "default_sampler": {**cfg["sampler"], "nbeta": round(cfg["n"] / math.log(cfg["n"]), 3)},
        **({"first_run": cfg["first_run"]} if "first_run" in cfg else {}),
        "final_checkpoint": "checkpoints/teacher.safetensors",
        "training": {"optimizer": "Adam", **cfg["train"]},
    }
    (folder / "model.json").write_text(json.dumps(card, indent=2) + "\n")


def build(name: str) -> None:
    cfg = CONFIGS[name]
    folder = HERE / name
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    for old in (folder / "checkpoints").glob("*.safetensors"):
        old.unlink()
    teacher = deep_linear_teacher(cfg["widths"], cfg["rank"], cfg["seed"])
    save_checkpoint(folder / "checkpoints/teacher.safetensors",
                    {k: v.to(torch.float32) for k, v in teacher.items()},
                    {"step": -1, "role": "teacher", "model": name, "rank": cfg["rank"]})
    rows = train_student(name, cfg, folder)
    with open(folder / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", "checkpoint", "train_loss", "val_loss",
                                                "train_acc", "val_acc"])
        writer.writeheader()
        writer.writerows(rows)
    write_model_json(name, cfg, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for name in args.config:
        build(name)


if __name__ == "__main__":
    main()
