"""CUDA paths (run by ``benchmarks/gpu_check.sh`` on a CUDA machine; skipped elsewhere).

lltools' noise is counter-based (:mod:`lltools.base.rng`): the same seed gives the same
noise on every device, so a float64 run on CUDA must reproduce the CPU run to rounding —
a stronger check than "λ̂ is plausible". Each test compares CUDA against CPU (or eager
against compiled) on the same chains.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import lltools
from lltools.base import memory

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(nbeta=100.0, gamma=1.0, epsilon=1e-3, chains=64, draws=400, burnin=100, seed=3)


def _llc(device: str, spec: str = "x**2 * y**4", **overrides: object) -> lltools.EstimateResult:
    target = lltools.potential_target(spec)
    return lltools.estimate(target, **{**SETTINGS, "device": device, "dtype": "float64", **overrides})


def test_potential_on_cuda_reproduces_cpu() -> None:
    cpu, gpu = _llc("cpu"), _llc("cuda")
    assert gpu.trace.loss.device.type in ("cuda", "cpu")
    assert abs(gpu.llc_mean - cpu.llc_mean) < 1e-8 * max(1.0, abs(cpu.llc_mean))


def test_compiled_step_on_cuda_matches_eager() -> None:
    eager, fused = _llc("cuda", fused=False), _llc("cuda", fused=True)
    assert abs(fused.llc_mean - eager.llc_mean) < 1e-6 * max(1.0, abs(eager.llc_mean))


def test_network_on_cuda_reproduces_cpu() -> None:
    folder = ROOT / "sample_models" / "deep_linear" / "dln_8_6_6_4_r2"
    results = []
    for device in ("cpu", "cuda"):
        target = lltools.load_sample_model(folder, device=device, dtype=torch.float64)
        results.append(lltools.estimate(target, nbeta=50.0, gamma=100.0, epsilon=1e-4, chains=8, draws=200,
                                        burnin=50, batch_size=64, seed=1, device=device, dtype="float64"))
    cpu, gpu = results
    assert abs(gpu.llc_mean - cpu.llc_mean) < 1e-6 * max(1.0, abs(cpu.llc_mean))


def test_cuda_free_memory_is_read() -> None:
    free = memory.available_bytes("cuda")
    total = torch.cuda.get_device_properties(0).total_memory
    assert 0 < free <= total
