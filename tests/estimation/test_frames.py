"""Tidy DataFrames from traces: shapes, column order, values against the estimators."""

from __future__ import annotations

import dataclasses
import math

import helpers
import numpy as np
import pytest
import torch

from lltools import FunctionTarget, make_params, run
from lltools.estimation.frames import CHAIN_COLUMNS, TRACE_COLUMNS, chain_frame, positions_frame, trace_frame
from lltools.estimation.llc import llc_per_chain, llc_running
from lltools.sampling.trace import Trace


def synthetic_trace(num_chains=3, num_cols=6, num_burnin=2, dim=2) -> Trace:
    """Loss[c, t] = c + t/10; chain 2 diverged at step 4; two settings; acceptance NaN on
    odd steps; positions w[c, t, i] = 100c + t + i/10."""
    loss = np.array([[c + t / 10 for t in range(num_cols)] for c in range(num_chains)])
    acc = np.full_like(loss, 0.9)
    acc[:, 1::2] = np.nan
    acc[0, 2] = 0.5
    pos = [[[100 * c + t + i / 10 for i in range(dim)] for t in range(num_cols)] for c in range(num_chains)]
    return helpers.synthetic_trace(
        loss, acceptance=acc, diverged_at=[-1, -1, 4], loss_init=[0.0, 1.0, 2.0],
        epsilon=[1e-3, 1e-3, 1e-2], gamma=[1.0, 1.0, 2.0], nbeta=[10.0, 10.0, 20.0],
        setting_index=[0, 0, 1], num_burnin=num_burnin, positions=pos,
    )


def test_trace_frame_layout_and_values() -> None:
    tr = synthetic_trace()
    df = trace_frame(tr)
    assert list(df.columns) == list(TRACE_COLUMNS)
    assert len(df) == 3 * 6
    assert df["chain"].tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert df["step"].tolist() == list(range(6)) * 3
    assert df["is_draw"].tolist() == [False, False, True, True, True, True] * 3
    assert df["setting"].tolist() == [0] * 12 + [1] * 6
    assert df["chain_in_setting"].tolist() == [0] * 6 + [1] * 6 + [0] * 6
    np.testing.assert_array_equal(df["loss"].to_numpy(), tr.loss.reshape(-1).numpy())
    np.testing.assert_array_equal(df["acceptance"].to_numpy(), tr.acceptance.reshape(-1).numpy())
    assert df.loc[df["chain"] == 2, "nbeta"].eq(20.0).all()
    assert df.loc[df["chain"] == 2, "epsilon"].eq(1e-2).all()
    # Running λ̂: NaN in burn-in, llc_running in the draws, NaN for the diverged chain.
    running = df["llc_running"].to_numpy().reshape(3, 6)
    assert np.isnan(running[:, :2]).all()
    np.testing.assert_allclose(running[:, 2:], llc_running(tr).numpy(), equal_nan=True)
    expected = 10.0 * (1 + np.cumsum([0.2, 0.3, 0.4, 0.5]) / [1, 2, 3, 4] - 1.0)
    np.testing.assert_allclose(running[1, 2:], expected)
    assert np.isnan(running[2]).all()
    assert df["diverged"].tolist() == [False] * 12 + [False] * 4 + [True] * 2
    assert df["is_draw"].dtype == bool and df["diverged"].dtype == bool


def test_trace_frame_without_burnin() -> None:
    tr = synthetic_trace()
    df = trace_frame(tr, include_burnin=False)
    assert len(df) == 3 * 4 and df["is_draw"].all()
    assert df["step"].tolist() == [2, 3, 4, 5] * 3
    assert not df["llc_running"].iloc[:8].isna().any()


def test_chain_frame() -> None:
    tr = synthetic_trace()
    df = chain_frame(tr)
    assert list(df.columns) == list(CHAIN_COLUMNS)
    assert df["chain"].tolist() == [0, 1, 2]
    assert df["setting"].tolist() == [0, 0, 1] and df["chain_in_setting"].tolist() == [0, 1, 0]
    np.testing.assert_allclose(df["llc"], llc_per_chain(tr).numpy(), equal_nan=True)
    np.testing.assert_allclose(df["llc"][:2], [10 * 0.35, 10 * 0.35])
    np.testing.assert_allclose(df["mean_loss"][:2], [0.35, 1.35])
    assert math.isnan(df["mean_loss"][2]) and math.isnan(df["llc"][2])
    # Acceptance: nanmean over draw columns 2..5 (odd ones NaN): chain 0 → (0.5 + 0.9)/2.
    np.testing.assert_allclose(df["acceptance"][:2], [0.7, 0.9])
    # The diverged chain keeps the acceptance of its draws before divergence (a clue to why).
    assert df["acceptance"][2] == pytest.approx(0.9)
    assert df["diverged_at"].tolist() == [-1, -1, 4]
    np.testing.assert_allclose(df["loss_init"], [0.0, 1.0, 2.0])


def test_positions_frame_d2_and_divergence() -> None:
    tr = synthetic_trace()
    df = positions_frame(tr)
    assert list(df.columns) == ["chain", "setting", "chain_in_setting", "step", "x", "y"]
    assert len(df) == 18
    row = df[(df["chain"] == 1) & (df["step"] == 3)].iloc[0]
    assert (row["x"], row["y"]) == (103.0, 103.1)
    dead = df[df["chain"] == 2]
    assert dead.loc[dead["step"] < 4, "x"].notna().all()
    assert dead.loc[dead["step"] >= 4, ["x", "y"]].isna().all().all()
    assert not torch.isnan(tr.positions).any()  # the trace itself is not modified


def test_positions_frame_general_d_and_missing() -> None:
    tr = synthetic_trace(dim=3)
    df = positions_frame(tr)
    assert list(df.columns)[4:] == ["w1", "w2", "w3"]
    tr = dataclasses.replace(tr, positions=None, position_steps=None)
    with pytest.raises(ValueError, match="no recorded positions"):
        positions_frame(tr)


def test_frames_from_a_real_run() -> None:
    """End to end on a float32 sweep of two settings: frames agree with the trace."""
    target = FunctionTarget(lambda w: (w**2).sum(1), torch.zeros(2))
    params = make_params([1e-3, 1e-3, 2e-3, 2e-3], 1.0, 50.0, 4)
    tr = run(target, params, num_draws=30, num_burnin=10, seed=0,
             chain_index=torch.tensor([0, 1, 0, 1]), setting_index=torch.tensor([0, 0, 1, 1]))
    df = trace_frame(tr)
    assert len(df) == 4 * 40 and df["is_draw"].sum() == 4 * 30
    assert df["chain_in_setting"].tolist()[::40] == [0, 1, 0, 1]
    chains = chain_frame(tr)
    np.testing.assert_allclose(chains["llc"], llc_per_chain(tr).numpy())
    pos = positions_frame(tr)
    assert len(pos) == 4 * tr.position_steps.numel()
    np.testing.assert_allclose(pos[["x", "y"]].to_numpy(), tr.positions.double().reshape(-1, 2).numpy())
