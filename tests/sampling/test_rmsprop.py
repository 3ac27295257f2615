"""RMSProp-preconditioned SGLD (primer §7): the step rule, its MALA signal, exactness on a
badly conditioned Gaussian, Aoyagi's λ on a deep linear network, and mixing with plain SGLD.

Each statistical test states where its tolerance comes from; each was checked to fail
with the code broken once (noted in the docstrings).
"""

from __future__ import annotations

import math

import pytest
import torch

from lltools.base import rng
from lltools.estimation.llc import llc, llc_per_chain
from lltools.estimation.summary import summarize
from lltools.sampling import kernel, sgld
from lltools.sampling.driver import run
from lltools.sampling.sgld import make_params
from lltools.targets.models import deep_linear_target
from lltools.targets.potentials import potential_target
from lltools.theory.record import theory_for
from lltools.workflows.sweep import expand_grid, grid


# ---------------------------------------------------------------------- the step rule
def test_moment_uses_the_gradient_of_nbeta_loss_only_and_the_step_is_preconditioned() -> None:
    """Two eager steps by hand: V ← αV + (1−α)(nβ∇L)², G = 1/(√V + δ), w' = w − (ε/2)G∇U +
    √(εG)ξ.  γ = 50 makes the localisation term large, so including γ(w − w*) in V (the
    mistake App. D.3 warns about) fails the V check; dropping G from the noise or the drift
    fails the position check."""
    target = potential_target("x**2 + 3*y**4", dtype=torch.float64)
    eps, gamma, nbeta, decay, delta = 1e-2, 50.0, 7.0, 0.9, 0.05
    params = make_params(eps, gamma, nbeta, 3, dtype=torch.float64, sampler="rmsprop",
                         rmsprop_decay=decay, rmsprop_delta=delta)
    keys = rng.chain_keys(5, torch.arange(3))
    centre = torch.tensor([[0.3, -0.2], [1.0, 0.5], [-0.4, 0.8]], dtype=torch.float64)
    state = sgld.init(target, params, keys, centre)
    moment = torch.zeros_like(centre)
    w = centre.clone()
    for t in range(2):
        _, grad_loss = target.loss_and_grad(w, None)
        moment = decay * moment + (1 - decay) * (nbeta * grad_loss) ** 2
        g = 1.0 / (moment.sqrt() + delta)
        grad_u = nbeta * grad_loss + gamma * (w - centre)
        noise = rng.normal(keys, t, rng.STREAM_NOISE, 2, torch.float64)
        w = w - 0.5 * eps * g * grad_u + (eps * g).sqrt() * noise
        state, _ = sgld.step(state, target, params)
        torch.testing.assert_close(state.moment, moment, rtol=1e-12, atol=0)
        torch.testing.assert_close(state.w, w, rtol=1e-12, atol=1e-15)


def test_preconditioned_mala_ratio_is_the_ratio_of_gaussian_proposal_densities() -> None:
    """log a = U(w) − U(w') + log q(w | w') − log q(w' | w) with q(· | v) = N(v − (ε/2)G∇U(v),
    εG), written out with the G⁻¹-weighted norms; a G-free formula fails it."""
    gen = torch.Generator().manual_seed(0)
    c, d = 5, 7
    w, w_new, g, g_new = (torch.randn(c, d, generator=gen, dtype=torch.float64) for _ in range(4))
    precond = torch.rand(c, d, generator=gen, dtype=torch.float64) * 3 + 0.1
    u, u_new = (torch.randn(c, generator=gen, dtype=torch.float64) for _ in range(2))
    eps = torch.rand(c, generator=gen, dtype=torch.float64) * 0.1 + 0.01

    def log_q(x: torch.Tensor, v: torch.Tensor, grad_v: torch.Tensor) -> torch.Tensor:
        mean = v - 0.5 * eps[:, None] * precond * grad_v
        return -((x - mean) ** 2 / (2 * eps[:, None] * precond)).sum(dim=1)

    expected = u - u_new + log_q(w, w_new, g_new) - log_q(w_new, w, g)
    got = kernel.mala_log_ratio(w, w_new, u, u_new, g, g_new, eps, precond=precond)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    # G ≡ 1 is plain SGLD's formula, bit for bit.
    ones = torch.ones_like(precond)
    assert torch.equal(kernel.mala_log_ratio(w, w_new, u, u_new, g, g_new, eps, precond=ones),
                       kernel.mala_log_ratio(w, w_new, u, u_new, g, g_new, eps))


