"""``lltools runs``: list, show, export, remove, resume and discard stored runs.

Mounted by the main CLI as ``app.add_typer(runs_app, name="runs")``.  Every command takes
``--store PATH`` (default ``$LLTOOLS_HOME`` or ``~/.lltools``).  A run id may be given in
full, as a unique prefix, or as ``latest``.  User errors print one line on stderr and exit
with status 2.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer

from lltools.base.untrusted import one_line, terminal_safe
from lltools.cli.output import format_summary, progress_bar, result_lines
from lltools.storage.index import RunStore
from lltools.storage.recording import resume_stream
from lltools.storage.specs import total_steps

runs_app = typer.Typer(
    name="runs",
    help="Stored runs: list, show, export, rm, resume, discard.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain one-line errors when run standalone
)

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Run store directory (default $LLTOOLS_HOME or ~/.lltools)."),
]
RunId = Annotated[str, typer.Argument(help="Run id, a unique prefix of one, or 'latest'.")]
F = TypeVar("F", bound=Callable[..., Any])


#: The ClickException class typer handles (typer >= 0.20 vendors click as ``typer._click``).
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


class RunsError(_ClickException, ValueError):  # type: ignore[misc,valid-type]
    """A user error printed as ``error: <message>`` on stderr, exit status 2.

    Standalone (``runs_app()``, CliRunner) typer shows it through :meth:`show`; under
    ``lltools.cli.main.main()``, which runs with ``standalone_mode=False``, it is re-raised and
    main's ``ValueError`` branch prints the same line.  (``typer.Exit`` would be swallowed
    there: non-standalone mode *returns* its exit code.)
    """

    exit_code = 2

    def show(self, file: Any = None) -> None:
        typer.echo(f"error: {one_line(self.format_message(), 500)}", err=True)


def one_line_errors(fn: F) -> F:
    """Turn user errors (ValueError and friends) into one-line :class:`RunsError` exits."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, KeyError, ImportError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RunsError(message) from None

    return wrapper  # type: ignore[return-value]


