"""Absurd sizes are refused before anything big is allocated.

chains × draws × parameters beyond the memory budget raise :class:`MemoryBudgetError`
at once, for a potential and for a network target, through the API and the CLI; the
message names the estimate, the limit and what to change.  A small budget comes from
``LLTOOLS_MEMORY_LIMIT_BYTES``; the genuinely absurd request (4M chains × 10M steps) is
measured against the real host budget.

"Before allocation" is checked with the process's peak RSS: ``/proc/self/clear_refs``
resets the high-water mark, so ``VmHWM − VmRSS`` afterwards is the peak growth of the
refused call alone (Linux; skipped elsewhere).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import run_cli

from lltools.base import memory
from lltools.base.memory import MemoryBudgetError
from lltools.targets.models import deep_linear_target
from lltools.targets.potentials import potential_target
from lltools.workflows.estimate import MAX_CHAINS, MAX_STEPS, estimate
from lltools.workflows.sweep import sweep

ROOT = Path(__file__).resolve().parents[2]
TINY_MODEL = ROOT / "sample_models" / "deep_linear" / "rrr_6_4_5_r2"
#: A refused call may grow the process's peak RSS by at most this much.
MAX_GROWTH = 32 * 2**20
#: ... and must return within this many seconds (generous: 2 shared cores).
MAX_SECONDS = 2.0
ABSURD = {"chains": 4_000_000, "draws": 10_000_000, "burnin": 0}
UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
MESSAGE = re.compile(
    r"needs about (?P<need>[\d.]+) (?P<need_unit>[KMGTP]?i?B) but only (?P<have>[\d.]+) "
    r"(?P<have_unit>[KMGTP]?i?B) is available on (?P<device>\w+)(?::\d+)?; (?P<hint>.+)"
)


# ----------------------------------------------------------------------------- helpers
def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


@contextlib.contextmanager
def peak_rss_growth() -> Iterator[list[int]]:
    """Yields a list that receives the peak RSS growth (bytes) of the block."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak-RSS high-water mark to the current RSS
        base = _status("VmRSS:")
    except OSError:
        pytest.skip("needs Linux /proc/self/clear_refs to measure peak RSS")
    box: list[int] = []
    try:
        yield box
    finally:
        box.append(_status("VmHWM:") - base)


def refused(call: Callable[[], Any]) -> tuple[str, int, float]:
    """Run ``call``, which must raise MemoryBudgetError; returns (message, peak growth, seconds)."""
    with peak_rss_growth() as growth:
        t0 = time.perf_counter()
        with pytest.raises(MemoryBudgetError) as info:
            call()
        seconds = time.perf_counter() - t0
    return str(info.value), growth[0], seconds


def check_message(message: str, *, at_least: float, limit: float | None, rel: float = 0.05) -> None:
    """The message states an estimate ≥ ``at_least`` bytes, the limit (within ``rel``), and a
    suggestion.  The host budget moves with other processes' memory: compare it loosely."""
    m = MESSAGE.search(message)
    assert m, f"no 'needs about X but only Y is available' in: {message}"
    need = float(m["need"]) * UNITS[m["need_unit"]]
    have = float(m["have"]) * UNITS[m["have_unit"]]
    assert need >= 0.95 * at_least, (
        f"estimate {need:.3g} B is below the trace buffers alone ({at_least:.3g} B)"
    )
    assert need > have
    if limit is not None:
        assert have == pytest.approx(limit, rel=rel), f"limit {have:.3g} B, expected {limit:.3g} B"
    assert m["device"] == "cpu"
    assert "fewer chains" in m["hint"] and "draws" in m["hint"]


def trace_bytes(chains: int, recorded: int, itemsize: int = 4) -> int:
    """The two (chains, recorded steps) trace buffers every run keeps."""
    return 2 * chains * recorded * itemsize


def assert_cheap(growth: int, seconds: float, max_seconds: float = MAX_SECONDS) -> None:
    assert growth < MAX_GROWTH, f"the refused call grew peak RSS by {growth / 2**20:.0f} MiB"
    assert seconds < max_seconds, f"the refusal took {seconds:.2f} s"


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    limit = 2_000_000
    monkeypatch.setenv("LLTOOLS_MEMORY_LIMIT_BYTES", str(limit))
    return limit


@pytest.fixture
def host_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLTOOLS_MEMORY_LIMIT_BYTES", raising=False)


@pytest.fixture(scope="module")
def potential() -> Any:
    return potential_target("x**2 + y**2")


@pytest.fixture(scope="module")
def network() -> Any:
    """A 44-parameter deep linear network (6 → 4 → 5, rank 2) on 200 samples."""
    return deep_linear_target((6, 4, 5), 2, 200, 0)


