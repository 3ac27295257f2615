"""Memory and size bombs (issue 14, items 4-5): each is refused from declared sizes, fast and small.

All bombs run in one fresh subprocess (so peak RSS is that process's own): for each, the
refusal must take < 2 s and the process's peak RSS must stay < 500 MB above what importing
lltools costs (measured with ``/proc/self/status`` VmHWM, reset before each bomb).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

MODEL = Path(__file__).resolve().parents[1] / "sample_models" / "deep_linear" / "dln_8_6_6_4_r2"

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import torch
    from lltools.targets.checkpoints import CheckpointError, load_checkpoint
    from lltools.targets.models import read_card
    from lltools.targets.potentials import potential_target
    from lltools.workflows.estimate import estimate_stream
    from lltools.workflows.sweep import sweep_stream

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    tmp = Path(sys.argv[1])
    quad = potential_target("x**2 + y**2")
    many = [1e-4 * (1 + i / 2000) for i in range(2000)]
    bombs = {
        "deflate_pt": lambda: load_checkpoint(tmp / "deflate.pt"),
        "expanded_pt": lambda: load_checkpoint(tmp / "expanded.pt"),
        "wide_card": lambda: read_card(tmp / "wide"),
        "huge_n_card": lambda: read_card(tmp / "huge_n"),
        "chains_4194304": lambda: next(iter(estimate_stream(quad, nbeta=10.0, chains=4194304, device="cpu"))),
        "sweep_2000_per_axis": lambda: next(iter(sweep_stream(quad, epsilon=many, gamma=many, nbeta=many,
                                                              chains=1, device="cpu"))),
    }
    out = {}
    for name, bomb in bombs.items():
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base = status("VmRSS:")
        t0 = time.perf_counter()
        try:
            bomb()
            message = None
        except ValueError as exc:  # CheckpointError, CardError, MemoryBudgetError are ValueErrors
            message = f"{type(exc).__name__}: {exc}"
        out[name] = {"seconds": time.perf_counter() - t0, "growth": status("VmHWM:") - base,
                     "peak": status("VmHWM:"), "message": message}
    print(json.dumps(out))
    """
)


def _deflate_bomb(path: Path, inflated: int = 300 * 2**20) -> None:
    """A real ``torch.save`` archive plus a deflated entry of ``inflated`` zero bytes (~0.3 MB)."""
    plain = path.with_suffix(".plain")
    torch.save({"w": torch.zeros(3)}, plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        prefix = src.infolist()[0].filename.split("/")[0]
        with dst.open(f"{prefix}/data/99", "w", force_zip64=True) as fh:
            block = bytes(2**20)
            for _ in range(inflated // len(block)):
                fh.write(block)


def _card(folder: Path, path: tuple[str, ...], value: object) -> None:
    card = json.loads((MODEL / "model.json").read_text())
    node = card
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(card))


@pytest.mark.slow
def test_bombs_are_refused_fast_and_small(tmp_path: Path) -> None:
    _deflate_bomb(tmp_path / "deflate.pt")
    assert (tmp_path / "deflate.pt").stat().st_size < 2 * 2**20
    torch.save({"w": torch.zeros(1).expand(10**5, 10**5)}, tmp_path / "expanded.pt")
    _card(tmp_path / "wide", ("architecture", "widths"), [60000, 60000])
    _card(tmp_path / "huge_n", ("data", "n"), 10**10)
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to measure peak RSS")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(results, indent=1))  # the measured costs, shown with -s
    for name, r in results.items():
        assert r["message"] is not None, f"{name} was not refused"
        assert "\n" not in r["message"], r["message"]
        assert r["seconds"] < 2.0, (name, r)
        assert r["growth"] < 500 * 2**20, (name, r)
    assert "compressed" in results["deflate_pt"]["message"]
    assert "expanded or overlapping" in results["expanded_pt"]["message"]
    wide = results["wide_card"]["message"]
    assert "architecture" in wide and "parameters" in wide
    assert "data" in results["huge_n_card"]["message"]
    assert "grid has 8,000,000,000 settings" in results["sweep_2000_per_axis"]["message"]
    assert "4194304 chains" in results["chains_4194304"]["message"]
