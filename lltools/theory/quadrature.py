"""The finite-nβ target T(nβ, γ) on a 2-D potential, by adaptive cubature with an error bar.

p(w) ∝ exp(−U(w)),  U = nβ·(L(w) − L(w*)) + (γ/2)‖w − w*‖²  (primer §2 with α = 0), and

    T(nβ, γ) = nβ·(E_p[L] − L(w*)),

what an unbiased sampler reproduces at finite nβ (λ is its nβ → ∞ limit).  Closed forms:
L = x² + y² gives T = 2nβ/(2nβ + γ); a rank-one quadratic L = (a·w)² in any direction gives
nβ|a|²/(2nβ|a|² + γ); L = x⁴ + y⁴ with γ = 0 gives 1/2.

Method
------
A square around w* (half-width √(240/γ), where the localisation alone makes the density
< e⁻¹²⁰; for γ = 0 the radius beyond which U stays > 50 on 360 rays, × 1.5) is split into
cells, and each cell is integrated by two independent tensor Gauss–Legendre rules (14 × 14
and 16 × 16 nodes).  A cell is split in four while

- the two rules disagree by more than its share of the tolerance, or
- the cell may hold mass its nodes do not resolve: the best lower bound on U from the
  tangent planes at its nodes (exact for convex U) lies more than 2 nats below the smallest
  U at the nodes, or U changes by more than 3 nats between neighbouring nodes.  This is what
  finds thin valleys of any direction or curvature — (x − y)² at nβ = 10⁴ is 0.007 wide, a
  curve y = x² likewise — where an axis-aligned grid sees nothing.

The box is doubled while its outermost cells hold mass.  The error estimate is
Σ|Q₁₆ − Q₁₄| over cells (numerator and normaliser, combined to first order) plus a bound on
the mass of cells still unresolved when the budget runs out; the 16-point value is
reported.  ``exact`` is ``True`` when the estimate is
below 10⁻⁶ relative; otherwise the value is approximate and ``error`` says how much.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "EXACT_RTOL",
    "MAX_QUADRATURE_NBETA",
    "TemperedExpectation",
    "tempered_expectation",
    "tempered_expectation_2d",
]

#: Above this nβ the posterior is too narrow for float64 around w*: refused.
MAX_QUADRATURE_NBETA = 1e15
#: Relative error estimate below which T is reported as exact.
EXACT_RTOL = 1e-6

_LOW, _HIGH = 14, 16
_LOW_NODES, _LOW_WEIGHTS = np.polynomial.legendre.leggauss(_LOW)
_HIGH_NODES, _HIGH_WEIGHTS = np.polynomial.legendre.leggauss(_HIGH)
_CHUNK = 200_000  # points per evaluation batch


@dataclass(frozen=True)
class TemperedExpectation:
    """T(nβ, γ) with its error estimate.

    Attributes
    ----------
    value : float
        T = nβ·(E_p[L] − L(w*)).
    error : float
        Absolute error estimate (from the difference of two independent cubature rules).
    exact : bool
        ``error ≤ 1e-6·|value|`` (then the value can be called exact to 6 digits).
    evaluations : int
        Potential evaluations used.
    cells : int
        Cells of the final mesh.
    """

    value: float
    error: float
    exact: bool
    evaluations: int
    cells: int


def tempered_expectation(
    fn: Callable[[Tensor], Tensor],
    nbeta: float,
    gamma: float,
    *,
    w_star: Sequence[float] | Tensor | None = None,
    rtol: float = 1e-8,
    max_evaluations: int = 10_000_000,
    shifts: Sequence[tuple[bool, int, float]] = (),
) -> TemperedExpectation:
    """T(nβ, γ) on a 2-D potential by adaptive cubature (see the module notes).

    Parameters
    ----------
    fn : callable
        Batched potential, ``(C, 2)`` -> ``(C,)`` (torch, float64 accepted; differentiable).
    nbeta, gamma : float
        nβ > 0 and γ ≥ 0.
    w_star : sequence or Tensor, shape (2,), optional
        The centre (default the origin).
    rtol : float
        Target relative error estimate (refinement stops below it).
    max_evaluations : int
        Work budget; when it runs out the value is returned with its (larger) error.
    shifts : sequence of (swap, q, r)
        Integrate in the coordinates of these Jacobian-1 changes (``y → y + r·x^q``, or
        ``x → x + r·y^q`` when ``swap``; :attr:`lltools.theory.puiseux.PlaneStep.shift`), in
        which a curved valley y = r·x^q is straight and axis-aligned.  The integral is the same
        (the Jacobian is 1); only the mesh follows the valley better.  Ignored when the box
        covering the localisation region would grow more than 100-fold in those coordinates.

    Raises
    ------
    ValueError
        If nβ ≤ 0, γ < 0, nβ > :data:`MAX_QUADRATURE_NBETA`, the potential is not 2-D, not
        finite at w*, below L(w*) somewhere nearby (w* is not a minimum) or undefined where
        the density lives, or the density is not normalisable (γ = 0 with a valley that
        never rises, e.g. x²y⁴).
    """
    if not nbeta > 0 or not gamma >= 0 or not math.isfinite(nbeta) or not math.isfinite(gamma):
        raise ValueError(f"need nbeta > 0 and gamma ≥ 0, got nbeta={nbeta}, gamma={gamma}")
    if nbeta > MAX_QUADRATURE_NBETA:
        raise ValueError(
            f"nbeta={nbeta:g} is beyond what the quadrature resolves (at most {MAX_QUADRATURE_NBETA:g}); "
            "at such nβ the finite-nβ target equals λ to many digits"
        )
    centre = torch.zeros(2, dtype=torch.float64) if w_star is None else torch.as_tensor(w_star).double()
    if centre.shape != (2,):
        raise ValueError(f"the quadrature needs a 2-D w_star, got shape {tuple(centre.shape)}")
    with torch.no_grad():
        try:
            base = float(fn(centre[None, :]).reshape(-1)[0])
        except (IndexError, RuntimeError) as exc:
            raise ValueError(f"the quadrature needs a potential of 2 variables ({exc})") from None
    if not math.isfinite(base):
        raise ValueError(f"the potential is {base} at w*")
    energy = _Energy(fn, centre, base, float(nbeta), float(gamma))
    half = math.sqrt(240.0 / gamma) if gamma > 0 else 1.5 * energy.radial_extent()
    hx = hy = half  # the box in the shifted coordinates that covers |w − w*|∞ ≤ half
    for swap, q, r in shifts:
        if swap:
            hx = hx + abs(float(r)) * hy**q
        else:
            hy = hy + abs(float(r)) * hx**q
    if shifts and max(hx, hy) <= 100 * half:  # else the shifted box is too large to pay off
        energy = _Energy(fn, centre, base, float(nbeta), float(gamma), tuple(shifts))
        half = max(hx, hy)
    # The box must hold the density: while its outermost cells carry mass (a thin valley that
    # the rays missed, for γ = 0), double it.
    for _ in range(8):
        res, edge_frac = _adaptive(energy, half, rtol, max(int(max_evaluations) - energy.evaluations, 1))
        if edge_frac <= 1e-12 or energy.evaluations >= max_evaluations:
            break
        half *= 2.0
    if edge_frac <= 1e-12:
        return res
    error = res.error + max(1.0, abs(res.value)) * edge_frac
    return TemperedExpectation(
        res.value, error, bool(error <= EXACT_RTOL * abs(res.value)), res.evaluations, res.cells
    )


def tempered_expectation_2d(
    fn: Callable[[Tensor], Tensor],
    nbeta: float,
    gamma: float,
    *,
    w_star: Sequence[float] | Tensor | None = None,
    num_points: int | None = None,
    half_width: float | None = None,
) -> float:
    """The value of :func:`tempered_expectation`.

    ``num_points`` and ``half_width`` are accepted for compatibility and ignored: the mesh adapts.
    """
    del num_points, half_width
    return tempered_expectation(fn, nbeta, gamma, w_star=w_star).value


# ---------------------------------------------------------------------------- the energy
class _Energy:
    """U as a function of the integration variable v (w = w* + Φ(v), Φ the shifts, Jacobian 1)."""

    def __init__(
        self,
        fn: Callable[[Tensor], Tensor],
        centre: Tensor,
        base: float,
        nbeta: float,
        gamma: float,
        shifts: tuple[tuple[bool, int, float], ...] = (),
    ):
        self.fn, self.centre, self.base, self.nbeta, self.gamma = fn, centre, base, nbeta, gamma
        self.shifts = tuple((bool(s), int(q), float(r)) for s, q, r in shifts)
        self.evaluations = 0

    def displacement(self, v: Tensor) -> Tensor:
        """Φ(v) = w − w*: undo the shifts, last first (each maps new coordinates to the previous)."""
        for swap, q, r in reversed(self.shifts):
            x, y = v[:, 0], v[:, 1]
            v = torch.stack((x + r * y**q, y) if swap else (x, y + r * x**q), dim=1)
        return v

    def __call__(self, w: Tensor, grad: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
        """(U, nβ·ΔL, ∇U or None) at points v (N, 2) of the integration variable, in chunks."""
        us, dls, gs = [], [], []
        for start in range(0, len(w), _CHUNK):
            x = w[start : start + _CHUNK].detach().clone().requires_grad_(grad)
            with torch.enable_grad() if grad else torch.no_grad():
                disp = self.displacement(x)
                dl = self.nbeta * (self.fn(self.centre + disp).reshape(-1).to(torch.float64) - self.base)
                u = dl + 0.5 * self.gamma * (disp**2).sum(-1)
                if grad:
                    (g,) = torch.autograd.grad(u.sum(), x, allow_unused=True)
                    gs.append(torch.zeros_like(x) if g is None else g.detach())
            us.append(u.detach())
            dls.append(dl.detach())
        self.evaluations += len(w)
        return torch.cat(us), torch.cat(dls), torch.cat(gs) if grad else None

    def radial_extent(self) -> float:
        """The largest radius beyond which U stays > 50 on 360 rays (γ = 0)."""
        radii = torch.logspace(-12, 8, 201, dtype=torch.float64)
        angles = torch.arange(360, dtype=torch.float64) * (2 * math.pi / 360)
        dirs = torch.stack((torch.cos(angles), torch.sin(angles)), dim=1)
        pts = radii[:, None, None] * dirs[None, :, :]
        u, _, _ = self(pts.reshape(-1, 2))
        u = u.reshape(len(radii), len(angles))
        u = torch.where(torch.isnan(u), torch.full_like(u, math.inf), u)
        low = u < 50.0
        if low[-1].any():
            raise ValueError(
                "the tempered density is not normalisable: the potential stays low out to r = 1e8 "
                "(use gamma > 0 for potentials with non-compact minima such as x**2 * y**4)"
            )
        last = torch.where(low.any(0), (low * torch.arange(1, len(radii) + 1)[:, None]).argmax(0), 0)
        return float(radii[torch.clamp(last.max() + 1, max=len(radii) - 1)])


# ---------------------------------------------------------------------------- cubature
def _rule(n_nodes: np.ndarray, n_weights: np.ndarray) -> tuple[Tensor, Tensor]:
    gx, gy = np.meshgrid(n_nodes, n_nodes, indexing="ij")
    wx, wy = np.meshgrid(n_weights, n_weights, indexing="ij")
    nodes = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1))
    return nodes, torch.as_tensor((wx * wy).ravel())


_LO = _rule(_LOW_NODES, _LOW_WEIGHTS)
_HI = _rule(_HIGH_NODES, _HIGH_WEIGHTS)
_CORNERS = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)


def _integrate(energy: _Energy, cx: Tensor, h: Tensor) -> dict[str, Tensor]:
    """Both rules on cells with centres cx (M, 2) and half-widths h (M,)."""
    m = len(h)
    out: dict[str, Tensor] = {}
    for key, (nodes, weights) in (("lo", _LO), ("hi", _HI)):
        k = len(weights)
        pts = cx[:, None, :] + h[:, None, None] * nodes[None, :, :]
        u, dl, g = energy(pts.reshape(-1, 2), grad=key == "lo")
        u, dl = u.reshape(m, k), dl.reshape(m, k)
        if torch.isnan(u).any():
            raise ValueError("the potential is undefined (NaN) where the tempered density lives")
        if (u < -30).any():
            raise ValueError("the potential falls below L(w*) nearby: w* is not a minimum, T is not defined")
        dens = torch.exp(-u)
        area = h**2  # Jacobian of [−1, 1]² → the cell
        z = (dens * weights).sum(1) * area
        n = (torch.where(dens > 0, dens * dl, torch.zeros_like(dl)) * weights).sum(1) * area
        out[f"z_{key}"], out[f"n_{key}"] = z, n
        if key == "lo":
            assert g is not None
            g = g.reshape(m, k, 2)
            corners = cx[:, None, :] + h[:, None, None] * _CORNERS[None, :, :]  # (M, 4, 2)
            # tangent plane at each node, minimised over the cell (its minimum is at a corner)
            plane = u[:, :, None] + ((corners[:, None, :, :] - pts[:, :, None, :]) * g[:, :, None, :]).sum(-1)
            plane = torch.where(torch.isfinite(plane), plane, torch.full_like(plane, -math.inf))
            out["lower"] = plane.min(2).values.max(1).values
            out["umin"] = torch.where(torch.isfinite(u), u, torch.full_like(u, math.inf)).min(1).values
            # how many nats U changes between neighbouring nodes: the rules resolve the density
            # only when this is small
            slope = torch.linalg.vector_norm(g, dim=-1).max(1).values
            steep = torch.where(torch.isfinite(slope), slope, torch.full_like(slope, math.inf))
            out["steep"] = steep * (2 * h / k)
    return out


def _unresolved(cells: dict[str, Tensor], z: float, rtol: float, half: float) -> Tensor:
    """Cells that may hold non-negligible mass their nodes do not resolve.

    Either a dip hidden between the nodes (the tangent-plane lower bound on U lies > 2 nats
    below the smallest U at the nodes), or a density too steep for the nodes (U changes by
    more than 3 nats between neighbouring nodes) — in both cases the two rules can agree
    and both be wrong, so such cells are split, and counted in the error if they remain.
    """
    lower, umin, hh, steep = cells["lower"], cells["umin"], cells["h"], cells["steep"]
    cap = -math.log(max(rtol * 1e-3 * max(z, 1e-300), 1e-300))  # mass below e^−cap is negligible
    log_area = 2 * torch.log(2 * hh)
    dip = (lower < umin - 2.0) & (lower - log_area < cap)
    rough = (steep > 3.0) & (torch.minimum(lower, umin) - log_area < cap)
    return (dip | rough) & (hh > 1e-14 * half)


def _adaptive(energy: _Energy, half: float, rtol: float, budget: int) -> tuple[TemperedExpectation, float]:
    """The cubature on the box [−half, half]², and the fraction of Z in its outermost cells."""
    spent = energy.evaluations
    n0 = 8
    edges = torch.linspace(-half, half, n0 + 1, dtype=torch.float64)
    mids = 0.5 * (edges[1:] + edges[:-1])
    gx, gy = torch.meshgrid(mids, mids, indexing="ij")
    cx = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # v = 0 is w = w*
    h = torch.full((len(cx),), half / n0, dtype=torch.float64)
    cells = {"cx": cx, "h": h, **_integrate(energy, cx, h)}
    offsets = torch.tensor([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]], dtype=torch.float64)
    while True:
        z = float(cells["z_hi"].sum())
        n = float(cells["n_hi"].sum())
        ez = (cells["z_hi"] - cells["z_lo"]).abs()
        en = (cells["n_hi"] - cells["n_lo"]).abs()
        value = n / z if z > 0 else math.nan
        scale_n = max(abs(n), 1e-300)
        contrib = ez / max(z, 1e-300) + en / scale_n  # relative error contribution of each cell
        err_rel = float(contrib.sum())
        hidden = _unresolved(cells, z, rtol, half)
        hh = cells["h"]
        done = (z > 0) and err_rel <= rtol and not bool(hidden.any())
        if done or energy.evaluations - spent >= budget or len(hh) > budget // (_LOW**2 + _HIGH**2):
            break
        split = hidden.clone()
        if err_rel > rtol and z > 0:
            order = torch.argsort(contrib, descending=True)
            cum = torch.cumsum(contrib[order], 0)
            k = int((cum < 0.5 * err_rel).sum()) + 1
            split[order[:k]] = True
            split |= contrib > 0.1 * float(contrib.max())
        split &= hh > 1e-14 * half
        if not bool(split.any()):
            break
        keep = ~split
        pc, ph = cells["cx"][split], cells["h"][split] / 2
        ncx = (pc[:, None, :] + 2 * ph[:, None, None] * offsets[None, :, :]).reshape(-1, 2)
        nh = ph.repeat_interleave(4)
        new = {"cx": ncx, "h": nh, **_integrate(energy, ncx, nh)}
        cells = {key: torch.cat([cells[key][keep], new[key]]) for key in cells}
    z = float(cells["z_hi"].sum())
    n = float(cells["n_hi"].sum())
    if not z > 0 or not math.isfinite(z):
        raise ValueError("the tempered density could not be integrated (no mass found near w*)")
    ez = float((cells["z_hi"] - cells["z_lo"]).abs().sum())
    en = float((cells["n_hi"] - cells["n_lo"]).abs().sum())
    value = n / z
    error = en / z + abs(value) * ez / z
    hh = cells["h"]
    hidden = _unresolved(cells, z, rtol, half)
    if bool(hidden.any()):
        # Unresolved cells may hold up to exp(−min U)·area of mass the rules did not see: a
        # fraction f of Z whose T-values are unknown, so T may move by about f·max(1, |T|)/(1 + f).
        low = torch.minimum(cells["lower"], cells["umin"])
        log_bound = torch.logsumexp((-low + 2 * torch.log(2 * hh))[hidden], 0)
        frac = math.exp(min(float(log_bound) - math.log(z), 700.0))
        error = max(error + max(1.0, abs(value)) * frac / (1.0 + frac), 10 * EXACT_RTOL * abs(value))
    outer = cells["cx"].abs().max(1).values + hh >= half * (1 - 1e-9)
    edge_frac = float(cells["z_hi"][outer].abs().sum()) / z
    res = TemperedExpectation(
        value=value,
        error=error,
        exact=bool(error <= EXACT_RTOL * abs(value)),
        evaluations=energy.evaluations,
        cells=len(hh),
    )
    return res, edge_frac
