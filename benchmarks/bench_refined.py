"""Refined LLCs: N restrictions as ONE batched run versus N separate runs (same chains).

Usage::

    .venv/bin/python benchmarks/bench_refined.py --threads 1            # full
    .venv/bin/python benchmarks/bench_refined.py --threads 1 --quick    # smoke

Cases: the induction transformer's 4 attention heads (+ the whole model) at its final
checkpoint, and the 3 layers of the 12 500-parameter deep linear network.  Each case runs
every restriction in one ``lltools.refined_llc`` call, then each restriction alone with the
same seed; the λ̂ agree to rounding (the chains are the same), and the table gives the
wall and CPU time of both and their ratio.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import base_parser, print_header, print_table, setup_threads, timed, write_csv

from lltools.targets import restrictions as R
from lltools.targets.models import load_model_folder
from lltools.workflows.refined import refined

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "transformer heads": (ROOT / "sample_models" / "induction_transformer", "head"),
    "dln 12.5k layers": (ROOT / "sample_models" / "deep_linear" / "dln_100_50_50_100_r5", "layer"),
}


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0], "bench_refined.csv")
    args = parser.parse_args()
    setup_threads(args.threads)
    info = print_header("refined LLCs: batched restrictions vs one run each")
    steps = {"draws": 20, "burnin": 5} if args.quick else {"draws": 150, "burnin": 50}
    rows = []
    for name, (folder, each) in CASES.items():
        target = load_model_folder(folder)
        card = target.card.get("default_sampler", {})
        settings = {"epsilon": card.get("epsilon", 1e-4), "gamma": card.get("gamma", 100.0), "chains": 4,
                    "seed": 0, "fused": False, **steps}
        restrictions = R.resolve(target.module, (), each)
        batched, t_batched = timed(lambda: refined(target, restrictions, **settings))  # noqa: B023
        alone, t_alone = [], []
        for r in restrictions:
            res, t = timed(lambda: refined(target, [r], **settings))  # noqa: B023
            alone.append(float(res.table["llc_mean"].iloc[0]))
            t_alone.append(t)
        diff = np.max(np.abs(batched.table["llc_mean"].to_numpy() - np.array(alone)))
        wall, cpu = sum(t.wall for t in t_alone), sum(t.cpu for t in t_alone)
        rows.append({"case": name, "restrictions": len(restrictions), "d": target.dim,
                     "chains_each": settings["chains"], "steps": steps["draws"] + steps["burnin"],
                     "batched_wall_s": t_batched.wall, "separate_wall_s": wall,
                     "speedup_wall": wall / t_batched.wall, "batched_cpu_s": t_batched.cpu,
                     "separate_cpu_s": cpu, "speedup_cpu": cpu / t_batched.cpu, "max_abs_llc_diff": diff})
    print_table(rows)
    write_csv(rows, Path(args.out), info)


if __name__ == "__main__":
    main()
