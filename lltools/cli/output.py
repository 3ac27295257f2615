"""Output helpers shared by every command: one-line errors, progress bars, summaries, tables."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

#: Longest error line printed (a hostile input can make a message megabytes long).
ERROR_CHARS = 500


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def fail(message: str) -> None:
    raise CLIError(message)


def started(stream: Iterable[Any]) -> Iterator[Any]:
    """Start ``stream`` (it validates its settings first) before any progress bar is drawn,
    so refused settings print only their one ``error:`` line."""
    it = iter(stream)
    for first in it:
        return itertools.chain([first], it)
    return iter(())


def progress_bar(total: int, enabled: bool) -> tqdm:
    return tqdm(total=total, desc="SGLD", unit="step", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True, leave=False)


def theory_lines(result: Any) -> list[str]:
    """The theory λ (with its caveat when not exact) and T(nβ, γ) (exact or ± its error).

    ``result`` is an estimate's ``to_dict()`` (what ``estimate --json`` prints and a saved
    run stores) or an object with the same attributes."""
    get = result.get if isinstance(result, dict) else (lambda key: getattr(result, key, None))
    lines = []
    record = get("theory")
    if record is not None and not isinstance(record, dict):
        record = record.to_dict()
    if record is not None and record.get("llc") is not None:
        m = f", m = {record['multiplicity']}" if record.get("multiplicity") is not None else ""
        how = (f"exact{m}; {record.get('method')}; the nβ → ∞ limit" if record.get("exact")
               else f"NOT exact: {record.get('note')}")
        lines.append(f"theory λ    {record['llc']:.4f}   ({how})")
    elif record is not None and not str(record.get("note", "")).startswith("no closed form"):
        lines.append(f"theory λ    unknown   ({record.get('note')})")
    elif get("theory_llc") is not None:
        lines.append(f"theory λ    {get('theory_llc'):.4f}   (the nβ → ∞ limit)")
    expected = get("expected_llc")
    if expected is not None:
        err = get("expected_llc_error")
        if err is not None and err <= 1e-6 * abs(expected):
            lines.append(f"exact T     {expected:.6f}   (nβ·E[L − L(w*)] at this nβ, γ by adaptive "
                         "cubature, error < 1e-6; λ̂ should match it up to the ε bias)")
        else:
            shown = "?" if err is None else f"{err:.2g}"
            lines.append(f"approx. T   {expected:.4f} ± {shown}   (nβ·E[L − L(w*)] by adaptive cubature; "
                         "APPROXIMATE: the quadrature did not reach 1e-6)")
    return lines


def _num(value: Any, spec: str) -> str:
    """A stored number (None = NaN) formatted with ``spec``."""
    return format(float("nan") if value is None else float(value), spec)


def result_lines(doc: dict[str, Any], *, header: bool = True, warnings: bool = True) -> list[str]:
    """The lines of an estimate's result from its ``to_dict()`` — the dict ``estimate --json``
    prints and a saved run stores as its summary, so ``estimate`` and ``runs show`` print the
    same lines.  ``header``: the target and settings lines; ``warnings``: the warning lines."""
    lines = []
    if header:
        t, s = doc.get("target") or {}, doc.get("settings") or {}
        lines += [
            f"target      {t.get('name')}  (d = {t.get('dim')}, n = {t.get('n')})",
            f"settings    nβ = {_num(s.get('nbeta'), 'g')}, γ = {_num(s.get('gamma'), 'g')}, "
            f"ε = {_num(s.get('epsilon'), 'g')}, chains = {s.get('chains')}, draws = {s.get('draws')}, "
            f"burn-in = {s.get('burnin')}, seed = {s.get('seed')}, {s.get('device')}/{s.get('dtype')}"
            + (f", {s['precision']} matrix products" if s.get("precision", "fp32") != "fp32" else "")
            + (f", sampler = {s['sampler']}" if s.get("sampler", "sgld") != "sgld" else ""),
        ]
    lines.append(
        f"λ̂ (LLC)     {_num(doc.get('llc_mean'), '.4f')} ± {_num(doc.get('llc_sem'), '.4f')} (SEM)   "
        f"std across chains {_num(doc.get('llc_std'), '.4f')}"
    )
    lines.extend(theory_lines(doc))
    lines.append(
        f"diagnostics R-hat {_num(doc.get('rhat'), '.3f')}   ESS {_num(doc.get('ess'), '.0f')}   "
        f"acceptance {_num(doc.get('acceptance'), '.3f')}   diverged {len(doc.get('diverged_chains') or [])}"
        f"/{doc.get('num_chains')}"
    )
    if warnings:
        lines += [f"warning     {w}" for w in doc.get("warnings") or []]
    return lines


def format_summary(result: Any) -> str:
    """A readable multi-line summary of an :class:`~lltools.workflows.estimate.EstimateResult`
    (:func:`result_lines` of its ``to_dict()``)."""
    return "\n".join(result_lines(result.to_dict()))


TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def check_output(path: Path, option: str, suffixes: tuple[str, ...] = TABLE_SUFFIXES) -> None:
    """Refuse an output path that cannot be written, before any sampling starts.

    The extension must be one of ``suffixes`` (default ``.csv`` or ``.parquet``), the folder
    must exist and be writable, and the path must not be a folder.
    """
    if path.suffix.lower() not in suffixes:
        fail(f"{option}: unsupported output extension {path.suffix!r}; use {' or '.join(suffixes)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        fail(f"{option}: the folder {parent} does not exist")
    if path.is_dir():
        fail(f"{option}: {path} is a folder")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        fail(f"{option}: cannot write {path} (permission denied)")


def write_table(frame: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        fail(f"unsupported output extension {path.suffix!r}; use .csv or .parquet")
