"""Roofline of the network SGLD step: measured matmul peak, FLOPs per chain-step, achieved fraction.

Issue 18, item 5.  For 10-H-H-1 ReLU MLPs of ~10k, ~100k and ~1M parameters (n = 1024,
batch 64, the bench_vs_devinterp setting ε = 1e-4, γ = 100, nβ = n/log n) at 8 and 64
chains, one script run measures:

- the **matmul peak** of this CPU at 1 and 2 torch threads: the best of a 1024² sgemm and
  the batched products of the MLP's own shapes (GFLOP/s, fp32);
- the **FLOPs of one chain-step**, counted by ``torch.utils.flop_counter.FlopCounterMode``
  on the target's batched loss and gradient (forward + backward), plus the share of the
  acceptance's second gradient (every ``acceptance_every`` = 10 steps, as the run loop does);
- lltools' **eager** and **compiled** steps through ``estimate()`` (compile not counted:
  one warm-up call first, its time printed), as chain-steps/s and as the achieved fraction
  of the peak (chain-steps/s × FLOPs per chain-step ÷ peak at the thread count used);
- **devinterp 1.3.2 and 2.0.1** on the same model, data and settings, each in its own
  subprocess (both install as the package ``devinterp``), given by ``--devinterp
  VERSION=PATH`` (``pip install --no-deps --target PATH devinterp==VERSION``; 2.0.1 also
  needs zarr, datasets, transformers importable from PATH).

The last column, ``ceiling_vs_<version>``, is what a step running at 100 % of the measured
matmul peak (and nothing else) would reach against that devinterp: the most any batched
kernel can gain on this CPU at this precision.

Run:  python benchmarks/bench_roofline.py --threads 1 \\
          --devinterp 1.3.2=.venv/extras/devinterp-1.3.2 --devinterp 2.0.1=.venv/extras/devinterp-2.0.1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")

import torch
from common import (
    base_parser,
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
from torch.utils.flop_counter import FlopCounterMode

N, BATCH, D_IN = 1024, 64, 10
#: Hidden width per model size: 10-H-H-1 has 10 465, 103 965 and 1 013 001 parameters.
HIDDEN = {"10k": 96, "100k": 316, "1M": 995}
EPSILON, GAMMA = 1e-4, 100.0
ACCEPTANCE_EVERY = 10
#: Seconds of sampling aimed at per measured run (steps are chosen from a short probe).
TARGET_SECONDS = 4.0


def matmul_peak(threads: int, hidden: list[int]) -> float:
    """Best fp32 GFLOP/s (best of five 0.2 s windows) of a 1024² sgemm and of batched
    (64, H) × (H, H) products, the MLP's own shapes."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    best = 0.0
    shapes = [(1, 1024, 1024, 1024)] + [(64, BATCH, h, h) for h in hidden if h <= 400]
    try:
        for b, m, k, n in shapes:
            a, c = torch.randn(b, m, k), torch.randn(b, k, n)
            torch.bmm(a, c)
            for _ in range(5):  # best of five short windows: the least disturbed by other load
                reps, start = 0, time.perf_counter()
                while time.perf_counter() - start < 0.2:
                    torch.bmm(a, c)
                    reps += 1
                best = max(best, 2.0 * b * m * k * n * reps / (time.perf_counter() - start) / 1e9)
    finally:
        torch.set_num_threads(old)
    return best