# ----------------------------------------------------------------------------- API: potentials
def test_potential_over_a_small_limit_is_refused(potential: Any, small_limit: int) -> None:
    message, growth, seconds = refused(
        lambda: estimate(potential, nbeta=100.0, chains=1000, draws=1000, burnin=0, device="cpu")
    )
    check_message(message, at_least=trace_bytes(1000, 1000), limit=small_limit)
    assert "1000 chains × 1000 recorded steps × 2 parameters" in message
    assert_cheap(growth, seconds)
    # The same limit still admits a run that fits: the check is not refusing everything.
    ok = estimate(potential, nbeta=100.0, chains=2, draws=20, burnin=5, device="cpu")
    assert ok.num_chains == 2


def test_absurd_potential_request_is_refused_at_once(potential: Any, host_limit: None) -> None:
    message, growth, seconds = refused(lambda: estimate(potential, nbeta=100.0, device="cpu", **ABSURD))
    check_message(
        message,
        at_least=trace_bytes(ABSURD["chains"], ABSURD["draws"]),
        limit=memory.available_bytes("cpu"),
        rel=0.3,
    )
    assert "TiB" in message or "PiB" in message
    assert_cheap(growth, seconds)


def test_thinning_and_burnin_count_in_the_estimate(potential: Any, small_limit: int) -> None:
    """Burn-in columns are recorded too (every ``thinning``-th step): they count."""
    message, _, _ = refused(
        lambda: estimate(potential, nbeta=100.0, chains=100, draws=2, burnin=20_000, thinning=2, device="cpu")
    )
    recorded = 20_000 // 2 + 2
    assert f"× {recorded} recorded steps" in message
    check_message(message, at_least=trace_bytes(100, recorded), limit=small_limit)


# ----------------------------------------------------------------------------- API: networks
def test_network_activations_too_big_for_one_step_run_in_chain_batches(
    network: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A limit between "traces and state" and "traces + every chain's activations at once" no
    longer refuses the run: the step runs in the largest chain batches that fit, says so, and
    gives the chains of the unsplit run (to float32 rounding: batched matrix products block
    differently at other batch sizes)."""
    chains, draws = 64, 60
    itemsize = network.w_star.element_size()
    everything = memory.sampling_bytes(chains, network.dim, draws, itemsize=itemsize,
                                       extra_per_chain=network.bytes_per_chain)
    resident = (2 * chains * draws + memory.STATE_VECTORS * chains * network.dim) * itemsize
    assert everything > 1.5 * resident, "test premise: activations dominate"
    whole = estimate(network, chains=chains, draws=draws, burnin=0, device="cpu")
    assert whole.trace.meta["chain_batch"] == chains
    limit = (resident + everything) // 2
    monkeypatch.setenv("LLTOOLS_MEMORY_LIMIT_BYTES", str(limit))
    split = estimate(network, chains=chains, draws=draws, burnin=0, device="cpu")
    batch = split.trace.meta["chain_batch"]
    temporaries = memory.WORKING_VECTORS - memory.STATE_VECTORS
    per_chain = temporaries * network.dim * itemsize + network.bytes_per_chain
    assert batch == (limit - resident) // per_chain and 1 <= batch < chains
    err = capsys.readouterr().err
    assert f"batches of at most {batch:,} chains" in err and "do not fit cpu memory" in err
    torch.testing.assert_close(split.trace.loss, whole.trace.loss, rtol=1e-5, atol=1e-7, equal_nan=True)
    assert torch.equal(split.trace.diverged_at, whole.trace.diverged_at)
    # Below the resident part (traces + state) even one chain at a time is refused, cheaply.
    monkeypatch.setenv("LLTOOLS_MEMORY_LIMIT_BYTES", str(resident // 2))
    message, growth, seconds = refused(
        lambda: estimate(network, chains=chains, draws=draws, burnin=0, device="cpu")
    )
    check_message(message, at_least=resident, limit=resident // 2)
    assert f"{chains} chains × {draws} recorded steps × {network.dim} parameters" in message
    assert "one chain at a time" in message
    assert_cheap(growth, seconds)


def test_potential_chain_batches_are_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stepping in chain batches changes nothing for the eager step on a potential: losses,
    acceptances, positions and divergence steps equal the one-batch run bit for bit (half the
    chains have an ε that diverges, so the bookkeeping is exercised)."""
    from lltools.sampling.driver import run
    from lltools.sampling.sgld import make_params

    target = potential_target("x**2 * y**4")
    params = make_params([1e-3, 3e-2] * 50, 1.0, 100.0, 100)
    kwargs = {"num_draws": 50, "num_burnin": 10, "fused": False}
    whole = run(target, params, **kwargs)
    monkeypatch.setenv("LLTOOLS_MEMORY_LIMIT_BYTES", "101000")  # just above traces + positions + state
    split = run(target, params, **kwargs)
    assert 1 < split.meta["chain_batch"] < 100 and whole.meta["chain_batch"] == 100
    assert (whole.diverged_at >= 0).any() and torch.equal(split.diverged_at, whole.diverged_at)
    for name in ("loss", "acceptance", "positions"):
        assert torch.equal(getattr(split, name).nan_to_num(-1.0), getattr(whole, name).nan_to_num(-1.0)), name


def test_absurd_network_request_is_refused_at_once(network: Any, host_limit: None) -> None:
    message, growth, seconds = refused(lambda: estimate(network, device="cpu", **ABSURD))
    check_message(
        message,
        at_least=ABSURD["chains"] * network.bytes_per_chain,
        limit=memory.available_bytes("cpu"),
        rel=0.3,
    )
    assert_cheap(growth, seconds)


# ----------------------------------------------------------------------------- sweeps
def test_sweep_over_a_small_limit_is_refused(potential: Any, small_limit: int) -> None:
    """Every setting's chains count: 3 settings × 400 chains × 1000 draws."""
    message, _, _ = refused(
        lambda: sweep(
            potential,
            epsilon=[1e-3, 2e-3, 3e-3],
            gamma=[1.0],
            nbeta=[100.0],
            chains=400,
            draws=1000,
            burnin=0,
            device="cpu",
        )
    )
    assert "1200 chains" in message
    check_message(message, at_least=trace_bytes(1200, 1000), limit=small_limit)


def test_absurd_sweep_is_refused_before_allocation(potential: Any, host_limit: None) -> None:
    message, growth, seconds = refused(
        lambda: sweep(
            potential,
            epsilon=[1e-3, 2e-3],
            gamma=[1.0],
            nbeta=[100.0],
            chains=ABSURD["chains"] // 2,
            draws=ABSURD["draws"],
            burnin=0,
            device="cpu",
        )
    )
    check_message(message, at_least=trace_bytes(ABSURD["chains"], ABSURD["draws"]), limit=None)
    assert_cheap(growth, seconds)


# ----------------------------------------------------------------------------- hard ceilings
@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ({"chains": MAX_CHAINS + 1, "draws": 2, "burnin": 0}, [str(MAX_CHAINS), str(MAX_CHAINS + 1)]),
        (
            {"chains": 1, "draws": MAX_STEPS, "burnin": 1},
            [f"{MAX_STEPS:,}", f"{MAX_STEPS + 1:,}", "fewer draws"],
        ),
        ({"chains": 1, "draws": 10**12, "burnin": 0, "thinning": 10**6}, [f"{10**18:,}", f"{MAX_STEPS:,}"]),
    ],
)
def test_counts_beyond_the_hard_ceilings_name_request_and_limit(
    potential: Any, host_limit: None, kwargs: dict[str, int], needles: list[str]
) -> None:
    with peak_rss_growth() as growth, pytest.raises(ValueError) as info:
        estimate(potential, nbeta=100.0, device="cpu", **kwargs)
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    assert growth[0] < MAX_GROWTH


