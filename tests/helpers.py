"""Shared test helpers: ONE builder of synthetic traces (the tests' hand-made Traces)."""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys
from typing import Any

import numpy as np
import torch

from lltools.cli.main import main
from lltools.sampling.sgld import SGLDParams
from lltools.sampling.trace import Trace


def synthetic_trace(
    loss: Any,
    *,
    nbeta: Any = 100.0,
    epsilon: Any = 1e-3,
    gamma: Any = 1.0,
    loss_init: Any = 0.0,
    acceptance: Any = 0.95,
    diverged_at: Any = None,
    setting_index: Any = None,
    chain_index: Any = None,
    num_burnin: int = 0,
    positions: Any = None,
    filled: int | None = None,
    complete: bool | None = None,
    dtype: torch.dtype = torch.float64,
) -> Trace:
    """A :class:`Trace` from a ``(C, T)`` loss array, one column per step 0..T-1.

    Parameters
    ----------
    loss : array-like, shape (C, T)
    nbeta, epsilon, gamma, loss_init : scalar or array-like of shape (C,)
    acceptance : scalar or array-like of shape (C, T)
    diverged_at : scalar or array-like of shape (C,), optional
        Step of divergence per chain (-1: never); losses and acceptances at and after it
        become NaN, as the kernel leaves them.
    setting_index : scalar or array-like of shape (C,), optional
        Setting of each chain (default all 0); ``chain_index`` defaults to the chain's
        position within its setting.
    num_burnin : int
        The first ``num_burnin`` columns are burn-in.
    positions : array-like, shape (C, T, d), optional
        Positions recorded at every step.
    filled : int, optional
        Keep only the first ``filled`` columns (views, as a partial trace during a run);
        ``complete`` then defaults to ``filled == T`` and ``meta["steps_done"]`` is ``filled``.
    dtype : torch.dtype
        Of the float tensors.
    """
    loss = torch.as_tensor(np.array(loss, dtype=np.float64)).to(dtype)
    num_chains, num_cols = loss.shape

    def per_chain(value: Any, kind: torch.dtype = dtype) -> torch.Tensor:
        return torch.as_tensor(np.broadcast_to(np.asarray(value), (num_chains,)).copy()).to(kind)

    steps = torch.arange(num_cols)
    div = per_chain(-1 if diverged_at is None else diverged_at, torch.int64)
    dead = (div[:, None] >= 0) & (steps[None, :] >= div[:, None])
    loss = torch.where(dead, math.nan, loss)
    acc = np.broadcast_to(np.asarray(acceptance, dtype=np.float64), (num_chains, num_cols))
    acc = torch.as_tensor(acc.copy())
    acc = torch.where(dead, math.nan, acc.to(dtype))
    settings = per_chain(0 if setting_index is None else setting_index, torch.int64)
    if chain_index is None:
        chains = torch.zeros(num_chains, dtype=torch.int64)
        for s in torch.unique(settings):
            members = settings == s
            chains[members] = torch.arange(int(members.sum()))
    else:
        chains = per_chain(chain_index, torch.int64)
    pos = None if positions is None else torch.as_tensor(np.asarray(positions, dtype=np.float64)).to(dtype)
    cols = num_cols if filled is None else int(filled)
    done = cols == num_cols if complete is None else complete
    return Trace(
        loss=loss[:, :cols],
        acceptance=acc[:, :cols],
        steps=steps[:cols],
        loss_init=per_chain(loss_init),
        diverged_at=div,
        params=SGLDParams(per_chain(epsilon), per_chain(gamma), per_chain(nbeta)),
        chain_index=chains,
        setting_index=settings,
        num_burnin=num_burnin,
        num_steps_total=num_cols,
        positions=None if pos is None else pos[:, :cols],
        position_steps=None if pos is None else steps[:cols].clone(),
        complete=done,
        meta={"steps_done": cols},
    )


def gamma_draws_trace(num_chains: int = 8, num_draws: int = 1000, nbeta: float = 10.0, seed: int = 0,
                      **kwargs: Any) -> Trace:
    """iid draws with nβ(L − L*) ~ Gamma(1, 1): λ̂ = 1 in expectation, a healthy trace."""
    gen = np.random.default_rng(seed)
    loss = gen.gamma(1.0, 1.0, size=(num_chains, num_draws)) / nbeta
    return synthetic_trace(loss, nbeta=nbeta, **kwargs)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``lltools`` in-process through its console entry point ``main()``."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["lltools", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
