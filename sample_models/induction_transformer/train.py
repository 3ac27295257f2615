"""Train the induction transformer through the formation of its induction head (CPU, ~1 min).

Usage (from the repository root)::

    .venv/bin/python sample_models/induction_transformer/train.py            # rewrites this folder
    .venv/bin/python sample_models/induction_transformer/train.py --out DIR  # writes elsewhere

Adam on fresh sequences every step (so the network never memorises), one CPU thread and
fixed seeds.  Writes ``checkpoints/step_XXXXX.safetensors`` (metadata ``{"step": "..."}``) —
dense through the transition — and ``metrics.csv``: per checkpoint the train and validation
loss (on ``model.data()``'s fixed sets), the loss on the predictable positions (inside a
repeat) and on the rest, and each head's attention scores:

- ``prev_<layer>_<head>``: mean attention from position t to t − 1 (a previous-token head);
- ``induct_<layer>_<head>``: mean attention, at positions inside a repeat, to the position
  just after the previous occurrence of the current token (an induction head).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from lltools.workflows.refined import REFINED_TRAJECTORY_FILE, refined_trajectory

HERE = Path(__file__).resolve().parent
LR = 1e-3
BATCH = 64
NUM_STEPS = 2000
TRAIN_SEED = 1000


def load_model_file() -> Any:
    spec = importlib.util.spec_from_file_location("induction_transformer_model", HERE / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checkpoint_steps() -> list[int]:
    """Log-spaced early, every 25 steps through the plateau and the drop, sparse after."""
    early = [0, 5, 10, 25, 50, 100]
    dense = list(range(150, 1101, 25))
    late = [1250, 1500, 1750, 2000]
    return sorted(set(early + dense + late))


def attention_patterns(m: Any, net: torch.nn.Module, tokens: Tensor) -> list[Tensor]:
    """Each layer's attention pattern (batch, heads, T, T), recomputed from its weights."""
    patterns = []
    with torch.no_grad():
        x = net.embed(tokens) + net.pos[: tokens.shape[1]]
        for layer in net.layers:
            mb, t, _ = x.shape

            def heads(z: Tensor, layer: Any = layer, mb: int = mb, t: int = t) -> Tensor:
                return z.view(mb, t, layer.num_heads, layer.d_head).transpose(1, 2)

            q, k = heads(layer.q(x)), heads(layer.k(x))
            scores = q @ k.transpose(-1, -2) / layer.d_head**0.5
            mask = torch.ones(t, t, dtype=torch.bool).triu(1)
            patterns.append(scores.masked_fill(mask, float("-inf")).softmax(-1))
            x = x + layer(x)
    return patterns


def induction_targets(tokens: Tensor) -> tuple[Tensor, Tensor]:
    """For each position: the position after the previous occurrence of its token (−1 if
    none), and whether the next token is predictable in context (the token recurs)."""
    mb, t = tokens.shape
    src = torch.full((mb, t), -1, dtype=torch.long)
    for i in range(1, t):
        same = tokens[:, :i] == tokens[:, i: i + 1]
        last = torch.where(same, torch.arange(i), torch.full_like(same, -1, dtype=torch.long)).amax(1)
        src[:, i] = torch.where(last >= 0, last + 1, -1)
    return src, src >= 0


def head_scores(m: Any, net: torch.nn.Module, tokens: Tensor) -> dict[str, float]:
    patterns = attention_patterns(m, net, tokens)
    src, recurs = induction_targets(tokens)
    t = tokens.shape[1]
    out = {}
    for li, pat in enumerate(patterns):
        prev = pat[:, :, torch.arange(1, t), torch.arange(0, t - 1)].mean(dim=(0, 2))
        rows = torch.nonzero(recurs)
        induct = pat[rows[:, 0], :, rows[:, 1], src[recurs]].mean(dim=0)
        for h in range(pat.shape[1]):
            out[f"prev_{li}_{h}"] = float(prev[h])
            out[f"induct_{li}_{h}"] = float(induct[h])
    return out


def evaluate(m: Any, net: torch.nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    with torch.no_grad():
        logits = net(x)
        per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, m.VOCAB), y.reshape(-1),
                                                      reduction="none").view(y.shape)
    _, recurs = induction_targets(torch.cat([x, y[:, -1:]], 1))
    predictable = recurs[:, 1:]  # the next token (y_t = x_{t+1}) recurs in context
    return {"loss": float(per_token.mean()), "loss_repeat": float(per_token[predictable].mean()),
            "loss_other": float(per_token[~predictable].mean())}


def train(out_dir: Path) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    m = load_model_file()
    data = m.data()
    (x_train, y_train), (x_val, y_val) = data["train"], data["val"]
    net = m.build()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    ckpt_dir = out_dir / "checkpoints"
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True)
    save_at = set(checkpoint_steps())
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for step in range(NUM_STEPS + 1):
        if step in save_at:
            name = f"checkpoints/step_{step:05d}.safetensors"
            tensors = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
            save_file(tensors, str(out_dir / name), metadata={"step": str(step)})
            train_m = evaluate(m, net, x_train, y_train)
            val_m = evaluate(m, net, x_val, y_val)
            rows.append({"step": step, "checkpoint": name, "train_loss": train_m["loss"],
                         "val_loss": val_m["loss"], "val_loss_repeat": val_m["loss_repeat"],
                         "val_loss_other": val_m["loss_other"], **head_scores(m, net, x_val[:256])})
            print(f"step {step:5d}  train {train_m['loss']:.3f}  val {val_m['loss']:.3f}  "
                  f"repeat {val_m['loss_repeat']:.3f}", flush=True)
        if step == NUM_STEPS:
            break
        x, y = m.make_sequences(BATCH, TRAIN_SEED + step)
        loss = m.loss(net(x), (x, y)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    print(f"trained {NUM_STEPS} steps in {time.perf_counter() - start:.1f} s")
    with open(out_dir / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})


#: Checkpoints (by training step) of the shipped refined trajectory, and its sampler settings.
REFINED_STEPS = (0, 100, 250, 400, 500, 600, 700, 800, 900, 1000, 1500, 2000)
REFINED_SAMPLER: dict[str, Any] = {"epsilon": 3e-4, "gamma": 100.0, "chains": 2, "draws": 200, "burnin": 100,
                                   "batch_size": 64, "seed": 0}


def refined_table(out_dir: Path) -> None:
    """Per-head and whole-model λ̂ at :data:`REFINED_STEPS`, as one batched run, written to
    ``refined_trajectory.parquet`` (what the app and ``lltools trajectory --restrict-each head``
    show without sampling)."""
    torch.set_num_threads(1)
    with open(out_dir / "metrics.csv", newline="") as fh:
        steps = [int(row["step"]) for row in csv.DictReader(fh)]
    positions = [steps.index(s) for s in REFINED_STEPS]
    start = time.perf_counter()
    table = refined_trajectory(out_dir, restrict=["*"], restrict_each="head", checkpoints=positions,
                               **REFINED_SAMPLER)
    table.to_parquet(out_dir / REFINED_TRAJECTORY_FILE, index=False)
    print(f"refined trajectory: {len(table)} rows in {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--refined-only", action="store_true",
                        help="only recompute refined_trajectory.parquet from the existing checkpoints")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.out.resolve() != HERE:
        shutil.copy(HERE / "model.py", args.out / "model.py")
        shutil.copy(HERE / "model.json", args.out / "model.json")
    if not args.refined_only:
        train(args.out)
    refined_table(args.out)


if __name__ == "__main__":
    main()
