"""Where the CPU time of one eager SGLD step on the 10k-parameter MLP goes (issue 18).

The bench_vs_devinterp MLP (10-96-96-1 ReLU, 10 465 parameters, n = 1024, batch 64), one
thread.  For C ∈ {8, 64} chains it measures *process CPU time* per call (more robust than
wall time on a shared machine, though contention still slows caches) of:

- ``rng.normal`` for (C, d) — the counter-based noise of one step;
- ``target.loss_and_grad`` — the batched forward/backward;
- the whole eager step (plain SGLD and RMSProp-SGLD), acceptance computed every 10th step
  as the run loop does (so 0.9 steps without and 0.1 with the second gradient);

and prints torch.profiler's top operators for the eager SGLD step at the largest C.  Run
it against two source trees (``PYTHONPATH=tree``) to compare before/after.

Run:  python benchmarks/profile_network_step.py [--threads 1] [--chains 8 64] [--repeats 20]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from common import mlp, setup_threads, synthetic_regression, train_mlp

from lltools.base import rng
from lltools.sampling import sgld
from lltools.sampling.sgld import make_params
from lltools.targets.networks import NetworkTarget

N, BATCH, SIZES = 1024, 64, (10, 96, 96, 1)


def cpu_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median process CPU milliseconds per call over ``repeats`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    times.sort()
    return 1e3 * times[len(times) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chains", type=int, nargs="*", default=[8, 64])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    setup_threads(args.threads)
    x, y = synthetic_regression(N, SIZES[0], seed=0)
    model = mlp(SIZES, seed=0)
    train_mlp(model, x, y)
    target = NetworkTarget(model, x, y, loss="mse", batch_size=BATCH)
    d = target.dim
    nbeta = N / math.log(N)
    print(f"10-96-96-1 MLP, d = {d:,}, batch {BATCH}, threads {torch.get_num_threads()}")
    print(f"{'chains':>6} {'normal ms':>10} {'loss+grad ms':>13} {'sgld step ms':>13} "
          f"{'rmsprop step ms':>16}")
    for chains in args.chains:
        keys = rng.chain_keys(0, torch.arange(chains))
        w = target.w_star[None].expand(chains, -1).contiguous()
        batch = target.sample_batch(keys, 0)
        normal = cpu_ms(lambda k=keys: rng.normal(k, 3, rng.STREAM_NOISE, d, torch.float32), args.repeats)
        grad = cpu_ms(lambda w=w, b=batch: target.loss_and_grad(w, b), args.repeats)
        steps = {}
        for sampler in ("sgld", "rmsprop"):
            kwargs = {} if sampler == "sgld" else {"sampler": "rmsprop"}
            try:
                params = make_params(1e-4, 100.0, nbeta, chains, **kwargs)
            except TypeError:  # a tree without the sampler option
                steps[sampler] = math.nan
                continue
            state = sgld.init(target, params, keys)
            box = [state]

            def ten_steps(box: list = box, params: Any = params) -> None:
                for i in range(10):
                    box[0], _ = sgld.step(box[0], target, params, compute_acceptance=(i == 0))

            steps[sampler] = cpu_ms(ten_steps, max(3, args.repeats // 5)) / 10
        print(f"{chains:>6} {normal:>10.2f} {grad:>13.2f} {steps['sgld']:>13.2f} {steps['rmsprop']:>16.2f}")
    if not args.no_profile:
        chains = max(args.chains)
        keys = rng.chain_keys(0, torch.arange(chains))
        params = make_params(1e-4, 100.0, nbeta, chains)
        state = sgld.init(target, params, keys)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for i in range(20):
                state, _ = sgld.step(state, target, params, compute_acceptance=(i % 10 == 0))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
