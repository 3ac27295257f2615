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


def _fixed_g_bias(delta: float, settled: float = 1.0) -> float:
    """The step-size bias of nβ·E[L] for a *frozen* G.

    Per coordinate, x' = (1 − εGh/2)x + √(εG)ξ has stationary variance 1/(h(1 − εGh/4)); the
    settled V is E[(nβ a x)²] = (nβ a)²/h, of which a fraction ``settled`` is reached
    (V starts at 0), and G = 1/(√V + δ)."""
    total = 0.0
    for a in STIFF_A:
        h = STIFF_NBETA * a + STIFF_GAMMA
        g = 1.0 / (math.sqrt(settled) * STIFF_NBETA * a / math.sqrt(h) + delta)
        r = STIFF_EPS * g * h
        total += 0.5 * STIFF_NBETA * a / h * (1.0 / (1.0 - r / 4.0) - 1.0)
    return total


def test_rmsprop_reaches_the_exact_tempered_mean_where_sgld_diverges() -> None:
    """Badly conditioned Gaussian (eigenvalues 1 and 10⁴), ε = 10⁻³ for both samplers.

    Plain SGLD: ε·h_max = 10 > 2, the stiff coordinate grows ×4 a step: every chain diverges.
    RMSProp-SGLD (α = 0.9999, δ = 0.1): G ≈ 1/√h per coordinate, ε·G·h ≈ 0.1 on the stiff
    one.  Tolerance = 4·SEM (across 600 independent chains) + the frozen-G step-size bias
    (:func:`_fixed_g_bias` with V at 1 − α^6000 ≈ 45 % of its settled value, as it is
    after these 6 000 steps from V = 0: +0.02) + a V-tracking allowance of 5 % of T.
    Why that allowance: pSGLD drops the Γ = ∇·G correction, so where G follows the state it
    samples ∝ e^(−U)/G instead of e^(−U).  V is a running mean over W = 1/(1−α) = 10⁴ steps
    while the soft coordinate decorrelates over τ = 2/(εGh) ≈ 10³ steps, so G follows the
    state to O(τ/W) ≈ 10 % of its spread.  (Measured with 1 000 chains, compiled step:
    0.789 ± 0.005 at α = 0.9999; 0.828 at α = 0.999 and 0.965 at the default α = 0.99, where
    W is not ≫ τ — on a noise-free potential RMSProp's default decay is visibly biased.)
    Broken once each: noise without √G → λ̂ ≈ 50; drift without G → all diverge.
    """
    target = potential_target(STIFF)
    exact = _stiff_exact()
    chains = 600
    common = {"num_draws": 3000, "num_burnin": 3000, "seed": 3, "fused": False, "record_positions": False}
    plain = run(target, make_params(STIFF_EPS, STIFF_GAMMA, STIFF_NBETA, chains),
                **{**common, "num_draws": 100, "num_burnin": 0})
    assert bool((plain.diverged_at >= 0).all()) and int(plain.diverged_at.max()) < 50
    decay, delta = 0.9999, 0.1
    params = make_params(STIFF_EPS, STIFF_GAMMA, STIFF_NBETA, chains, sampler="rmsprop",
                         rmsprop_decay=decay, rmsprop_delta=delta)
    trace = run(target, params, **common)
    assert int((trace.diverged_at >= 0).sum()) == 0
    per_chain = llc_per_chain(trace)
    mean = float(per_chain.mean())
    sem = float(per_chain.std() / math.sqrt(chains))
    bias = _fixed_g_bias(delta, settled=1 - decay**6000)
    assert 0.015 < bias < 0.025
    assert abs(mean - exact) < 4 * sem + bias + 0.05 * exact, (mean, sem, exact)
    assert float(trace.cpu().draw_acceptance.nanmean()) > 0.9


# ---------------------------------------------------------------------- batching
def _mixed_grid_and_alone(target, fused: bool, **common):
    settings = grid([1e-3, 3e-3], [1.0], [20.0], ["sgld", "rmsprop"])
    chains = 3
    params, chain_index, setting_index = expand_grid(settings, chains, dtype=target.dtype)
    mixed = run(target, params, chain_index=chain_index, setting_index=setting_index, fused=fused, **common)
    alone = {}
    for row in settings.itertuples():
        p = make_params(row.epsilon, row.gamma, row.nbeta, chains, sampler=row.sampler, dtype=target.dtype)
        alone[row.setting] = run(target, p, fused=fused, **common)
    return settings, mixed, alone, chains


def test_a_grid_mixing_both_samplers_equals_each_setting_run_alone_bit_for_bit() -> None:
    """ε ∈ {1e-3, 3e-3} × {sgld, rmsprop} as one batched run = each setting alone (same seed):
    losses, acceptances and divergence steps identical.  A preconditioner that leaks across
    chains (e.g. G from the batch mean of V), or SGLD chains given G ≠ 1, fails it."""
    target = potential_target("x**2 + y**4 + 0.5*x*y", dtype=torch.float64)
    settings, mixed, alone, chains = _mixed_grid_and_alone(target, False, num_draws=200, num_burnin=50,
                                                           seed=11)
    for s, trace in alone.items():
        rows = slice(s * chains, (s + 1) * chains)
        assert torch.equal(mixed.loss[rows], trace.loss), s
        torch.testing.assert_close(mixed.acceptance[rows], trace.acceptance, rtol=0, atol=0,
                                   equal_nan=True, msg=str(s))  # NaN where not computed
        assert torch.equal(mixed.diverged_at[rows], trace.diverged_at), s
    table = summarize(mixed.cpu()).table
    assert table["sampler"].tolist() == settings["sampler"].tolist() == ["sgld", "rmsprop"] * 2
    # The two samplers really differ (same noise, different steps).
    assert not torch.equal(mixed.loss[:chains], mixed.loss[chains:2 * chains])


