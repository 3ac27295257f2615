"""The ``lltools`` command line: estimate, sweep, trajectory, landscape, hessian, runs.

Progress goes to stderr (tqdm); ``--json`` prints exactly one JSON object on stdout.
Bad arguments exit with status 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from tqdm import tqdm

from lltools.base.devices import MATMUL_PRECISIONS
from lltools.base.untrusted import one_line, terminal_safe
from lltools.cli.landscape import hessian_command, landscape_command
from lltools.cli.output import (
    ERROR_CHARS,
    CLIError,
    check_output,
    fail,
    format_summary,
    progress_bar,
    started,
    write_table,
)
from lltools.cli.runs import runs_app
from lltools.estimation.calibrate import assess
from lltools.estimation.health import DEFAULT_CRITERIA
from lltools.estimation.influence import to_dataset
from lltools.estimation.live import live_health, stop_reason
from lltools.storage.index import RunStore
from lltools.storage.recording import record_stream
from lltools.targets.cards import first_run_settings
from lltools.targets.models import data_subsets
from lltools.targets.potentials import DEFAULT_SAMPLER, sampler_defaults
from lltools.targets.restrictions import RestrictionError, resolve
from lltools.targets.specs import TargetSpec, TargetSpecError
from lltools.theory.record import theory_for
from lltools.workflows.distributed import sweep_distributed, trajectory_distributed
from lltools.workflows.estimate import estimate_result, estimate_stream, expected_llc
from lltools.workflows.refined import refined_stream, refined_trajectory
from lltools.workflows.sweep import sampler_axis, sweep_stream
from lltools.workflows.trajectory import NETWORK_DEFAULTS, trajectory_stream

app = typer.Typer(
    name="lltools",
    help="Estimate local learning coefficients (LLC, λ) with vectorised SGLD.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

#: Sampler defaults for a typed potential (no dataset: nβ is a free parameter); a built-in
#: potential has its own preset (:func:`lltools.targets.potentials.sampler_defaults`).
POTENTIAL_DEFAULTS = {**DEFAULT_SAMPLER, "batch_size": None}
NETWORK_FALLBACK = dict(NETWORK_DEFAULTS)


def cli_spec(potential: str | None, model: Path | None, checkpoint: Path | None) -> TargetSpec:
    """The :class:`~lltools.targets.specs.TargetSpec` of ``--potential`` / ``--model`` / ``--checkpoint``."""
    try:
        return TargetSpec.from_cli(potential, model, checkpoint)
    except TargetSpecError as exc:
        fail(str(exc))


def load_target(potential: str | None, model: Path | None, checkpoint: Path | None, *, first_run: bool = False):
    """Build the target from ``--potential`` or ``--model`` (exactly one) and its sampler defaults.

    A model's defaults are its card's ``default_sampler`` (the reference setting, that of its
    trajectory); with ``first_run`` (``estimate``), the card's ``first_run`` over it
    (:func:`lltools.targets.cards.first_run_settings`: the Networks page's first click)."""
    spec = cli_spec(potential, model, checkpoint)
    if spec.kind == "potential":
        target = spec.build()
        for warning in target.warnings:  # the shared domain checks, before any sampling
            typer.echo(f"warning: {warning}", err=True)
        return target, {**POTENTIAL_DEFAULTS, **sampler_defaults(str(potential))}
    assert model is not None
    if not model.exists():
        fail(f"model folder not found: {model}")
    target = spec.build()
    defaults = dict(NETWORK_FALLBACK)
    card = target.card  # validated by load_sample_model (lltools.targets.cards)
    card_defaults = first_run_settings(card) if first_run else (card.get("default_sampler") or {})
    defaults.update({k: v for k, v in card_defaults.items() if v is not None})
    defaults.setdefault("nbeta", None)
    return target, defaults


def pick(value: Any, defaults: dict[str, Any], key: str) -> Any:
    return defaults.get(key) if value is None else value


def saved_spec(save: bool, potential: str | None, model: Path | None, checkpoint: Path | None) -> dict[str, Any] | None:
    """The run store's target spec, when the run is to be saved."""
    if not save:
        return None
    return cli_spec(potential, model, checkpoint).to_dict()


def drive(
    stream: Iterable[Any],
    *,
    total: int,
    progress: bool,
    save: bool,
    store: str | Path | None,
    kind: str,
    settings: dict[str, Any],
    spec: dict[str, Any] | None,
    stop_when: Callable[[Any], str | None] | None = None,
) -> Any:
    """Run ``stream`` to its end behind a progress bar, recording it in the run store when
    ``save``; returns the last :class:`~lltools.workflows.events.RunEvent` (with the result).

    ``stop_when(event)`` is asked at every event: a reason (a string) ends the run there
    (the stream is closed, a saved run is stored as ``stopped``) and is printed."""
    recorder = None
    if save:
        recorder = record_stream(RunStore(store), stream, kind=kind, settings=settings, target=spec)
        stream = recorder
    last = None
    source = iter(stream)
    items = started(source)  # refused settings raise here, before the bar is drawn
    try:
        with progress_bar(total, progress) as bar:
            for last in items:
                bar.update(last.steps_done - bar.n)
                reason = stop_when(last) if stop_when is not None and not last.complete else None
                if reason:
                    close = getattr(source, "close", None)
                    if close is not None:
                        close()  # a saved run is stored as `stopped`, with its λ̂
                    typer.echo(f"stopped at step {last.steps_done:,} of {last.steps_total:,}: {reason}",
                               err=True)
                    break
    except KeyboardInterrupt:  # the recorder has stored the draws so far as a `stopped` run
        typer.echo(interrupted_line(last, recorder), err=True)
        raise
    assert last is not None
    if recorder is not None:
        typer.echo(f"saved run {recorder.run_id}", err=True)
    return last


def sem_reached(target_sem: float) -> Callable[[Any], str | None]:
    """``stop_when`` for ``--target-sem``: the core's stopping rule
    (:func:`lltools.estimation.live.stop_reason` over :func:`~lltools.estimation.live.live_health`),
    the same rule as the app's "stop when MCSE(λ̂) ≤ target"."""

    def check(event: Any) -> str | None:
        return stop_reason(live_health(event.trace), target_sem, target_name="--target-sem")

    return check


def interrupted_line(last: Any, recorder: Any) -> str:
    """What Ctrl-C prints: where the run stopped and, with ``--save``, where its draws are."""
    where = f" at step {last.steps_done:,} of {last.steps_total:,}" if last is not None else ""
    if recorder is None or recorder.run_id is None:
        return f"interrupted{where}; nothing saved (use --save to keep the draws of a run)"
    result = recorder.result
    llc = getattr(result, "llc_mean", None)
    sem = getattr(result, "llc_sem", None)
    so_far = f", λ̂ = {llc:.4g} ± {sem:.2g} so far" if llc is not None and sem is not None else ""
    return (f"interrupted{where}: saved as stopped run {recorder.run_id}{so_far} "
            f"(lltools runs show {recorder.run_id})")


# Options shared by several commands: declared once.
PotentialOpt = Annotated[str | None, typer.Option(help="Built-in name or expression in x, y (or w1..wd).")]
ModelOpt = Annotated[Path | None, typer.Option(help="A model folder: model.py (build, data, optional loss) and/or model.json, optional *.safetensors weights. Loading model.py runs that folder's code.")]
CheckpointOpt = Annotated[Path | None, typer.Option(help="Checkpoint file for --model (safetensors).")]
_DEF = POTENTIAL_DEFAULTS
_CARD = ("for a typed --potential, a built-in potential's own preset; a model's card value "
         "(estimate: its first_run, else default_sampler; else the network defaults) for --model")
DrawsOpt = Annotated[int | None, typer.Option(help=f"Draws after burn-in (default {_DEF['draws']} {_CARD}).")]
BurninOpt = Annotated[int | None, typer.Option(help=f"Burn-in steps (default {_DEF['burnin']} {_CARD}).")]
BatchSizeOpt = Annotated[int | None, typer.Option(help="Minibatch size for models.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda or auto.")]
DtypeOpt = Annotated[str, typer.Option(help="float32 or float64.")]
ProgressOpt = Annotated[bool, typer.Option(help="Show a progress bar on stderr.")]
SaveOpt = Annotated[bool, typer.Option("--save", help="Record the run in the run store (see `lltools runs`).")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Run store directory (default $LLTOOLS_HOME or ~/.lltools).")]
GammaOpt = Annotated[float | None, typer.Option(help=f"Localisation strength γ (default {_DEF['gamma']:g} {_CARD}).")]
EpsilonOpt = Annotated[float | None, typer.Option(help=f"Step size ε (default {_DEF['epsilon']:g} {_CARD}).")]
PrecisionOpt = Annotated[str, typer.Option(
    help="Matrix products of a network: fp32, or bf16 (opt-in mixed precision: bf16 products; parameters, "
    "gradients, noise and sums stay fp32; fast only with AVX-512 BF16/AMX or a bf16 GPU).")]
SamplerOpt = Annotated[str, typer.Option(help="Sampler: sgld (plain SGLD) or rmsprop (RMSProp-preconditioned SGLD).")]
RestrictOpt = Annotated[list[str] | None, typer.Option("--restrict", help="Sample only the parameters matching this glob (e.g. 'layers.0.*'); repeatable: one refined λ̂ per glob, all in one batched run.")]
RestrictEachOpt = Annotated[str | None, typer.Option("--restrict-each", help="One refined λ̂ per layer or per attention head: layer or head.")]
ProbeOpt = Annotated[int, typer.Option("--probe", help="Track the losses of the first N samples across the posterior (per-sample statistics: the Bayesian influence function); with --influence-out.")]
InfluenceOutOpt = Annotated[Path | None, typer.Option("--influence-out", help="Write the per-sample statistics of the whole-model (or first) restriction: .nc (xarray/ArviZ, with the covariance) or .parquet (one row per sample).")]
DataSubsetOpt = Annotated[str | None, typer.Option("--data-subset", help="Measure the loss on a named data subset that the folder's model.py declares in subsets().")]


def restricted_target(target: Any, model: Path, data_subset: str | None) -> Any:
    """The model target, restricted to ``--data-subset`` when given (a one-line error for
    an unknown name)."""
    if data_subset is None:
        return target
    subsets = data_subsets(model)
    if data_subset not in subsets:
        known = ", ".join(sorted(subsets)) or "none (model.py defines no subsets())"
        fail(f"--data-subset {data_subset!r} is not a subset of {model}; its subsets: {known}")
    return target.restrict_data(subsets[data_subset], name=f"{target.name} [{data_subset}]")


def resolve_restrictions(target: Any, globs: list[str], each: str | None) -> list[Any]:
    """``--restrict``/``--restrict-each`` as restrictions of the target's module."""
    try:
        return resolve(target.module, globs, each)
    except RestrictionError as exc:
        fail(str(exc))
    raise AssertionError  # fail() raised


def echo_refined(result: Any, as_json: bool, data_subset: str | None) -> None:
    """Print a refined run: one JSON object ``{"table": [row, …], "warnings": […]}`` (each row
    an estimate's fields plus ``restriction``, ``restricted_dim`` and ``data_subset``), or a
    table."""
    table = result.table.drop(columns=["centre"]).assign(data_subset=data_subset)
    if as_json:
        doc = result.to_dict()
        for row in doc["table"]:
            row.pop("centre", None)
            row["data_subset"] = data_subset
        typer.echo(json.dumps(doc))
        return
    cols = [c for c in ("restriction", "restricted_dim", "llc_mean", "llc_sem", "rhat", "ess", "acceptance",
                        "n_diverged") if c in table.columns]
    typer.echo(terminal_safe(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")))
    for warning in result.warnings:
        typer.echo(terminal_safe(f"warning: {warning}"), err=True)


def write_influence(result: Any, out: Path) -> None:
    """The per-sample statistics of the whole-model cell (else the first) to ``out``."""
    names = result.table.set_index("setting")["restriction"]
    cell = next((int(s) for s, n in names.items() if n == "all"), int(names.index[0]))
    moments = result.influence[cell]
    if out.suffix.lower() == ".nc":
        to_dataset(moments).to_netcdf(out, engine="h5netcdf")
    else:
        write_table(moments.table(), out)
    typer.echo(f"wrote per-sample statistics of {moments.num_samples} samples ({names[cell]}) to {out}", err=True)


def parse_samplers(text: str, *, single: bool) -> list[str]:
    """``--sampler`` as a list of names (one only when ``single``); a one-line error otherwise."""
    try:
        names = sampler_axis(text)
    except ValueError as exc:
        fail(f"--sampler: {exc}")
    if single and len(names) != 1:
        fail("--sampler takes one of sgld, rmsprop here (a comma list only for sweep)")
    return names


@app.command()
def estimate(
    potential: PotentialOpt = None,
    model: ModelOpt = None,
    checkpoint: CheckpointOpt = None,
    nbeta: Annotated[float | None, typer.Option(help=f"Inverse temperature nβ (default {_DEF['nbeta']:g} for --potential; the card's value, else n/log n, for --model).")] = None,
    gamma: GammaOpt = None,
    epsilon: EpsilonOpt = None,
    chains: Annotated[int | None, typer.Option(help=f"Number of chains (default {_DEF['chains']} {_CARD}).")] = None,
    draws: DrawsOpt = None,
    burnin: BurninOpt = None,
    thinning: Annotated[int, typer.Option(help="Record every k-th step.")] = 1,
    batch_size: BatchSizeOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    sampler: SamplerOpt = "sgld",
    precision: PrecisionOpt = "fp32",
    restrict: RestrictOpt = None,
    restrict_each: RestrictEachOpt = None,
    data_subset: DataSubsetOpt = None,
    probe: ProbeOpt = 0,
    influence_out: InfluenceOutOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    trace_out: Annotated[Path | None, typer.Option("--trace-out", help="Write per-step traces (.csv/.parquet).")] = None,
    progress: ProgressOpt = True,
    save: SaveOpt = False,
    store: StoreOpt = None,
    target_sem: Annotated[float | None, typer.Option(
        "--target-sem", help="Stop as soon as the standard error of λ̂ is at most this and R-hat is "
        "healthy (checked at every report; the summary says why it stopped).")] = None,
) -> None:
    """Estimate λ̂ at w* for a potential or a sample model."""
    if trace_out is not None:
        check_output(trace_out, "--trace-out")
    sampler_name = parse_samplers(sampler, single=True)[0]
    refined = bool(restrict) or restrict_each is not None or data_subset is not None or probe > 0
    # a plain estimate starts from the card's first_run (the Networks page's first click); a
    # refined one from default_sampler, the setting of the model's shipped (refined) trajectory
    target, defaults = load_target(potential, model, checkpoint, first_run=not refined)
    if (probe > 0) != (influence_out is not None):
        fail("--probe N and --influence-out PATH go together")
    if influence_out is not None:
        check_output(influence_out, "--influence-out", (".nc", ".parquet"))
    if refined:
        if model is None:
            fail("--restrict, --restrict-each, --data-subset and --probe need --model")
        if trace_out is not None:
            fail("--trace-out is not available with --restrict/--restrict-each/--data-subset")
        target = restricted_target(target, model, data_subset)
    kwargs = {
        "nbeta": pick(nbeta, defaults, "nbeta"),
        "gamma": pick(gamma, defaults, "gamma"),
        "epsilon": pick(epsilon, defaults, "epsilon"),
        "chains": int(pick(chains, defaults, "chains")),
        "draws": int(pick(draws, defaults, "draws")),
        "burnin": int(pick(burnin, defaults, "burnin")),
        "thinning": thinning,
        "batch_size": pick(batch_size, defaults, "batch_size") if target.has_data else None,
        "seed": seed,
        "device": device,
        "dtype": dtype,
        "sampler": sampler_name,
    }
    if precision not in MATMUL_PRECISIONS:
        fail(f"--precision must be one of {', '.join(MATMUL_PRECISIONS)}, got {precision!r}")
    if precision != "fp32":
        if not target.has_data:
            fail("--precision bf16 applies only to networks (--model)")
        if refined:
            fail("--precision bf16 is not available with --restrict/--restrict-each/--data-subset/--probe")
        kwargs["precision"] = precision
    total = kwargs["burnin"] + kwargs["draws"] * thinning
    report = max(1, total // 100)
    if target_sem is not None and not target_sem > 0:
        fail(f"--target-sem must be positive, got {target_sem}")
    if refined:
        restrictions = resolve_restrictions(target, restrict or [], restrict_each)
        probe_index = None
        if probe > 0:
            probe_index = torch.arange(min(probe, target.n))
        stream = refined_stream(target, restrictions, report_every=report, probe=probe_index, **kwargs)
        last = drive(stream, total=total, progress=progress, save=save, store=store, kind="sweep",
                     settings={**kwargs, "restrict": list(restrict or []), "restrict_each": restrict_each,
                               "data_subset": data_subset},
                     spec=saved_spec(save, potential, model, checkpoint))
        echo_refined(last.result, as_json, data_subset)
        if influence_out is not None:
            write_influence(last.result, influence_out)
        return
    last = drive(estimate_stream(target, report_every=report, **kwargs), total=total,
                           progress=progress, save=save, store=store, kind="estimate", settings=kwargs,
                           spec=saved_spec(save, potential, model, checkpoint),
                           stop_when=None if target_sem is None else sem_reached(target_sem))
    result = last.result if last.result is not None else estimate_result(last.trace, last.target, last.settings)
    if trace_out is not None:
        write_table(result.traces, trace_out)
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    else:
        typer.echo(terminal_safe(format_summary(result)))


def parse_floats(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail(f"--{name} must be comma-separated numbers, got {text!r}")
    if not values:
        fail(f"--{name} needs at least one value")
    return values


@app.command()
def sweep(
    potential: PotentialOpt = None,
    model: ModelOpt = None,
    checkpoint: CheckpointOpt = None,
    nbeta: Annotated[str | None, typer.Option(help="Comma-separated nβ values.")] = None,
    gamma: Annotated[str | None, typer.Option(help="Comma-separated γ values.")] = None,
    epsilon: Annotated[str | None, typer.Option(help="Comma-separated ε values.")] = None,
    chains: Annotated[int | None, typer.Option(help=f"Chains per setting (default {_DEF['chains']} {_CARD}).")] = None,
    draws: DrawsOpt = None,
    burnin: BurninOpt = None,
    batch_size: BatchSizeOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    sampler: Annotated[str, typer.Option(help="Comma-separated samplers: sgld, rmsprop (both: one more grid axis).")] = "sgld",
    out: Annotated[Path, typer.Option(help="Output table (.csv or .parquet), one row per setting.")] = Path("sweep.csv"),
    progress: ProgressOpt = True,
    save: SaveOpt = False,
    store: StoreOpt = None,
    ray: Annotated[str | None, typer.Option("--ray", help="Shard the grid over a Ray cluster at ADDRESS ('auto' or 'local' to start one); needs the `distributed` extra.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (the table's rows) on stdout.")] = False,
) -> None:
    """Run a grid over ε × γ × nβ (× sampler) as one batched computation; write one row per setting."""

    check_output(out, "--out")
    samplers = parse_samplers(sampler, single=False)
    target, defaults = load_target(potential, model, checkpoint)
    nb_default = defaults.get("nbeta") or target.default_nbeta
    if nbeta is None and nb_default is None:
        fail("--nbeta is required")
    grid_values = {
        "epsilon": parse_floats(epsilon, "epsilon") if epsilon else [defaults["epsilon"]],
        "gamma": parse_floats(gamma, "gamma") if gamma else [defaults["gamma"]],
        "nbeta": parse_floats(nbeta, "nbeta") if nbeta else [nb_default],
        "sampler": samplers,
    }
    n_draws = int(pick(draws, defaults, "draws"))
    n_burn = int(pick(burnin, defaults, "burnin"))
    total = n_burn + n_draws
    sweep_kwargs = {
        **grid_values,
        "chains": int(pick(chains, defaults, "chains")),
        "draws": n_draws,
        "burnin": n_burn,
        "batch_size": pick(batch_size, defaults, "batch_size") if target.has_data else None,
        "seed": seed,
        "device": device,
        "dtype": dtype,
    }
    if ray is not None:
        if save:
            fail("--save is not supported with --ray yet; save the written table instead")

        result = sweep_distributed(cli_spec(potential, model, checkpoint), **sweep_kwargs,
                                   address=None if ray == "local" else ray)
        write_sweep_table(result.table, target, out, as_json)
        return
    last = drive(sweep_stream(target, report_every=max(1, total // 100), **sweep_kwargs),
                           total=total, progress=progress, save=save, store=store, kind="sweep",
                           settings=sweep_kwargs, spec=saved_spec(save, potential, model, checkpoint))
    write_sweep_table(last.result.table.copy(), target, out, as_json)


def write_sweep_table(table: Any, target: Any, out: Path, as_json: bool = False) -> None:
    """Label a per-setting table with its target, theory λ, T(nβ, γ) (where a quadrature
    applies) and the one health rule's verdict; write it, and print it (or one JSON object)."""
    table.insert(0, "target", target.name)
    table["theory_llc"] = theory_for(target).llc
    targets = [expected_llc(target, float(nb), float(g)) for nb, g in zip(table["nbeta"], table["gamma"],
                                                                           strict=True)]
    table["T"] = [t.value if t is not None else float("nan") for t in targets]
    verdict = assess(table, DEFAULT_CRITERIA)
    table["healthy"] = verdict["healthy"].astype(bool)
    table["problem"] = verdict["problem"]
    write_table(table, out)
    typer.echo(f"wrote {len(table)} settings to {out}", err=True)
    if as_json:
        typer.echo(json.dumps({"target": target.name, "table": json.loads(table.to_json(orient="records"))}))
    else:
        shown = table.drop(columns=["problem"])
        typer.echo(terminal_safe(shown.to_string(index=False)))


@app.command()
def trajectory(
    model_dir: Annotated[Path, typer.Argument(help="A model folder with checkpoints (checkpoints/*.safetensors), optionally metrics.csv.")],
    out: Annotated[Path, typer.Option(help="Output table (.parquet or .csv), one row per checkpoint.")] = Path("trajectory.parquet"),
    nbeta: Annotated[float | None, typer.Option(help="Inverse temperature nβ (default: model card, else n/log n).")] = None,
    gamma: GammaOpt = None,
    epsilon: EpsilonOpt = None,
    chains: Annotated[int | None, typer.Option(help="Chains per checkpoint.")] = None,
    draws: DrawsOpt = None,
    burnin: BurninOpt = None,
    batch_size: BatchSizeOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    progress: ProgressOpt = True,
    ray: Annotated[str | None, typer.Option("--ray", help="Shard the checkpoints over a Ray cluster at ADDRESS ('auto' or 'local' to start one); needs the `distributed` extra.")] = None,
    restrict: RestrictOpt = None,
    restrict_each: RestrictEachOpt = None,
    checkpoints: Annotated[str | None, typer.Option(help="Comma-separated positions in the step-sorted checkpoint list (default: all), e.g. 0,10,-1.")] = None,
) -> None:
    """λ̂ at every checkpoint of a model folder, joined with the training logs (with
    --restrict/--restrict-each: one refined λ̂ per restriction and checkpoint, one batched run)."""
    check_output(out, "--out")
    if not ((model_dir / "model.json").exists() or (model_dir / "model.py").exists()):
        fail(f"not a model folder (no model.py or model.json): {model_dir}")
    positions = None if checkpoints is None else [int(v) for v in parse_floats(checkpoints, "checkpoints")]
    if ray is not None and positions is not None:
        fail("--checkpoints is not available with --ray yet; it shards every checkpoint")
    if restrict or restrict_each is not None:
        if ray is not None:
            fail("--ray is not available with --restrict/--restrict-each (a refined trajectory is one batched run)")
        try:
            table = refined_trajectory(model_dir, restrict=restrict or [], restrict_each=restrict_each,
                                       checkpoints=positions, nbeta=nbeta, gamma=gamma, epsilon=epsilon,
                                       chains=chains, draws=draws,
                                       burnin=burnin, batch_size=batch_size, seed=seed, device=device,
                                       dtype=dtype)
        except RestrictionError as exc:
            fail(str(exc))
        write_table(table, out)
        typer.echo(f"wrote {len(table)} rows (restriction × checkpoint) to {out}", err=True)
        cols = [c for c in ("restriction", "step", "checkpoint", "llc_mean", "llc_sem") if c in table.columns]
        typer.echo(terminal_safe(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")))
        return
    if ray is not None:
        table = trajectory_distributed(
            model_dir, address=None if ray == "local" else ray, nbeta=nbeta, gamma=gamma, epsilon=epsilon,
            chains=chains, draws=draws, burnin=burnin, batch_size=batch_size, seed=seed, device=device,
            dtype=dtype)
        write_trajectory_table(table, out)
        return
    table = None
    stream = started(trajectory_stream(
        model_dir, nbeta=nbeta, gamma=gamma, epsilon=epsilon, chains=chains, draws=draws,
        burnin=burnin, batch_size=batch_size, seed=seed, device=device, dtype=dtype,
        report_every=25, checkpoints=positions,
    ))
    with tqdm(total=100, desc="trajectory", unit="%", file=sys.stderr, disable=not progress,
              leave=False) as bar:
        for event in stream:
            bar.update(int(100 * event.fraction) - bar.n)
            table = event.result if event.result is not None else table
    if table is None:
        fail("the trajectory produced no table")
    write_trajectory_table(table.sort_values("checkpoint_index").reset_index(drop=True), out)


def write_trajectory_table(table: Any, out: Path) -> None:
    """Write a per-checkpoint table and print its main columns."""
    write_table(table, out)
    typer.echo(f"wrote {len(table)} checkpoints to {out}", err=True)
    cols = [c for c in ("step", "llc_mean", "llc_sem", "train_loss", "val_loss", "train_acc", "val_acc",
                        "geometric_complexity") if c in table.columns]
    typer.echo(terminal_safe(table[cols].to_string(index=False)))


app.command("landscape")(landscape_command)
app.command("hessian")(hessian_command)
app.add_typer(runs_app, name="runs", help="List, show, export, resume or remove saved runs.")


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors (typer vendors click)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:
            typer.echo(f"error: {one_line(message, ERROR_CHARS)}", err=True)
        sys.exit(2)
    except CLIError as exc:
        typer.echo(f"error: {one_line(exc, ERROR_CHARS)}", err=True)
        sys.exit(2)
    except (ValueError, FileNotFoundError, OSError, KeyError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        typer.echo(f"error: {one_line(message, ERROR_CHARS)}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
