"""Chain-steps per second of the SGLD loop on 2-D potentials, eager vs compiled.

For x²+y² and x²y⁴, float32 and float64, and 1 … 1 048 576 chains (``--quick``: up to
65 536), runs the real sampling loop (:func:`lltools.sampling.driver.run`: step, trace buffers,
divergence bookkeeping, MALA acceptance every step) with the eager kernel
(:func:`lltools.sampling.sgld.step`) and with the compiled one (``fused=True``,
:mod:`lltools.sampling.compiled`).  Compilation is timed separately (first call per shape); the timed
run starts warm.  Each row also reports λ̂ = mean over chains of nβ·(mean draw loss − L(w*))
so eager and compiled can be seen to agree.  CUDA rows are added when a GPU is present.

Run:  python benchmarks/bench_potentials.py [--quick] [--threads N] [--out results.csv]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

import torch
from common import base_parser, devices, print_header, print_table, setup_threads, timed, write_csv

from lltools.base import memory
from lltools.base.memory import MemoryBudgetError
from lltools.sampling import compiled as fused_steps
from lltools.sampling.driver import run
from lltools.sampling.sgld import make_params
from lltools.targets.potentials import potential_target

POTENTIALS = ("x**2 + y**2", "x**2 * y**4")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
FULL_CHAINS = (1, 64, 4096, 65_536, 1_048_576)
QUICK_CHAINS = (1, 64, 4096, 65_536)
#: Settings: healthy for both potentials (εnβ·2 = 0.1 for x²+y²).
EPSILON, GAMMA, NBETA = 1e-3, 1.0, 100.0


def plan_steps(chains: int, budget: float) -> tuple[int, int]:
    """(draws, thinning) for about ``budget`` chain-steps: 20 … 2000 steps, thinned at 1M."""
    steps = int(min(2000, max(20, budget // chains)))
    thinning = 5 if chains >= 1 << 20 else 1
    draws = max(2, steps // thinning)
    return draws, thinning


def llc_hat(trace: Any) -> float:
    """λ̂ over non-diverged chains, without the (slow at 10⁶ chains) diagnostics."""
    loss = trace.draw_loss
    ok = trace.diverged_at < 0
    lam = trace.params.nbeta * (loss.mean(dim=1) - trace.loss_init)
    return float(lam[ok].double().mean()) if bool(ok.any()) else float("nan")


def bench_one(
    spec: str, dtype: torch.dtype, device: str, mode: str, chains: int, budget: float
) -> dict[str, Any]:
    target = potential_target(spec, dtype=dtype, device=device)
    params = make_params(EPSILON, GAMMA, NBETA, chains, device=device, dtype=dtype)
    draws, thinning = plan_steps(chains, budget)
    use_fused = mode == "compiled"
    row: dict[str, Any] = {"device": device, "potential": spec, "dtype": str(dtype).removeprefix("torch."),
                           "mode": mode, "chains": chains, "steps": draws * thinning}
    kwargs = {"record_positions": False, "fused": use_fused, "seed": 0}
    step_obj = fused_steps.fused_step_for(target) if use_fused else None
    before = step_obj.compile_seconds if step_obj is not None else 0.0
    try:
        # Warm-up: triggers compilation (timed separately) and first-touch allocations.
        _, warm = timed(lambda: run(target, params, num_draws=2, **kwargs), device)
        trace, t = timed(lambda: run(target, params, num_draws=draws, thinning=thinning, **kwargs), device)
    except MemoryBudgetError as exc:
        row.update(status=f"skipped: {exc}")
        return row
    compile_s = (step_obj.compile_seconds - before) if step_obj is not None else 0.0
    steps = draws * thinning
    row.update(
        wall_s=t.wall,
        cpu_s=t.cpu,
        chain_steps_per_s=chains * steps / t.wall,
        chain_steps_per_cpu_s=chains * steps / max(t.cpu, 1e-9),
        compile_s=compile_s if use_fused else None,
        warmup_s=warm.wall,
        compiled=bool(step_obj.compiled) if step_obj is not None else False,
        llc_hat=llc_hat(trace.cpu()),
        status="ok",
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser: argparse.ArgumentParser = base_parser(__doc__.splitlines()[0], "bench_potentials.csv")
    parser.add_argument("--chains", type=int, nargs="*", help="override the chain counts")
    parser.add_argument("--modes", nargs="*", default=["eager", "compiled"], choices=["eager", "compiled"])
    parser.add_argument("--dtypes", nargs="*", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--potentials", nargs="*", default=list(POTENTIALS))
    args = parser.parse_args(argv)
    setup_threads(args.threads)
    info = print_header("bench_potentials: SGLD chain-steps/s on 2-D potentials",
                        {"compiler_available": fused_steps.compile_available(),
                         "allocator_tuned": memory.tune_host_allocator("cpu")})
    chain_counts = args.chains or (QUICK_CHAINS if args.quick else FULL_CHAINS)
    budget = 2e6 if args.quick else 3e7
    rows = []
    for device in devices():
        for spec in args.potentials:
            for dname in args.dtypes:
                for mode in args.modes:
                    for chains in chain_counts:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", UserWarning)
                            row = bench_one(spec, DTYPES[dname], device, mode, chains, budget)
                        rows.append(row)
                        print(f"  {device} {spec:12s} {dname} {mode:8s} C={chains:>9,}: "
                              + (f"{row.get('chain_steps_per_s', 0):,.0f} chain-steps/s "
                                 f"(cpu {row.get('chain_steps_per_cpu_s', 0):,.0f}/s), "
                                 f"compile {row.get('compile_s') or 0:.1f}s, "
                                 f"λ̂={row.get('llc_hat', float('nan')):.4f}"
                                 if row.get("status") == "ok" else row["status"]), flush=True)
    print()
    print_table(rows, ["device", "potential", "dtype", "mode", "chains", "steps", "wall_s", "cpu_s",
                       "chain_steps_per_s", "chain_steps_per_cpu_s", "compile_s", "llc_hat"])
    # Compiled / eager speed-up per configuration.
    speedups = []
    for r in rows:
        if r["mode"] != "compiled" or r.get("status") != "ok":
            continue
        e = next((x for x in rows if x["mode"] == "eager" and x.get("status") == "ok" and all(
            x[k] == r[k] for k in ("device", "potential", "dtype", "chains"))), None)
        if e is not None:
            speedups.append({k: r[k] for k in ("device", "potential", "dtype", "chains")}
                            | {"speedup_wall": r["chain_steps_per_s"] / e["chain_steps_per_s"],
                               "speedup_cpu": r["chain_steps_per_cpu_s"] / e["chain_steps_per_cpu_s"],
                               "llc_eager": e["llc_hat"], "llc_compiled": r["llc_hat"]})
    if speedups:
        print("compiled vs eager:")
        print_table(speedups)
    write_csv(rows, args.out, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