def test_bad_sampler_input_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown sampler 'adam'"):
        make_params(1e-3, 1.0, 1.0, 2, sampler="adam")
    with pytest.raises(ValueError, match="2 entries"):
        make_params(1e-3, 1.0, 1.0, 2, sampler=["sgld", "rmsprop", "sgld"])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        make_params(1e-3, 1.0, 1.0, 2, sampler="rmsprop", rmsprop_decay=1.0)
    assert make_params(1e-3, 1.0, 1.0, 2, sampler="sgld").sampler is None  # the old fast path


# ---------------------------------------------------------------------- exactness
# L(w) = ½(x² + 10⁴ y²): Hessian eigenvalues 1 and 10⁴.  With nβ = 1, γ = 1 the posterior is
# Gaussian with precisions h = (2, 10001) and nβ·E[L] = ½(1/2 + 10⁴/10001) exactly.
STIFF = "0.5*x**2 + 5000*y**2"
STIFF_A = (1.0, 1e4)
STIFF_NBETA, STIFF_GAMMA, STIFF_EPS = 1.0, 1.0, 1e-3


def _stiff_exact() -> float:
    return sum(0.5 * STIFF_NBETA * a / (STIFF_NBETA * a + STIFF_GAMMA) for a in STIFF_A)


def _fixed_g_bias(decay_delta: float) -> float:
    """The step-size bias of nβ·E[L] for a *frozen* G at its settled value.

    Per coordinate, x' = (1 − εGh/2)x + √(εG)ξ has stationary variance 1/(h(1 − εGh/4)); the
    settled V is E[(nβ a x)²] = (nβ a)²/h, so G = 1/(√V + δ)."""
    total = 0.0
    for a in STIFF_A:
        h = STIFF_NBETA * a + STIFF_GAMMA
        g = 1.0 / (STIFF_NBETA * a / math.sqrt(h) + decay_delta)
        r = STIFF_EPS * g * h
        total += 0.5 * STIFF_NBETA * a / h * (1.0 / (1.0 - r / 4.0) - 1.0)
    return total


def test_rmsprop_reaches_the_exact_tempered_mean_where_sgld_diverges() -> None:
    """Badly conditioned Gaussian (eigenvalues 1 and 10⁴), ε = 10⁻³ for both samplers.

    Plain SGLD: ε·h_max = 10 > 2, the stiff coordinate grows ×4 a step: every chain diverges.
    RMSProp-SGLD (α = 0.999, δ = 0.1): G ≈ 1/√h per coordinate, ε·G·h ≈ 0.1 on the stiff one.
    Tolerance = 4·SEM (across 600 independent chains) + the frozen-G step-size bias
    (:func:`_fixed_g_bias`, +0.013) + a V-tracking allowance of 6 % of T: V is a running
    mean over W = 1/(1−α) = 1000 steps while the soft coordinate decorrelates over
    τ ≈ 2/(εGh) ≈ 800 steps, so V (hence G) still follows the state by O(τ/W) and pSGLD
    without its Γ correction term samples ∝ e^(−U)/G to that order (measured: +4 %).
    Broken once each: noise without √G → λ̂ ≈ 50; drift without G → all diverge.
    """
    target = potential_target(STIFF)
    exact = _stiff_exact()
    chains = 600
    common = {"num_draws": 3000, "num_burnin": 3000, "seed": 3, "fused": False, "record_positions": False}
    plain = run(target, make_params(STIFF_EPS, STIFF_GAMMA, STIFF_NBETA, chains), **common)
    assert bool((plain.diverged_at >= 0).all())
    decay, delta = 0.999, 0.1
    params = make_params(STIFF_EPS, STIFF_GAMMA, STIFF_NBETA, chains, sampler="rmsprop",
                         rmsprop_decay=decay, rmsprop_delta=delta)
    trace = run(target, params, **common)
    assert int((trace.diverged_at >= 0).sum()) == 0
    per_chain = llc_per_chain(trace)
    mean = float(per_chain.mean())
    sem = float(per_chain.std() / math.sqrt(chains))
    bias = _fixed_g_bias(delta)
    assert 0.01 < bias < 0.015
    assert abs(mean - exact) < 4 * sem + bias + 0.06 * exact, (mean, sem, exact)
    assert float(trace.cpu().draw_acceptance.nanmean()) > 0.9
