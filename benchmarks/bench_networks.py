"""Chain-steps per second of SGLD on MLPs, and the modular-addition LLC trajectory.

1. Two ReLU MLPs on synthetic regression data (n = 1024, batch 64, MSE):
   10-96-96-1 (10 465 parameters) and 10-1000-1000-1 (1 013 001 parameters), at 1, 8 and 64
   chains, through :func:`lltools.estimate` (the real loop: per-chain minibatches, MALA
   acceptance every 10 steps, diagnostics).  The sampling loop and the summary are timed
   separately (``sample_s`` from :func:`lltools.sampling.driver.run`, ``estimate_s`` end to end).
2. :func:`lltools.workflows.trajectory.compute_trajectory` on ``sample_models/modular_addition``
   (all checkpoints as one batched run, model-card sampler settings; ``--quick``: 50 + 50
   steps) — wall time and chain-steps/s.

Run:  python benchmarks/bench_networks.py [--quick] [--threads N] [--skip-1m] [--skip-trajectory]
"""

from __future__ import annotations

import itertools
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from common import (
    base_parser,
    devices,
    mlp,
    num_parameters,
    print_header,
    print_table,
    setup_threads,
    synthetic_regression,
    timed,
    train_mlp,
    write_csv,
)

from lltools.sampling.driver import run
from lltools.sampling.sgld import make_params
from lltools.targets.networks import NetworkTarget
from lltools.workflows.estimate import estimate

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO / "sample_models" / "modular_addition"
NETWORKS = {"mlp_10k": (10, 96, 96, 1), "mlp_1m": (10, 1000, 1000, 1)}
N, BATCH = 1024, 64
EPSILON, GAMMA = 1e-4, 100.0


def network_target(name: str, device: str) -> NetworkTarget:
    sizes = NETWORKS[name]
    x, y = synthetic_regression(N, sizes[0], seed=0)
    model = mlp(sizes, seed=0)
    if name == "mlp_10k":
        train_mlp(model, x, y, steps=300)
    return NetworkTarget(model, x, y, loss="mse", batch_size=BATCH, device=device, name=name)


def bench_network(
    name: str, target: NetworkTarget, chains: int, steps: int, device: str, mode: str
) -> dict[str, Any]:
    nbeta = float(N / torch.log(torch.tensor(float(N))))
    fused = mode == "compiled"
    params = make_params(EPSILON, GAMMA, nbeta, chains, device=device, dtype=target.dtype)
    # Warm-up (allocations, vmap tracing; compilation of the fused kernels, timed apart).
    _, warm = timed(lambda: run(target, params, num_draws=2, fused=fused), device)
    _, sample_t = timed(lambda: run(target, params, num_draws=steps, fused=fused), device)
    result, est_t = timed(lambda: estimate(target, nbeta=nbeta, gamma=GAMMA, epsilon=EPSILON, chains=chains,
                                           draws=steps, burnin=0, device=device, fused=fused), device)
    return {
        "device": device,
        "case": name,
        "mode": mode,
        "warmup_s": warm.wall,
        "params": target.dim,
        "chains": chains,
        "batch": BATCH,
        "steps": steps,
        "sample_s": sample_t.wall,
        "sample_cpu_s": sample_t.cpu,
        "chain_steps_per_s": chains * steps / sample_t.wall,
        "chain_steps_per_cpu_s": chains * steps / max(sample_t.cpu, 1e-9),
        "estimate_s": est_t.wall,
        "estimate_chain_steps_per_s": chains * steps / est_t.wall,
        "llc": result.llc_mean,
        "llc_sem": result.llc_sem,
    }


def bench_trajectory(quick: bool, device: str) -> dict[str, Any]:
    from lltools.workflows.trajectory import compute_trajectory

    card = json.loads((MODEL_DIR / "model.json").read_text())
    sampler = dict(card["default_sampler"])
    overrides: dict[str, Any] = {"device": device}
    if quick:
        overrides.update(draws=50, burnin=50)
    draws = overrides.get("draws", sampler["draws"])
    burnin = overrides.get("burnin", sampler["burnin"])
    table, t = timed(lambda: compute_trajectory(MODEL_DIR, **overrides), device)
    k = len(table)
    total_chains = k * int(sampler["chains"])
    steps = int(draws) + int(burnin)
    return {
        "device": device,
        "case": "modular_addition trajectory",
        "params": int(card.get("num_parameters", 0)),
        "checkpoints": k,
        "chains": total_chains,
        "batch": sampler.get("batch_size") or "full",
        "steps": steps,
        "estimate_s": t.wall,
        "sample_cpu_s": t.cpu,
        "estimate_chain_steps_per_s": total_chains * steps / t.wall,
        "chain_steps_per_cpu_s": total_chains * steps / max(t.cpu, 1e-9),
        "checkpoint_steps_per_s": k * steps / t.wall,
        "llc": float(table["llc_mean"].iloc[-1]),
        "llc_sem": float(table["llc_sem"].iloc[-1]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0], "bench_networks.csv")
    parser.add_argument("--skip-1m", action="store_true", help="leave out the ~1M-parameter MLP")
    parser.add_argument("--skip-trajectory", action="store_true")
    parser.add_argument("--modes", nargs="*", default=["eager", "compiled"], choices=["eager", "compiled"])
    args = parser.parse_args(argv)
    setup_threads(args.threads)
    info = print_header("bench_networks: SGLD on MLPs (batch 64) and the modular-addition trajectory")
    rows = []
    for device in devices():
        for name in NETWORKS:
            if name == "mlp_1m" and args.skip_1m:
                continue
            target = network_target(name, device)
            print(f"  {name}: {num_parameters(target.module):,} parameters", flush=True)
            for mode, chains in itertools.product(args.modes, (1, 8, 64)):
                if name == "mlp_1m":
                    if args.quick and chains == 64:
                        continue
                    steps = 5 if args.quick else 20
                else:
                    steps = 40 if args.quick else 300
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row = bench_network(name, target, chains, steps, device, mode)
                rows.append(row)
                print(f"    {mode:8s} C={chains:>3}: {row['chain_steps_per_s']:,.0f} chain-steps/s sampling, "
                      f"{row['estimate_chain_steps_per_s']:,.0f}/s via estimate(); "
                      f"λ̂={row['llc']:.2f}±{row['llc_sem']:.2f}", flush=True)
        if not args.skip_trajectory:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row = bench_trajectory(args.quick, device)
            rows.append(row)
            print(f"  trajectory: {row['checkpoints']} checkpoints × {row['steps']} steps in "
                  f"{row['estimate_s']:.1f}s ({row['estimate_chain_steps_per_s']:,.0f} chain-steps/s)",
                  flush=True)
    print()
    print_table(rows, ["device", "case", "mode", "params", "chains", "steps", "sample_s", "chain_steps_per_s",
                       "chain_steps_per_cpu_s", "estimate_s", "estimate_chain_steps_per_s", "llc", "llc_sem"])
    write_csv(rows, args.out, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
