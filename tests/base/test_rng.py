"""Counter-based per-chain random streams (lltools.base.rng).

Statistical checks use fixed seeds and tolerances of 5 standard errors (a false alarm has
probability ~6e-7 per check); distribution tests require p > 0.001.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lltools.base import rng

N_CHAINS = 64
N_DRAWS = 20_000  # per chain: 1.28M values per test


def _keys(seed: int = 0, num_chains: int = N_CHAINS) -> torch.Tensor:
    return rng.chain_keys(seed, torch.arange(num_chains))


# ---------------------------------------------------------------------------- the hash
def test_hash32_matches_pure_python_reference() -> None:
    """The tensor hash equals the Python-int reference, including words whose product with
    0x846CA68B overflows int64 (x > 2^63 / 0x846CA68B ≈ 4.15e9) and negative/over-wide
    inputs, which both implementations reduce mod 2^32 first."""
    gen = np.random.default_rng(12345)
    values = np.concatenate(
        [
            np.array([0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 4_151_000_000, 2**32, -1, -(2**40)]),
            gen.integers(0, 2**32, size=20_000),
            gen.integers(4_150_000_000, 2**32, size=5_000),  # the overflow range
            gen.integers(-(2**62), 2**62, size=5_000),
        ]
    ).astype(np.int64)
    got = rng._hash32(torch.from_numpy(values)).tolist()
    want = [rng._hash_int(int(v)) for v in values]
    assert got == want
    assert all(0 <= g < 2**32 for g in got)


def test_hash_int_known_values() -> None:
    """Pin lowbias32 (Wellons; constants 0x7feb352d, 0x846ca68b): hash(0) = 0, and fixed
    outputs so that a change of constants or shifts (which would silently change every
    stream) is caught."""
    assert rng._hash_int(0) == 0
    assert [rng._hash_int(v) for v in (1, 2, 3, 0xDEADBEEF)] == [
        0x688990C0, 0xD1132181, 0x53F1E9DD, 0xE628C683
    ]


def _counters_reference(key: int, step: int, stream: int, size: int) -> list[int]:
    h = rng._hash_int
    step_word = h(h(step & rng._MASK) ^ (stream * 0x27D4EB2F) ^ ((step >> 32) & rng._MASK))
    base = h(key ^ step_word)
    return [h(h(base + j * rng._GOLDEN)) for j in range(size)]


@pytest.mark.parametrize("step", [0, 7, 2**31 + 5, 2**40 + 3])
def test_counters_and_keys_match_reference(step: int) -> None:
    chain_index = torch.tensor([0, 1, 5, 1000, 2**20])
    keys = rng.chain_keys(42, chain_index)
    s = rng._hash_int(rng._hash_int(42) ^ 0x5BD1E995)
    assert keys.tolist() == [rng._hash_int((int(i) * rng._GOLDEN) ^ s) for i in chain_index]
    got = rng._counters(keys, step, rng.STREAM_BATCH, 37).tolist()
    want = [_counters_reference(int(k), step, rng.STREAM_BATCH, 37) for k in keys]
    assert got == want


# ---------------------------------------------------------------------------- uniforms
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_uniform_open_interval_mean_variance(dtype: torch.dtype) -> None:
    u = rng.uniform(_keys(), 3, rng.STREAM_NOISE, N_DRAWS, dtype).double()
    assert u.shape == (N_CHAINS, N_DRAWS)
    assert ((u > 0) & (u < 1)).all()
    n = u.numel()
    assert abs(u.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    # Var of (U − ½)² is 1/80 − 1/144 = 1/180.
    assert abs(((u - 0.5) ** 2).mean().item() - 1 / 12) < 5 * math.sqrt(1 / 180 / n)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_uniform_extreme_words_stay_inside(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype) -> None:
    """The extreme 32-bit words map strictly inside (0, 1) in every dtype (float32 used to
    round the top words to exactly 1.0)."""
    words = torch.tensor([[0, 1, 2**31, 2**32 - 129, 2**32 - 128, 2**32 - 1]])
    monkeypatch.setattr(rng, "_counters", lambda *args: words)
    u = rng.uniform(torch.zeros(1, dtype=torch.int64), 0, 0, 6, dtype)
    assert ((u > 0) & (u < 1)).all(), u
    assert torch.isfinite(rng.normal(torch.zeros(1, dtype=torch.int64), 0, 0, 6, dtype)).all()


# ---------------------------------------------------------------------------- normals
@pytest.mark.parametrize(("seed", "size"), [(0, N_DRAWS), (1, N_DRAWS + 1)])
def test_normal_moments_and_ks(seed: int, size: int) -> None:
    z = rng.normal(_keys(seed), 11, rng.STREAM_NOISE, size, torch.float64)
    assert z.shape == (N_CHAINS, size)
    n = z.numel()
    assert abs(z.mean().item()) < 5 / math.sqrt(n)
    assert abs(z.var().item() - 1.0) < 5 * math.sqrt(2 / n)
    flat = z.reshape(-1).numpy()
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    # Each Box–Muller half separately (cos and sin branches), and the 4th moment (= 3).
    half = (size + 1) // 2
    assert stats.kstest(z[:, :half].reshape(-1).numpy(), "norm").pvalue > 1e-3
    assert stats.kstest(z[:, half:].reshape(-1).numpy(), "norm").pvalue > 1e-3
    assert abs((flat**4).mean() - 3.0) < 5 * math.sqrt(96 / n)


def test_normal_float32_close_to_float64() -> None:
    keys = _keys(3, 8)
    z32 = rng.normal(keys, 5, rng.STREAM_NOISE, 1001, torch.float32).double()
    z64 = rng.normal(keys, 5, rng.STREAM_NOISE, 1001, torch.float64)
    assert torch.allclose(z32, z64, atol=1e-4)


# ---------------------------------------------------------------------------- integers
@pytest.mark.parametrize("high", [1, 7, 10, 1000])
def test_randint_range_and_uniformity(high: int) -> None:
    r = rng.randint(_keys(), 2, rng.STREAM_BATCH, 5_000, high)
    assert r.dtype == torch.int64
    assert int(r.min()) >= 0 and int(r.max()) < high
    counts = np.bincount(r.reshape(-1).numpy(), minlength=high)
    assert counts.shape == (high,)
    if high > 1:
        assert stats.chisquare(counts).pvalue > 1e-3


def test_randint_rejects_nonpositive_high() -> None:
    with pytest.raises(ValueError, match="positive"):
        rng.randint(_keys(), 0, rng.STREAM_BATCH, 4, 0)


# ---------------------------------------------------------------------------- streams
def test_chain_streams_uncorrelated() -> None:
    """Pairwise correlations of 32 chains' normals are ~N(0, 1/n): all within 5/√n, and
    their spread matches 1/√n (a shared stream would give correlations near 1)."""
    z = rng.normal(_keys(7, 32), 0, rng.STREAM_NOISE, N_DRAWS, torch.float64).numpy()
    corr = np.corrcoef(z)
    off = corr[~np.eye(32, dtype=bool)]
    assert np.abs(off).max() < 5 / math.sqrt(N_DRAWS)
    assert 0.8 < off.std() * math.sqrt(N_DRAWS) < 1.2


def test_steps_streams_and_seeds_differ_and_are_uncorrelated() -> None:
    keys = _keys(0, 16)
    base = rng.normal(keys, 0, rng.STREAM_NOISE, N_DRAWS, torch.float64).reshape(-1)
    others = [
        rng.normal(keys, 1, rng.STREAM_NOISE, N_DRAWS, torch.float64),
        rng.normal(keys, 0, rng.STREAM_BATCH, N_DRAWS, torch.float64),
        rng.normal(keys, 0, rng.STREAM_INIT, N_DRAWS, torch.float64),
        rng.normal(_keys(1, 16), 0, rng.STREAM_NOISE, N_DRAWS, torch.float64),
    ]
    n = base.numel()
    for other in others:
        r = np.corrcoef(base.numpy(), other.reshape(-1).numpy())[0, 1]
        assert abs(r) < 5 / math.sqrt(n)


def test_chain_draws_do_not_depend_on_batch_neighbours() -> None:
    """Chain k's numbers depend only on its key: the same in any batch composition."""
    keys = rng.chain_keys(5, torch.arange(10))
    full = rng.normal(keys, 9, rng.STREAM_NOISE, 33, torch.float32)
    for subset in ([3], [9, 0], [4, 5, 6]):
        part = rng.normal(keys[subset], 9, rng.STREAM_NOISE, 33, torch.float32)
        assert torch.equal(part, full[subset])
    # Keys depend on the chain index within its setting, not on its position in the batch.
    assert torch.equal(rng.chain_keys(5, torch.tensor([2, 2, 7]))[[0, 2]], keys[[2, 7]])


