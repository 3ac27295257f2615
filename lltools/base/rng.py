"""Counter-based random numbers: one independent stream per chain, vectorised.

Why not one ``torch.Generator`` for the whole batch?  Then chain c's noise would depend on
how many chains share the batch, and a hyperparameter grid run as one batch could never
reproduce the same settings run one by one.  Here every random number is a pure function
``hash(seed, chain key, step, stream, element)`` (like JAX's split keys or Philox), so

- a chain's draws depend only on its key, never on its neighbours in the batch;
- runs are bit-for-bit reproducible on the same device, and on CPU vs CUDA up to the
  floating-point transforms (the integer hashing is identical);
- every setting of a sweep sees the same noise for its chain k (common random numbers),
  which lowers the variance of differences between settings.

The hash is a 32-bit integer finaliser (``lowbias32``, Wellons) evaluated in int64
tensors and masked to 32 bits; uniforms have 2⁻³² resolution.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_MASK = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9

# Streams: separate purposes draw from disjoint counters.
STREAM_NOISE = 0
STREAM_BATCH = 1
STREAM_INIT = 2


def _hash32(x: Tensor) -> Tensor:
    """lowbias32 on an int64 tensor holding values in [0, 2³²); returns the same range.

    The first mask makes a fresh tensor, so the rest runs in place (fewer allocations of
    (C, size) int64 temporaries, the same numbers).
    """
    x = x & _MASK
    x ^= x >> 16
    x.mul_(0x7FEB352D).bitwise_and_(_MASK)
    x ^= x >> 15
    x.mul_(0x846CA68B).bitwise_and_(_MASK)  # int64 wraps; the low 32 bits are exact
    x ^= x >> 16
    return x


def _hash_int(value: int) -> int:
    """The same hash on a Python int (reference implementation, also used for seeds)."""
    x = value & _MASK
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _MASK
    x ^= x >> 15
    x = (x * 0x846CA68B) & _MASK
    return x ^ (x >> 16)


def chain_keys(seed: int, chain_index: Tensor) -> Tensor:
    """Per-chain keys, shape (C,), from a run seed and each chain's index.

    Parameters
    ----------
    seed : int
        The run's seed.
    chain_index : Tensor, shape (C,), int64
        The index of each chain *within its hyperparameter setting* (0..chains-1), so that
        chain k of every setting in a sweep has the same stream as chain k of a single run.
    """
    s = _hash_int(_hash_int(seed) ^ 0x5BD1E995)
    return _hash32((chain_index.to(torch.int64) * _GOLDEN) ^ s)


def step_word(step: int, stream: int) -> int:
    """The 32-bit word that a (step, stream) pair mixes into every chain's key."""
    return _hash_int(_hash_int(step & _MASK) ^ (stream * 0x27D4EB2F) ^ ((step >> 32) & _MASK))


def counters_from_word(keys: Tensor, word: int | Tensor, size: int) -> Tensor:
    """Hashed counters, shape (C, size), int64 in [0, 2³²), for a :func:`step_word`.

    ``word`` may be a 0-d int64 tensor (so a compiled step does not specialise on the step).
    """
    base = _hash32(keys ^ word)  # (C,)
    j = torch.arange(size, device=keys.device, dtype=torch.int64) * _GOLDEN
    return _hash32(_hash32(base[:, None] + j[None, :]))


def _counters(keys: Tensor, step: int, stream: int, size: int) -> Tensor:
    """Hashed counters, shape (C, size), int64 in [0, 2³²)."""
    return counters_from_word(keys, step_word(step, stream), size)


def _unit_interval(h: Tensor, dtype: torch.dtype) -> Tensor:
    """32-bit words (int64 in [0, 2³²)) -> floats strictly inside (0, 1)."""
    u = (h.to(dtype) + 0.5) * (1.0 / 4294967296.0)
    info = torch.finfo(dtype)
    return u.clamp_(min=info.tiny, max=1.0 - info.eps / 2)


def _box_muller(u: Tensor, size: int) -> Tensor:
    """Uniforms (C, 2·⌈size/2⌉) -> standard normals (C, size)."""
    half = u.shape[1] // 2
    radius = torch.sqrt(-2.0 * torch.log(u[:, :half]))
    angle = (2.0 * math.pi) * u[:, half:]
    z = torch.cat((radius * torch.cos(angle), radius * torch.sin(angle)), dim=1)
    return z[:, :size]


def uniform(keys: Tensor, step: int, stream: int, size: int, dtype: torch.dtype) -> Tensor:
    """Uniform draws in the open interval (0, 1), shape (C, size).

    In float32 the top words round to exactly 1.0 (and in float16 the bottom ones to 0), so
    the result is clamped to the largest/smallest representable values inside (0, 1).
    """
    return _unit_interval(_counters(keys, step, stream, size), dtype)


def uniform_from_word(keys: Tensor, word: int | Tensor, size: int, dtype: torch.dtype) -> Tensor:
    """:func:`uniform` for a precomputed :func:`step_word` (may be a 0-d int64 tensor)."""
    return _unit_interval(counters_from_word(keys, word, size), dtype)


def normal(keys: Tensor, step: int, stream: int, size: int, dtype: torch.dtype) -> Tensor:
    """Standard normal draws, shape (C, size), by the Box–Muller transform."""
    return _box_muller(uniform(keys, step, stream, 2 * ((size + 1) // 2), dtype), size)


def normal_from_word(keys: Tensor, word: int | Tensor, size: int, dtype: torch.dtype) -> Tensor:
    """:func:`normal` for a precomputed :func:`step_word` (may be a 0-d int64 tensor)."""
    return _box_muller(uniform_from_word(keys, word, 2 * ((size + 1) // 2), dtype), size)


def normal_chain_minor(keys: Tensor, word: Tensor | int, size: int, dtype: torch.dtype) -> Tensor:
    """:func:`normal_from_word` transposed: shape (size, C), the same numbers.

    The counters are the same hashes of ``keys[c]``, ``word`` and element ``j``, laid out
    with the chain index innermost so that a compiled kernel vectorises along the chains.
    """
    half = (size + 1) // 2
    base = _hash32(keys ^ word)  # (C,)
    j = torch.arange(2 * half, device=keys.device, dtype=torch.int64) * _GOLDEN
    u = _unit_interval(_hash32(_hash32(base[None, :] + j[:, None])), dtype)  # (2h, C)
    radius = torch.sqrt(-2.0 * torch.log(u[:half]))
    angle = (2.0 * math.pi) * u[half:]
    z = torch.cat((radius * torch.cos(angle), radius * torch.sin(angle)), dim=0)
    return z[:size]


def randint(keys: Tensor, step: int, stream: int, size: int, high: int) -> Tensor:
    """Integers uniform in [0, high), shape (C, size), int64 (for minibatch indices)."""
    if high <= 0:
        raise ValueError("high must be positive")
    h = _counters(keys, step, stream, size)
    # Multiply-shift maps 32-bit words to [0, high) with negligible bias for high << 2^32.
    return (h * high) >> 32
