"""A stored run as an ArviZ-style xarray ``DataTree`` (written as netCDF-4).

ArviZ 1.x works on ``xarray.DataTree`` objects whose groups follow the InferenceData
conventions, so ``arviz_base.convert_to_datatree("run.nc")`` (or ``xarray.open_datatree``)
opens an export directly and every ArviZ function applies (``dt.azstats.ess()``, ``rhat``,
plots).  Layout of :func:`run_datatree`:

``/`` attributes
    ``inference_library = "lltools"`` and its version, ``run_id``, ``status``, ``kind``,
    ``created_at``; ``settings``, ``target``, ``versions`` and ``summary`` as JSON strings
    (netCDF attributes are scalars).
``/posterior`` — dims ``(chain, draw, setting)``
    ``loss``: the draw losses L_B(w_t) after burn-in; ``llc``: each chain's running
    λ̂_c(t) = nβ_c (mean_{s≤t} L_{c,s} − L(w*_c)) (NaN for a diverged chain).
``/warmup_posterior`` — dims ``(chain, warmup_draw, setting)``
    ``loss`` during burn-in (ArviZ's name for discarded draws).
``/sample_stats`` — dims ``(chain, draw, setting)``
    ``acceptance`` (the MALA acceptance probability of each draw's proposal, NaN where not
    computed) and ``diverging`` (True from the step a chain diverged on).
``/chains`` — dims ``(chain, setting)``
    ``loss_init`` L(w*), ``diverged_at`` (−1 if never) and ``chain_id`` (the run's chain
    number).

``chain`` is the chain's index *within its setting*, so ArviZ diagnostics (R-hat, ESS)
are computed per setting over that setting's chains, never across different settings;
``setting`` carries the per-setting hyperparameters (``epsilon``, ``gamma``, ``nbeta``
and any other per-chain choice the run stored) as coordinates.  Settings with fewer chains
than the largest are padded with NaN.  ``draw`` counts draws from 0; the coordinate
``step`` along it gives the SGLD step of each draw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lltools.estimation.llc import llc_running
from lltools.storage.files import RunStoreError, jsonable
from lltools.storage.reader import StoredRun

#: Per-chain columns of ``chains.parquet`` that are not per-setting choices.
_CHAIN_ONLY = ("chain", "setting", "chain_in_setting", "loss_init", "diverged_at")
#: The netCDF engine (h5netcdf writes netCDF-4 without the C library).
ENGINE = "h5netcdf"


def _grid(values: np.ndarray, chains: pd.DataFrame, num_chains: int, num_settings: int) -> np.ndarray:
    """Scatter rows ``values[i, ...]`` of run chain i to ``out[chain_in_setting, ..., setting]``."""
    shape = (num_chains, *values.shape[1:], num_settings)
    fill: Any = False if values.dtype == bool else (-1 if values.dtype.kind == "i" else np.nan)
    out = np.full(shape, fill, dtype=values.dtype if values.dtype.kind in "bi" else np.float64)
    within = chains["chain_in_setting"].to_numpy()
    setting = chains["setting"].to_numpy()
    out[within, ..., setting] = values
    return out


def _setting_coords(chains: pd.DataFrame, num_settings: int) -> dict[str, tuple[str, np.ndarray]]:
    """Per-setting hyperparameters: each column of ``chains`` constant within a setting."""
    first = chains.groupby("setting", sort=True).first().reindex(range(num_settings))
    coords: dict[str, tuple[str, np.ndarray]] = {}
    for column in chains.columns:
        if column in _CHAIN_ONLY:
            continue
        if chains.groupby("setting")[column].nunique(dropna=False).max() == 1:
            coords[column] = ("setting", first[column].to_numpy())
    return coords


def run_datatree(run: StoredRun) -> xr.DataTree:
    """The run as an ArviZ-convention :class:`xarray.DataTree` (see the module docstring).

    Raises
    ------
    RunStoreError
        For a damaged run or one with no flushed trace.
    """
    trace = run.to_trace()
    chains = run.chains.sort_values("chain").reset_index(drop=True)
    num_settings = int(chains["setting"].max()) + 1
    num_chains = int(chains["chain_in_setting"].max()) + 1
    loss = trace.loss.numpy()
    steps = trace.steps.numpy()
    first = trace.first_draw_column
    acceptance = trace.acceptance.numpy()[:, first:]
    diverged_at = trace.diverged_at.numpy()
    diverging = (diverged_at[:, None] >= 0) & (steps[None, first:] >= diverged_at[:, None])

    def grid(values: np.ndarray) -> np.ndarray:
        return _grid(values, chains, num_chains, num_settings)

    setting_coords = _setting_coords(chains, num_settings)
    base = {"chain": np.arange(num_chains), "setting": np.arange(num_settings), **setting_coords}
    draws = {**base, "draw": np.arange(loss.shape[1] - first), "step": ("draw", steps[first:])}
    warm = {**base, "warmup_draw": np.arange(first), "warmup_step": ("warmup_draw", steps[:first])}
    dims = ("chain", "draw", "setting")
    posterior = xr.Dataset(
        {"loss": (dims, grid(loss[:, first:])), "llc": (dims, grid(llc_running(trace).numpy()))},
        coords=draws,
    )
    warmup = xr.Dataset({"loss": (("chain", "warmup_draw", "setting"), grid(loss[:, :first]))}, coords=warm)
    stats = xr.Dataset(
        {"acceptance": (dims, grid(acceptance)), "diverging": (dims, grid(diverging))}, coords=draws,
    )
    per_chain = xr.Dataset(
        {
            "loss_init": (("chain", "setting"), grid(chains["loss_init"].to_numpy(np.float64))),
            "diverged_at": (("chain", "setting"), grid(chains["diverged_at"].to_numpy(np.int64))),
            "chain_id": (("chain", "setting"), grid(chains["chain"].to_numpy(np.int64))),
        },
        coords=base,
    )
    manifest = run.manifest
    attrs = {
        "inference_library": "lltools",
        "inference_library_version": str(manifest.get("versions", {}).get("lltools", "unknown")),
        "run_id": run.id,
        "status": run.status,
        "kind": run.kind,
        "created_at": str(manifest.get("created", "")),
        "num_burnin": int(trace.num_burnin),
        **{
            key: json.dumps(jsonable(manifest.get(key)), allow_nan=False)
            for key in ("settings", "target", "versions", "summary")
        },
    }
    tree = xr.DataTree.from_dict(
        {"posterior": posterior, "warmup_posterior": warmup, "sample_stats": stats, "chains": per_chain}
    )
    tree.attrs = attrs
    return tree


def write_netcdf(run: StoredRun, out: Path) -> Path:
    """Write :func:`run_datatree` of ``run`` to ``out`` (netCDF-4) and return ``out``."""
    if run.damage:
        raise RunStoreError(f"run {run.id} is damaged, not exported: {run.damage[0]}")
    tree = run_datatree(run)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tree.to_netcdf(tmp, engine=ENGINE)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