def test_deterministic() -> None:
    a = rng.uniform(_keys(3), 4, rng.STREAM_NOISE, 100, torch.float64)
    b = rng.uniform(_keys(3), 4, rng.STREAM_NOISE, 100, torch.float64)
    assert torch.equal(a, b)


@pytest.mark.parametrize("step", [0, 7, 2**31 + 5, 2**40 + 3])
def test_normal_pair_words_match_the_splitmix64_reference(step: int) -> None:
    """Each pair of normals comes from SplitMix64((lowbias32(key ^ word) << 32) + j·φ₆₄),
    checked bit for bit against a pure-Python reference (unsigned arithmetic), in both
    layouts; the chain-minor normals are the transposed chain-major ones."""
    keys = rng.chain_keys(42, torch.tensor([0, 1, 5, 1000, 2**20]))
    word = rng.step_word(step, rng.STREAM_NOISE)
    want = [[rng._signed64(rng._mix64_int((rng._hash_int(int(k) ^ word) << 32) + j * 0x9E3779B97F4A7C15))
             for j in range(9)] for k in keys]
    assert rng.pair_words(keys, word, 9).tolist() == want
    assert rng.pair_words(keys, word, 9, chain_minor=True).t().tolist() == want
    z = rng.normal(keys, step, rng.STREAM_NOISE, 17, torch.float64)
    assert torch.equal(rng.normal_chain_minor(keys, torch.tensor(word), 17, torch.float64), z.t())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("chains", "size"), [(1, 1), (8, 2), (13, 3), (8, 75), (3, 1000)])
