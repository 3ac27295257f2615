"""ONE stream event: what ``estimate_stream``, ``sweep_stream`` and ``trajectory_stream`` yield.

Every stream yields :class:`RunEvent` objects: progress (steps done of the total), the
partial :class:`~lltools.sampling.trace.Trace` so far, what the run resolved (its sampler
settings and the placed target), and — on the last event only — the finished result
(:class:`~lltools.workflows.estimate.EstimateResult`, :class:`~lltools.workflows.sweep.SweepResult`
or a trajectory table).  Consumers (the run store's recording, the CLI's progress bar, the
app's live views) read these fields instead of guessing the shape of each stream's items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from lltools.sampling.trace import Trace
from lltools.targets.base import Target

#: The kinds of run a stream can be.
EventKind = Literal["estimate", "sweep", "trajectory"]


@dataclass(frozen=True)
class RunEvent:
    """One report of a running workflow.

    Attributes
    ----------
    kind : {"estimate", "sweep", "trajectory"}
        Which workflow yielded it.
    steps_done, steps_total : int
        SGLD steps taken so far and in all (for a trajectory run in several groups of
        checkpoints, summed over the groups).
    trace : Trace
        The (partial) trace of the current run: views of the columns filled so far, on the
        target's device; ``trace.complete`` on the last event of each run.
    settings : Any
        What the run resolved: :class:`~lltools.workflows.estimate.SamplerSettings` for an
        estimate, the grid DataFrame (``setting, epsilon, gamma, nbeta``) for a sweep, the
        sampler-settings dict for a trajectory.
    target : Target or None
        The target as placed on its device (with its minibatch size).
    result : Any, optional
        The finished result, on the last event only (None before).
    """

    kind: EventKind
    steps_done: int
    steps_total: int
    trace: Trace
    settings: Any
    target: Target | None
    result: Any = None

    @classmethod
    def of_trace(
        cls, kind: EventKind, trace: Trace, settings: Any, target: Target | None, result: Any = None
    ) -> RunEvent:
        """The event for one chunk of a single run: its progress is the trace's own."""
        return cls(kind=kind, steps_done=int(trace.meta.get("steps_done", 0)),
                   steps_total=int(trace.num_steps_total), trace=trace, settings=settings, target=target,
                   result=result)

    @property
    def complete(self) -> bool:
        """True on the last event, which carries the result."""
        return self.result is not None

    @property
    def fraction(self) -> float:
        """steps_done / steps_total, in [0, 1]."""
        return min(1.0, self.steps_done / self.steps_total) if self.steps_total > 0 else 1.0


def trace_events(
    traces: Iterable[Trace],
    kind: EventKind = "estimate",
    *,
    settings: Any = None,
    target: Target | None = None,
) -> Iterator[RunEvent]:
    """Wrap the driver's traces (:func:`lltools.sampling.driver.run_chunks`) as events without
    a result, e.g. to record a bare sampling run."""
    for trace in traces:
        yield RunEvent(kind=kind, steps_done=int(trace.meta.get("steps_done", 0)),
                       steps_total=int(trace.num_steps_total), trace=trace, settings=settings,
                       target=target)


__all__ = ["EventKind", "RunEvent", "trace_events"]