def test_plain_sgld_is_unchanged_by_the_sampler_option() -> None:
    """sampler="sgld" (explicitly, or as codes) is the original step: the same numbers as
    before the option existed (params without a sampler)."""
    target = potential_target("x**2 + y**4", dtype=torch.float64)
    base = run(target, make_params(2e-3, 1.0, 50.0, 4, dtype=torch.float64), num_draws=100, seed=2)
    named = run(target, make_params(2e-3, 1.0, 50.0, 4, dtype=torch.float64, sampler="sgld"),
                num_draws=100, seed=2)
    codes = run(target, make_params(2e-3, 1.0, 50.0, 4, dtype=torch.float64, sampler=[0, 0, 0, 0]),
                num_draws=100, seed=2)
    assert torch.equal(base.loss, named.loss) and torch.equal(base.loss, codes.loss)


@pytest.mark.parametrize("kind", ["potential", "network"])
def test_compiled_rmsprop_step_equals_the_eager_one_to_rounding(kind: str) -> None:
    """The compiled steps (potential: one chain-minor kernel; minibatch network: one graph)
    run the same mixed grid as the eager step, to float64 rounding over the whole run."""
    if kind == "potential":
        target = potential_target("x**2 + y**4 + 0.5*x*y", dtype=torch.float64)
    else:
        target = deep_linear_target([3, 2, 2], 1, n=64, seed=0, batch_size=16, dtype=torch.float64)
    common = {"num_draws": 60, "num_burnin": 10, "seed": 4}
    settings = grid([1e-3, 3e-3], [1.0], [20.0], ["sgld", "rmsprop"])
    params, chain_index, setting_index = expand_grid(settings, 3, dtype=target.dtype)
    eager = run(target, params, chain_index=chain_index, setting_index=setting_index, fused=False, **common)
    fused = run(target, params, chain_index=chain_index, setting_index=setting_index, fused=True, **common)
    assert fused.meta["step"] == "compiled"
    torch.testing.assert_close(fused.loss, eager.loss, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(fused.acceptance, eager.acceptance, rtol=1e-7, atol=1e-9, equal_nan=True)
    assert torch.equal(fused.diverged_at, eager.diverged_at)


# ---------------------------------------------------------------------- a network
def test_rmsprop_recovers_aoyagis_lambda_on_a_deep_linear_network() -> None:
    """4→3→2, r = 1 at the teacher (λ = 7/2, Aoyagi), full batch, n = 2000, nβ = n/log n,
    γ = 1, RMSProp-SGLD ε = 3·10⁻³, α = 0.999, 16 chains × (300 + 1500) steps.

    Tolerance 4·SEM + a bias allowance of 0.35 (10 % of λ).  Plain SGLD on this target is
    within 4 % (tests/test_models.py); pSGLD adds a positive bias because without
    minibatch noise V follows the state (see the Gaussian test): over ε ∈ {10⁻³, 3·10⁻³,
    10⁻²} × α ∈ {0.99, 0.999} (8 chains each) λ̂ was 3.71–3.87 except 4.45 at ε = 10⁻³,
    α = 0.99.  Broken once: noise without √G gives λ̂ ≫ 10.
    """
    target = deep_linear_target([4, 3, 2], 1, n=2000, seed=0)
    assert theory_for(target).llc == 3.5
    chains = 16
    params = make_params(3e-3, 1.0, target.default_nbeta, chains, sampler="rmsprop", rmsprop_decay=0.999)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    try:
        trace = run(target, params, num_draws=1500, num_burnin=300, seed=0, fused=False)
    finally:
        torch.set_num_threads(threads)
    result = llc(trace)
    assert result.num_valid == chains
    assert float(trace.cpu().draw_acceptance.nanmean()) > 0.9
    assert abs(result.mean - 3.5) < 4 * result.sem + 0.35, (result.mean, result.sem)


def test_mixed_grid_reports_each_samplers_divergences_apart() -> None:
    """On the stiff Gaussian at ε = 10⁻³ the SGLD rows diverge and the RMSProp rows do not;
    the table and the divergence message keep them apart (labels say which is RMSProp)."""
    from lltools.estimation.diagnostics import divergence_report

    target = potential_target(STIFF)
    settings = grid([STIFF_EPS], [STIFF_GAMMA], [STIFF_NBETA], ["sgld", "rmsprop"])
    params, chain_index, setting_index = expand_grid(settings, 4)
    trace = run(target, params, chain_index=chain_index, setting_index=setting_index, num_draws=60,
                seed=0, fused=False).cpu()
    table = summarize(trace).table
    assert table["n_diverged"].tolist() == [4, 0]
    message = divergence_report(trace).message
    assert "4 of 8 chains diverged (ε=0.001, γ=1, nβ=1 at" in message and "RMSProp" not in message
