"""NaN / overflow in the middle of a run: the chains that hit it are reported, the rest kept.

* A FunctionTarget whose loss is NaN (or +inf) beyond a radius: about half of 16 chains
  wander past it at different steps of one estimate.
* A singular potential, log(1 + x²) + 1/(1 − x²)² + y², in a sweep whose large-ε setting
  overflows within a few steps while the small-ε setting stays healthy.

Each time: which chains diverged, with which settings and at which step, is reported;
the healthy chains' traces are complete and finite and λ̂ uses them alone; recorded through
:func:`lltools.storage.recording.record_stream`, the run is stored complete with the healthy traces
readable and the divergence in its per-chain table (and, for estimates, its warnings).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lltools.estimation import diagnostics, summary
from lltools.estimation import llc as estimators
from lltools.sampling.driver import last_item
from lltools.storage.index import RunStore
from lltools.storage.recording import record_stream
from lltools.targets.base import FunctionTarget
from lltools.targets.potentials import potential_target
from lltools.workflows.estimate import estimate_stream
from lltools.workflows.sweep import sweep_stream

RADIUS = 0.24  # ≈ 3.4 σ of the tempered posterior at nβ = 100: crossed by about half the chains
ESTIMATE = {"nbeta": 100.0, "gamma": 1.0, "epsilon": 1e-3, "chains": 16, "draws": 300, "burnin": 50,
            "seed": 0, "device": "cpu"}  # fmt: skip
SINGULAR = "log(1 + x**2) + 1/(1 - x**2)**2 + y**2"
SWEEP = {"epsilon": [1e-3, 0.05], "gamma": [1.0], "nbeta": [100.0], "chains": 4, "draws": 200, "burnin": 20,
         "seed": 0, "device": "cpu"}  # fmt: skip


def bad_past_radius(fill: float) -> FunctionTarget:
    """L(w) = ‖w‖² inside ‖w‖ < RADIUS, ``fill`` (NaN or +inf) outside."""

    def fn(w: torch.Tensor) -> torch.Tensor:
        r2 = (w**2).sum(dim=1)
        return torch.where(r2 < RADIUS**2, r2, torch.full_like(r2, fill))

    return FunctionTarget(fn, torch.zeros(2), name=f"{fill} past r={RADIUS}")


def check_divergence_bookkeeping(trace: Any) -> tuple[np.ndarray, np.ndarray]:
    """Diverged chains: finite before their step, NaN from it on; healthy chains finite throughout.

    Returns (diverged chain indices, their steps).
    """
    h = trace.cpu()
    loss = h.loss.numpy()
    steps = h.steps.numpy()
    at = h.diverged_at.numpy()
    assert steps.size == h.num_steps_total, "the run did not go to the end"
    diverged = np.flatnonzero(at >= 0)
    for c in range(h.num_chains):
        if at[c] < 0:
            assert np.isfinite(loss[c]).all(), f"healthy chain {c} has non-finite losses"
        else:
            assert 0 <= at[c] < h.num_steps_total
            assert np.isfinite(loss[c, steps < at[c]]).all(), f"chain {c} lost draws before step {at[c]}"
            assert np.isnan(loss[c, steps >= at[c]]).all(), f"chain {c} kept draws after diverging"
    return diverged, at[diverged]


# ----------------------------------------------------------------------------- estimate
@pytest.mark.parametrize("fill", [math.nan, math.inf], ids=["nan", "inf"])
def test_chains_that_leave_the_finite_region_are_reported_and_the_rest_kept(fill: float) -> None:
    target = bad_past_radius(fill)
    last = last_item(estimate_stream(target, report_every=50, **ESTIMATE))
    trace, result = last.trace, last.result

    diverged, steps = check_divergence_bookkeeping(trace)
    assert 0 < diverged.size < ESTIMATE["chains"], "premise: some but not all chains cross the radius"
    assert (steps > 0).all() and np.unique(steps).size > 1, "divergences happen mid-run, at different steps"
    assert result.diverged_chains == diverged.tolist()
    assert result.num_chains == ESTIMATE["chains"]

    # λ̂ is the mean over the healthy chains only, computed here from the raw draws.
    h = trace.cpu()
    healthy = h.diverged_at.numpy() < 0
    excess = h.draw_loss.numpy()[healthy] - h.loss_init.numpy()[healthy, None]
    expected = ESTIMATE["nbeta"] * excess.mean(axis=1).mean()
    assert math.isfinite(result.llc_mean)
    assert result.llc_mean == pytest.approx(expected, rel=1e-9)
    assert 0.5 < result.llc_mean < 1.5  # x² + y² at nβ = 100, γ = 1: T ≈ 0.995; truncation lowers it a little

    # Which chains, which settings, which steps.
    report = diagnostics.divergence_report(trace)
    assert report.chains.tolist() == diverged.tolist()
    assert report.steps.tolist() == steps.tolist()
    assert not report.all_diverged
    assert f"{diverged.size} of {ESTIMATE['chains']} chains diverged" in report.message
    assert "ε=0.001, γ=1, nβ=100" in report.message
    warning = next(w for w in result.warnings if "diverged" in w)
    assert f"{diverged.size} of {ESTIMATE['chains']}" in warning
    assert str(int(steps.min())) in warning and "excluded" in warning
    assert result.to_dict()["llc_mean"] is not None  # the JSON contract keeps the estimate


def test_recorded_estimate_is_saved_complete_with_healthy_traces(tmp_path: Path) -> None:
    target = bad_past_radius(math.nan)
    store = RunStore(tmp_path)
    recorder = record_stream(
        store,
        estimate_stream(target, report_every=25, **ESTIMATE),
        kind="estimate",
        settings=ESTIMATE,
        target={"kind": "custom", "name": target.name},
        flush_interval=0.0,  # flush every partial trace: divergences land in several chunks
    )
    items = list(recorder)
    trace = items[-1].trace
    result = recorder.result
    diverged, steps = check_divergence_bookkeeping(trace)
    assert 0 < diverged.size < ESTIMATE["chains"]

    run = store.load_run(recorder.run_id)
    assert run.status == "complete"
    assert run.summary is not None and run.summary["diverged_chains"] == diverged.tolist()
    assert run.summary["llc_mean"] == pytest.approx(result.llc_mean)
    assert len(run.manifest["chunks"]) > 1
    # The divergence is in the run's warnings, naming how many chains and from which step.
    div = [w for w in run.manifest["warnings"] if "diverged" in w]
    assert div and f"{diverged.size} of {ESTIMATE['chains']}" in div[0] and str(int(steps.min())) in div[0]
    # Per-chain table: exactly the diverged chains, at their steps.
    chains = run.chains.set_index("chain")
    assert (chains["diverged_at"].to_numpy() >= 0).nonzero()[0].tolist() == diverged.tolist()
    assert chains.loc[diverged, "diverged_at"].tolist() == steps.tolist()
    # Healthy chains: every step stored, finite, equal to the in-memory trace.
    host = trace.cpu()
    total_cols = host.steps.numel()
    for c in np.flatnonzero(host.diverged_at.numpy() < 0):
        rows = run.traces[run.traces["chain"] == c].sort_values("step")
        assert len(rows) == total_cols
        assert rows["step"].tolist() == host.steps.tolist()
        np.testing.assert_array_equal(rows["loss"].to_numpy(), host.loss[c].numpy())
    # Read back as a Trace, the stored run gives the same λ̂.
    again = estimators.llc(run.to_trace())
    assert float(again.mean) == pytest.approx(result.llc_mean, rel=1e-9)


# ----------------------------------------------------------------------------- sweep
def run_singular_sweep(tmp_path: Path) -> tuple[Any, Any, RunStore]:
    target = potential_target(SINGULAR)
    store = RunStore(tmp_path)
    recorder = record_stream(
        store,
        sweep_stream(target, report_every=40, **SWEEP),
        kind="sweep",
        settings=SWEEP,
        target={"kind": "potential", "spec": SINGULAR},
        flush_interval=0.0,
    )
    trace = last_item(recorder).trace
    return trace, recorder, store


def test_sweep_reports_the_diverging_setting_and_keeps_the_other(tmp_path: Path) -> None:
    trace, recorder, store = run_singular_sweep(tmp_path)
    diverged, steps = check_divergence_bookkeeping(trace)
    big_eps = SWEEP["chains"] + np.arange(SWEEP["chains"])  # setting 1 (ε = 0.05) holds chains 4..7
    assert diverged.tolist() == big_eps.tolist(), "exactly the large-ε chains diverge"
    assert (steps > 0).all()

    table = recorder.result.table
    assert table["n_diverged"].tolist() == [0, SWEEP["chains"]]
    assert math.isfinite(table.loc[0, "llc_mean"]) and math.isnan(table.loc[1, "llc_mean"])
    assert 0.5 < table.loc[0, "llc_mean"] < 1.5  # locally ≈ 2x² + y²: λ = 1

    report = diagnostics.divergence_report(trace)
    assert set(report.settings.tolist()) == {1}
    assert report.epsilon.tolist() == pytest.approx([0.05] * SWEEP["chains"])
    assert "ε=0.05, γ=1, nβ=100" in report.message
    warnings = summary.warnings_for(trace)
    assert any(w.startswith("Setting 1 (ε=0.05, γ=1, nβ=100): All chains diverged") for w in warnings)
    assert not any(w.startswith("Setting 0") and "diverged" in w for w in warnings)

    run = store.load_run(recorder.run_id)
    assert run.status == "complete"
    assert run.chains.set_index("chain").loc[big_eps, "diverged_at"].tolist() == steps.tolist()
    stored_table = run.summary["table"]
    assert [row["n_diverged"] for row in stored_table] == [0, SWEEP["chains"]]
    assert stored_table[1]["llc_mean"] is None and stored_table[0]["llc_mean"] is not None
    healthy = run.traces[run.traces["setting"] == 0]
    assert len(healthy) == SWEEP["chains"] * trace.steps.numel()
    assert np.isfinite(healthy["loss"].to_numpy()).all()


def test_recorded_sweep_lists_the_divergence_in_its_warnings(tmp_path: Path) -> None:
    _, recorder, store = run_singular_sweep(tmp_path)
    warnings = store.load_run(recorder.run_id).manifest.get("warnings", [])
    assert any("diverged" in w and "Setting 1" in w for w in warnings), warnings
