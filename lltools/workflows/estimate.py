"""The public entry points: ``estimate`` (one setting) and ``estimate_stream`` (live).

These are thin: validate settings, place the target on a device, run the batched sampler
(:mod:`lltools.sampling.driver`), then summarise the trace in one pass
(:func:`lltools.estimation.summary.summarize`): an :class:`EstimateResult` is the single row
of that summary plus the run's settings, trace and target description.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from lltools.base import memory
from lltools.base.devices import resolve_device, resolve_dtype
from lltools.estimation import frames
from lltools.estimation.summary import Summary, plain, summarize
from lltools.sampling.driver import last_item, run_chunks
from lltools.sampling.kernel import RMSPROP_DECAY, RMSPROP_DELTA, SAMPLER_NAMES, sampler_code
from lltools.sampling.sgld import make_params
from lltools.sampling.trace import Trace
from lltools.targets.base import Target, TargetError
from lltools.targets.networks import network_target
from lltools.theory.quadrature import TemperedExpectation
from lltools.theory.record import TheoryRecord, finite_nbeta_target, theory_for
from lltools.workflows.events import RunEvent

#: Hard ceilings that refuse absurd requests before anything is allocated.
MAX_CHAINS = 1 << 22
MAX_STEPS = 10_000_000
#: Host bytes per recorded value the summary needs after sampling: float64 host copies of the
#: loss and acceptance traces, the excess-loss draws and the rank normalisation's sorted copies.
SUMMARY_BYTES_PER_VALUE = 48


@dataclass
class SamplerSettings:
    """One SGLD setting, echoed in every result (primer §2 symbols)."""

    nbeta: float
    gamma: float
    epsilon: float
    chains: int
    draws: int
    burnin: int
    thinning: int = 1
    batch_size: int | None = None
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    sampler: str = "sgld"
    rmsprop_decay: float | None = None
    rmsprop_delta: float | None = None
    precision: str = "fp32"

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain values (RMSProp's α and δ only for the rmsprop sampler, the
        matrix-product precision only when it is not fp32)."""
        out = dict(self.__dict__)
        if self.precision == "fp32":
            out.pop("precision")
        if self.sampler != "rmsprop":
            out.pop("rmsprop_decay")
            out.pop("rmsprop_delta")
        return out