def _fmt(value: Any, spec: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return format(value, spec) if isinstance(value, int | float) else str(value)


def _listing_table(frame: pd.DataFrame) -> str:
    """The human-readable ``runs list`` table."""
    if frame.empty:
        return "no runs"
    shown = pd.DataFrame(
        {
            "id": frame["id"],
            "created": frame["created"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "kind": frame["kind"],
            "status": frame["status"],
            "target": frame["target"].astype(str).str.slice(0, 40),
            "llc": [_fmt(v) for v in frame["llc_mean"]],
            "sem": [_fmt(v) for v in frame["llc_sem"]],
            "chains": [_fmt(v, "d") if isinstance(v, int) else _fmt(v) for v in frame["num_chains"]],
            "draws": [f"{d}/{_fmt(n, 'd') if isinstance(n, int) else '?'}"
                      for d, n in zip(frame["draws_done"], frame["num_draws"], strict=True)],
        }
    )
    return shown.to_string(index=False)


@runs_app.command("list")
@one_line_errors
def list_runs(
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array on stdout.")] = False,
    status: Annotated[str | None, typer.Option(help="Only runs with this status (running, complete, failed, incomplete).")] = None,
    kind: Annotated[str | None, typer.Option(help="Only runs of this kind (estimate, sweep, trajectory).")] = None,
    limit: Annotated[int | None, typer.Option(help="Show at most this many (newest first).")] = None,
) -> None:
    """List stored runs, newest first."""
    frame = RunStore(store).list_runs()
    if status is not None:
        frame = frame[frame["status"] == status]
    if kind is not None:
        frame = frame[frame["kind"] == kind]
    if limit is not None:
        frame = frame.head(max(0, limit))
    if as_json:
        out = frame.assign(created=[t.isoformat() for t in frame["created"]])
        rows = json.loads(out.to_json(orient="records", date_format="iso"))
        typer.echo(json.dumps(rows))
    else:
        typer.echo(terminal_safe(_listing_table(frame)))


def _show_lines(manifest: dict[str, Any], path: Path) -> list[str]:
    """The readable ``runs show`` report."""
    progress = manifest.get("progress", {})
    summary = manifest.get("summary") or {}
    settings = manifest.get("resolved_settings") or manifest.get("settings", {})
    target = manifest.get("target", {})
    info = manifest.get("target_info", {})
    lines = [
        f"run         {manifest.get('id')}",
        f"kind        {manifest.get('kind')}   status {manifest.get('status')}",
        f"created     {manifest.get('created')}   finished {manifest.get('finished') or '-'}",
        f"target      {json.dumps(target)}"
        + (f"  (d = {info.get('dim')}, n = {info.get('n')})" if info else ""),
        "settings    " + ", ".join(f"{k} = {v}" for k, v in settings.items()),
        f"progress    step {progress.get('steps_done', 0)}/{_fmt(progress.get('num_steps_total'), 'd')}"
        f"   draws {progress.get('draws_done', 0)}   chunks {len(manifest.get('chunks', []))}",
    ]
    if "llc_mean" in summary:  # an estimate: the lines `estimate` prints, from the same to_dict
        lines += result_lines(summary, header=False, warnings=False)
    elif "table" in summary:
        lines.append(f"result      table of {len(summary['table'])} rows")
    for w in manifest.get("warnings", []):
        lines.append(f"warning     {w}")
    if manifest.get("error"):
        lines.append(f"error       {manifest['error']}")
    if manifest.get("status") == "stopped":
        lines.append(f"stopped     {manifest.get('stop_reason') or 'stopped'}: the summary above is of the "
                     "draws so far")
    if manifest.get("status") == "incomplete":
        lines.append("note        the writer stopped; flushed chunks are readable. "
                     "`lltools runs resume ID` re-runs from scratch, `runs discard ID` removes it.")
    versions = manifest.get("versions", {})
    lines.append("versions    " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines.append(f"device      {manifest.get('device')}   seed {manifest.get('seed')}")
    lines.append(f"path        {path}")
    return lines


@runs_app.command("show")
@one_line_errors
def show(
    run_id: RunId,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Show one run's settings, progress, summary and diagnostics."""
    runs = RunStore(store)
    path = runs.resolve(run_id)
    manifest = runs.manifest(path.name)
    if as_json:
        typer.echo(json.dumps(manifest))
    else:
        typer.echo(terminal_safe("\n".join(_show_lines(manifest, path))))


@runs_app.command("export")
@one_line_errors
def export(
    run_id: RunId,
    out: Annotated[Path, typer.Argument(help="Output file: .parquet, .csv, .json or .nc (netCDF that ArviZ opens).")],
    store: StoreOption = None,
) -> None:
    """Export a run's traces (.csv / .parquet), everything (.json), or an ArviZ-ready netCDF DataTree (.nc)."""
    path = RunStore(store).export(run_id, out)
    typer.echo(one_line(f"wrote {path}"), err=True)


@runs_app.command("rm")
@one_line_errors
def rm(
    run_id: RunId,
    store: StoreOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option(help="Remove even a run that is still being written.")] = False,
) -> None:
    """Delete a run and its files."""
    runs = RunStore(store)
    name = runs.resolve(run_id).name
    if not yes and not typer.confirm(one_line(f"delete run {name}?"), default=False, err=True):
        raise RunsError(f"not deleted: {name}")
    runs.delete(name, force=force)
    typer.echo(one_line(f"deleted {name}"), err=True)


@runs_app.command("discard")
@one_line_errors
def discard(run_id: RunId, store: StoreOption = None) -> None:
    """Remove an incomplete or failed run."""
    name = RunStore(store).discard(run_id)
    typer.echo(one_line(f"discarded {name}"), err=True)


@runs_app.command("resume")
@one_line_errors
def resume(
    run_id: RunId,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    discard_old: Annotated[bool, typer.Option(help="Discard the unfinished run once the new one completes.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Re-run an incomplete or failed run's settings FROM SCRATCH as a new run.

    Sampler state is not saved, so the run cannot continue where it stopped; the same
    settings and seed reproduce the same chains.
    """
    runs = RunStore(store)
    old = runs.resolve(run_id).name  # the folder is the run; --discard-old removes exactly it
    info, recorder = resume_stream(runs, old)
    if info["id"] != old:  # pragma: no cover - resume_info reports the folder name
        raise RunsError(f"run {old} disagrees with its manifest; not resumed")
    typer.echo(f"re-running {info['id']} from scratch (sampler state is not saved; "
               f"it had {info['steps_done']} steps)", err=True)
    total = total_steps(info["settings"])
    with progress_bar(total, progress) as bar:
        for event in recorder:
            bar.update(event.steps_done - bar.n)
    if discard_old:
        runs.discard(old)
    _print_result(recorder, as_json)


def _print_result(recorder: Any, as_json: bool) -> None:
    """Print a recorded run's result (estimate summary or sweep table) and its id."""
    result = recorder.result
    typer.echo(f"saved run {recorder.run_id}", err=True)
    if as_json:
        typer.echo(json.dumps({"run_id": recorder.run_id, **result.to_dict()}))
    elif hasattr(result, "table"):  # a sweep
        typer.echo(terminal_safe(result.table.to_string(index=False)))
    else:
        typer.echo(terminal_safe(format_summary(result)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(runs_app())
