"""Pure helpers of dashboard/common.py (no Streamlit runtime needed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard import common as ui
from dashboard import history
from dashboard import running as live_ui
from dashboard.views import learn
from lltools.theory.free_energy import free_energy_curves, free_energy_difference


def test_parse_float_list() -> None:
    assert ui.parse_float_list("1e-3, 3e-3;1e-3  1e-2", name="ε") == [1e-3, 3e-3, 1e-2]
    with pytest.raises(ValueError, match="'x' is not a number"):
        ui.parse_float_list("1, x", name="ε")
    with pytest.raises(ValueError, match="must be > 0"):
        ui.parse_float_list("0", name="ε", min_value=0.0, exclusive_min=True)
    with pytest.raises(ValueError, match="at most 3"):
        ui.parse_float_list("1,2,3,4", name="γ", max_count=3)
    with pytest.raises(ValueError, match="at least one"):
        ui.parse_float_list(" , ", name="γ")
    with pytest.raises(ValueError, match="not finite"):
        ui.parse_float_list("inf", name="γ")


def test_query_param_parsing() -> None:
    p = ui.QueryParam("k", int, lo=1, hi=10)
    assert p.parse("3") == 3
    for bad in ("0", "11", "2.5", "nan", "x"):
        with pytest.raises(ValueError):
            p.parse(bad)
    assert ui.QueryParam("k", str, choices=("a",)).parse("a") == "a"


def test_budget_and_extent() -> None:
    assert ui.check_budget(4, 1000) is None
    assert "chain-steps" in ui.check_budget(10_000, 10_000)
    pos = pd.DataFrame({"x": [0.0, 0.1, -0.23], "y": [0.0, 0.05, 0.1]})
    assert ui.auto_extent(pos) == 0.3
    assert ui.auto_extent(None) == 1.0
    assert ui.auto_extent(pd.DataFrame({"x": [np.nan], "y": [np.nan]})) == 1.0


def test_result_cache_is_lru() -> None:
    cache = live_ui.ResultCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and len(cache) == 2
    assert live_ui.settings_key("toy", 0.1 + 0.2, n=3) == live_ui.settings_key("toy", 0.3, n=3)


def test_plain_escapes_markdown_and_latex() -> None:
    assert ui.plain("w* and $x$ x**2 a_b") == "w\\* and \\$x\\$ x\\*\\*2 a\\_b"


def test_free_energy_crossover_is_exact() -> None:
    curves, cross = free_energy_curves({"A": (0.010, 5.0), "B": (0.012, 1.0)})
    (n,) = [c for c in cross if c > 100]
    # n (L_A − L_B) + (λ_A − λ_B) log n = 0 at the crossover
    assert abs(n * (0.010 - 0.012) + 4.0 * math.log(n)) < 1e-6 * n
    share = curves[curves["basin"] == "A"].sort_values("n")["posterior"].to_numpy()
    assert share[0] < 0.5 < share[-1]  # the simple basin B wins early, A late
    diff = free_energy_difference({"A": (0.010, 5.0), "B": (0.012, 1.0)})
    assert (np.sign(diff["delta"].iloc[[0, -1]]) == [-1, 1]).all()
    assert len(ui.to_parquet_bytes(curves.assign(x=1))) > 0


def test_history_records_and_diff() -> None:
    state: dict = {}
    hist = history.RunHistory(state)
    common = dict(
        page="Toy", target="x", llc_mean=1.0, llc_sem=0.1, rhat=1.0, ess=100.0, acceptance=0.95, n_diverged=0
    )
    a = hist.add(settings={"gamma": 1.0, "epsilon": 1e-3}, **common)
    b = hist.add(settings={"gamma": 2.0, "epsilon": 1e-3}, **common)
    assert (a.id, b.id) == (1, 2)
    assert list(hist.frame()["run"]) == [1, 2]
    assert list(history.settings_diff(a, b)["setting"]) == ["gamma"]
    assert hist.get(2) is b
    hist.clear()
    assert hist.records() == []


def test_newton_view_errors() -> None:
    v = learn.newton_view("x**2 * y**4")
    assert v.t == 4.0 and v.llc == 0.25
    for bad in ("x**2 + sin(y)", "3", "w1**2 + w2**2 + w3**2"):
        with pytest.raises(ValueError):
            learn.newton_view(bad)


def test_comparison_view_renders() -> None:
    """The two-run comparison (what selecting two history rows shows) draws without errors."""
    from streamlit.testing.v1 import AppTest

    def script() -> None:
        import pandas as pd

        from dashboard import history

        hist = history.RunHistory()
        trace = pd.DataFrame({"step": [1, 2, 3], "llc_running": [1.0, 1.1, 1.05]})
        base = dict(
            page="Toy",
            target="x**2 + y**2",
            llc_sem=0.01,
            rhat=1.0,
            ess=500.0,
            acceptance=0.98,
            n_diverged=0,
            theory_llc=1.0,
        )
        a = hist.add(settings={"gamma": 1.0}, llc_mean=1.00, llc_trace=trace, **base)
        b = hist.add(settings={"gamma": 5.0}, llc_mean=0.90, llc_trace=trace.assign(llc_running=0.9), **base)
        history.render_comparison(a, b, key="t")

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception
    assert any("a real difference" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) == 1
    assert len(at.dataframe) == 1  # the settings diff


def test_run_caption_names_the_step_and_chain_batches() -> None:
    """The result line says compiled vs eager and, when memory forced it, the chain batch."""
    from types import SimpleNamespace

    from dashboard.common import run_caption

    settings = SimpleNamespace(device="cpu", dtype="float32")
    whole = SimpleNamespace(settings=settings, num_chains=8, trace=SimpleNamespace(meta={"step": "eager",
                                                                                      "chain_batch": 8}))
    line = run_caption(3, "complete", 1.234, whole)
    assert line == "Run #3 · complete · 1.23 s · device cpu, float32 · eager step"
    split = SimpleNamespace(settings=settings, num_chains=4096,
                            trace=SimpleNamespace(meta={"step": "compiled", "chain_batch": 1500}))
    line = run_caption(4, "stopped", float("nan"), split, "batch 64")
    assert line == ("Run #4 · stopped · device cpu, float32 · compiled step · "
                    "chains stepped in batches of 1,500 to fit memory · batch 64")


def test_downloads_do_not_rerun_the_page() -> None:
    """A download click must not rerun the script: a rerun replaces every button's file URL, so
    a second quick click on another button would fetch a URL that no longer exists (issue 13
    item 4: five of eight quick clicks failed). Every download button says ignore_rerun."""
    from streamlit.testing.v1 import AppTest

    def script() -> None:
        import pandas as pd

        from dashboard import common as ui

        frame = pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]})
        ui.download_buttons({"Traces": frame, "Chains": frame}, basename="t", key="dl")

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception
    buttons = at.get("download_button")
    assert len(buttons) == 4
    assert all(b.proto.ignore_rerun for b in buttons)
    # The files are made on click, not on every script run (issue 13.17: ~1 s of a toy redraw).
    assert all(b.proto.deferred_file_id and not b.proto.url for b in buttons)
