"""A user's own model folder (not one of the sample models): a deep linear network 4 → 3 → 2.

build() returns the network AT its true parameter (every layer of rank 1), so with no
checkpoint in this folder w* is that teacher, and λ(w*) is Aoyagi's for widths (4, 3, 2),
rank 1: λ = 7/2.  data() draws x ~ N(0, I) and y = W2 W1 x without noise (w* is an exact
minimum of the empirical loss).  The default loss (floating targets) is ½‖y − f(x)‖².
Written with torch only, as a user would.
"""

import torch
from torch import nn

N = 1000
SEED = 1234


def _teacher() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(SEED)
    a, b, c = (torch.randn(k, generator=gen, dtype=torch.float64) for k in (3, 4, 2))
    a, b, c = a / a.norm(), b / b.norm(), c / c.norm()
    return torch.outer(a, b), torch.outer(c, a)  # W1 (3, 4) and W2 (2, 3), each of rank 1


def build() -> nn.Module:
    w1, w2 = _teacher()
    net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(w1)
        net[1].weight.copy_(w2)
    return net


def data() -> tuple[torch.Tensor, torch.Tensor]:
    w1, w2 = _teacher()
    x = torch.randn(N, 4, generator=torch.Generator().manual_seed(SEED + 1), dtype=torch.float64)
    y = x @ w1.T @ w2.T
    return x.float(), y.float()
