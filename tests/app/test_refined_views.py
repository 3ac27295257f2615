"""The Refined λ̂ section of the Networks page and the refined heatmap of the Trajectories
page (AppTest)."""

from __future__ import annotations

import os

import pytest
import streamlit as st

from tests.app.conftest import ROOT, assert_healthy, page

USER_DLN = str((ROOT / "tests" / "data" / "user_dln").resolve())
TRANSFORMER = str((ROOT / "sample_models" / "induction_transformer").resolve())


@pytest.fixture
def with_user_folder(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLTOOLS_MODELS", os.pathsep.join([USER_DLN]))
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def test_refined_per_layer_with_the_per_sample_view(with_user_folder) -> None:
    at = page("networks").run()
    assert_healthy(at)
    at.selectbox(key="networks.model").set_value(USER_DLN).run()
    assert_healthy(at)
    assert at.radio(key="refined.kind").options == ["layer"]  # a deep linear network has no heads
    at.slider(key="refined.draws").set_value(100)
    at.selectbox(key="refined.probe").set_value(100)
    at.button(key="refined.run").click().run()
    assert_healthy(at)
    table = next(d.value for d in at.dataframe if "restricted_dim" in d.value.columns)
    assert list(table["restriction"]) == ["0", "1", "all"]
    assert list(table["restricted_dim"]) == [12, 6, 18]
    assert table["llc_mean"].notna().all()
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) >= 2  # the bars and the per-sample embedding
    assert at.selectbox(key="refined.colour").options[:2] == ["loss_change", "mean_loss"]


def test_transformer_offers_heads_and_its_data_subsets() -> None:
    at = page("networks").run()
    at.selectbox(key="networks.model").set_value(TRANSFORMER).run()
    assert_healthy(at)
    assert at.radio(key="refined.kind").options == ["layer", "head"]
    assert at.selectbox(key="refined.subset").options == ["all data", "short_span", "long_span"]


def test_trajectories_page_shows_the_refined_heatmap() -> None:
    at = page("trajectories").run()
    at.selectbox(key="traj.model").set_value(TRANSFORMER).run()
    assert_healthy(at)
    assert any(s.value == "Refined λ̂ over training" for s in at.subheader)
