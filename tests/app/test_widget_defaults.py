"""Every keyed number input and slider is created with the value Session State holds.

Created without ``value=``, a number input declares its minimum as its default; a browser
that misses the one message setting the value from Session State (a rerun superseding a
fresh page's slow first run) starts from that minimum and sends it back on the next click.
In the real app that ran the Toy page at nβ = 0.001, ε = 10⁻⁹ and one chain (λ̂ ≈ 5·10⁻¹²)."""

from __future__ import annotations

import pytest

from tests.app.conftest import assert_healthy, page


@pytest.mark.parametrize("name", ["toy", "networks", "sensitivity", "learn"])
def test_widgets_declare_the_value_they_show(name: str) -> None:
    at = page(name)
    if name == "toy":  # not the first option: a dropped index would show x² + y²
        at.session_state["toy.potential"] = "x**4 + y**4"
        at.session_state["toy.view"] = 0.5
        at.session_state["toy.autostop"] = True  # not the box's unchecked default (a link's stop_sem)
    at.run()
    assert_healthy(at)
    checked = 0
    for widget in [*at.number_input, *at.slider]:
        if not widget.key or widget.key not in at.session_state:
            continue
        held = at.session_state[widget.key]
        default = widget.proto.default
        default = list(default) if not isinstance(default, float | int) else [default]
        expected = list(held) if isinstance(held, list | tuple) else [held]
        assert default == pytest.approx(expected), (widget.key, default, expected)
        checked += 1
    for widget in [*at.selectbox, *at.radio]:
        if widget.key in ("toy.potential", "toy.view", "networks.model", "networks.source", "networks.ckpt"):
            held = at.session_state[widget.key]
            assert widget.options[widget.proto.default] == widget.format_func(held), widget.key
            checked += 1
    for widget in [*at.checkbox, *at.toggle]:  # lecture mode, auto-stop, landscape switches
        if widget.key and widget.key in at.session_state:
            assert widget.proto.default == bool(at.session_state[widget.key]), widget.key
            checked += 1
    assert checked >= 4, checked


@pytest.mark.parametrize("name", ["toy", "networks", "trajectories"])
@pytest.mark.parametrize("params", [{"nbeta": "1e-5", "epsilon": "1e-11"}, {"epsilon": "5", "chains": "5000"},
                                    {"nbeta": "1e-9", "gamma": "1e15", "draws": "1", "burnin": "999999999"}])
def test_link_values_beyond_the_inputs_bounds_never_break_the_page(name: str, params: dict) -> None:
    """The URL's bounds are the inputs' own (one table, ``ui.sampler_bounds``): a link's number
    outside them is ignored with one line, never handed to an input that refuses it (the Toy
    page's URL took nβ down to 10⁻⁶ and ε to 10⁻¹² below its inputs' 10⁻³ and 10⁻⁹: broken page)."""
    at = page(name)
    at.query_params.update(params)
    at.run()
    assert_healthy(at)
    assert not at.error, [e.value for e in at.error]
    assert "ignored URL parameter" in " | ".join(w.value for w in at.warning)  # at least one, said
    for widget in at.number_input:
        assert widget.min <= widget.value <= widget.max, widget.key
