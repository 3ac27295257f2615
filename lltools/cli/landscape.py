"""``lltools landscape`` and ``lltools hessian``: a model's loss on a plane, its Hessian spectrum.

Registered on the main app by :mod:`lltools.cli.main`.  Bad input exits with status 2 and
one ``error:`` line (the main entry point turns ``ValueError``/``CLIError`` into it).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lltools.base.untrusted import terminal_safe
from lltools.cli.output import check_output, fail, write_table
from lltools.targets.base import Target
from lltools.targets.models import list_checkpoints
from lltools.targets.specs import TargetSpec, TargetSpecError
from lltools.theory.hessian import DEFAULT_RTOL, hessian_spectrum
from lltools.theory.planes import MAX_GRID, PLANES, checkpoint_vectors
from lltools.theory.rank_plan import plan_for, subset_rank_llc
from lltools.workflows.landscape import landscape, sample_positions

ModelArg = Annotated[Path, typer.Option("--model", help="A model folder (holding model.json).")]
CheckpointOpt = Annotated[Path | None, typer.Option(help="Checkpoint file w* (default: the card's final one).")]


def model_target(model: Path, checkpoint: Path | None, dtype: str = "float32") -> Target:
    """The target of ``--model`` / ``--checkpoint``, or a one-line error."""
    if not model.exists():
        fail(f"model folder not found: {model}")
    if dtype not in ("float32", "float64"):
        fail(f"--dtype must be float32 or float64, got {dtype!r}")
    try:
        spec = TargetSpec.from_cli(None, model, checkpoint)
        spec = TargetSpec(spec.kind, path=spec.path, checkpoint=spec.checkpoint, dtype=dtype)
        return spec.build()
    except TargetSpecError as exc:
        fail(str(exc))
    raise AssertionError  # unreachable: fail raises


def _span(value: str | None) -> float | tuple[float, ...] | None:
    if value is None:
        return None
    try:
        parts = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        fail(f"--range must be R or a_min,a_max,b_min,b_max, got {value!r}")
    if len(parts) == 1:
        if not (parts[0] > 0 and math.isfinite(parts[0])):
            fail(f"--range must be a positive number, got {value!r}")
        return parts[0]
    if len(parts) != 4:
        fail(f"--range must be R or a_min,a_max,b_min,b_max, got {value!r}")
    return parts


def _checkpoint_path(model: Path, value: Path) -> Path:
    for candidate in (value, model / value, model / "checkpoints" / value):
        if candidate.is_file():
            return candidate
    fail(f"checkpoint not found: {value}")
    raise AssertionError


def landscape_command(
    model: ModelArg,
    checkpoint: CheckpointOpt = None,
    plane: Annotated[str, typer.Option(help=f"Directions: {', '.join(PLANES)}.")] = "random",
    grid: Annotated[int, typer.Option(help=f"Points per side (2 … {MAX_GRID}).")] = 101,
    span: Annotated[str | None, typer.Option("--range", help="R (a, b ∈ [−R, R]) or a_min,a_max,b_min,b_max; default per plane.")] = None,
    line_from: Annotated[Path | None, typer.Option("--from", help="checkpoints plane: the first checkpoint (default: the first saved one).")] = None,
    line_to: Annotated[Path | None, typer.Option("--to", help="checkpoints plane: the second checkpoint (default: --checkpoint, else the last saved one).")] = None,
    draws: Annotated[int, typer.Option(help="pca plane: SGLD draws per chain whose principal components span the plane.")] = 200,
    chains: Annotated[int, typer.Option(help="pca plane: SGLD chains.")] = 4,
    burnin: Annotated[int, typer.Option(help="pca plane: SGLD burn-in steps (the card's nβ, γ, ε and batch size are used).")] = 100,
    seed: Annotated[int, typer.Option(help="Random directions and SGLD seed.")] = 0,
    dtype: Annotated[str, typer.Option(help="float32 or float64.")] = "float32",
    out: Annotated[Path, typer.Option(help="Output table (.parquet or .csv): columns a, b, loss.")] = Path("plane.parquet"),
    chains_out: Annotated[Path | None, typer.Option("--chains-out", help="pca plane: also write the projected chains (.parquet/.csv).")] = None,
) -> None:
    """The full-data loss L_n on a grid × grid plane through w*."""
    check_output(out, "--out")
    if chains_out is not None:
        check_output(chains_out, "--chains-out")
    if plane not in PLANES:
        fail(f"--plane must be one of {', '.join(PLANES)}, got {plane!r}")
    if not 2 <= grid <= MAX_GRID:
        fail(f"--grid must be between 2 and {MAX_GRID}, got {grid}")
    spans = _span(span)
    target = model_target(model, checkpoint, dtype)
    kwargs: dict[str, Any] = {}
    started = time.perf_counter()
    if plane == "pca":
        if draws < 3 or chains < 1 or burnin < 0:
            fail("--draws must be at least 3, --chains at least 1 and --burnin at least 0")
        defaults = dict((getattr(target, "card", None) or {}).get("default_sampler") or {})
        settings = {k: defaults[k] for k in ("nbeta", "gamma", "epsilon", "batch_size") if defaults.get(k)}
        typer.echo(f"sampling {chains} chains × {draws} draws for the principal components…", err=True)
        positions, steps = sample_positions(target, chains=chains, draws=draws,
                                            burnin=burnin, seed=seed, **settings)
        kwargs.update(positions=positions, position_steps=steps)
    if plane == "checkpoints":
        saved = list_checkpoints(model)
        first = _checkpoint_path(model, line_from) if line_from else (saved[0] if saved else None)
        second = (_checkpoint_path(model, line_to) if line_to else
                  _checkpoint_path(model, checkpoint) if checkpoint else (saved[-1] if saved else None))
        if first is None or second is None:
            fail("the checkpoints plane needs two checkpoints: give --from and --to")
        vectors = checkpoint_vectors(target, [first, second])
        kwargs.update(w_from=vectors[0], w_to=vectors[1])
    result = landscape(target, plane, grid=grid, span=spans, seed=seed, **kwargs)
    elapsed = time.perf_counter() - started
    table = result.table.assign(plane=plane)
    write_table(table, out)
    if chains_out is not None and result.chains is not None:
        write_table(result.chains, chains_out)
    lo = float(table["loss"].min())
    typer.echo(f"wrote {len(table):,} points to {out} in {elapsed:.1f} s", err=True)
    typer.echo(terminal_safe(
        f"{target.name}: {plane} plane ({result.plane.note}); a ∈ [{result.span[0]:.3g}, {result.span[1]:.3g}], "
        f"b ∈ [{result.span[2]:.3g}, {result.span[3]:.3g}]; L from {lo:.4g} to {float(table['loss'].max()):.4g}"
    ))


def hessian_command(
    model: ModelArg,
    checkpoint: CheckpointOpt = None,
    top: Annotated[int, typer.Option(help="Eigenvalues reported at each end of the spectrum.")] = 20,
    rtol: Annotated[float, typer.Option(help="Near zero means |μ| ≤ rtol·max|μ|.")] = DEFAULT_RTOL,
    method: Annotated[str, typer.Option(help="auto (exact for d ≤ 2500, else Lanczos), exact or lanczos.")] = "auto",
    rank: Annotated[bool, typer.Option(help="Also compute rank(J)/2 when it is affordable.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Top and bottom Hessian eigenvalues of L_n at w*, the near-zero count, rank(H)/2 beside d/2."""
    if top < 1:
        fail(f"--top must be at least 1, got {top}")
    if not (rtol > 0 and math.isfinite(rtol)):
        fail(f"--rtol must be a positive number, got {rtol}")
    if method not in ("auto", "exact", "lanczos"):
        fail(f"--method must be auto, exact or lanczos, got {method!r}")
    target = model_target(model, checkpoint)
    started = time.perf_counter()
    spectrum = hessian_spectrum(target, top=top, rtol=rtol, method=method)
    doc = spectrum.to_dict()
    rank_half, rank_note = None, "not requested"
    if rank:
        try:
            rank_half, rank_note = subset_rank_llc(target, plan_for(target))
        except (ValueError, TypeError, RuntimeError) as exc:
            rank_half, rank_note = None, f"not computed: {exc}"
    card = getattr(target, "card", None) or {}
    doc.update(
        name=target.name, n=target.n, rank_j_half=rank_half, rank_j_note=rank_note,
        theory_llc=(card.get("theory") or {}).get("llc"), seconds=round(time.perf_counter() - started, 3),
    )
    if as_json:
        typer.echo(json.dumps(doc))
        return
    fmt = ", ".join
    lines = [
        f"target      {target.name}  (d = {spectrum.dim:,}, n = {target.n})",
        f"method      {spectrum.note}",
        f"top μ       {fmt(f'{v:.4g}' for v in spectrum.top_eigenvalues)}",
        f"bottom μ    {fmt(f'{v:.3g}' for v in spectrum.bottom_eigenvalues)}",
        f"near zero   {doc['near_zero_count'] if doc['near_zero_count'] is not None else 'unknown'}"
        f"  (|μ| ≤ {spectrum.tolerance:.3g})",
        f"d/2         {spectrum.dim / 2:g}",
        f"rank(H)/2   {'unknown' if doc['hessian_rank_half'] is None else format(doc['hessian_rank_half'], 'g')}",
        f"rank(J)/2   {'n/a' if rank_half is None else format(rank_half, 'g')}  ({rank_note})",
    ]
    if doc["theory_llc"] is not None:
        lines.append(f"card λ      {doc['theory_llc']:g}  (the model card's stated value)")
    typer.echo(terminal_safe("\n".join(lines)))
