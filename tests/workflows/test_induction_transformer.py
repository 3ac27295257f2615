"""The induction transformer's refined trajectory: its measured shape, recomputed on two of
the shipped checkpoints (a broken sampler or restriction fails these thresholds).

Measured (shipped ``refined_trajectory.parquet``, 2 chains × 200 draws, ε = 3e-4, γ = 100,
batch 64; SEM ≈ 0.5–3): the whole-model λ̂ climbs 73 → 211 from step 250 to step 1000 while
the validation loss falls 2.46 → 1.49 and the layer-1 induction scores rise 0.10 → 0.27;
every head's λ̂ climbs ≈ 9–10 → 43–49 over the same steps, far below its d_S/2 = 1 024; at
the end the head with the stronger role (previous-token in layer 0, induction in layer 1)
has the larger λ̂ in each layer (59 vs 50, 62 vs 54).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from lltools.workflows.refined import REFINED_TRAJECTORY_FILE, refined_trajectory

FOLDER = Path(__file__).resolve().parents[2] / "sample_models" / "induction_transformer"


def train_module():
    spec = importlib.util.spec_from_file_location("induction_train", FOLDER / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    return pd.read_parquet(FOLDER / REFINED_TRAJECTORY_FILE)


def by(table: pd.DataFrame, value: str = "llc_mean") -> pd.DataFrame:
    return table.pivot_table(index="restriction", columns="step", values=value)


def test_shipped_table_has_the_measured_shape(shipped) -> None:
    llc = by(shipped)
    assert list(llc.columns) == list(train_module().REFINED_STEPS)
    whole = llc.loc["all"]
    heads = llc.drop(index="all")
    assert whole.loc[1000] > 2.0 * whole.loc[250]  # λ̂ grows with the induction circuit
    assert whole.loc[[250, 400, 500, 600, 700, 800, 900, 1000]].is_monotonic_increasing
    assert (heads[1000] > 3.0 * heads[250]).all()
    assert (heads[2000] < 0.1 * 1024).all()  # each head far below its regular bound d_S/2
    final = shipped[shipped["step"] == 2000].set_index("restriction")
    sem = final["llc_sem"]
    # The stronger previous-token head (layer 0) and induction head (layer 1) have the larger λ̂.
    strong0 = "layers.0.head0" if final["prev_0_0"].iloc[0] > final["prev_0_1"].iloc[0] else "layers.0.head1"
    weak0 = "layers.0.head1" if strong0.endswith("0") else "layers.0.head0"
    induct = final["induct_1_0"].iloc[0] > final["induct_1_1"].iloc[0]
    strong1 = "layers.1.head0" if induct else "layers.1.head1"
    weak1 = "layers.1.head1" if strong1.endswith("0") else "layers.1.head0"
    for strong, weak in ((strong0, weak0), (strong1, weak1)):
        gap = final.loc[strong, "llc_mean"] - final.loc[weak, "llc_mean"]
        assert gap > 4 * (sem[strong] ** 2 + sem[weak] ** 2) ** 0.5


#: A short run of the shipped settings (one chain, 100 draws, minibatch 32): measured whole-model
#: λ̂ 78 → 217 and heads ≈ 8–14 → 41–51 from step 250 to 1000 at seed 0 (24 s at load 6).
QUICK = {**train_module().REFINED_SAMPLER, "chains": 1, "draws": 100, "burnin": 50, "batch_size": 32}


@pytest.mark.slow
def test_recomputed_checkpoints_reproduce_the_shape() -> None:
    """Steps 250 and 1000 recomputed (one batched run of 5 restrictions × 2 checkpoints): the
    whole model's λ̂ more than doubles and every head's more than triples, as in the shipped
    table; every head stays far below d_S/2."""
    steps = pd.read_csv(FOLDER / "metrics.csv")["step"].tolist()
    table = refined_trajectory(FOLDER, restrict=["*"], restrict_each="head",
                               checkpoints=[steps.index(250), steps.index(1000)], **QUICK)
    llc = by(table)
    heads = llc.drop(index="all")
    assert llc.loc["all", 1000] > 2.0 * llc.loc["all", 250]
    assert (heads[1000] > 3.0 * heads[250]).all()
    assert (heads[1000] < 0.1 * 1024).all() and (heads[250] > 0).all()