# ----------------------------------------------------------------------------- CLI
def cli_refusal(*args: str) -> tuple[str, int, float]:
    run_cli("estimate", "--potential", "w1**2", "--chains", "0")  # warm up: imports, typer
    with peak_rss_growth() as growth:
        t0 = time.perf_counter()
        proc = run_cli(*args, "--no-progress", "--device", "cpu")
        code, out, err = proc.returncode, proc.stdout, proc.stderr
        seconds = time.perf_counter() - t0
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0], growth[0], seconds


def test_cli_potential_over_a_small_limit(small_limit: int) -> None:
    line, growth, _ = cli_refusal(
        "estimate", "--potential", "x**2 + y**2", "--chains", "1000", "--draws", "1000", "--burnin", "0"
    )
    check_message(line, at_least=trace_bytes(1000, 1000), limit=small_limit)
    assert growth < MAX_GROWTH


@pytest.mark.parametrize(
    ("target_args", "dim_text"),
    [(("--potential", "x**2 + y**2"), "× 2 parameters"), (("--model", str(TINY_MODEL)), "× 44 parameters")],
    ids=["potential", "network-model"],
)
def test_cli_absurd_request_is_refused(host_limit: None, target_args: tuple[str, str], dim_text: str) -> None:
    line, growth, seconds = cli_refusal(
        "estimate", *target_args, "--chains", str(ABSURD["chains"]), "--draws", str(ABSURD["draws"]),
        "--burnin", "0",
    )
    check_message(
        line,
        at_least=trace_bytes(ABSURD["chains"], ABSURD["draws"]),
        limit=memory.available_bytes("cpu"),
        rel=0.3,
    )
    assert dim_text in line
    assert_cheap(growth, seconds, max_seconds=4 * MAX_SECONDS)  # the CLI also parses, builds the target


def test_cli_sweep_over_a_small_limit(small_limit: int, tmp_path: Path) -> None:
    line, _, _ = cli_refusal(
        "sweep",
        "--potential",
        "x**2 + y**2",
        "--epsilon",
        "1e-3,2e-3",
        "--chains",
        "500",
        "--draws",
        "1000",
        "--burnin",
        "0",
        "--out",
        str(tmp_path / "s.csv"),
    )
    check_message(line, at_least=trace_bytes(1000, 1000), limit=small_limit)
    assert not (tmp_path / "s.csv").exists()