def build(size: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    x, y = synthetic_regression(N, D_IN, seed=0)
    model = mlp((D_IN, HIDDEN[size], HIDDEN[size], 1), seed=0)
    train_mlp(model, x, y, steps=600 if size == "10k" else 150)
    return model, x, y


def flops_per_chain_step(target: Any, chains: int) -> float:
    """Counted FLOPs of the batched loss and gradient for ``chains`` chains, per chain, with
    the acceptance's second gradient every ``ACCEPTANCE_EVERY`` steps."""
    from lltools.base import rng

    keys = rng.chain_keys(0, torch.arange(chains))
    w = target.w_star[None].expand(chains, -1).contiguous()
    batch = target.sample_batch(keys, 0)
    with FlopCounterMode(display=False) as counter:
        target.loss_and_grad(w, batch)
    return counter.get_total_flops() / chains * (1.0 + 1.0 / ACCEPTANCE_EVERY)


def marginal_rate(go: Any, chains: int, max_steps: int, probe_steps: int = 5) -> dict[str, float]:
    """chain-steps/s of ``go(steps)`` excluding its fixed cost (set-up, summary): two runs of
    ``probe_steps`` and of about ``TARGET_SECONDS`` worth of steps, rate = Δsteps / Δtime."""
    _, probe = timed(lambda: go(probe_steps))
    steps = int(max(2 * probe_steps, min(max_steps, TARGET_SECONDS / max(probe.wall / probe_steps, 1e-6))))
    _, probe = timed(lambda: go(probe_steps))  # again, warm
    res, t = timed(lambda: go(steps))
    while t.wall - probe.wall < 0.25 * TARGET_SECONDS and steps < max_steps:  # set-up dominated
        steps = min(max_steps, 3 * steps)
        res, t = timed(lambda n=steps: go(n))
    extra = chains * (steps - probe_steps)
    llc = float(getattr(res, "llc_mean", math.nan))
    return {"steps": steps, "rate": extra / max(t.wall - probe.wall, 1e-9),
            "cpu_rate": extra / max(t.cpu - probe.cpu, 1e-9), "llc": llc}


def lltools_rate(target: Any, chains: int, fused: bool, nbeta: float) -> dict[str, float]:
    """chain-steps/s (wall and per CPU-second) of ``estimate()`` after an untimed warm-up."""
    from lltools.workflows.estimate import estimate

    def run(steps: int) -> Any:
        return estimate(target, nbeta=nbeta, gamma=GAMMA, epsilon=EPSILON, chains=chains, draws=steps,
                        burnin=0, seed=0, fused=fused, record_positions=False)

    _, warm = timed(lambda: run(3))
    rate = marginal_rate(run, chains, 400)
    return {**rate, "warmup_s": warm.wall}


def devinterp_worker(args: Any) -> int:
    """Subprocess: time devinterp on one (size, chains); print one JSON line."""
    sys.path.insert(0, str(Path(args.worker_path).resolve()))
    import devinterp
    from bench_vs_devinterp import run_devinterp

    from lltools.targets.networks import NetworkTarget

    version = getattr(devinterp, "__version__", None) or args.worker_version
    model, x, y = build(args.size)
    target = NetworkTarget(model, x, y, loss="mse", batch_size=BATCH)
    init = float(target.full_loss(target.w_star[None])[0])
    nbeta = N / math.log(N)

    def go(steps: int) -> Any:
        return run_devinterp(version, model, kind="mlp", x=x, y=y, init_loss=init, chains=args.chains,
                             draws=steps, burnin=0, epsilon=EPSILON, gamma=GAMMA, nbeta=nbeta, seed=0)

    rate = marginal_rate(go, args.chains, 250, probe_steps=4)
    print(json.dumps({**rate, "version": version}))
    return 0


def devinterp_rate(version: str, path: str, size: str, chains: int, threads: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker-size", size, "--worker-chains", str(chains),
           "--worker-path", path, "--worker-version", version, "--threads", str(threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(path).resolve()),
                                                        os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path(__file__).parent, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        print(f"  devinterp {version} failed: {(out.stderr.strip().splitlines() or ['?'])[-1][:200]}")
        return {"rate": math.nan, "cpu_rate": math.nan}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0], "bench_roofline.csv")
    parser.add_argument("--sizes", nargs="*", default=list(HIDDEN), choices=list(HIDDEN))
    parser.add_argument("--chains", nargs="*", type=int, default=[8, 64])
    parser.add_argument("--devinterp", action="append", default=[], metavar="VERSION=PATH")
    parser.add_argument("--worker-size", help=argparse.SUPPRESS)
    parser.add_argument("--worker-chains", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-path", help=argparse.SUPPRESS)
    parser.add_argument("--worker-version", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = args.threads or 1
    setup_threads(threads)
    if args.worker_size:
        args.size, args.chains = args.worker_size, args.worker_chains
        return devinterp_worker(args)

    from lltools.targets.networks import NetworkTarget

    info = print_header("bench_roofline: matmul peak, FLOPs per chain-step, achieved fraction")
    peaks = {t: matmul_peak(t, [HIDDEN[s] for s in args.sizes]) for t in (1, 2)}
    print(f"measured fp32 matmul peak: 1 thread {peaks[1]:.1f} GFLOP/s, 2 threads {peaks[2]:.1f} GFLOP/s; "
          f"runs use {threads} thread(s)\n", flush=True)
    peak = peaks.get(threads, peaks[1])
    versions = [tuple(spec.split("=", 1)) for spec in args.devinterp]
    nbeta = N / math.log(N)
    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        model, x, y = build(size)
        target = NetworkTarget(model, x, y, loss="mse", batch_size=BATCH)
        for chains in args.chains:
            flops = flops_per_chain_step(target, chains)
            ceiling = peak * 1e9 / flops
            row: dict[str, Any] = {"model": size, "params": num_parameters(model), "chains": chains,
                                   "mflop_per_chain_step": flops / 1e6, "peak_gflops": peak,
                                   "ceiling_chain_steps_per_s": ceiling}
            for mode, fused in (("eager", False), ("compiled", True)):
                r = lltools_rate(target, chains, fused, nbeta)
                row[f"{mode}_chain_steps_per_s"] = r["rate"]
                row[f"{mode}_per_cpu_s"] = r["cpu_rate"]
                row[f"{mode}_peak_fraction"] = r["cpu_rate"] * flops / (peak * 1e9)
                if fused:
                    row["compile_s"] = r["warmup_s"]
                print(f"[{size} C={chains}] lltools {mode}: {r['rate']:,.0f} chain-steps/s "
                      f"({r['cpu_rate']:,.0f} per CPU-s, {row[f'{mode}_peak_fraction']:.0%} of peak), "
                      f"λ̂ {r['llc']:.2f}", flush=True)
            for version, path in versions:
                d = devinterp_rate(version, path, size, chains, threads)
                row[f"devinterp_{version}_chain_steps_per_s"] = d["rate"]
                row[f"devinterp_{version}_peak_fraction"] = d["cpu_rate"] * flops / (peak * 1e9)
                row[f"ceiling_vs_{version}"] = ceiling / d["cpu_rate"]
                row[f"compiled_vs_{version}"] = row["compiled_per_cpu_s"] / d["cpu_rate"]
                allows = row[f"ceiling_vs_{version}"]
                print(f"[{size} C={chains}] devinterp {version}: {d['rate']:,.0f} chain-steps/s "
                      f"({d['cpu_rate']:,.0f} per CPU-s); the peak allows {allows:.1f}× "
                      f"it, lltools compiled is {row[f'compiled_vs_{version}']:.1f}×", flush=True)
            rows.append(row)
    print()
    print_table(rows)
    write_csv(rows, args.out, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
