"""Where the time of one SGLD step on a 2-D potential goes, at 65 536 chains (CPU).

Measures process CPU time per call (robust on a shared machine) of the pieces of
:func:`lltools.sampling.sgld.step` and of the run loop, eager and compiled:

- ``rng.normal`` for (C, 2) — the counter-based hash, with the previous out-of-place
  ``_hash32`` (reconstructed here) and the current in-place one (bit-identical numbers);
- ``target.loss_and_grad`` (autograd);
- the whole eager step, and the compiled step (:class:`lltools.sampling.compiled.FusedPotentialStep`);
- writing one recorded column of a (C, T) trace buffer directly (the old loop) vs staging
  16 rows and copying them as a block (the current loop);
- the whole loop (:func:`lltools.sampling.driver.run`, 200 steps), eager and compiled.

Each configuration runs in a child process twice: with the glibc allocator tweak of
:func:`lltools.base.memory.tune_host_allocator` and without it (``LLTOOLS_MALLOPT=0``) — the
tweak is process-wide, so the comparison needs separate processes.

Run:  python benchmarks/profile_step.py [--quick] [--threads N] [--chains C]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from common import base_parser, print_header, print_table, write_csv

from lltools.base import memory, rng
from lltools.sampling import compiled as fused
from lltools.sampling import sgld
from lltools.sampling.driver import run
from lltools.sampling.sgld import make_params
from lltools.targets.potentials import potential_target

_MASK = 0xFFFFFFFF


def _hash32_out_of_place(x: torch.Tensor) -> torch.Tensor:
    """The previous implementation of ``rng._hash32`` (same numbers, fresh tensor per op)."""
    x = x & _MASK
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK
    return x ^ (x >> 16)


def _normal_out_of_place(keys: torch.Tensor, step: int, size: int, dtype: torch.dtype) -> torch.Tensor:
    word = rng.step_word(step, rng.STREAM_NOISE)
    base = _hash32_out_of_place(keys ^ word)
    j = torch.arange(2 * ((size + 1) // 2), dtype=torch.int64) * rng._GOLDEN
    h = _hash32_out_of_place(_hash32_out_of_place(base[:, None] + j[None, :]))
    return rng._box_muller(rng._unit_interval(h, dtype), size)


def cpu_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Best-of-3 mean process CPU milliseconds per call."""
    fn()
    best = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        for _ in range(repeats):
            fn()
        best = min(best, (time.process_time() - c0) / repeats * 1e3)
    return best


def child(chains: int, quick: bool) -> list[dict[str, Any]]:
    tuned = memory.tune_host_allocator("cpu")
    target = potential_target("x**2 + y**2")
    params = make_params(1e-3, 1.0, 100.0, chains)
    keys = rng.chain_keys(0, torch.arange(chains))
    state = sgld.init(target, params, keys)
    reps = 10 if quick else 40
    rows: list[tuple[str, float]] = []
    with torch.no_grad():
        rows.append(("rng.normal, out-of-place hash (old)", cpu_ms(
            lambda: _normal_out_of_place(keys, 3, 2, torch.float32), reps)))
        rows.append(("rng.normal, in-place hash (current)", cpu_ms(
            lambda: rng.normal(keys, 3, rng.STREAM_NOISE, 2, torch.float32), reps)))
        rows.append(("target.loss_and_grad (autograd)", cpu_ms(lambda: target.loss_and_grad(state.w), reps)))
        rows.append(("sgld.step (eager, with acceptance)",
                     cpu_ms(lambda: sgld.step(state, target, params), reps)))
        step = fused.FusedPotentialStep(target)
        s2 = [state]

        def fused_step() -> None:
            s2[0], _ = step(s2[0], target, params)

        fused_step()
        rows.append(("FusedPotentialStep (compiled, with acceptance)", cpu_ms(fused_step, reps)))
        buf = torch.empty(chains, 256)
        col = [0]
        x = torch.randn(chains)

        def column() -> None:
            buf[:, col[0] % 256] = x
            col[0] += 1

        stage = torch.empty(16, chains)

        def staged() -> None:
            i = col[0] % 16
            stage[i] = x
            if i == 15:
                start = (col[0] - 15) % 240
                buf[:, start:start + 16] = stage.t()
            col[0] += 1

        rows.append(("trace column write, direct (old loop)", cpu_ms(column, reps * 4)))
        rows.append(("trace column write, staged ×16 (current loop)", cpu_ms(staged, reps * 4)))
    steps = 50 if quick else 200
    for mode in ("eager", "compiled"):
        use = mode == "compiled"
        run(target, params, num_draws=2, fused=use, record_positions=False)
        c0 = time.process_time()
        run(target, params, num_draws=steps, fused=use, record_positions=False)
        per_step = (time.process_time() - c0) / steps * 1e3
        rows.append((f"run loop per step ({mode}, {steps} steps)", per_step))
    return [{"component": name, "cpu_ms": ms, "chain_steps_per_cpu_s": chains / (ms / 1e3)
             if name.startswith(("sgld.step", "Fused", "run loop")) else None, "mallopt": tuned}
            for name, ms in rows]


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0], "profile_step.csv")
    parser.add_argument("--chains", type=int, default=65_536)
    parser.add_argument("--child", action="store_true", help=argparse_hidden())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or 1)
    if args.child:
        print(json.dumps(child(args.chains, args.quick)))
        return 0
    info = print_header(f"profile_step: one SGLD step of x²+y² at {args.chains:,} chains (CPU time)",
                        {"threads_used": args.threads or 1})
    results: dict[bool, list[dict[str, Any]]] = {}
    for tweak in (True, False):
        env = dict(os.environ, LLTOOLS_MALLOPT="1" if tweak else "0")
        cmd = [sys.executable, __file__, "--child", "--chains", str(args.chains), "--threads",
               str(args.threads or 1)] + (["--quick"] if args.quick else [])
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        results[tweak] = json.loads(out.stdout.strip().splitlines()[-1])
    rows = []
    for on, off in zip(results[True], results[False], strict=True):
        rows.append({"component": on["component"], "cpu_ms_mallopt": on["cpu_ms"],
                     "cpu_ms_default": off["cpu_ms"], "chain_steps_per_cpu_s": on["chain_steps_per_cpu_s"]})
    print_table(rows)
    write_csv(rows, args.out, info)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
