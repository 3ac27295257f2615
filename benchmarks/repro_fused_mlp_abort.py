"""Repro: the compiled (fused) network step on the 10k MLP at 8 chains aborts the process on
the AMD EPYC dev machine with torch 2.13.0+cpu (``free(): invalid next size`` /
``corrupted double-linked list`` inside the inductor kernel of ``FusedNetworkStep``;
benchmarks/RESULTS.md §9).  Exit code 0 and "ok" when it does not.

Run:  OMP_NUM_THREADS=1 python -X faulthandler benchmarks/repro_fused_mlp_abort.py
"""

from __future__ import annotations

import math
import time

from common import mlp, setup_threads, synthetic_regression, train_mlp

from lltools.targets.networks import NetworkTarget
from lltools.workflows.estimate import estimate


def main() -> int:
    setup_threads(1)
    x, y = synthetic_regression(1024, 10, seed=0)
    model = mlp((10, 96, 96, 1), seed=0)
    train_mlp(model, x, y)
    target = NetworkTarget(model, x, y, loss="mse", batch_size=64)
    start = time.time()
    for _ in range(3):
        res = estimate(target, nbeta=1024 / math.log(1024), gamma=100.0, epsilon=1e-4, chains=8, draws=20,
                       burnin=0, seed=0, fused=True, device="cpu")
    print("ok", res.llc_mean, res.trace.meta["step"], f"{time.time() - start:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
