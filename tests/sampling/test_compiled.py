"""The optional fast paths of :mod:`lltools.sampling.compiled`: the compiled potential step must give the
same chains as :func:`lltools.sampling.sgld.step` (up to rounding), fall back to eager when it cannot
compile, and stay off unless asked for; the allocator tweak must be safe to call."""

from __future__ import annotations

import warnings

import pytest
import torch

from lltools.base import memory, rng
from lltools.sampling import compiled as fused
from lltools.sampling import sgld
from lltools.sampling.driver import run
from lltools.sampling.sgld import make_params
from lltools.targets.potentials import potential_target

needs_compiler = pytest.mark.skipif(not fused.compile_available(), reason="no C++ compiler for inductor")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _params(num_chains: int, dtype: torch.dtype, device: str = "cpu") -> sgld.SGLDParams:
    """Healthy settings plus a few chains with ε = 0.5 that diverge within a few steps."""
    eps = [1e-3] * (num_chains - 4) + [0.5] * 4
    gamma = [1.0 + (i % 3) for i in range(num_chains)]
    nbeta = [30.0 + 10 * (i % 5) for i in range(num_chains)]
    return make_params(eps, gamma, nbeta, num_chains, dtype=dtype, device=device)


def _tolerances(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}


def _compare_steps(step_fn, spec: str, dtype: torch.dtype, device: str = "cpu", steps: int = 60) -> None:
    target = potential_target(spec, dtype=dtype, device=device)
    params = _params(64, dtype, device)
    state = sgld.init(target, params, rng.chain_keys(3, torch.arange(64)).to(device))
    a = b = state
    tol = _tolerances(dtype)
    with torch.no_grad():
        for t in range(steps):
            acc = t % 3 != 2  # both with and without the acceptance
            a, ia = sgld.step(a, target, params, compute_acceptance=acc)
            b, ib = step_fn(b, target, params, compute_acceptance=acc)
            assert b.step == a.step
            assert torch.equal(a.diverged_at, b.diverged_at), t
            torch.testing.assert_close(b.w, a.w, **tol)
            torch.testing.assert_close(b.loss, a.loss, **tol)
            torch.testing.assert_close(ib.loss, ia.loss, equal_nan=True, **tol)
            torch.testing.assert_close(ib.acceptance, ia.acceptance, equal_nan=True, rtol=1e-3, atol=1e-4)
    assert (a.diverged_at >= 0).sum() >= 4  # the ε = 0.5 chains diverged in both


@pytest.mark.parametrize("spec", ["x**2 + y**2", "x**2 * y**4", "sin(x)**2 + y**4 + 0.1*x*y"])
def test_eager_kernel_matches_sgld_step(spec: str) -> None:
    """The uncompiled kernel (the fallback) is the same computation as ``sgld.step``."""
    step = fused.FusedPotentialStep(potential_target(spec, dtype=torch.float64), compile=False)
    assert not step.compiled
    _compare_steps(step, spec, torch.float64)


@needs_compiler
@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("spec", "dtype"), [("x**2 + y**2", torch.float32), ("x**2 * y**4", torch.float64)])
def test_compiled_step_matches_sgld_step(spec: str, dtype: torch.dtype, device: str) -> None:
    """torch.compile of the whole step gives the same chains, divergences included."""
    step = fused.FusedPotentialStep(potential_target(spec, dtype=dtype, device=device))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no silent fallback
        _compare_steps(step, spec, dtype, device)
    assert step.compiled and step.compile_seconds > 0


