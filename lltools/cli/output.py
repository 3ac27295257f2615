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
    """The theory λ (with its caveat when not exact) and T(nβ, γ) (exact or ± its error)."""
    lines = []
    record = getattr(result, "theory", None)
    if record is not None and record.llc is not None:
        m = f", m = {record.multiplicity}" if record.multiplicity is not None else ""
        how = f"exact{m}; {record.method}; the nβ → ∞ limit" if record.exact else f"NOT exact: {record.note}"
        lines.append(f"theory λ    {record.llc:.4f}   ({how})")
    elif record is not None and not record.note.startswith("no closed form"):
        lines.append(f"theory λ    unknown   ({record.note})")
    elif result.theory_llc is not None:
        lines.append(f"theory λ    {result.theory_llc:.4f}   (the nβ → ∞ limit)")
    if result.expected_llc is not None:
        err = getattr(result, "expected_llc_error", None)
        if err is not None and err <= 1e-6 * abs(result.expected_llc):
            lines.append(f"exact T     {result.expected_llc:.6f}   (nβ·E[L − L(w*)] at this nβ, γ by adaptive "
                         "cubature, error < 1e-6; λ̂ should match it up to the ε bias)")
        else:
            shown = "?" if err is None else f"{err:.2g}"
            lines.append(f"approx. T   {result.expected_llc:.4f} ± {shown}   (nβ·E[L − L(w*)] by adaptive cubature; "
                         "APPROXIMATE: the quadrature did not reach 1e-6)")
    return lines


def format_summary(result: Any) -> str:
    """A readable multi-line summary of an :class:`~lltools.workflows.estimate.EstimateResult`."""
    s = result.settings
    lines = [
        f"target      {result.target_info.get('name')}  (d = {result.target_info.get('dim')}"
        f", n = {result.target_info.get('n')})",
        f"settings    nβ = {s.nbeta:g}, γ = {s.gamma:g}, ε = {s.epsilon:g}, chains = {s.chains}, "
        f"draws = {s.draws}, burn-in = {s.burnin}, seed = {s.seed}, {s.device}/{s.dtype}",
        f"λ̂ (LLC)     {result.llc_mean:.4f} ± {result.llc_sem:.4f} (SEM)   "
        f"std across chains {result.llc_std:.4f}",
    ]
    lines.extend(theory_lines(result))
    lines.append(
        f"diagnostics R-hat {result.rhat:.3f}   ESS {result.ess:.0f}   "
        f"acceptance {result.acceptance:.3f}   diverged {len(result.diverged_chains)}"
        f"/{result.n_chains}"
    )
    for w in result.warnings:
        lines.append(f"warning     {w}")
    return "\n".join(lines)


TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def check_output(path: Path, option: str) -> None:
    """Refuse an output path that cannot be written, before any sampling starts.

    The extension must be ``.csv`` or ``.parquet``, the folder must exist and be writable,
    and the path must not be a folder.
    """
    if path.suffix.lower() not in TABLE_SUFFIXES:
        fail(f"{option}: unsupported output extension {path.suffix!r}; use .csv or .parquet")
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