@dataclass
class EstimateResult:
    """λ̂ with its uncertainty, diagnostics and the raw traces: the one row of the run's
    :class:`~lltools.estimation.summary.Summary`, with the settings that produced it.

    Attributes
    ----------
    llc_mean, llc_std, llc_sem : float
        Mean over valid chains of λ̂_c = nβ(mean_t L_t − L(w*)), its spread across chains,
        and its ESS-based standard error (primer §2).
    rhat, ess, acceptance : float
        Split R-hat (NaN with < 2 valid chains) and bulk ESS of the excess-loss draws; mean
        MALA acceptance.
    diverged_chains : list of int
        Chains excluded from λ̂ because they diverged.
    warnings : list of str
        The target's own warnings, then the health warnings of the summary (what to change).
    summary : Summary
        The one-pass summary the numbers come from (one table row).
    """

    llc_mean: float
    llc_std: float
    llc_sem: float
    rhat: float
    ess: float
    acceptance: float
    diverged_chains: list[int]
    num_chains: int
    theory_llc: float | None
    warnings: list[str]
    settings: SamplerSettings
    trace: Trace
    target_info: dict[str, Any] = field(default_factory=dict)
    expected_llc: float | None = None
    expected_llc_error: float | None = None
    theory: TheoryRecord | None = None
    summary: Summary | None = field(default=None, repr=False)

    @classmethod
    def from_summary(
        cls,
        summary: Summary,
        *,
        trace: Trace,
        settings: SamplerSettings,
        target_warnings: list[str] | None = None,
        theory_llc: float | None = None,
        target_info: dict[str, Any] | None = None,
        expected_llc: float | None = None,
        expected_llc_error: float | None = None,
        theory: TheoryRecord | None = None,
    ) -> EstimateResult:
        """The result of a single-setting summary (its one row)."""
        row = summary.row()
        return cls(
            llc_mean=float(summary.table["llc_mean"].iloc[0]),
            llc_std=float(summary.table["llc_std"].iloc[0]),
            llc_sem=float(summary.table["llc_sem"].iloc[0]),
            rhat=float(summary.table["rhat"].iloc[0]),
            ess=float(summary.table["ess"].iloc[0]),
            acceptance=float(summary.table["acceptance"].iloc[0]),
            diverged_chains=[int(c) for c in summary.diverged_chains],
            num_chains=summary.num_chains,
            theory_llc=theory_llc,
            warnings=list(target_warnings or []) + row["warnings"],
            settings=settings,
            trace=trace,
            target_info=dict(target_info or {}),
            expected_llc=expected_llc,
            expected_llc_error=expected_llc_error,
            theory=theory,
            summary=summary,
        )

    @property
    def chains(self) -> pd.DataFrame:
        """One row per chain (λ̂_c, mean loss, acceptance, divergence)."""
        return frames.chain_frame(self.trace)

    @property
    def traces(self) -> pd.DataFrame:
        """Tidy per chain×step frame: loss, running λ̂, acceptance."""
        return frames.trace_frame(self.trace)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` contract (and the stored summary of a run): plain JSON types, NaN -> None."""
        return {
            "llc_mean": plain(self.llc_mean),
            "llc_std": plain(self.llc_std),
            "llc_sem": plain(self.llc_sem),
            "rhat": plain(self.rhat),
            "ess": plain(self.ess),
            "acceptance": plain(self.acceptance),
            "diverged_chains": [int(c) for c in self.diverged_chains],
            "num_chains": int(self.num_chains),
            "theory_llc": plain(self.theory_llc),
            "expected_llc": plain(self.expected_llc),
            "expected_llc_error": plain(self.expected_llc_error),
            "theory": self.theory.to_dict() if self.theory is not None else None,
            "warnings": list(self.warnings),
            "step": str(self.trace.meta.get("step", "eager")),
            "settings": self.settings.as_dict(),
            "target": self.target_info,
        }


def _validate_counts(chains: int, draws: int, burnin: int, thinning: int) -> None:
    if chains < 1 or chains > MAX_CHAINS:
        raise ValueError(f"chains must be between 1 and {MAX_CHAINS}, got {chains}")
    if draws < 2:
        raise ValueError(f"draws must be at least 2, got {draws}")
    if burnin < 0:
        raise ValueError(f"burnin cannot be negative, got {burnin}")
    if thinning < 1:
        raise ValueError(f"thinning must be at least 1, got {thinning}")
    if burnin + draws * thinning > MAX_STEPS:
        raise ValueError(
            f"burnin + draws × thinning = {burnin + draws * thinning:,} steps exceeds the limit of "
            f"{MAX_STEPS:,}; use fewer draws or burn-in steps, or less thinning"
        )


def as_target(
    target: Target | nn.Module,
    data: Any = None,
    *,
    loss: Any = None,
    evaluate: Any = None,
    batch_size: int | None = None,
) -> Target:
    """``target`` itself, or a model with its data as a network target.

    Parameters
    ----------
    target : Target or nn.Module
    data : tensors (x, y, ...), dict of tensors, Dataset or DataLoader
        Required with a module (:mod:`lltools.targets.batches`).
    loss : callable or {"mse", "cross_entropy"}, optional
        ``loss(outputs, batch) -> per-sample losses (m,)``; default by the target's dtype.
    evaluate : callable, optional
        ``evaluate(model, batch) -> per-sample losses (m,)``.
    batch_size : int, optional
        Default: a DataLoader's batch size.

    Raises
    ------
    TargetError
        A module without data, data/loss/evaluate given with a Target, or anything else.
    """
    if isinstance(target, Target):
        if data is not None or loss is not None or evaluate is not None:
            raise TargetError("data, loss and evaluate apply to an nn.Module, not to a Target")
        return target
    if isinstance(target, nn.Module):
        if data is None:
            raise TargetError("give the model's data: estimate(model, data, ...) with tensors (x, y), "
                              "a dict of tensors, a Dataset or a DataLoader")
        return network_target(target, data, loss=loss, evaluate=evaluate, batch_size=batch_size)
    raise TargetError(f"expected a Target or a torch.nn.Module, got {type(target).__name__}")


def prepare_target(
    target: Target,
    *,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    precision: str = "fp32",
) -> Target:
    """Place ``target`` on the resolved device/dtype and apply a minibatch size and a
    matrix-product precision ("bf16": networks only, opt-in mixed precision)."""
    with warnings.catch_warnings():  # torch warns about some names (e.g. 'mkldnn') we then refuse
        warnings.simplefilter("ignore", UserWarning)
        dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    if target.device != dev or target.dtype != dt:
        target = target.to(dev, dt)
    if batch_size is not None:
        if not target.has_data:
            raise ValueError("batch_size applies only to targets with data (networks)")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if target.n is not None and batch_size > target.n:
            raise ValueError(f"batch_size {int(batch_size):,} exceeds the {target.n:,} training samples; "
                             "use at most n (or leave it out for full batch)")
        target = copy.copy(target)
        target.batch_size = int(batch_size)
    if precision != target.precision:
        target = target.with_precision(precision)
    return target


def check_memory(target: Target, chains: int, draws: int, burnin: int, thinning: int) -> int:
    """Refuse a run that cannot fit even stepping one chain at a time, before anything of size
    ``chains`` or ``steps`` is allocated; else return the chain batch one step can take
    (:func:`lltools.base.memory.chain_batch_size`; ``chains`` when everything fits).  A lower bound
    of :func:`lltools.sampling.driver.run_chunks`' estimate (no positions), so it never refuses a run that
    check would accept."""
    recorded = burnin // thinning + draws
    itemsize = torch.empty((), dtype=target.dtype).element_size()
    batch = memory.chain_batch_size(
        chains, target.dim, recorded, itemsize=itemsize, device=target.device,
        extra_per_chain=target.bytes_per_chain,
    )
    # The summary works on host float64 copies of the whole trace: refuse a run whose traces
    # would fit on the device but whose summary would not fit in host memory afterwards.
    memory.check_fits(
        chains * recorded * SUMMARY_BYTES_PER_VALUE, "cpu",
        what=f"summarising {chains} chains × {recorded} recorded steps",
        suggestion="use fewer chains or draws, or more thinning.",
    )
    return batch


def resolve_nbeta(target: Target, nbeta: float | None) -> float:
    """nβ as given, or the default n/log n for targets with a dataset (primer §2)."""
    if nbeta is not None:
        return float(nbeta)
    default = target.default_nbeta
    if default is None:
        raise ValueError("nbeta is required for targets without a dataset size n")
    return default


def estimate_stream(
    target: Target | nn.Module,
    data: Any = None,
    *,
    loss: Any = None,
    evaluate: Any = None,
    nbeta: float | None = None,
    gamma: float = 1.0,
    epsilon: float = 1e-3,
    chains: int = 4,
    draws: int = 1000,
    burnin: int = 200,
    thinning: int = 1,
    batch_size: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    report_every: int | None = None,
    sampler: str = "sgld",
    rmsprop_decay: float = RMSPROP_DECAY,
    rmsprop_delta: float = RMSPROP_DELTA,
    precision: str = "fp32",
    **run_kwargs: Any,
) -> Iterator[RunEvent]:
    """Yield a :class:`~lltools.workflows.events.RunEvent` every ``report_every`` steps.

    Each event carries the partial trace, the resolved :class:`SamplerSettings` and the
    placed target; the last one also the :class:`EstimateResult` (``event.result``).
    Keyword arguments are those of :func:`estimate`.
    """
    _validate_counts(chains, draws, burnin, thinning)
    sampler = SAMPLER_NAMES[sampler_code(sampler)]
    target = as_target(target, data, loss=loss, evaluate=evaluate, batch_size=batch_size)
    placed = prepare_target(target, batch_size=batch_size, device=device, dtype=dtype, precision=precision)
    check_memory(placed, chains, draws, burnin, thinning)
    nb = resolve_nbeta(placed, nbeta)
    params = make_params(epsilon, gamma, nb, chains, device=placed.device, dtype=placed.dtype,
                         sampler=sampler, rmsprop_decay=rmsprop_decay, rmsprop_delta=rmsprop_delta)
    settings = SamplerSettings(
        nbeta=nb,
        gamma=float(gamma),
        epsilon=float(epsilon),
        chains=int(chains),
        draws=int(draws),
        burnin=int(burnin),
        thinning=int(thinning),
        batch_size=placed.batch_size if placed.has_data else None,
        seed=int(seed),
        device=str(placed.device),
        dtype=str(placed.dtype).removeprefix("torch."),
        sampler=sampler,
        rmsprop_decay=float(rmsprop_decay) if sampler == "rmsprop" else None,
        rmsprop_delta=float(rmsprop_delta) if sampler == "rmsprop" else None,
        precision=placed.precision,
    )
    for trace in run_chunks(
        placed,
        params,
        num_draws=draws,
        num_burnin=burnin,
        thinning=thinning,
        seed=seed,
        report_every=report_every,
        **run_kwargs,
    ):
        result = estimate_result(trace, placed, settings) if trace.complete else None
        yield RunEvent.of_trace("estimate", trace, settings, placed, result)


def expected_llc(target: Target, nbeta: float, gamma: float) -> TemperedExpectation | None:
    """The finite-nβ target T = nβ·E_p[L − L(w*)] for 2-D potentials, with its error estimate.

    λ is the nβ → ∞ limit of T; at finite nβ a correct sampler reproduces T (up to its
    step-size bias), not λ (primer §4).  Adaptive cubature
    (:func:`lltools.theory.record.finite_nbeta_target`): ``.exact`` when the error
    estimate is below 1e-6 relative, else approximate with ``.error``.  ``None`` where no
    quadrature applies (not 2-D, a dataset, w* not a minimum, an improper density).
    """
    expression = getattr(target, "expression", None)
    if expression is None or target.dim != 2 or target.has_data:
        return None
    try:
        return finite_nbeta_target(expression, nbeta, gamma)
    except (ValueError, ArithmeticError, RuntimeError):
        return None


def estimate_result(trace: Trace, target: Target, settings: SamplerSettings) -> EstimateResult:
    """Summarise a (finished or stopped) single-setting trace into an :class:`EstimateResult`.

    The trace is copied to the host once; :func:`lltools.estimation.summary.summarize`
    makes the one pass over it.
    """
    host = trace.cpu()
    record = theory_for(target)
    expected = expected_llc(target, settings.nbeta, settings.gamma)
    return EstimateResult.from_summary(
        summarize(host),
        trace=host,
        settings=settings,
        target_warnings=list(target.warnings),
        theory_llc=record.llc,
        target_info=target.describe(),
        expected_llc=None if expected is None else expected.value,
        expected_llc_error=None if expected is None else expected.error,
        theory=record,
    )


def estimate(target: Target | nn.Module, data: Any = None, **kwargs: Any) -> EstimateResult:
    """Estimate the LLC λ̂ of ``target`` at its centre w* with SGLD.

    λ̂ = nβ·(E_p[L] − L(w*)) over the localised tempered posterior
    p(w) ∝ exp(−nβ L(w) − (γ/2)‖w − w*‖²) (primer §2), averaged over chains.

    Parameters
    ----------
    target : Target or nn.Module
        A target, or any module: then w* is its current parameters (buffers are kept,
        eval mode) and ``data`` is required.
    data : optional
        With a module: tensors ``(x, y, ...)``, a dict of tensors, a Dataset or a
        DataLoader (:mod:`lltools.targets.batches`; an indexable loader's dataset and batch
        size are used, so the same seed gives the same λ̂ as its tensors).
    loss : callable or {"mse", "cross_entropy"}, optional
        With a module: ``loss(outputs, batch) -> per-sample losses (m,)``; default ½‖y − f(x)‖²
        for floating targets, cross-entropy for integer labels.
    evaluate : callable, optional
        With a module: ``evaluate(model, batch) -> per-sample losses (m,)`` instead of loss.
    nbeta : float, optional
        Effective inverse temperature nβ; default n/log n when the target has data.
    gamma, epsilon : float
        Localisation strength γ and step size ε.
    sampler : str
        "sgld" (default) or "rmsprop" (RMSProp-preconditioned SGLD, primer §7), with its
        ``rmsprop_decay`` α (0.99) and ``rmsprop_delta`` δ (0.1).
    chains, draws, burnin, thinning : int
    batch_size : int, optional
        Minibatch size m for network targets.
    seed : int
    device, dtype : optional
        ``None`` = CUDA if available else CPU; float32 default.

    Returns
    -------
    EstimateResult
    """
    return last_item(estimate_stream(target, data, **kwargs)).result
