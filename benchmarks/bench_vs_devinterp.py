"""devinterp vs lltools on the same target, data, batch size, ε, γ, nβ, chains and draws.

Both run in this one process, one after the other: devinterp first, then lltools: the step
it picks by default (``fused=None``; on the MLP cases timed first, *with* its compile when it
compiles), the eager step, and the compiled step ``fused=True`` (compile not counted).
For each case the script prints each one's chain-steps/s, the ratio, both λ̂ ± SEM and whether they agree
(|z| = |λ̂_a − λ̂_b| / √(SEM_a² + SEM_b²) < 3 → AGREE): a fast wrong answer does not count.

Cases
-----
- ``mlp8`` / ``mlp64``: a 10-96-96-1 ReLU MLP (10 465 parameters) trained on synthetic
  regression data (n = 1024, ½‖y − f‖² loss, the lltools "mse"), batch 64, nβ = n/log n
  passed explicitly to both, at 8 and 64 chains.
- ``potential``: x² + y² — 10 chains through devinterp vs 65 536 chains through lltools.

Samplers (``--samplers sgld rmsprop``; default ``sgld``)
--------------------------------------------------------
- ``sgld``: plain SGLD on both sides.
- ``rmsprop`` (MLP cases): lltools' RMSProp-preconditioned SGLD (``sampler="rmsprop"``)
  against devinterp 1.x's ``SGMCMC.rmsprop_sgld``.  lltools accumulates V from ∇(nβ·L_B),
  devinterp from ∇L_B, so the *same* sampler is lltools (ε, δ) = devinterp (lr = ε/nβ,
  eps = δ/nβ) with the same α (:mod:`lltools.sampling.kernel`); that is what is run.

How devinterp is driven (read from its installed source)
--------------------------------------------------------
- devinterp 2.x: ``devinterp.slt.sampling.sample(model, dataset, observables={}, lr=ε,
  n_beta=nβ, localization=γ, num_chains, num_draws, num_burnin_steps, batch_size,
  loss_fn=...)``.  Its API is language-model shaped: a dataset of ``{"input_ids": ...}``
  rows and a ``loss_fn(model, input_ids) -> (batch, seq−1)`` per-token loss.  The rows here
  are ``[i, 0]`` (sample index i), and ``loss_fn`` looks the samples up and returns
  ½‖y_i − f(x_i)‖² as a (batch, 1) "per-token" loss; for the potential ``loss_fn`` returns
  U(w) of the model's single 2-vector parameter.  Its ``init_loss`` is the mean over 32
  shuffled batches — with n = 1024 and batch 64 exactly the full-data loss.  λ̂ per chain is
  taken from its stored draws after burn-in (its own ``compute_llc`` also averages the
  burn-in steps): nβ·(mean draw loss − init_loss).
- devinterp 1.x: ``estimate_learning_coeff_with_summary(model, loader, evaluate=...,
  sampling_method=SGLD, optimizer_kwargs={lr, localization, nbeta}, num_chains, num_draws,
  num_burnin_steps, init_loss=L_n(w*))`` (``init_loss`` is passed: its default averages
  only ``num_chains`` batches).  Its ``evaluate(model, batch)`` returns the scalar loss.
- SEM: across-chain standard error std/√C for both (the same estimator on both sides);
  lltools' own ESS-based SEM is printed too.

Use ``--devinterp-path DIR`` to import a devinterp installed elsewhere, e.g. 1.3.2 with
``pip install --no-deps --target .venv/extras/devinterp-1.3.2 devinterp==1.3.2``.

Run:  python benchmarks/bench_vs_devinterp.py [--quick] [--threads N] [--cases mlp8 mlp64 potential]
"""

from __future__ import annotations

import copy
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import torch
from common import (
    base_parser,
    mlp,
    print_header,
    print_table,
    setup_threads,
    synthetic_regression,
    timed,
    train_mlp,
    write_csv,
)
from torch import nn

