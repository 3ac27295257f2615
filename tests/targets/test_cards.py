"""The card's first-click settings (issue 13.9): ``first_run`` over ``default_sampler``, and the
note that says when a run's γ is not the reference (trajectory) γ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lltools.targets.cards import CardError, first_run_gamma_note, first_run_settings, validate_card

ROOT = Path(__file__).resolve().parents[2] / "sample_models"
CARD = json.loads((ROOT / "deep_linear" / "dln_8_6_6_4_r2" / "model.json").read_text())


def test_first_run_overrides_default_sampler_key_by_key() -> None:
    card = validate_card({**CARD, "default_sampler": {"epsilon": 1e-4, "gamma": 5.0, "chains": 4,
                                                      "batch_size": 256},
                          "first_run": {"chains": 32, "gamma": None, "draws": 900}})
    assert first_run_settings(card) == {"epsilon": 1e-4, "gamma": 5.0, "chains": 32, "draws": 900,
                                        "batch_size": 256}


def test_without_first_run_the_first_click_is_default_sampler() -> None:
    card = validate_card(CARD)
    assert "first_run" not in card
    assert first_run_settings(card) == {k: v for k, v in CARD["default_sampler"].items() if v is not None}


def test_a_bad_first_run_is_refused_naming_the_field() -> None:
    with pytest.raises(CardError, match=r"first_run\.chains"):
        validate_card({**CARD, "first_run": {"chains": 0}})


def test_the_gamma_note_appears_only_where_gamma_differs_from_the_reference() -> None:
    card = {"default_sampler": {"gamma": 200.0}, "first_run": {"gamma": 2000.0}}
    assert first_run_gamma_note(card, 200.0) is None
    assert first_run_gamma_note({"default_sampler": {}}, 2000.0) is None  # no reference γ
    note = first_run_gamma_note(card, 2000.0)
    assert note is not None
    assert "γ = 2000" in note and "γ = 200 " in note
    assert "first-run" in note and "not the same quantity" in note
    other = first_run_gamma_note(card, 50.0)
    assert other is not None and "this run's setting" in other and "less local" in other
