"""A 5 ε × 4 γ × 3 nβ × 4-chain grid as ONE batched run vs the same 60 settings one by one.

For a 2-D potential (x²y⁴) and the 10-96-96-1 MLP (batch 64), runs
:func:`lltools.workflows.sweep.sweep` over the whole grid (240 chains in one computation) and then
each setting alone (a 1-setting sweep, same seed: chain k of every setting has the same
random stream, so each row must come out the same: bit for bit for potentials; for networks
to float rounding, as the per-chain matrix products are blocked differently at different
batch sizes).  Prints both wall times, their ratio, and "batched / single" — the batched
grid's wall time in units of one single-setting run (target: ≤ 3) — with the sampling loop
and the per-setting summary (λ̂, R-hat, ESS from ``llc_by_setting``) timed apart.  Eager
and compiled (``fused=True``) steps.

Run:  python benchmarks/bench_grid.py [--quick] [--threads N] [--modes eager compiled]
"""

from __future__ import annotations

import itertools
import sys
import warnings
from typing import Any

import numpy as np
from common import (
    base_parser,
    mlp,
    print_header,
    print_table,
    setup_threads,
    synthetic_regression,
    timed,
    train_mlp,
    write_csv,
)

from lltools.estimation.summary import llc_by_setting
from lltools.sampling.driver import last_item
from lltools.targets.base import Target
from lltools.targets.networks import NetworkTarget
from lltools.targets.potentials import potential_target
from lltools.workflows.sweep import sweep, sweep_stream

GRIDS: dict[str, dict[str, list[float]]] = {
    "x**2 * y**4": {
        "epsilon": [1e-4, 2e-4, 5e-4, 1e-3, 2e-3],
        "gamma": [0.5, 1.0, 2.0, 5.0],
        "nbeta": [30.0, 100.0, 300.0],
    },
    "mlp_10k": {
        "epsilon": [2e-5, 5e-5, 1e-4, 2e-4, 5e-4],
        "gamma": [10.0, 30.0, 100.0, 300.0],
        "nbeta": [50.0, 147.7, 400.0],
    },
}
CHAINS = 4


def make_target(name: str) -> Target:
    if name == "mlp_10k":
        x, y = synthetic_regression(1024, 10, seed=0)
        model = mlp((10, 96, 96, 1), seed=0)
        train_mlp(model, x, y, steps=300)
        return NetworkTarget(model, x, y, loss="mse", batch_size=64, name="mlp_10k")
    return potential_target(name)


def _timed_sweep(
    target: Target, grid: dict[str, list[float]], kwargs: dict[str, Any]
) -> tuple[Any, float, float]:
    """(table, sampling seconds, summary seconds) of one sweep (sampling = the batched loop,
    summary = λ̂/R-hat/ESS per setting from :func:`lltools.estimation.summary.llc_by_setting`)."""
    # The stream's last event already carries the summary: time it again on its own and
    # count the rest as sampling.
    event, ts = timed(lambda: last_item(sweep_stream(target, **grid, **kwargs)))
    table, tt = timed(lambda: llc_by_setting(event.trace.cpu()))
    return table, ts.wall - tt.wall, tt.wall


def bench_grid(name: str, draws: int, burnin: int, mode: str) -> dict[str, Any]:
    target = make_target(name)
    grid = GRIDS[name]
    kwargs = {"chains": CHAINS, "draws": draws, "burnin": burnin, "seed": 0, "device": "cpu",
              "fused": mode == "compiled"}
    # Warm-up (and compilation when fused): one tiny batched and one tiny single run.
    first = {k: v[:1] for k, v in grid.items()}
    sweep(target, **grid, **{**kwargs, "draws": 2, "burnin": 0})
    sweep(target, **first, **{**kwargs, "draws": 2, "burnin": 0})
    table, b_sample, b_summary = _timed_sweep(target, grid, kwargs)
    single_rows, single_sample, single_summary = [], [], []
    for e, g, nb in itertools.product(grid["epsilon"], grid["gamma"], grid["nbeta"]):
        t1, s1, m1 = _timed_sweep(target, {"epsilon": [e], "gamma": [g], "nbeta": [nb]}, kwargs)
        single_rows.append(t1.iloc[0])
        single_sample.append(s1)
        single_summary.append(m1)
    batched_total = b_sample + b_summary
    singles_total = np.add(single_sample, single_summary)
    mean_single = float(np.mean(singles_total))
    b = table["llc_mean"].to_numpy()
    s = np.array([r["llc_mean"] for r in single_rows])
    identical = bool(np.array_equal(b, s, equal_nan=True))
    both = np.isfinite(b) & np.isfinite(s)
    max_rel = float(np.max(np.abs(b - s)[both] / np.maximum(np.abs(s[both]), 1e-12))) if both.any() else 0.0
    return {
        "target": name,
        "mode": mode,
        "settings": len(table),
        "chains_per_setting": CHAINS,
        "steps": draws + burnin,
        "batched_s": batched_total,
        "batched_sampling_s": b_sample,
        "batched_summary_s": b_summary,
        "one_by_one_s": float(np.sum(singles_total)),
        "mean_single_s": mean_single,
        "mean_single_sampling_s": float(np.mean(single_sample)),
        "speedup": float(np.sum(singles_total)) / batched_total,
        "batched_in_single_runs": batched_total / mean_single,
        "sampling_in_single_runs": b_sample / float(np.mean(single_sample)),
        "target_met": batched_total / mean_single <= 3.0,
        "rows_identical": identical,
        "max_rel_llc_diff": max_rel,
        "n_diverged_settings": int((table["n_diverged"] > 0).sum()),
        "llc_range": f"{np.nanmin(b):.3g}..{np.nanmax(b):.3g}" if np.isfinite(b).any() else "nan",
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0], "bench_grid.csv")
    parser.add_argument("--targets", nargs="*", default=list(GRIDS), choices=list(GRIDS))
    parser.add_argument("--modes", nargs="*", default=["eager", "compiled"], choices=["eager", "compiled"])
    args = parser.parse_args(argv)
    setup_threads(args.threads)
    info = print_header("bench_grid: 60-setting grid batched vs one by one")
    rows = []
    for name, mode in itertools.product(args.targets, args.modes):
        if name == "mlp_10k":
            draws, burnin = (20, 5) if args.quick else (100, 20)
        else:
            draws, burnin = (100, 20) if args.quick else (1000, 200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row = bench_grid(name, draws, burnin, mode)
        rows.append(row)
        print(f"  {name} [{mode}]: batched {row['batched_s']:.2f}s "
              f"(sampling {row['batched_sampling_s']:.2f}s + summary {row['batched_summary_s']:.2f}s) "
              f"vs one by one {row['one_by_one_s']:.2f}s "
              f"(×{row['speedup']:.1f}); batched = {row['batched_in_single_runs']:.2f} single runs "
              f"(sampling alone {row['sampling_in_single_runs']:.2f}; target ≤ 3: "
              f"{'met' if row['target_met'] else 'NOT met'}); rows identical: {row['rows_identical']} "
              f"(max rel. λ̂ diff {row['max_rel_llc_diff']:.1e})", flush=True)
    print()
    print_table(rows, ["target", "mode", "settings", "steps", "batched_s", "batched_sampling_s",
                       "batched_summary_s", "one_by_one_s", "mean_single_s", "speedup",
                       "batched_in_single_runs", "sampling_in_single_runs", "rows_identical",
                       "max_rel_llc_diff"])
    write_csv(rows, args.out, info)
    return 0 if all(r["max_rel_llc_diff"] <= 1e-5 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
