"""While a run samples: the health traffic light and "stop when MCSE(λ̂) ≤ target" (issue 13.19).

Thin over the core: the light is :func:`lltools.estimation.live.live_health` (the one health
rule over the draws so far) and the stopping rule is :func:`lltools.estimation.live.stop_reason`
— the rule ``lltools estimate --target-sem`` uses — so the page, the CLI and the final
diagnostics never disagree.

- :func:`auto_stop_controls` draws the option (off by default) under a page's sampler inputs;
  :func:`auto_stop_target` reads it; :func:`auto_stop_query` keeps it in the URL.
- :class:`HealthLight` is handed to :func:`dashboard.running.stream_live` as ``stop_when``
  (asked at every chunk) and redrawn with each live frame (:meth:`HealthLight.draw`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import streamlit as st

from dashboard import common as ui
from lltools.estimation.health import DEFAULT_CRITERIA, Criteria
from lltools.estimation.live import LiveHealth, live_health, stop_reason
from lltools.workflows.estimate import estimate_result

#: Badge colour, icon and word of each light.
LIGHTS = {
    "green": ("green", ":material/check_circle:", "healthy"),
    "amber": ("orange", ":material/hourglass_top:", "not converged yet"),
    "red": ("red", ":material/error:", "problem"),
}


def _keys(ns: str) -> tuple[str, str]:
    return f"{ns}.autostop", f"{ns}.target_sem"


def auto_stop_controls(ns: str, *, running: bool, default_target: float = 0.02) -> None:
    """The "stop when MCSE(λ̂) ≤ target" option of page ``ns`` (off by default)."""
    on_key, target_key = _keys(ns)
    ui.init_state({on_key: False, target_key: float(default_target)})
    st.checkbox(
        "Auto-stop (MCSE)",
        value=bool(ui.held(on_key, False)),
        key=on_key,
        disabled=running,
        help="Stop when MCSE(λ̂) ≤ target: end the run as soon as λ̂'s Monte-Carlo standard error "
        "is at most the target and "
        f"R-hat ≤ {DEFAULT_CRITERIA.rhat_max:g} (the rule of `lltools estimate --target-sem`); "
        "the draws so far are kept and the page says why it stopped.",
    )
    if st.session_state.get(on_key):  # the target only when the option is on (a narrow column)
        st.number_input(
            "target MCSE(λ̂)",
            min_value=1e-6,
            max_value=1e6,
            value=ui.held(target_key),
            format="%g",
            key=target_key,
            disabled=running,
        )
    ui.remember([on_key, target_key])


def auto_stop_target(ns: str, state: Mapping[str, Any] | None = None) -> float | None:
    """The target MCSE of page ``ns`` when the option is on, else ``None``."""
    state = st.session_state if state is None else state
    on_key, target_key = _keys(ns)
    if not state.get(on_key):
        return None
    try:
        target = float(state.get(target_key))
    except (TypeError, ValueError):
        return None
    return target if target > 0 else None


def auto_stop_query(ns: str) -> ui.QueryParam:
    """The URL parameter ``stop_sem=X``: the option on with target X (absent: off)."""
    on_key, target_key = _keys(ns)
    return ui.QueryParam(
        target_key,
        float,
        lo=1e-6,
        hi=1e6,
        apply=lambda v: {on_key: True, target_key: float(v)},
        read=lambda s: auto_stop_target(ns, s),
    )


class HealthLight:
    """The live traffic light of one run, and its stopping rule.

    Parameters
    ----------
    container : streamlit container
        Where the light is drawn (one line, replaced at each frame).
    target_sem : float or None
        Stop once MCSE(λ̂) ≤ this with a healthy R-hat (``None``: never stop early).
    criteria : Criteria, optional
        The health rule (default :data:`lltools.estimation.health.DEFAULT_CRITERIA`).
    """

    def __init__(self, container: Any, target_sem: float | None = None,
                 criteria: Criteria | None = None) -> None:
        self.slot = container.empty()
        self.target_sem = target_sem
        self.criteria = criteria or DEFAULT_CRITERIA
        self.reason: str | None = None
        self._seen: tuple[int, LiveHealth] | None = None
        self._next_check = 0.0

    def health(self, item: Any) -> LiveHealth:
        """The core's verdict on ``item.trace`` (computed once per chunk)."""
        if self._seen is None or self._seen[0] != id(item):
            self._seen = (id(item), live_health(item.trace, self.criteria))
        return self._seen[1]

    def stop_when(self, item: Any) -> str | None:
        """``stop_when`` for :func:`dashboard.running.stream_live`: why to stop now, or ``None``.

        The verdict summarises every draw so far (tens to hundreds of ms for long runs), so after
        a check that took D seconds the next waits ≥ 3·D: checking costs at most a quarter of
        the run.  The run then ends at the checked chunk, so the summary shown is the one the
        reason quotes.
        """
        start = time.perf_counter()
        if self.target_sem is None or start < self._next_check:
            return None
        self.reason = stop_reason(self.health(item), self.target_sem, self.criteria)
        self._next_check = time.perf_counter() + 3.0 * (time.perf_counter() - start)
        return self.reason

    def outcome(self, last: Any) -> tuple[Any, str]:
        """``(result, status)`` of the run whose last item :func:`~dashboard.running.stream_live`
        returned: the finished result, or — stopped by the rule — the draws so far summarised,
        with a status saying why ("stopped at step 1,200 of 2,500: MCSE 0.012 ≤ target 0.02 and
        R-hat 1.004 ≤ 1.01")."""
        if last.result is not None and self.reason is None:
            return last.result, "complete"
        result = last.result or estimate_result(last.trace, last.target, last.settings)
        if self.reason is None:
            return result, "complete"
        return result, f"stopped at step {last.steps_done:,} of {last.steps_total:,}: {self.reason}"

    def draw(self, item: Any) -> LiveHealth:
        """Redraw the light for ``item`` (a live frame); returns the verdict shown."""
        h = self.health(item)
        self.slot.markdown(light_markdown(h, self.target_sem))
        return h


def light_markdown(h: LiveHealth, target_sem: float | None = None) -> str:
    """One line: a coloured badge (healthy / not converged yet / problem) and the core's reason
    with R-hat, ESS, MCSE(λ̂), acceptance and divergences (and the stopping target, if any)."""
    colour, icon, word = LIGHTS[h.light]
    target = f" · stops at MCSE ≤ {target_sem:g}" if target_sem is not None else ""
    return f":{colour}-badge[{icon} {word}] {h.line()}{target}"


__all__ = ["HealthLight", "auto_stop_controls", "auto_stop_query", "auto_stop_target", "light_markdown"]
