"""Learn page: every panel reacts to its controls; bad input is inline."""

from __future__ import annotations

import math

import pytest

from lltools.workflows import demos
from tests.app.conftest import assert_healthy, metrics, page, shown


@pytest.fixture(scope="module")
def learn():
    at = page("learn")
    at.session_state["learn.vs.n"] = 50_000
    return at.run()


def test_volume_scaling_slope_matches_lambda(learn) -> None:
    assert_healthy(learn)
    m = metrics(learn)
    slope = float(m["fitted slope"].split("±")[0])
    assert abs(slope - 0.25) < 0.05  # x²y⁴
    learn.selectbox(key="learn.vs.potential").set_value("x**2 + y**2").run()
    assert abs(float(metrics(learn)["fitted slope"].split("±")[0]) - 1.0) < 0.1


def test_newton_polyhedron_presets_and_errors(learn) -> None:
    assert metrics(learn)["λ = 1/t"] == "0.25"
    learn.selectbox(key="learn.np.preset").set_value("x**2 * y**2").run()
    m = metrics(learn)
    assert m["λ = 1/t"] == "0.5" and m["multiplicity m"] == "2"
    learn.text_input(key="learn.np.text").set_value("x**2 + sin(y)").run()
    assert_healthy(learn)
    assert any("Cannot draw a Newton polygon" in e.value for e in learn.error)
    learn.text_input(key="learn.np.text").set_value("x**2 + y**6").run()
    assert metrics(learn)["λ = 1/t"] == "0.667"


def test_newton_redrawn_after_each_coordinate_change(learn) -> None:
    """(x + y)⁴: the Newton value 1/2 is wrong (degenerate edge); after y → y − x the polygon is
    y⁴'s and λ = 1/4 — two tabs, one per coordinate system.  x³ + y³ is refused (not a minimum)."""
    learn.selectbox(key="learn.np.preset").set_value("(x + y)**4").run()
    assert_healthy(learn)
    m = metrics(learn)
    assert m["λ = 1/t"] == "0.25" and m["hit point t"] == "4" and m["exact?"] == "yes"
    assert {"step 1", "step 2"} <= {t.label for t in learn.tabs}
    learn.text_input(key="learn.np.text").set_value("x**3 + y**3").run()
    assert any("not a local minimum" in e.value for e in learn.error)


def test_free_energy_crossover_moves(learn) -> None:
    def swap_text() -> str:
        return next(m.value for m in learn.markdown if "swap at" in m.value or "always wins" in m.value)

    # F_A = n·0.010 + 5·log n and F_B = n·0.012 + λ_B·log n cross where
    # n·0.002 = (5 − λ_B)·log n; for λ_B = 1 that is n ≈ 10 310, for λ_B = 3 n ≈ 4 500.
    def crossover(lam_b: float) -> float:
        lo, hi = 100.0, 1e7
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if mid * 0.002 < (5.0 - lam_b) * math.log(mid) else (lo, mid)
        return lo

    assert f"**n ≈ {shown(crossover(1.0), 3)}**" in swap_text()
    learn.slider(key="learn.fe.lamb").set_value(3.0).run()
    assert_healthy(learn)
    assert f"**n ≈ {shown(crossover(3.0), 3)}**" in swap_text()


def test_density_demo_reacts_and_reports_divergence(learn) -> None:
    s = learn.session_state
    learn.select_slider(key="learn.d.nbeta").set_value(300).run()
    _, _, stats = demos.density_demo(s["learn.d.potential"], 300, s["learn.d.gamma"], s["learn.d.eps"],
                                     s["learn.d.seed"])
    assert metrics(learn)["SGLD λ̂"] == shown(stats["llc"])
    learn.select_slider(key="learn.d.eps").set_value(0.3).run()
    assert_healthy(learn)
    assert any("Every chain diverged" in e.value for e in learn.error)
