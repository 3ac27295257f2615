"""Trace selection helpers: host copies, settings, the chains of a setting, valid chains.

Every estimator and diagnostic works on a host float64 copy of a
:class:`~lltools.sampling.trace.Trace` and selects chains by hyperparameter setting
(``trace.setting_index``) and validity (``trace.diverged_at < 0``); these helpers say how.
"""

from __future__ import annotations

import numpy as np
import torch

from lltools.sampling.kernel import RMSPROP
from lltools.sampling.trace import Trace


def host(trace: Trace) -> Trace:
    """``trace.cpu()`` unless the trace already is a host float64 copy."""
    if trace.loss.device.type == "cpu" and trace.loss.dtype == torch.float64:
        return trace
    return trace.cpu()


def settings_of(trace: Trace) -> list[int]:
    """The distinct setting indices of a trace, sorted."""
    return sorted(int(s) for s in torch.unique(trace.setting_index.cpu()).tolist())


def setting_chains(trace: Trace, setting: int | None = None, *, pooled: bool = False) -> np.ndarray:
    """Global indices of the chains of one hyperparameter setting, shape (k,).

    ``setting=None`` selects every chain; unless ``pooled`` it then requires the trace to
    hold a single setting (pooling chains with different ε, γ, nβ would mix estimands).

    Raises
    ------
    ValueError
        For an unknown ``setting``, or ``setting=None`` on a sweep without ``pooled``.
    """
    index = trace.setting_index.cpu().numpy()
    if setting is None:
        if not pooled and len(np.unique(index)) > 1:
            raise ValueError(
                f"the trace holds {len(np.unique(index))} hyperparameter settings; "
                "pass setting=<index> (see trace.setting_index)"
            )
        return np.arange(index.shape[0])
    chains = np.flatnonzero(index == setting)
    if chains.size == 0:
        raise ValueError(f"no chains with setting {setting}; settings are {settings_of(trace)}")
    return chains


def valid_chains(trace: Trace) -> np.ndarray:
    """Boolean mask (C,): chains that never diverged (``diverged_at == -1``)."""
    return trace.diverged_at.cpu().numpy() < 0


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def params_label(epsilon: float, gamma: float, nbeta: float) -> str:
    """'ε=0.001, γ=1, nβ=100'."""
    return f"ε={_fmt(epsilon)}, γ={_fmt(gamma)}, nβ={_fmt(nbeta)}"


def setting_label(trace: Trace, chains: np.ndarray) -> str:
    """'ε=0.001, γ=1, nβ=100' for the (first) chain of a group, with ', RMSProp' when that
    chain uses the RMSProp-preconditioned sampler."""
    c = int(chains[0])
    p = trace.params
    label = params_label(float(p.epsilon[c]), float(p.gamma[c]), float(p.nbeta[c]))
    if p.sampler is not None and int(p.sampler[c]) == RMSPROP:
        label += ", RMSProp"
    return label


__all__ = ["host", "params_label", "setting_chains", "setting_label", "settings_of", "valid_chains"]
