"""Compile ahead (issue 13.17): the background warm-up of the toy run's compiled step, the page
using it only where it is built, and the progress bar saying when a run compiles first."""

from __future__ import annotations

import pytest

from dashboard import running as live_ui
from dashboard import warmup
from lltools.sampling import compile_cache
from lltools.targets.models import deep_linear_target
from lltools.targets.potentials import potential_target
from tests.app.conftest import assert_healthy, page, settle


def test_starting_text_says_when_the_step_compiles() -> None:
    net = deep_linear_target((4, 3, 2), rank=1, n=200, batch_size=32, seed=0)
    assert net.kernel_kind == "minibatch"
    text = live_ui.starting_text(net, 8, 1000, fused=True)
    assert "compiling" in text and "about 25 s" in text  # a cold compile: nothing remembered yet
    assert live_ui.starting_text(net, 8, 1000, fused=False) == "starting…"
    # once this step has compiled here, the estimate is what it took (the core's record)
    sig = compile_cache.signature("minibatch", net.name, 8, net.dim, net.dtype, net.device)
    compile_cache.record(sig, 7.2)
    assert "about 7 s" in live_ui.starting_text(net, 8, 1000, fused=True)
    toy = potential_target("x**2 + y**2", device="cpu")
    assert live_ui.starting_text(toy, 8, 2500) == "starting…"  # short runs stay eager: nothing to compile


def test_warmth_is_per_potential_and_chain_count() -> None:
    state = warmup.Warmth()
    state.mark("x**2 + y**2", 8)
    assert state.is_warm("x**2 + y**2", 8)
    assert not state.is_warm("x**2 + y**2", 4)
    assert not state.is_warm("x**4 + y**4", 8)


def test_warm_up_off_by_environment(monkeypatch) -> None:
    monkeypatch.delenv(warmup.WARMUP_ENV, raising=False)
    assert not warmup.enabled()  # opt-in (see warmup.enabled)
    monkeypatch.setenv(warmup.WARMUP_ENV, "0")
    assert not warmup.enabled()
    monkeypatch.setenv(warmup.WARMUP_ENV, "1")
    assert warmup.enabled()


@pytest.mark.slow
def test_toy_page_uses_the_warmed_step_and_only_that(monkeypatch) -> None:
    """After the warm-up of (x² + y², 7 chains) a 7-chain run uses the compiled step; a 5-chain
    run (not warmed: it would compile on the click) stays eager.  (Chain counts no other test
    uses: a step compiled in this process is also what the default choice then picks.)"""
    spec = "x**2 + y**2"
    state = warmup.Warmth()  # this test's own: the other tests' tiny runs stay eager
    monkeypatch.setattr(warmup, "warmth", lambda: state)
    warmup.warm_potential(spec, 7, state)  # what the router starts in the background
    assert warmup.fused_for(spec, 7) is True and warmup.fused_for(spec, 5) is None
    for chains, step in ((7, "compiled step"), (5, "eager step")):
        at = settle(page("toy").run())
        at.session_state["toy.chains"] = chains
        at.session_state["toy.draws"] = 60
        at.session_state["toy.burnin"] = 20
        at.run()
        at.button(key="toy.run").click().run()
        assert_healthy(at)
        captions = " ".join(c.value for c in at.caption)
        assert step in captions, captions
