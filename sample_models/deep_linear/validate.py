"""Check a sample model's ``default_sampler`` settings: λ̂ ± SEM, acceptance, divergences.

Runs lltools with the card's default settings at the card's ``final_checkpoint`` and at
the last training checkpoint, prints the numbers quoted in MODEL_CARD.md and writes them to
``validation.json`` in the model folder::

    python sample_models/deep_linear/validate.py sample_models/deep_linear/rrr_6_4_5_r2
    python sample_models/deep_linear/validate.py sample_models/digits_mlp
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lltools.estimation.summary import llc_by_setting
from lltools.sampling.driver import run
from lltools.sampling.sgld import make_params
from lltools.targets.models import list_checkpoints, load_sample_model


def validate(folder: Path, checkpoint: Path | None, seed: int = 0) -> dict:
    target = load_sample_model(folder, checkpoint)
    s = target.card["default_sampler"]
    nbeta = s.get("nbeta") or target.default_nbeta
    params = make_params(s["epsilon"], s["gamma"], nbeta, s["chains"])
    start = time.perf_counter()
    trace = run(target, params, num_draws=s["draws"], num_burnin=s["burnin"], seed=seed).cpu()
    row = llc_by_setting(trace).iloc[0]
    return {
        "checkpoint": str(target.checkpoint_path.relative_to(folder)),
        "llc_mean": round(float(row.llc_mean), 4), "llc_sem": round(float(row.llc_sem), 4),
        "llc_std": round(float(row.llc_std), 4), "rhat": round(float(row.rhat), 4),
        "ess": round(float(row.ess), 1), "acceptance": round(float(row.acceptance), 4),
        "diverged": int(row.n_diverged),
        "loss_at_centre": float(trace.loss_init.mean()),
        "theory_llc": target.theory_llc, "seconds": round(time.perf_counter() - start, 1),
        "settings": {**s, "nbeta": nbeta, "seed": seed},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for folder in args.folders:
        rows = [validate(folder, None)]
        trained = list_checkpoints(folder)
        if trained and trained[-1].resolve() != (folder / rows[0]["checkpoint"]).resolve():
            rows.append(validate(folder, trained[-1]))
        for row in rows:
            print(f"{folder.name} {row['checkpoint']}: λ̂ = {row['llc_mean']:.3f} ± {row['llc_sem']:.3f} "
                  f"(theory {row['theory_llc']}), R-hat {row['rhat']:.3f}, ESS {row['ess']:.0f}, "
                  f"acceptance {row['acceptance']:.3f}, "
                  f"diverged {row['diverged']}, {row['seconds']} s")
        (folder / "validation.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
