"""Recording a workflow's event stream into the run store while it runs.

This module sits above :mod:`lltools.workflows` (it summarises and re-runs estimates and
sweeps); the rest of :mod:`lltools.storage` sits below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from lltools.storage.files import DEFAULT_FLUSH_INTERVAL_S, RunStoreError, describe_exception, jsonable
from lltools.storage.index import RunStore
from lltools.storage.specs import build_target, total_steps
from lltools.storage.writer import RunWriter
from lltools.targets.base import Target
from lltools.workflows.estimate import estimate_result, estimate_stream
from lltools.workflows.events import RunEvent
from lltools.workflows.sweep import SweepResult, sweep_stream


# ----------------------------------------------------------------------------- recording
def result_dict(result: Any) -> dict[str, Any] | None:
    """A result as the stored summary: ``.to_dict()``, a table as records, or a dict."""
    if result is None:
        return None
    if hasattr(result, "to_dict") and not isinstance(result, pd.DataFrame):
        return result.to_dict()
    if isinstance(result, pd.DataFrame):
        return {"table": jsonable(result)}
    if isinstance(result, dict):
        return result
    raise TypeError(f"cannot store a result of type {type(result).__name__}")


def partial_result(event: RunEvent) -> Any | None:
    """The result of a stopped run's draws so far (what a finished run's ``result`` would be,
    from fewer draws): an ``EstimateResult`` or a ``SweepResult``; ``None`` with fewer than two
    draws (still in burn-in) or for other kinds."""
    trace = event.trace
    if int(trace.draw_mask.sum()) < 2:
        return None
    if event.kind == "estimate" and event.target is not None and hasattr(event.settings, "as_dict"):
        return estimate_result(trace, event.target, event.settings)
    if event.kind == "sweep" and isinstance(event.settings, pd.DataFrame):
        return SweepResult.from_trace(trace, event.settings)
    return None


class RecordedStream:
    """An iterable that passes a stream's items through while recording them.

    Created by :func:`record_stream`.  After iteration, ``result`` holds the summarised
    result (e.g. an :class:`~lltools.workflows.estimate.EstimateResult`) and ``run_id`` the stored id.
    """

    def __init__(
        self,
        store: RunStore,
        stream: Iterable[Any],
        *,
        kind: str,
        settings: dict[str, Any],
        target: dict[str, Any],
        meta: dict[str, Any] | None,
        summarize: Callable[[RunEvent], Any] | None,
        flush_interval: float,
    ) -> None:
        self.store = store
        self.stream = stream
        self.kind = kind
        self.settings = settings
        self.target = target
        self.meta = meta
        self.summarize = summarize
        self.flush_interval = flush_interval
        self.writer: RunWriter | None = None
        self.result: Any = None
        self._iterated = False

    @property
    def run_id(self) -> str | None:
        return None if self.writer is None else self.writer.run_id

    def __iter__(self) -> Iterator[RunEvent]:
        if self._iterated:
            raise RuntimeError("a recorded stream can be iterated only once")
        self._iterated = True
        return self._record()

    def _record(self) -> Iterator[RunEvent]:
        self.writer = writer = self.store.create_run(
            self.kind, self.settings, self.target, self.meta, flush_interval=self.flush_interval
        )
        last: RunEvent | None = None
        started = False
        try:
            for event in self.stream:
                if not started:
                    self._describe(writer, event)
                    started = True
                writer.append(event.trace)
                last = event
                yield event
            if last is None:
                raise RuntimeError("the stream produced nothing")
            self._finish(writer, last)
        except GeneratorExit:  # the consumer closed the stream: Stop in the app, a break
            self._stopped(writer, last, "stopped by the caller before the end")
            raise
        except KeyboardInterrupt:  # Ctrl-C in the CLI
            self._stopped(writer, last, "interrupted (Ctrl-C)")
            raise
        except ValueError as exc:
            if not started:  # refused settings: the run never started, keep no record
                self.store.delete(writer.run_id, force=True)
                self.writer = None
            else:
                writer.fail(describe_exception(exc))
            raise
        except BaseException as exc:
            writer.fail(describe_exception(exc))
            raise

    def _stopped(self, writer: RunWriter, last: RunEvent | None, reason: str) -> None:
        """Close a run that ended early: ``complete`` when its last trace was already in,
        else ``stopped`` with its draws so far and their summary (the λ̂ the app shows)."""
        try:
            if last is not None and last.trace.complete:
                self._finish(writer, last)
                return
            self.result = partial_result(last) if last is not None else None
            writer.stop(None if last is None else last.trace, result_dict(self.result), reason)
        except Exception as exc:
            writer.fail(describe_exception(exc))

    def _finish(self, writer: RunWriter, last: RunEvent) -> None:
        self.result = self.summarize(last) if self.summarize is not None else last.result
        writer.finish(result_dict(self.result))

    @staticmethod
    def _describe(writer: RunWriter, event: RunEvent) -> None:
        """Store what the stream resolved: sampler settings (or a sweep's grid), target description."""
        extra: dict[str, Any] = {}
        if hasattr(event.settings, "as_dict"):
            resolved = event.settings.as_dict()
            extra["resolved_settings"] = resolved
            extra["device"] = resolved.get("device")
            extra["seed"] = resolved.get("seed")
        elif isinstance(event.settings, pd.DataFrame):
            extra["grid"] = event.settings
        if event.target is not None:
            extra["target_info"] = event.target.describe()
        if extra:
            writer.update(**extra)


def record_stream(
    store: RunStore,
    stream: Iterable[Any],
    *,
    kind: str = "estimate",
    settings: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    summarize: Callable[[RunEvent], Any] | None = None,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
) -> RecordedStream:
    """Wrap ``estimate_stream`` (or ``sweep_stream``) so the run is saved as it goes.

    Iterate the returned object exactly like the stream of
    :class:`~lltools.workflows.events.RunEvent`: every event's partial trace is appended,
    the last event's result (or ``summarize(last event)``) is stored (its ``to_dict()``)
    with status ``complete``.  An exception marks the run ``failed`` and is re-raised; a
    ``ValueError`` before the first trace (refused settings) leaves no run behind; closing
    the stream early (breaking out of the loop, Stop in the app) or Ctrl-C marks it
    ``stopped``, with its draws so far and their summary (:func:`partial_result`).
    """
    return RecordedStream(
        store,
        stream,
        kind=kind,
        settings=dict(settings or {}),
        target=dict(target or {}),
        meta=meta,
        summarize=summarize,
        flush_interval=flush_interval,
    )


def rerun_stream(kind: str, target: Target, settings: dict[str, Any], report_every: int) -> Any:
    """The stream that re-runs a stored run's settings (``estimate_stream`` / ``sweep_stream``)."""
    if kind == "estimate":
        return estimate_stream(target, report_every=report_every, **settings)
    if kind == "sweep":
        return sweep_stream(target, report_every=report_every, **settings)
    raise RunStoreError(f"runs of kind {kind!r} cannot be resumed; start them again")


def resume_stream(
    store: RunStore,
    run_id: str,
    *,
    report_every: int | None = None,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
) -> tuple[dict[str, Any], RecordedStream]:
    """Re-run an unfinished run FROM SCRATCH as a new recorded run (what ``runs resume`` does).

    Sampler state is not saved, so the run cannot continue where it stopped; the same
    settings and seed reproduce the same chains.  Returns ``(resume_info, recorder)``:
    iterate ``recorder`` to run it (its meta gets ``resumed_from``).  Raises
    :class:`RunStoreError` if the run is complete, still running, or its target cannot be
    rebuilt.
    """
    info = store.resume_info(run_id)
    if info["status"] == "running":
        raise RunStoreError(f"run {info['id']} is still running")
    if not info["resumable"]:
        raise RunStoreError(
            f"run {info['id']} ({info['kind']}, target {info['target'].get('kind')}) cannot be re-run here"
        )
    target = build_target(info["target"])
    settings = dict(info["settings"])
    report = report_every or max(1, total_steps(settings) // 100)
    recorder = record_stream(
        store,
        rerun_stream(info["kind"], target, settings, report),
        kind=info["kind"],
        settings=settings,
        target=info["target"],
        meta={**info["meta"], "resumed_from": info["id"]},
        flush_interval=flush_interval,
    )
    return info, recorder


def estimate_and_record(
    target_spec: dict[str, Any],
    *,
    store: RunStore | str | Path | None = None,
    report_every: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    meta: dict[str, Any] | None = None,
    **settings: Any,
) -> tuple[str, Any]:
    """Build the target from ``target_spec``, run ``estimate_stream`` and record it.

    ``settings`` are ``estimate_stream`` keywords (nbeta, gamma, epsilon, chains, draws,
    burnin, thinning, batch_size, seed, device, dtype).  ``progress(steps_done, total)`` is
    called at every report.  Returns ``(run id, EstimateResult)``.
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    target = build_target(target_spec)
    total = int(settings.get("burnin", 200)) + int(settings.get("draws", 1000)) * int(
        settings.get("thinning", 1)
    )
    report = report_every or max(1, total // 100)
    recorder = record_stream(
        store,
        estimate_stream(target, report_every=report, **settings),
        kind="estimate",
        settings=settings,
        target=target_spec,
        meta=meta,
    )
    for event in recorder:
        if progress is not None:
            progress(event.steps_done, total)
    assert recorder.run_id is not None
    return recorder.run_id, recorder.result