from lltools.estimation.llc import llc_per_chain
from lltools.targets.networks import NetworkTarget
from lltools.targets.potentials import potential_target
from lltools.workflows.estimate import estimate

N, BATCH, SIZES = 1024, 64, (10, 96, 96, 1)
MLP_SETTING = {"epsilon": 1e-4, "gamma": 100.0}
#: RMSProp-SGLD on the MLP: ε (lltools' scale), α, δ.
RMS_SETTING = {"epsilon": 1e-3, "decay": 0.99, "delta": 0.1}
POT_SETTING = {"epsilon": 1e-3, "gamma": 1.0, "nbeta": 100.0}
POT_DI_CHAINS, POT_LL_CHAINS = 10, 65_536
Z_AGREE = 3.0
#: The device both libraries sample on (``--device``; the data and model move there).
DEVICE = "cpu"


# ---------------------------------------------------------------------------- helpers
def sem(per_chain: np.ndarray) -> float:
    per_chain = per_chain[np.isfinite(per_chain)]
    return float(per_chain.std(ddof=1) / math.sqrt(per_chain.size)) if per_chain.size > 1 else float("nan")


def z_score(a: float, sa: float, b: float, sb: float) -> float:
    return (a - b) / math.sqrt(sa**2 + sb**2) if (sa > 0 or sb > 0) else float("inf")


class IndexRows(torch.utils.data.Dataset):
    """``{"input_ids": [i, 0]}`` rows: devinterp 2.x's language-model-shaped data for a
    regression/potential problem (the loss function looks sample i up)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.tensor([i, 0])}


class Point(nn.Module):
    """A model that is just w ∈ R², for a 2-D potential."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))


def quadratic(w: torch.Tensor) -> torch.Tensor:
    return (w**2).sum()


def mse_per_sample(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((model(x) - y) ** 2).sum(dim=1)


# ---------------------------------------------------------------------------- devinterp
def run_devinterp(
    version: str, model: nn.Module, *, kind: str, x: torch.Tensor | None, y: torch.Tensor | None,
    init_loss: float, chains: int, draws: int, burnin: int, epsilon: float, gamma: float, nbeta: float,
    seed: int, sampler: str = "sgld",
) -> np.ndarray:
    """Per-chain λ̂ from devinterp (draws after burn-in, nβ·(mean loss − init_loss))."""
    major = int(version.split(".")[0]) if version[:1].isdigit() else 2
    model = copy.deepcopy(model).to(DEVICE)
    x = None if x is None else x.to(DEVICE)
    y = None if y is None else y.to(DEVICE)
    if major >= 2:
        if sampler != "sgld":
            raise NotImplementedError("the rmsprop comparison drives devinterp 1.x")
        return _devinterp_2(model, kind=kind, x=x, y=y, chains=chains, draws=draws, burnin=burnin,
                            epsilon=epsilon, gamma=gamma, nbeta=nbeta, seed=seed)
    return _devinterp_1(model, kind=kind, x=x, y=y, init_loss=init_loss, chains=chains, draws=draws,
                        burnin=burnin, epsilon=epsilon, gamma=gamma, nbeta=nbeta, seed=seed, sampler=sampler)


def _devinterp_2(model: nn.Module, *, kind: str, x: Any, y: Any, chains: int, draws: int, burnin: int,
                 epsilon: float, gamma: float, nbeta: float, seed: int) -> np.ndarray:
    from devinterp.slt.sampling import sample

    if kind == "mlp":
        def loss_fn(m: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
            idx = input_ids[:, 0]
            return mse_per_sample(m, x[idx], y[idx])[:, None]

        dataset, batch = IndexRows(x.shape[0]), BATCH
    else:
        def loss_fn(m: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
            return quadratic(m.w).expand(input_ids.shape[0], 1)

        dataset, batch = IndexRows(1), 1
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = sample(model, dataset, {}, lr=epsilon, n_beta=nbeta, localization=gamma,
                      num_chains=chains, num_draws=draws, num_burnin_steps=burnin, batch_size=batch,
                      init_seed=seed, device=DEVICE, loss_fn=loss_fn,
                      output_path=Path(tmp) / "samples.zarr")
        ds = tree.dataset
        mean_loss = ds.sampling_loss.mean(dim=["draw", "batch", "token_pos"]).values.astype(np.float64)
        init = float(ds.init_loss.values.astype(np.float64).mean())
    return nbeta * (mean_loss - init)


def _devinterp_1(model: nn.Module, *, kind: str, x: Any, y: Any, init_loss: float, chains: int, draws: int,
                 burnin: int, epsilon: float, gamma: float, nbeta: float, seed: int,
                 sampler: str = "sgld") -> np.ndarray:
    from devinterp.optim.sgld import SGLD
    from devinterp.slt.sampler import estimate_learning_coeff_with_summary

    method: Any = SGLD
    optimizer_kwargs = {"lr": epsilon, "localization": gamma, "nbeta": nbeta}
    if sampler == "rmsprop":
        from devinterp.optim.sgmcmc import SGMCMC

        # The same sampler as lltools' (ε, δ): lr = ε/nβ, eps = δ/nβ (module docstring).
        method = SGMCMC.rmsprop_sgld
        optimizer_kwargs = {"lr": epsilon / nbeta, "localization": gamma, "nbeta": nbeta,
                            "alpha": RMS_SETTING["decay"], "eps": RMS_SETTING["delta"] / nbeta}

    if kind == "mlp":
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH,
                                             shuffle=True)

        def evaluate(m: nn.Module, data: Any) -> torch.Tensor:
            return mse_per_sample(m, data[0], data[1]).mean()
    else:
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(1)), batch_size=1)

        def evaluate(m: nn.Module, data: Any) -> torch.Tensor:
            return quadratic(m.w)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = estimate_learning_coeff_with_summary(
            model, loader, evaluate=evaluate, sampling_method=method,
            optimizer_kwargs=optimizer_kwargs,
            num_chains=chains, num_draws=draws, num_burnin_steps=burnin, init_loss=init_loss or None,
            device=torch.device(DEVICE), verbose=False, online=False, seed=seed,
        )
    losses = np.asarray(out["loss/trace"], dtype=np.float64)  # (chains, draws)
    return nbeta * (losses.mean(axis=1) - init_loss)


