"""A 101 × 101 loss plane of the 12 500-parameter deep linear network, end to end (goal: < 10 s).

sample_models/deep_linear/dln_100_50_50_100_r5 (100→50→50→100, n = 20 000) at its teacher w*:
load the model, build a filter-normalised random plane, evaluate L_n at 10 201 points
(:func:`lltools.theory.planes.evaluate_plane`: batched, chunked; the model is linear in its
input, so L_n is evaluated on its exactly equivalent 101-row dataset, see
:mod:`lltools.targets.reduction`), and build + serialise the contour and 3-D surface figures
(what the app sends to the browser).  For honesty it also times the same evaluation on the
full 20 000 rows for 256 points and extrapolates to 10 201, and the Hessian spectrum
(Lanczos top-20 + the range-sketch near-zero count).

Run:  python benchmarks/bench_landscape.py [--quick] [--threads N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from common import base_parser, print_header, print_table, setup_threads, timed, write_csv

from lltools.targets.models import load_sample_model
from lltools.theory.hessian import hessian_spectrum
from lltools.theory.planes import evaluate_plane, random_plane
from lltools.viz.planes import plane_figure

MODEL = Path(__file__).resolve().parents[1] / "sample_models" / "deep_linear" / "dln_100_50_50_100_r5"


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0], "bench_landscape.csv")
    parser.add_argument("--grid", type=int, default=101)
    parser.add_argument("--no-hessian", action="store_true", help="skip the Hessian spectrum row")
    args = parser.parse_args(argv)
    setup_threads(args.threads)
    grid = 21 if args.quick else args.grid
    info = print_header("bench_landscape: a loss plane of dln_100_50_50_100_r5", {"grid": grid})
    rows = []

    def render() -> object:
        target = load_sample_model(MODEL)
        plane = random_plane(target, seed=0)
        table = evaluate_plane(target, plane, grid=grid, span=1.0)
        for kind in ("contour", "surface"):
            plane_figure(table, kind=kind, a_label=plane.a_label, b_label=plane.b_label).to_json()
        return table

    render()  # warm-up (imports, first vmap trace)
    table, t = timed(render)
    rows.append({"case": f"{grid}x{grid} plane, load + evaluate + 2 figures", "points": len(table),
                 "wall_s": t.wall, "cpu_s": t.cpu, "goal_s": 10.0, "met": t.wall < 10.0})

    target = load_sample_model(MODEL)
    plane = random_plane(target, seed=0)
    w = plane.points(torch.linspace(-1, 1, 256, dtype=torch.float64), torch.zeros(256, dtype=torch.float64))
    _, t_full = timed(lambda: target.full_loss(w))
    rows.append({"case": "same loss on all 20 000 rows (256 points, extrapolated to the grid)",
                 "points": len(table), "wall_s": t_full.wall * len(table) / 256,
                 "cpu_s": t_full.cpu * len(table) / 256, "goal_s": None, "met": None})
    if not args.no_hessian and not args.quick:
        spec, t_h = timed(lambda: hessian_spectrum(target, top=20))
        rows.append({"case": f"Hessian: Lanczos top-20 + near-zero count ({spec.near_zero_count} of 12 500)",
                     "points": None, "wall_s": t_h.wall, "cpu_s": t_h.cpu, "goal_s": None, "met": None})
    print_table(rows)
    write_csv(rows, args.out, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