@needs_compiler
@pytest.mark.slow
def test_fused_run_matches_eager_run_and_grid_rows() -> None:
    """``run(..., fused=True)`` reproduces the eager trace, and a row of a batched grid equals
    the same setting run alone (chain streams do not depend on the batch)."""
    target = potential_target("x**4 + y**4")
    settings = [(1e-3, 1.0, 50.0), (2e-3, 2.0, 100.0)]
    chains = 5
    num = len(settings) * chains
    params = make_params(
        [s[0] for s in settings for _ in range(chains)],
        [s[1] for s in settings for _ in range(chains)],
        [s[2] for s in settings for _ in range(chains)],
        num,
    )
    common = {"num_draws": 80, "num_burnin": 20, "seed": 7,
              "chain_index": torch.arange(chains).repeat(len(settings)),
              "setting_index": torch.arange(len(settings)).repeat_interleave(chains)}
    eager = run(target, params, fused=False, **common)
    fast = run(target, params, fused=True, **common)
    torch.testing.assert_close(fast.loss, eager.loss, rtol=1e-4, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(fast.positions, eager.positions, rtol=1e-4, atol=1e-6)
    assert torch.equal(fast.diverged_at, eager.diverged_at)
    alone = run(target, make_params(*settings[1], chains), fused=True, num_draws=80, num_burnin=20, seed=7)
    torch.testing.assert_close(fast.loss[chains:], alone.loss, rtol=1e-5, atol=1e-7)


def test_falls_back_to_eager_when_compilation_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compile error on the first call warns once and continues with the eager kernel."""

    def broken_compile(fn, **_kwargs):
        def call(*_args, **_kw):
            raise RuntimeError("no compiler today")

        return call

    monkeypatch.setattr(fused, "compile_available", lambda: True)
    monkeypatch.setattr(torch, "compile", broken_compile)
    target = potential_target("x**2 + y**2", dtype=torch.float64)
    step = fused.FusedPotentialStep(target)
    assert step.compiled
    with pytest.warns(RuntimeWarning, match="no compiler today"):
        _compare_steps(step, "x**2 + y**2", torch.float64, steps=5)
    assert not step.compiled and "no compiler today" in (step.fallback_reason or "")


def test_no_compiler_means_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused, "compile_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="not available"):
        step = fused.FusedPotentialStep(potential_target("x**2 + y**2"))
    assert not step.compiled


def test_select_step_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off when the run size is unknown; on with ``fused=True`` or ``LLTOOLS_FUSED=1``."""
    from lltools.targets.networks import NetworkTarget

    pot = potential_target("x**2 + y**2")
    monkeypatch.delenv(fused.FUSED_ENV, raising=False)
    assert fused.select_step(pot) is sgld.step
    assert fused.select_step(pot, False) is sgld.step
    assert isinstance(fused.select_step(pot, True), fused.FusedPotentialStep)
    monkeypatch.setenv(fused.FUSED_ENV, "1")
    assert isinstance(fused.select_step(pot), fused.FusedPotentialStep)
    assert fused.select_step(pot, False) is sgld.step
    net = NetworkTarget(torch.nn.Linear(3, 1), torch.randn(16, 3), torch.randn(16, 1), batch_size=4)
    assert fused.select_step(net, False) is sgld.step
    assert isinstance(fused.select_step(net, True), fused.FusedNetworkStep)
    full_batch = NetworkTarget(torch.nn.Linear(3, 1), torch.randn(16, 3), torch.randn(16, 1))
    assert isinstance(fused.select_step(full_batch, True), fused.FusedDataStep)
    with pytest.raises(ValueError, match="batch_size"):
        fused.FusedNetworkStep(full_batch)
    with pytest.raises(ValueError, match="without data"):
        fused.FusedPotentialStep(net)


def test_default_compiles_only_runs_big_enough_to_repay_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """With neither ``fused`` nor LLTOOLS_FUSED set, the compiled step is chosen exactly when
    the time it should save reaches AUTO_MIN_SECONDS_SAVED (potentials and networks only, by
    their measured speed-ups), never without a compiler, and the environment variable
    overrides the rule."""
    from lltools.targets.networks import NetworkTarget

    monkeypatch.delenv(fused.FUSED_ENV, raising=False)
    monkeypatch.setattr(fused, "compile_available", lambda: True)
    pot = potential_target("x**2 + y**2")
    per_step = fused.estimated_seconds_saved(pot, 65_536, 1)
    assert per_step == pytest.approx(fused.estimated_eager_seconds(pot, 65_536, 1) * (1 - 1 / 4.0))
    threshold_steps = int(fused.AUTO_MIN_SECONDS_SAVED / per_step) + 1
    assert fused.estimated_seconds_saved(pot, 65_536, threshold_steps) >= fused.AUTO_MIN_SECONDS_SAVED
    assert fused.estimated_seconds_saved(pot, 65_536, threshold_steps - 2) < fused.AUTO_MIN_SECONDS_SAVED
    assert isinstance(fused.select_step(pot, num_chains=65_536, num_steps_total=threshold_steps),
                      fused.FusedPotentialStep)
    assert fused.select_step(pot, num_chains=65_536, num_steps_total=threshold_steps - 2) is sgld.step
    assert fused.select_step(pot, num_chains=4, num_steps_total=1200) is sgld.step  # the app's toy run
    assert fused.select_step(pot) is sgld.step  # size unknown: eager
    net = NetworkTarget(torch.nn.Linear(100, 100), torch.randn(16, 100), torch.randn(16, 100), batch_size=4)
    assert isinstance(fused.select_step(net, num_chains=64, num_steps_total=50_000), fused.FusedNetworkStep)
    full_batch = NetworkTarget(torch.nn.Linear(100, 100), torch.randn(16, 100), torch.randn(16, 100))
    assert isinstance(fused.select_step(full_batch, num_chains=64, num_steps_total=50_000),
                      fused.FusedDataStep)

    class CustomData(type(pot)):  # a data target that is not a network: never by default
        has_data = True

    assert not fused.should_fuse(CustomData.__new__(CustomData), 10**6, 10**6)
    monkeypatch.setenv(fused.FUSED_ENV, "0")
    assert fused.select_step(pot, num_chains=65_536, num_steps_total=10**5) is sgld.step
    monkeypatch.delenv(fused.FUSED_ENV)
    monkeypatch.setattr(fused, "compile_available", lambda: False)
    assert fused.select_step(pot, num_chains=65_536, num_steps_total=10**5) is sgld.step


def test_trace_says_which_step_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fused.FUSED_ENV, raising=False)
    target = potential_target("x**2 + y**2")
    params = make_params(1e-3, 1.0, 100.0, 4)
    assert run(target, params, num_draws=5).meta["step"] == "eager"
    monkeypatch.setattr(fused, "compile_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="not available"):
        trace = run(target, params, num_draws=5, fused=True)
    assert trace.meta["step"] == "eager"  # asked for, but fell back


def test_fused_step_is_cached_per_potential() -> None:
    """Copies of a target (same expression function) share one compiled step."""
    pot = potential_target("x**2 + y**2")
    assert fused.fused_step_for(pot) is fused.fused_step_for(pot.to("cpu"))
    assert fused.fused_step_for(pot) is not fused.fused_step_for(potential_target("x**4 + y**4"))


def test_tune_host_allocator_is_safe_and_idempotent() -> None:
    first = memory.tune_host_allocator("cpu")
    assert isinstance(first, bool)
    assert memory.tune_host_allocator("cpu") is first
    assert memory.tune_host_allocator(torch.device("cuda", 0)) is False
    # Allocation still works (and gives correct numbers) afterwards.
    x = torch.arange(300_000, dtype=torch.float64)
    assert float((x + 1).sum()) == pytest.approx(300_000 * 300_001 / 2)


# ---------------------------------------------------------------------------- data targets
def _network(dtype: torch.dtype, device: str = "cpu"):
    from lltools.targets.networks import NetworkTarget

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    x = torch.randn(128, 4, generator=gen)
    y = torch.sin(x[:, :1]) + 0.1 * torch.randn(128, 1, generator=gen)
    return NetworkTarget(module, x, y, batch_size=16, dtype=dtype, device=device)


def _compare_data_steps(step_fn, dtype: torch.dtype, device: str = "cpu", steps: int = 40,
                        full_batch: bool = False) -> None:
    target = _network(dtype, device)
    if full_batch:
        target.batch_size = None
    chains = 12
    eps = [1e-4] * (chains - 2) + [5.0] * 2  # the last two diverge
    params = make_params(eps, 50.0, 20.0, chains, dtype=dtype, device=device)
    state = sgld.init(target, params, rng.chain_keys(1, torch.arange(chains)).to(device))
    a = b = state
    tol = _tolerances(dtype)
    with torch.no_grad():
        for t in range(steps):
            acc = t % 4 == 0
            a, ia = sgld.step(a, target, params, compute_acceptance=acc)
            b, ib = step_fn(b, target, params, compute_acceptance=acc)
            assert b.step == a.step and torch.equal(a.diverged_at, b.diverged_at), t
            torch.testing.assert_close(b.w, a.w, **tol)
            torch.testing.assert_close(b.grad, a.grad, **tol)
            torch.testing.assert_close(ib.loss, ia.loss, equal_nan=True, **tol)
            torch.testing.assert_close(ib.acceptance, ia.acceptance, equal_nan=True, rtol=1e-3, atol=1e-4)
    assert (a.diverged_at >= 0).sum() == 2


@pytest.mark.parametrize("full_batch", [False, True])
def test_data_step_eager_kernels_match_sgld_step(full_batch: bool) -> None:
    _compare_data_steps(fused.FusedDataStep(compile=False), torch.float64, full_batch=full_batch)


@needs_compiler
@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_data_step_matches_sgld_step(device: str) -> None:
    """The compiled noise/update/acceptance kernels around the network's own gradients."""
    step = fused.FusedDataStep()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _compare_data_steps(step, torch.float32, device)
    assert step.compiled and step.compile_seconds > 0


def test_network_step_eager_kernel_matches_sgld_step() -> None:
    _compare_data_steps(fused.FusedNetworkStep(_network(torch.float64), compile=False), torch.float64)


@needs_compiler
@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_network_step_matches_sgld_step(device: str) -> None:
    """Gather, vmap(grad_and_value) of the per-chain loss, update and acceptance compiled as
    one graph give the same chains as the eager step."""
    step = fused.FusedNetworkStep(_network(torch.float32, device))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _compare_data_steps(step, torch.float32, device)
    assert step.compiled and step.compile_seconds > 0


def test_normal_chain_minor_is_the_transposed_stream() -> None:
    """The chain-minor normal draw of the potential kernel is bit-identical to rng.normal."""
    keys = rng.chain_keys(9, torch.arange(37))
    for size in (1, 2, 3, 8):
        for dtype in (torch.float32, torch.float64):
            word = torch.tensor(rng.step_word(123, rng.STREAM_NOISE))
            got = rng.normal_chain_minor(keys, word, size, dtype)
            assert torch.equal(got, rng.normal(keys, 123, rng.STREAM_NOISE, size, dtype).t())


def test_default_uses_the_compile_time_remembered_on_this_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A network run whose saving cannot repay a cold compile (25 s) stays eager until a
    compile of that very step has been seen to take less; the record is per signature,
    survives a corrupt file, and a compile announces itself only when expected to be slow."""
    from lltools.sampling import compile_cache
    from lltools.targets.networks import NetworkTarget

    log = tmp_path / "compile.json"
    monkeypatch.setenv(compile_cache.LOG_ENV, str(log))
    monkeypatch.delenv(fused.FUSED_ENV, raising=False)
    monkeypatch.setattr(fused, "compile_available", lambda: True)
    net = NetworkTarget(torch.nn.Linear(100, 100), torch.randn(16, 100), torch.randn(16, 100), batch_size=4)
    steps = 1
    while fused.estimated_seconds_saved(net, 64, steps) < 8.0:
        steps *= 2
    assert fused.estimated_seconds_saved(net, 64, steps) < fused.COMPILE_SECONDS["minibatch"]
    assert fused.select_step(net, num_chains=64, num_steps_total=steps) is sgld.step  # cold: 25 s
    sig = compile_cache.signature("minibatch", net.name, 64, net.dim, net.dtype, net.device)
    compile_cache.record(sig, 3.0)
    assert compile_cache.expected_seconds(sig) == 3.0
    assert isinstance(fused.select_step(net, num_chains=64, num_steps_total=steps), fused.FusedNetworkStep)
    other = compile_cache.signature("minibatch", net.name, 65, net.dim, net.dtype, net.device)
    assert compile_cache.expected_seconds(other) is None
    assert fused.select_step(net, num_chains=65, num_steps_total=steps) is sgld.step
    log.write_text("{not json")
    assert compile_cache.expected_seconds(sig) is None  # ignored, never raised
    assert fused.select_step(net, num_chains=64, num_steps_total=steps) is sgld.step
    monkeypatch.setenv(compile_cache.LOG_ENV, "off")
    compile_cache.record(sig, 1.0)
    assert compile_cache.expected_seconds(sig) is None
    # Announcements: a step expected to compile for >= 3 s says so on stderr, a quick one not.
    monkeypatch.setenv(compile_cache.LOG_ENV, str(log))
    fused._announce_compile(sig)
    assert "compiling the minibatch sampling step (64 chains" in capsys.readouterr().err
    compile_cache.record(sig, 0.5)
    fused._announce_compile(sig)
    assert capsys.readouterr().err == ""


def test_a_compiled_run_records_its_compile_time(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from lltools.sampling import compile_cache

    monkeypatch.setenv(compile_cache.LOG_ENV, str(tmp_path / "compile.json"))
    target = potential_target("x**2 + y**2")
    trace = run(target, make_params(1e-3, 1.0, 100.0, 8), num_draws=5, fused=True)
    if trace.meta["step"] != "compiled":
        pytest.skip("no compiler here")
    sig = compile_cache.signature("potential", target.name, 8, 2, target.dtype, target.device)
    assert compile_cache.expected_seconds(sig) is not None
    assert compile_cache.expected_seconds(sig) > 0


def test_choosing_the_step_does_not_import_the_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The default choice reads the compile record before every run: finding it must not
    import ``torch._inductor`` / dynamo (~2 s, paid by an eager toy run's first click), and the
    directory computed without it is inductor's own."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from lltools.sampling import compiled\n"
        "from lltools.targets.potentials import potential_target\n"
        "t = potential_target('x**2 + y**2')\n"
        "compiled.should_fuse(t, 8, 2500); compiled.compile_ahead_seconds(t, 8, 2500)\n"
        "print(sorted(m for m in ('torch._inductor', 'torch._dynamo') if m in sys.modules))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("TORCHINDUCTOR_CACHE_DIR", "LLTOOLS_COMPILE_LOG")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, cwd=str(tmp_path.parent))
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from lltools.sampling import compile_cache

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delitem(sys.modules, "torch._inductor.runtime.cache_dir_utils")
    assert str(compile_cache.inductor_cache_dir()) == default_cache_dir()


def test_a_compile_time_remembered_for_other_code_is_not_used(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path) -> None:
    """A record written by another version of the traced code (whose graphs inductor's cache no
    longer holds: the compile is cold again) does not count as this code's compile time."""
    from lltools.sampling import compile_cache

    monkeypatch.setenv(compile_cache.LOG_ENV, str(tmp_path / "compile.json"))
    sig = compile_cache.signature("minibatch", "mlp", 64, 10465, torch.float32, "cpu")
    compile_cache.record(sig, 4.0)
    assert compile_cache.expected_seconds(sig) == 4.0
    monkeypatch.setattr(compile_cache, "code_fingerprint", lambda: "00000000")  # the code changed
    again = compile_cache.signature("minibatch", "mlp", 64, 10465, torch.float32, "cpu")
    assert again != sig and compile_cache.expected_seconds(again) is None