# ---------------------------------------------------------------------------- cases
LLRun = Callable[[], tuple[np.ndarray, float]]


def compare(case: str, di_version: str, di: Callable[[], np.ndarray], di_steps: int,
            ll_runs: dict[str, LLRun], ll_steps: dict[str, int],
            warmups: dict[str, LLRun] | None = None, sampler: str = "sgld") -> list[dict]:
    """Run devinterp, then each lltools variant (after its untimed warm-up, if given); rows
    with throughput, λ̂ and agreement."""
    warmups = warmups or {}
    rows = []
    per_chain, t = timed(di)
    di_rate, di_cpu_rate = di_steps / t.wall, di_steps / max(t.cpu, 1e-9)
    di_mean, di_sem = float(np.nanmean(per_chain)), sem(per_chain)
    print(f"  devinterp {di_version} [{sampler}]: {di_rate:,.0f} chain-steps/s ({t.wall:.1f}s; "
          f"per CPU-second {di_cpu_rate:,.0f}), λ̂ = {di_mean:.3f} ± {di_sem:.3f}", flush=True)
    for name, fn in ll_runs.items():
        if name in warmups:
            # Re-warm right before timing: devinterp may change torch's global state (a guard
            # of the compiled kernels), which would otherwise recompile inside the timed run.
            warmups[name]()
        (ll_chain, ll_own_sem), lt = timed(fn)
        rate, cpu_rate = ll_steps[name] / lt.wall, ll_steps[name] / max(lt.cpu, 1e-9)
        mean, s = float(np.nanmean(ll_chain)), sem(ll_chain)
        z = z_score(mean, s, di_mean, di_sem)
        verdict = "AGREE" if abs(z) < Z_AGREE else "DISAGREE"
        print(f"  lltools {name} [{sampler}]: {rate:,.0f} chain-steps/s ({lt.wall:.1f}s; "
              f"per CPU-second {cpu_rate:,.0f}), "
              f"λ̂ = {mean:.3f} ± {s:.3f} (ESS-based SEM {ll_own_sem:.3f}); ratio {rate / di_rate:,.1f}× "
              f"(CPU time: {cpu_rate / di_cpu_rate:,.1f}×); z = {z:+.2f} → {verdict}", flush=True)
        rows.append({
            "case": case, "sampler": sampler, "lltools_mode": name, "devinterp": di_version,
            "devinterp_chain_steps_per_s": di_rate, "lltools_chain_steps_per_s": rate,
            "ratio": rate / di_rate, "devinterp_s": t.wall, "lltools_s": lt.wall,
            "devinterp_chain_steps_per_cpu_s": di_cpu_rate, "lltools_chain_steps_per_cpu_s": cpu_rate,
            "ratio_cpu": cpu_rate / di_cpu_rate,
            "devinterp_llc": di_mean, "devinterp_sem": di_sem, "lltools_llc": mean, "lltools_sem": s,
            "lltools_sem_ess": ll_own_sem, "z": z, "verdict": verdict,
        })
    return rows