def test_normal_block_rows_are_the_per_step_normals(chains: int, size: int, dtype: torch.dtype) -> None:
    """Drawing K steps at once changes no number: row k is step first + k's draw, exactly."""
    keys = rng.chain_keys(7, torch.arange(chains))
    block = rng.normal_block(keys, 1_000, 37, rng.STREAM_NOISE, size, dtype)
    assert block.shape == (37, chains, size)
    for k in range(37):
        assert torch.equal(block[k], rng.normal(keys, 1_000 + k, rng.STREAM_NOISE, size, dtype)), k


def test_normal_blocks_serve_every_step_and_stop_at_the_last() -> None:
    keys = rng.chain_keys(3, torch.arange(8))
    blocks = rng.NormalBlocks(keys, rng.STREAM_NOISE, 2, torch.float32, last_step=300, max_steps=64)
    assert blocks.steps_per_block == 64
    for t in range(0, 290):
        assert torch.equal(blocks.at(t), rng.normal(keys, t, rng.STREAM_NOISE, 2, torch.float32)), t
    assert blocks._block is not None and blocks._first + blocks._block.shape[0] == 300  # not past it
    for t in (5, 299, 290):  # a step drawn before, the last, one in between: each still exact
        assert torch.equal(blocks.at(t), rng.normal(keys, t, rng.STREAM_NOISE, 2, torch.float32)), t
    big = rng.NormalBlocks(keys, rng.STREAM_NOISE, 10_000, torch.float32, last_step=300)
    assert big.steps_per_block == 1  # a network's step fills a block by itself: drawn per step


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_box_muller_reads_the_same_halves_through_the_unsigned_view(dtype: torch.dtype) -> None:
    """The eager path reads each word's 32-bit halves through a uint32 view; the shift-and-mask
    path (compiled steps, non-contiguous words) gives the same normals bit for bit."""
    keys = rng.chain_keys(11, torch.arange(9))
    words = rng.pair_words(keys, rng.step_word(5, rng.STREAM_NOISE), 333)
    strided = torch.empty((9, 2 * 333), dtype=torch.int64)[:, ::2]
    strided.copy_(words)  # the same words, not contiguous: the shift-and-mask path
    assert not strided.is_contiguous()
    assert torch.equal(rng._pair_normals(words, 665, dtype, 1), rng._pair_normals(strided, 665, dtype, 1))
