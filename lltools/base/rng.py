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

Uniforms and integers (minibatch indices) hash each counter twice with a 32-bit integer
finaliser (``lowbias32``, Wellons) evaluated in int64 tensors and masked to 32 bits;
uniforms have 2⁻³² resolution.  Normals — one per parameter per chain per step, the bulk of
the work — are cheaper: each *pair* comes from one 64-bit SplitMix64 finaliser (Steele,
Lea & Flood 2014; it passes BigCrush on sequential counters) of the counter
(chain word << 32) + j·φ₆₄, whose high and low 32 bits are the two uniforms of one
Box–Muller transform: ~15 integer operations per two normals instead of ~46.  int64 tensor
multiplication wraps modulo 2⁶⁴, which is exactly the arithmetic the finaliser needs; right
shifts are arithmetic in torch, so each one is masked to a logical shift.
"""

from __future__ import annotations

import math
import sys

import torch
from torch import Tensor

_MASK = 0xFFFFFFFF
_LITTLE_ENDIAN = sys.byteorder == "little"
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


def _signed64(value: int) -> int:
    """A 64-bit word as the int64 value with the same bits."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN64 = _signed64(0x9E3779B97F4A7C15)
_MIX64_A = _signed64(0xBF58476D1CE4E5B9)
_MIX64_B = _signed64(0x94D049BB133111EB)


def _mix64(x: Tensor) -> Tensor:
    """SplitMix64's finaliser on int64 words, in place (``x`` must be a fresh tensor).

    ``z ^= z >>> 30; z *= A; z ^= z >>> 27; z *= B; z ^= z >>> 31`` with ``>>>`` the
    logical shift (torch's ``>>`` sign-extends, hence the masks)."""
    x ^= (x >> 30) & ((1 << 34) - 1)
    x.mul_(_MIX64_A)
    x ^= (x >> 27) & ((1 << 37) - 1)
    x.mul_(_MIX64_B)
    x ^= (x >> 31) & ((1 << 33) - 1)
    return x


def _mix64_int(value: int) -> int:
    """The same finaliser on a Python int (the reference for tests)."""
    m = (1 << 64) - 1
    z = value & m
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & m
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def pair_words(keys: Tensor, word: int | Tensor, half: int, *, chain_minor: bool = False) -> Tensor:
    """64-bit words for ``half`` normal pairs per chain: shape (C, half), or (half, C) when
    ``chain_minor``; int64 holding the bits of SplitMix64((base << 32) + j·φ₆₄) with
    base = lowbias32(key ^ word)."""
    base = _hash32(keys ^ word)  # (C,), or (K, C) for keys (1, C) and words (K, 1); in [0, 2³²)
    j = torch.arange(half, device=keys.device, dtype=torch.int64)
    if torch.compiler.is_compiling():
        # torch 2.13's inductor folds ``arange · constant`` into its int64 index arithmetic,
        # which overflows for φ₆₄ and corrupts the heap (the process aborts); adding a
        # data-dependent zero keeps j a value.  Same numbers.
        j = j + (base[:1] & 0)
    j = j * _GOLDEN64
    counters = (base[None, :] << 32) + j[:, None] if chain_minor else (base[..., None] << 32) + j
    return _mix64(counters)


def _pair_normals(h: Tensor, size: int, dtype: torch.dtype, dim: int) -> Tensor:
    """Box–Muller on 64-bit words (high half → radius, low half → angle): standard normals,
    the cosines first then the sines along ``dim``, cut to ``size``."""
    if _LITTLE_ENDIAN and h.is_contiguous() and not torch.compiler.is_compiling():
        # Eager: read the two 32-bit halves through an unsigned view (no shift and mask
        # passes over the int64 words); the same integers, so the same floats.
        halves = h.view(torch.uint32)
        u1 = _unit_interval(halves[..., 1::2], dtype)
        u2 = _unit_interval(halves[..., 0::2], dtype)
    else:
        u1 = _unit_interval((h >> 32) & _MASK, dtype)
        u2 = _unit_interval(h & _MASK, dtype)
    radius = torch.sqrt(-2.0 * torch.log(u1))
    angle = (2.0 * math.pi) * u2
    if dim == h.ndim - 1 and not torch.compiler.is_compiling():
        # Eager: write both halves in place of a concatenation (the same numbers, one
        # (C, d) copy and two temporaries fewer per step).
        half = h.shape[-1]
        z = torch.empty((*h.shape[:-1], 2 * half), dtype=radius.dtype, device=radius.device)
        torch.mul(radius, torch.cos(angle), out=z[..., :half])
        torch.mul(radius, angle.sin_(), out=z[..., half:])
        return z[..., :size]
    z = torch.cat((radius * torch.cos(angle), radius * torch.sin(angle)), dim=dim)
    return z[:, :size] if dim == 1 else z[:size]


