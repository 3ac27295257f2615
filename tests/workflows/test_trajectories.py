"""LLC trajectories over training checkpoints.

The qualitative shape Cullen et al. (seed 003) report on modular addition — λ̂ rises during
memorisation and falls as validation accuracy climbs — asserted on the shipped model with
the thresholds measured on it (MODEL_CARD.md): a sampler with the wrong noise scale, drift
sign or step size lands far outside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lltools.targets.models import list_checkpoints
from lltools.workflows.trajectory import compute_trajectory

MODEL = Path(__file__).resolve().parents[2] / "sample_models" / "modular_addition"


def index_of_step(step: int) -> int:
    names = [p.name for p in list_checkpoints(MODEL)]
    return names.index(f"step_{step:05d}.safetensors")


@pytest.fixture(scope="module")
def grokking_table() -> pd.DataFrame:
    """λ̂ at the memorisation peak, mid-transition and after grokking: ONE batched run."""
    steps = [20, 400, 2000, 3600, 6000]
    return compute_trajectory(
        MODEL, checkpoints=[index_of_step(s) for s in steps], seed=0, device="cpu",
        with_geometric_complexity=True,
    ).set_index("step")


def test_table_joins_training_logs(grokking_table: pd.DataFrame) -> None:
    cols = {"llc_mean", "llc_sem", "rhat", "acceptance", "n_diverged", "train_loss", "val_loss",
            "train_acc", "val_acc", "geometric_complexity", "gsm", "checkpoint"}
    assert cols <= set(grokking_table.columns)
    assert list(grokking_table.index) == [20, 400, 2000, 3600, 6000]
    assert grokking_table.loc[6000, "val_acc"] == pytest.approx(1.0)
    assert np.isfinite(grokking_table["gsm"]).all()


def test_llc_rises_in_memorisation_and_falls_with_grokking(grokking_table: pd.DataFrame) -> None:
    t = grokking_table
    llc, sem = t["llc_mean"], t["llc_sem"]
    assert (t.loc[[400, 2000, 3600, 6000], "n_diverged"] == 0).all()
    assert (t.loc[[400, 2000, 3600, 6000], "acceptance"] >= 0.85).all()
    # Memorisation: λ̂ grows from the barely-trained net to the memorising peak.
    assert llc[400] - llc[20] >= 300
    # Peak and post-grokking plateau in the ranges measured on this model.
    assert 640 <= llc[400] <= 710
    assert 540 <= llc[3600] <= 610 and 540 <= llc[6000] <= 610
    # Grokking: a drop much larger than the Monte-Carlo error, monotone through the transition.
    drop = llc[400] - llc[6000]
    assert drop >= 60
    assert drop >= 10 * float(np.hypot(sem[400], sem[6000]))
    assert llc[400] > llc[2000] + 5 > llc[3600] + 10


def test_geometric_complexity_tracks_the_same_transition(grokking_table: pd.DataFrame) -> None:
    gc = grokking_table["geometric_complexity"]
    assert gc[400] > gc[6000] > 0


def test_batched_checkpoints_equal_single_checkpoint_runs() -> None:
    """Chain k of every checkpoint uses the stream of chain k of a lone run: same numbers."""
    idx = [index_of_step(400), index_of_step(6000)]
    kwargs = {"draws": 30, "burnin": 10, "seed": 3, "device": "cpu",
              "with_geometric_complexity": False}
    both = compute_trajectory(MODEL, checkpoints=idx, **kwargs).set_index("step")
    alone = compute_trajectory(MODEL, checkpoints=[idx[1]], **kwargs).set_index("step")
    np.testing.assert_allclose(both.loc[6000, "llc_mean"], alone.loc[6000, "llc_mean"], rtol=1e-4)
    # Each checkpoint's row is a Summary row: its health warnings come with the table.
    warned = both.attrs["warnings"]
    assert set(warned) == set(both["checkpoint"])
    for _, row in both.iterrows():
        low_ess = any(w.startswith("Effective sample size") for w in warned[row["checkpoint"]])
        assert low_ess == (row["ess"] < 100)


def test_out_of_range_checkpoint_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        compute_trajectory(MODEL, checkpoints=[999], draws=2, burnin=0)
