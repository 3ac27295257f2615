"""A 2-layer attention-only transformer on a synthetic in-context copying task.

Each sequence is up to ``PREFIX_MAX`` random tokens followed by a random span of
``SPAN_MIN``…``SPAN_MAX`` tokens repeated until the sequence is full.  Inside the repeat the next token is
predictable only *in context* — find the previous occurrence of the current token and copy
the token that followed it — which is what an induction head (a previous-token head in
layer 0 composed with a copying head in layer 1) computes.  Everywhere else the next token
is uniform, so the loss cannot fall below the entropy of the random positions; the
repeated span's varying length and place rule out a positional shortcut.

This file is a model folder's ``model.py``: ``build()`` returns the network, ``data()`` the
training set (and a validation split), ``loss(outputs, batch)`` the per-sequence loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VOCAB = 16
SEQ_LEN = 24
SPAN_MIN, SPAN_MAX = 3, 8
PREFIX_MAX = 6
D_MODEL = 32
NUM_LAYERS = 2
NUM_HEADS = 2
NUM_TRAIN = 2048
NUM_VAL = 512
DATA_SEED = 0


class Attention(nn.Module):
    """Causal multi-head self-attention with separate Q, K, V and O projections (no biases),
    so that head h of this layer owns rows ``h·d_head:(h+1)·d_head`` of ``q``, ``k``, ``v``
    and the same columns of ``o``."""

    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads, self.d_head = num_heads, d_model // num_heads
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.k = nn.Linear(d_model, d_model, bias=False)
        self.v = nn.Linear(d_model, d_model, bias=False)
        self.o = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        m, t, _ = x.shape

        def heads(z: Tensor) -> Tensor:
            return z.view(m, t, self.num_heads, self.d_head).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        att = scores.masked_fill(mask, float("-inf")).softmax(dim=-1)
        return self.o((att @ v).transpose(1, 2).reshape(m, t, -1))


class AttentionOnly(nn.Module):
    """Token + learned position embeddings, ``NUM_LAYERS`` residual attention layers, unembedding."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.pos = nn.Parameter(torch.zeros(SEQ_LEN, D_MODEL))
        self.layers = nn.ModuleList(Attention(D_MODEL, NUM_HEADS) for _ in range(NUM_LAYERS))
        self.unembed = nn.Linear(D_MODEL, VOCAB, bias=False)
        nn.init.normal_(self.pos, std=0.1)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for layer in self.layers:
            x = x + layer(x)
        return self.unembed(x)


def build() -> nn.Module:
    """The untrained network (seeded: the same initial weights every time)."""
    torch.manual_seed(0)
    return AttentionOnly()


def _generate(num: int, seed: int) -> tuple[Tensor, Tensor]:
    """Sequences (num, SEQ_LEN + 1) and the length of each one's repeated span (num,)."""
    gen = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, VOCAB, (num, SEQ_LEN + 1), generator=gen)
    span = torch.randint(SPAN_MIN, SPAN_MAX + 1, (num,), generator=gen)
    prefix = torch.randint(0, PREFIX_MAX + 1, (num,), generator=gen)
    pos = torch.arange(SEQ_LEN + 1)
    start = prefix[:, None]
    source = torch.where(pos >= start, start + (pos - start) % span[:, None], pos)
    return torch.gather(seq, 1, source), span


def make_sequences(num: int, seed: int) -> tuple[Tensor, Tensor]:
    """``num`` sequences from the seeded generator: inputs (num, SEQ_LEN) int64 and next-token
    targets (num, SEQ_LEN).  Each starts with up to ``PREFIX_MAX`` random tokens, then a
    random span of ``SPAN_MIN``…``SPAN_MAX`` tokens repeated until the sequence is full."""
    seq, _ = _generate(num, seed)
    return seq[:, :-1].contiguous(), seq[:, 1:].contiguous()


def data() -> dict[str, tuple[Tensor, Tensor]]:
    """Training and validation sequences (fixed seeds)."""
    return {"train": make_sequences(NUM_TRAIN, DATA_SEED), "val": make_sequences(NUM_VAL, DATA_SEED + 1)}


def loss(outputs: Tensor, batch: tuple[Tensor, Tensor]) -> Tensor:
    """Per-sequence mean next-token cross-entropy, shape (m,), from logits (m, T, V)."""
    targets = batch[-1]
    per_token = F.cross_entropy(outputs.reshape(-1, VOCAB), targets.reshape(-1), reduction="none")
    return per_token.view(targets.shape).mean(dim=1)


def subsets() -> dict[str, Tensor]:
    """Named subsets of the training data (for data-restricted LLCs): sequences whose
    repeated span is short (3–5 tokens, repeated more often) or long (6–8 tokens)."""
    _, span = _generate(NUM_TRAIN, DATA_SEED)
    return {"short_span": span <= 5, "long_span": span >= 6}
