"""Soak: one process running 1 000 consecutive small estimates; is memory stable?

Cycles through the three built-in potentials (4 chains, 20 + 100 steps) and, every 10th
estimate, a small MLP on synthetic data (batch 16) — the full public path
(:func:`lltools.estimate`: placement, sampling, estimators, diagnostics, warnings).
RSS is read from /proc/self/status (VmRSS) at the start, after a warm-up tenth and every
tenth after that, and at the end.  Growth after warm-up above max(20 MiB, 10 %) is flagged
``GROWTH`` (exit status 1); otherwise ``STABLE``.

Run:  python benchmarks/bench_soak.py [--quick] [--count N] [--fused]
"""

from __future__ import annotations

import gc
import sys
import time
import warnings

import torch
from common import base_parser, mlp, print_header, print_table, rss_bytes, setup_threads, write_csv

from lltools.targets.networks import NetworkTarget
from lltools.targets.potentials import potential_target
from lltools.workflows.estimate import estimate

MIB = 1024**2


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0], "bench_soak.csv")
    parser.add_argument("--count", type=int, default=None, help="number of estimates (default 1000)")
    parser.add_argument("--fused", action="store_true", help="use the compiled step")
    args = parser.parse_args(argv)
    setup_threads(args.threads)
    count = args.count or (100 if args.quick else 1000)
    info = print_header("bench_soak: consecutive small estimates in one process", {"estimates": count})

    potentials = [potential_target(s) for s in ("x**2 + y**2", "x**4 + y**4", "x**2 * y**4")]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=gen)
    y = torch.sin(x[:, :1]) + 0.1 * torch.randn(256, 1, generator=gen)
    small = mlp((4, 16, 1), seed=0, activation=torch.nn.Tanh)
    net = NetworkTarget(small, x, y, batch_size=16, name="mlp_4_16_1")

    rows = []
    start_rss = rss_bytes()
    warm_at = max(1, count // 10)
    warm_rss = None
    t0 = time.perf_counter()
    llcs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(count):
            if i % 10 == 9:
                res = estimate(net, nbeta=50.0, gamma=100.0, epsilon=1e-4, chains=4, draws=100, burnin=20,
                               seed=i, fused=args.fused)
            else:
                res = estimate(potentials[i % 3], nbeta=100.0, gamma=1.0, epsilon=1e-3, chains=4, draws=100,
                               burnin=20, seed=i, fused=args.fused)
            llcs.append(res.llc_mean)
            del res
            done = i + 1
            if done == warm_at:
                warm_rss = rss_bytes()
            if done % max(1, count // 10) == 0 or done == count:
                rss = rss_bytes()
                rows.append({"estimates": done, "rss_mib": rss / MIB, "elapsed_s": time.perf_counter() - t0,
                             "estimates_per_s": done / (time.perf_counter() - t0)})
                print(f"  {done:>5} estimates: RSS {rss / MIB:8.1f} MiB, {rows[-1]['estimates_per_s']:.1f}/s",
                      flush=True)
    end_rss = rss_bytes()
    gc.collect()
    after_gc = rss_bytes()
    base = warm_rss or start_rss
    growth = end_rss - base
    limit = max(20 * MIB, 0.10 * base)
    verdict = "GROWTH" if growth > limit else "STABLE"
    print()
    print_table(rows)
    print(f"RSS start {start_rss / MIB:.1f} MiB, after warm-up ({warm_at}) {base / MIB:.1f} MiB, "
          f"end {end_rss / MIB:.1f} MiB (after gc.collect {after_gc / MIB:.1f} MiB); growth after warm-up "
          f"{growth / MIB:+.1f} MiB (limit {limit / MIB:.1f}) → {verdict}")
    finite = sum(1 for v in llcs if v == v)
    print(f"{finite}/{count} estimates finite")
    summary = {"estimates": count, "rss_start_mib": start_rss / MIB, "rss_warm_mib": base / MIB,
               "rss_end_mib": end_rss / MIB, "rss_after_gc_mib": after_gc / MIB, "growth_mib": growth / MIB,
               "verdict": verdict, "seconds": time.perf_counter() - t0, "fused": args.fused}
    write_csv([*rows, summary], args.out, info)
    return 0 if verdict == "STABLE" else 1


if __name__ == "__main__":
    sys.exit(main())