def mlp_case(chains: int, quick: bool, version: str, seed: int, sampler: str = "sgld") -> list[dict]:
    x, y = synthetic_regression(N, SIZES[0], seed=0)
    model = mlp(SIZES, seed=0)
    train_mlp(model, x, y)
    nbeta = float(N / math.log(N))
    draws, burnin = (40, 10) if quick else (200, 50)
    target = NetworkTarget(model, x, y, loss="mse", batch_size=BATCH)
    init = float(target.full_loss(target.w_star[None])[0])
    eps, gamma = MLP_SETTING["epsilon"], MLP_SETTING["gamma"]
    rms: dict[str, Any] = {}
    if sampler == "rmsprop":
        eps = RMS_SETTING["epsilon"]
        rms = {"sampler": "rmsprop", "rmsprop_decay": RMS_SETTING["decay"],
               "rmsprop_delta": RMS_SETTING["delta"]}
    print(f"[mlp{chains} {sampler}] 10-96-96-1 ReLU ({target.dim:,} params), n={N}, batch {BATCH}, ε={eps}, "
          f"γ={gamma}, nβ={nbeta:.2f}, {chains} chains, {burnin} burn-in + {draws} draws; "
          f"L_n(w*)={init:.5f}", flush=True)

    def di() -> np.ndarray:
        return run_devinterp(version, model, kind="mlp", x=x, y=y, init_loss=init, chains=chains, draws=draws,
                             burnin=burnin, epsilon=eps, gamma=gamma, nbeta=nbeta, seed=seed, sampler=sampler)

    chosen: dict[str, str] = {}

    def ll(fused: bool | None, n_draws: int = draws, n_burnin: int = burnin) -> LLRun:
        def go() -> tuple[np.ndarray, float]:
            res = estimate(target, nbeta=nbeta, gamma=gamma, epsilon=eps, chains=chains, draws=n_draws,
                           burnin=n_burnin, seed=seed, device=DEVICE, fused=fused, **rms)
            if fused is None:
                chosen["step"] = str(res.trace.meta.get("step"))
            return llc_per_chain(res.trace).numpy(), res.llc_sem
        return go

    steps = chains * (draws + burnin)
    # "default" (fused=None: the step lltools picks, compile counted when it compiles) runs
    # first, before anything of this shape is compiled in this process; "fused" is re-warmed
    # right before its timed run, so its compile is not counted.
    rows = compare(f"mlp{chains}", version, di, steps,
                   {"default": ll(None), "eager": ll(False), "fused": ll(True)},
                   {"default": steps, "eager": steps, "fused": steps}, {"fused": ll(True, 2, 0)},
                   sampler=sampler)
    for row in rows:
        if row["lltools_mode"] == "default":
            row["lltools_mode"] = f"default ({chosen.get('step', '?')})"
    return rows