def _unit_interval(h: Tensor, dtype: torch.dtype) -> Tensor:
    """32-bit words (int64 in [0, 2³²)) -> floats strictly inside (0, 1)."""
    u = (h.to(dtype) + 0.5) * (1.0 / 4294967296.0)
    info = torch.finfo(dtype)
    return u.clamp_(min=info.tiny, max=1.0 - info.eps / 2)


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
    """Standard normal draws, shape (C, size): Box–Muller on one 64-bit hash per pair
    (:func:`pair_words`)."""
    return normal_from_word(keys, step_word(step, stream), size, dtype)


def normal_from_word(keys: Tensor, word: int | Tensor, size: int, dtype: torch.dtype) -> Tensor:
    """:func:`normal` for a precomputed :func:`step_word` (may be a 0-d int64 tensor)."""
    return _pair_normals(pair_words(keys, word, (size + 1) // 2), size, dtype, dim=1)


def normal_chain_minor(keys: Tensor, word: Tensor | int, size: int, dtype: torch.dtype) -> Tensor:
    """:func:`normal_from_word` transposed: shape (size, C), the same numbers.

    The words are the same hashes of ``keys[c]``, ``word`` and pair ``j``, laid out with the
    chain index innermost so that a compiled kernel vectorises along the chains.
    """
    return _pair_normals(pair_words(keys, word, (size + 1) // 2, chain_minor=True), size, dtype, dim=0)


def randint(keys: Tensor, step: int, stream: int, size: int, high: int) -> Tensor:
    """Integers uniform in [0, high), shape (C, size), int64 (for minibatch indices)."""
    if high <= 0:
        raise ValueError("high must be positive")
    h = _counters(keys, step, stream, size)
    # Multiply-shift maps 32-bit words to [0, high) with negligible bias for high << 2^32.
    return (h * high) >> 32


def normal_block(keys: Tensor, first_step: int, num_steps: int, stream: int, size: int,
                 dtype: torch.dtype) -> Tensor:
    """:func:`normal` for ``num_steps`` consecutive steps at once: shape (K, C, size), row k
    bit-for-bit ``normal(keys, first_step + k, stream, size, dtype)`` (the same integer
    hashing, and the same elementwise transforms: torch's vectorised math handles a tensor's
    tail with the same kernels as its body)."""
    words = torch.tensor([step_word(first_step + k, stream) for k in range(num_steps)],
                         dtype=torch.int64, device=keys.device)
    return _pair_normals(pair_words(keys[None, :], words[:, None], (size + 1) // 2), size, dtype, dim=2)


class NormalBlocks:
    """One noise stream of a run, drawn a block of steps at a time (eager steps of small
    targets).

    A step of a 2-parameter potential spends most of its noise time on the ~15 operations'
    dispatch, not on the 16 numbers: drawing K steps' normals in one call (:func:`normal_block`)
    costs about what one step's did.  Blocks are capped at ``max_elements`` numbers and
    ``max_steps`` steps (a first chunk is not delayed) and never run past ``last_step``;
    where one step already fills a block (a network), each step draws its own, as before.
    The numbers are those of :func:`normal`, step by step, bit for bit.
    """

    def __init__(self, keys: Tensor, stream: int, size: int, dtype: torch.dtype, *, last_step: int,
                 max_elements: int = 1 << 16, max_steps: int = 256) -> None:
        self.keys, self.stream, self.size, self.dtype = keys, stream, size, dtype
        self.last_step = int(last_step)
        self.steps_per_block = max(1, min(max_steps, max_elements // max(1, keys.numel() * size)))
        self._first = 0
        self._block: Tensor | None = None

    def at(self, step: int) -> Tensor:
        """The (C, size) normals of ``step``."""
        block = self._block
        if block is not None and self._first <= step < self._first + block.shape[0]:
            return block[step - self._first]
        count = min(self.steps_per_block, max(1, self.last_step - step))
        if count == 1:
            self._block = None
            return normal(self.keys, step, self.stream, self.size, self.dtype)
        self._first, self._block = step, normal_block(self.keys, step, count, self.stream, self.size,
                                                       self.dtype)
        return self._block[0]