def potential_case(quick: bool, version: str, seed: int) -> list[dict]:
    eps, gamma, nbeta = POT_SETTING["epsilon"], POT_SETTING["gamma"], POT_SETTING["nbeta"]
    draws, burnin = (200, 20) if quick else (1000, 100)
    ll_chains = 8192 if quick else POT_LL_CHAINS
    target = potential_target("x**2 + y**2")
    print(f"[potential] x²+y², ε={eps}, γ={gamma}, nβ={nbeta}; devinterp {POT_DI_CHAINS} chains vs lltools "
          f"{ll_chains:,} chains, {burnin} burn-in + {draws} draws", flush=True)

    def di() -> np.ndarray:
        return run_devinterp(version, Point(), kind="potential", x=None, y=None, init_loss=0.0,
                             chains=POT_DI_CHAINS, draws=draws, burnin=burnin, epsilon=eps, gamma=gamma,
                             nbeta=nbeta, seed=seed)

    def ll(fused: bool, n_draws: int = draws, n_burnin: int = burnin) -> LLRun:
        # The whole estimate() call, as for the MLP: sampling plus the summary (λ̂, R-hat and
        # ESS on ≤ 4 096 of the chains, warnings).
        def go() -> tuple[np.ndarray, float]:
            res = estimate(target, nbeta=nbeta, gamma=gamma, epsilon=eps, chains=ll_chains, draws=n_draws,
                           burnin=n_burnin, seed=seed, device=DEVICE, fused=fused, record_positions=False)
            per_chain = llc_per_chain(res.trace).numpy()
            return per_chain, sem(per_chain)
        return go

    _, warm = timed(ll(True, 2, 0))
    print(f"  (lltools fused: compiled in {warm.wall:.1f}s, not counted below)", flush=True)
    steps = {"eager": ll_chains * (draws + burnin), "fused": ll_chains * (draws + burnin)}
    return compare("potential", version, di, POT_DI_CHAINS * (draws + burnin),
                   {"eager": ll(False), "fused": ll(True)}, steps, {"fused": ll(True, 2, 0)})


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0], "bench_vs_devinterp.csv")
    parser.add_argument("--devinterp-path", type=Path, default=None,
                        help="directory to prepend to sys.path before importing devinterp")
    parser.add_argument("--cases", nargs="*", default=["mlp8", "mlp64", "potential"],
                        choices=["mlp8", "mlp64", "potential"])
    parser.add_argument("--samplers", nargs="*", default=["sgld"], choices=["sgld", "rmsprop"],
                        help="samplers to compare on the MLP cases (rmsprop: devinterp 1.x)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda: both libraries sample there")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    setup_threads(args.threads)
    if args.devinterp_path is not None:
        sys.path.insert(0, str(args.devinterp_path.resolve()))
    try:
        import devinterp  # noqa: F401
    except ImportError:
        print("devinterp is not installed: pip install 'lltools[compare]' (or --devinterp-path)")
        return 2
    info = print_header("bench_vs_devinterp: devinterp vs lltools, same settings, one process")
    version = str(info.get("devinterp", "unknown"))
    print(f"devinterp version used: {version}\n")
    rows: list[dict] = []
    for case in args.cases:
        if case.startswith("mlp"):
            for sampler in args.samplers:
                rows += mlp_case(int(case[3:]), args.quick, version, args.seed, sampler)
        else:
            rows += potential_case(args.quick, version, args.seed)
        print()
    print_table(rows, ["case", "sampler", "lltools_mode", "devinterp_chain_steps_per_s",
                       "lltools_chain_steps_per_s", "ratio", "ratio_cpu", "devinterp_llc", "devinterp_sem",
                       "lltools_llc", "lltools_sem", "z", "verdict"])
    suffix = "" if version.startswith("2") else f"_{version}"
    out = args.out.with_name(args.out.stem + suffix + args.out.suffix) if suffix else args.out
    write_csv(rows, out, info)
    return 0 if all(r["verdict"] == "AGREE" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
