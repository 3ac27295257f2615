"""Property-based fuzzing of the ``lltools`` command line (hypothesis).

Every generated command line either succeeds or exits non-zero with exactly ONE line
``error: ...`` on stderr: never a traceback, never another exception escaping ``main()``,
never a hang (each case runs under a SIGALRM watchdog that raises a ``BaseException``,
which ``main()`` cannot swallow).

Accepted cases must stay cheap, so counts are drawn only from tiny valid values (≤ 3
chains, ≤ 3 draws, ≤ 3 burn-in steps) or from clearly invalid ones (negative, beyond the
hard ceilings, non-numbers); bulk cases use 1-D/3-D potentials (no 2-D quadrature) and a
smaller set exercises the 2-D quadrature with hostile nβ, γ.  About 1 100 cases per run,
derandomised (the same cases every run), no example database.

The entry point is the real ``lltools.cli.main.main``; the only shortcut is that the click
command tree typer builds on every call is built once and reused (it does not depend on
the arguments and costs ~45 ms per call).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lltools.cli import main as cli
from lltools.workflows.estimate import MAX_CHAINS, MAX_STEPS

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = ROOT / "sample_models" / "deep_linear" / "rrr_6_4_5_r2"
#: Seconds one case may take before it counts as a hang.
CASE_TIMEOUT_S = 60
#: Lines a failing command may print on stderr besides its one ``error:`` line.
INFO_PREFIXES = ("saved run ", "re-running ", "wrote ", "deleted ", "discarded ")
PROMPT = re.compile(r"^.*\? \[y/N\]:\s*(?=error: )")

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

pytestmark = pytest.mark.timeout(600)


# ----------------------------------------------------------------------------- harness
class Hang(BaseException):  # not an Exception on purpose: main() must not catch it
    """Raised by the watchdog inside a case that ran past ``CASE_TIMEOUT_S``."""


@dataclass
class Outcome:
    argv: list[str]
    code: int
    stdout: str
    stderr: str


_COMMAND = typer.main.get_command(cli.app)


def invoke(argv: list[str], stdin: str = "n\n") -> Outcome:
    """Run ``lltools <argv>`` in-process through ``cli.main()`` with a hang watchdog."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv, sys.stdin, cli.app

    def on_alarm(_signum: int, _frame: object) -> None:
        raise Hang(f"lltools {argv!r} ran longer than {CASE_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT_S)
    sys.argv, sys.stdin, cli.app = ["lltools", *argv], io.StringIO(stdin), _COMMAND
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = exc.code
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.argv, sys.stdin, cli.app = saved
    assert code is None or isinstance(code, int), f"exit code {code!r} is not an int: {argv!r}"
    return Outcome(list(argv), int(code or 0), out.getvalue(), err.getvalue())


def is_help(o: Outcome) -> bool:
    """``--help``, or a command group called without a subcommand (prints its usage)."""
    return "Usage:" in o.stdout and o.stderr.strip() == "" and o.code in (0, 2)


def check(o: Outcome) -> Outcome:
    """The contract: success, or non-zero with exactly one ``error:`` line and nothing else."""
    where = f"\nargv={o.argv!r}\nexit={o.code}\nstderr={o.stderr[-2000:]!r}\nstdout={o.stdout[-500:]!r}"
    assert "Traceback" not in o.stderr + o.stdout, where
    if o.code == 0 or is_help(o):
        return o
    lines = [PROMPT.sub("", ln) for ln in o.stderr.split("\n") if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, f"want exactly one 'error:' line{where}"
    assert errors[0][len("error: "):].strip(), f"empty error message{where}"
    stray = [ln for ln in lines if not ln.startswith(("error: ", *INFO_PREFIXES))]
    assert not stray, f"stderr has lines besides the error: {stray!r}{where}"
    assert o.code == 2, f"user errors exit with status 2{where}"
    return o


@pytest.fixture(scope="module", autouse=True)
def sandbox() -> Iterator[Path]:
    """A scratch working directory and run store: nothing the CLI writes lands in the repo."""
    old_cwd, old_home = Path.cwd(), os.environ.get("LLTOOLS_HOME")
    with tempfile.TemporaryDirectory(prefix="lltools-fuzz-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        os.environ["LLTOOLS_HOME"] = str(work / "home")
        os.chdir(work)
        try:
            yield work
        finally:
            os.chdir(old_cwd)
            if old_home is None:
                os.environ.pop("LLTOOLS_HOME", None)
            else:
                os.environ["LLTOOLS_HOME"] = old_home


# ----------------------------------------------------------------------------- strategies
EDGE_NUMBERS = [
    "", " ", "nan", "NaN", "-nan", "inf", "-inf", "+inf", "Infinity", "-Infinity", "1e999", "-1e999",
    "1e-999", "0", "-0", "+0", "0.0", "-0.0", "-1", "1", "2", "1e308", "2e308", "-1e308", "4.9e-324",
    "5e-324", "3.4e38", "3.5e38", "1.2e-38", "1e-45", "1e-46", "0x10", "0b11", "1_0", "1,5", "1.5.5",
    "1e", "e5", ".", "-", "--", "+-1", "١", "３", "²", "½", "∞", "None", "null", "True", "[1]", "1j",
    "\x00", "1\x00", "\n", "1\n2", "😀", "\u202e1", "9" * 400, "-" + "9" * 400, "9" * 5000, "0" * 300 + "1",
]  # fmt: skip
EDGE_COUNTS = [
    "", " ", "0", "-0", "-1", "1.5", "2.0", "1e3", "nan", "inf", "-inf", "0x2", "1_0", " 2", "２", "٢",
    str(MAX_CHAINS + 1), str(MAX_STEPS + 1), str(2**63), str(-(2**63)), "9" * 5000, "\x00", "1\n",
]  # fmt: skip
UNKNOWN_FLAGS = ["--bogus", "-x", "--", "-", "--potential=", "--draws=", "--=1", "--🙂", "--help", "-h",
                 "--json", "--no-json", "--save", "--store", "--progress", "--no-progress", "--version"]


def no_digits(text: str) -> bool:
    """True when ``text`` cannot be read as a number (no digit in any script)."""
    return not any(ch.isnumeric() for ch in text)


def numbers() -> st.SearchStrategy[str]:
    """Numbers of every kind, as command-line strings (floats, ints, huge, NaN, junk)."""
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(min_value=1e-6, max_value=1e3).map(repr),
        st.integers(-(10**400), 10**400).map(str),
        st.sampled_from(EDGE_NUMBERS),
        st.text(max_size=8),
    )


def counts(lo: int, hi: int, ceiling: int, valid_weight: int = 1) -> st.SearchStrategy[str]:
    """Count values that are tiny and valid (``valid_weight`` of 4 + ``valid_weight`` branches),
    or clearly invalid (never valid and large)."""
    return st.one_of(
        *[st.integers(lo, hi).map(str) for _ in range(valid_weight)],  # distinct objects: not merged
        st.integers(-(10**40), lo - 1).map(str),
        st.integers(ceiling + 1, 10**40).map(str),
        st.sampled_from(EDGE_COUNTS),
        st.text(max_size=6).filter(no_digits),
    )


def safe_names(suffixes: list[str]) -> st.SearchStrategy[str]:
    """Output file names relative to the scratch directory (no '/' so nothing escapes it)."""
    stem = st.text(alphabet=st.characters(blacklist_characters="/\\", blacklist_categories=("Cs",)),
                   max_size=10)
    return st.one_of(
        st.builds(lambda s, x: s + x, stem, st.sampled_from(suffixes)),
        st.sampled_from(["/nonexistent/dir/out.csv", "/proc/out.csv", ".csv", "a\x00.csv", "x" * 300 + ".csv",
                         "sub/", "..", "/", ""]),
    )


#: Analytic potentials whose runs skip the 2-D quadrature (d = 1 or 3): cheap when accepted.
CHEAP_POTENTIALS = ["w1**2", "w1**4", "w1**2 + w2**2 + w3**2", "w1**2 * w2**2 + w3**4",
                    "w1**2 + sin(w2)**2 + w3**2"]
POTENTIALS_2D = ["x**2 + y**2", "x**4 + y**4", "x**2 * y**4", "x**2 + 3*y**4", "x**2 + sin(y)**2", "quartic",
                 "0", "-5", "cos(w2)", "x"]
HOSTILE_EXPRESSIONS = ["", " ", "x**", "import os", "x.__class__", "__import__('os')", "x**999999", "x**-1",
                       "1/x", "log(x)", "sqrt(-1 + x**2)", "x**2 +", "(((((((((x", "x" * 5000, "∞", "x²",
                       "lambda: 0", "x; y", "nan", "inf * x**2", "x**2\n+y**2", "w0**2", "w99999**2", "Σx",
                       "x + w1", "w1 * y", "z**2", "W1**2", "w1**2 if w1 else 0", "[w1]", "w1 @ w1"]


def expressions() -> st.SearchStrategy[str]:
    """Random expressions: grammar-built ones over w1..w3 (d ≠ 2, so no 2-D quadrature: cheap
    when accepted) plus hostile text (which includes x, y mixed with w1..wd)."""
    atom = st.one_of(st.sampled_from(["w1", "w2", "w3", "0", "1", "2.5", "1e-3", "1e30"]),
                     st.integers(-5, 5).map(str))
    func = st.sampled_from(["sin", "cos", "exp", "log", "sqrt", "abs", "tanh", "nope"])
    tree = st.recursive(
        atom,
        lambda inner: st.one_of(
            st.builds(lambda a, op, b: f"({a}{op}{b})", inner, st.sampled_from(["+", "-", "*", "/", "**"]),
                      inner),
            st.builds(lambda f, a: f"{f}({a})", func, inner),
            st.builds(lambda a: f"-{a}", inner),
        ),
        max_leaves=6,
    )
    # "+ w3**2" makes d = 3: a constant or a w1/w2-only tree would be 2-D and pay the quadrature.
    return st.one_of(tree.map(lambda e: f"{e} + w3**2"), st.sampled_from(HOSTILE_EXPRESSIONS),
                     st.text(max_size=20))


DEVICES = ["cpu", "auto", "cpu:0", "cuda", "cuda:0", "cuda:x", "mps", "meta", "mkldnn", "tpu", "", "CPU",
           "cpu,cuda"]
DTYPES = ["float32", "float64", "double", "fp32", "float16", "int64", "bool", "", "torch.float32", "Float64"]


@st.composite
def estimate_options(draw: st.DrawFn, potentials: list[str]) -> list[str]:
    """``estimate`` with a random subset of options, each with a hostile or tiny value."""
    pool: dict[str, st.SearchStrategy[str]] = {
        "--nbeta": numbers(), "--gamma": numbers(), "--epsilon": numbers(),
        "--chains": counts(1, 3, MAX_CHAINS), "--draws": counts(2, 3, MAX_STEPS),
        "--burnin": counts(0, 3, MAX_STEPS), "--thinning": counts(1, 2, MAX_STEPS),
        "--batch-size": numbers(), "--seed": numbers(),
        "--device": st.one_of(st.sampled_from(DEVICES), st.text(max_size=6)),
        "--dtype": st.one_of(st.sampled_from(DTYPES), st.text(max_size=6)),
        "--trace-out": safe_names([".csv", ".parquet", ".pq", ".txt", ".CSV", ""]),
        "--checkpoint": st.sampled_from(["x.safetensors", "/nonexistent", "", "."]),
    }  # fmt: skip
    argv = ["estimate"]
    if draw(st.integers(0, 9)):  # mostly a potential; sometimes none, a model, or both
        argv += ["--potential", draw(st.sampled_from(potentials))]
    else:
        argv += draw(st.sampled_from([[], ["--model", "/nonexistent/model"], ["--model", "."],
                                      ["--model", str(TINY_MODEL), "--potential", "w1**2"]]))
    names = draw(st.lists(st.sampled_from(sorted(pool)), max_size=6, unique=True))
    # Defaults are 2 000 draws × 8 chains: keep accepted runs tiny unless counts are fuzzed.
    for name, value in (("--chains", "1"), ("--draws", "2"), ("--burnin", "0")):
        if name not in names:
            argv += [name, value]
    for name in names:
        argv += [name, draw(pool[name])]
    argv += draw(st.lists(st.sampled_from(UNKNOWN_FLAGS[:-3]), max_size=1))
    argv.append("--no-progress")  # a flag: whatever follows it cannot be taken as its value
    if draw(st.booleans()):
        argv.append("--json")
    return argv


@given(argv=estimate_options(CHEAP_POTENTIALS))
@settings(FUZZ, max_examples=450)
def test_fuzz_estimate_options(argv: list[str]) -> None:
    o = check(invoke(argv))
    if o.code == 0 and argv[-1] == "--json" and "--help" not in argv and "-h" not in argv:
        lines = [ln for ln in o.stdout.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("{"), o


@given(argv=estimate_options(POTENTIALS_2D))
@settings(FUZZ, max_examples=25)
def test_fuzz_estimate_with_quadrature(argv: list[str]) -> None:
    """2-D potentials also run the finite-nβ quadrature with the fuzzed nβ and γ."""
    check(invoke(argv))


@given(expr=expressions(), dims=st.sampled_from([[], ["--nbeta", "50"], ["--gamma", "0"]]))
@settings(FUZZ, max_examples=150)
def test_fuzz_expressions_through_the_cli(expr: str, dims: list[str]) -> None:
    check(invoke(["estimate", "--potential", expr, *dims, "--chains", "1", "--draws", "2", "--burnin", "0",
                  "--no-progress", "--device", "cpu"]))


def float_lists() -> st.SearchStrategy[str]:
    item = st.one_of(numbers(), *[st.floats(min_value=1e-5, max_value=1e-2).map(repr) for _ in range(3)])
    odd = st.sampled_from([",", ",,", " , ", "1e-3,", ",1e-3"])
    return st.one_of(st.lists(item, max_size=4).map(",".join), odd)


@st.composite
def sweep_options(draw: st.DrawFn) -> list[str]:
    """Half the cases fuzz everything (almost all refused); the other half fuzz ONE grid list
    and keep the rest well-formed and tiny, so accepted grids are exercised too."""
    hostile = draw(st.booleans())
    grid_list = float_lists()
    tidy = st.floats(min_value=1e-4, max_value=1e-2).map(repr)
    tidy_list = st.lists(tidy, min_size=1, max_size=3).map(",".join)
    fuzzed = draw(st.sampled_from(["--nbeta", "--gamma", "--epsilon"]))
    potentials = [*CHEAP_POTENTIALS, "", "x**"] if hostile else CHEAP_POTENTIALS
    argv = ["sweep", "--potential", draw(st.sampled_from(potentials))]
    for name in ("--nbeta", "--gamma", "--epsilon"):
        if hostile or name == fuzzed:
            if draw(st.booleans()) or not hostile:
                argv += [name, draw(grid_list)]
        elif draw(st.booleans()):
            argv += [name, draw(tidy_list)]
    if hostile:
        argv += ["--chains", draw(counts(1, 2, MAX_CHAINS)), "--draws", draw(counts(2, 3, MAX_STEPS)),
                 "--burnin", draw(counts(0, 2, MAX_STEPS))]
        argv += ["--out", draw(safe_names([".csv", ".parquet", ".pq", ".xlsx", ""]))]
        if draw(st.booleans()):
            option = draw(st.sampled_from(["--seed", "--device", "--dtype", "--batch-size"]))
            argv += [option, draw(numbers())]
    else:
        argv += ["--chains", draw(st.sampled_from(["1", "2"])), "--draws", "2", "--burnin", "1",
                 "--out", draw(st.sampled_from(["sweep.csv", "sweep.parquet", "sweep.pq"]))]
    if draw(st.integers(0, 4)) == 0:
        argv += ["--save", "--store", draw(st.sampled_from(["store", "store", "/nonexistent/store", "\x00"]))]
    return [*argv, "--no-progress", "--device", "cpu"]


@given(argv=sweep_options())
@settings(FUZZ, max_examples=200)
def test_fuzz_sweep(argv: list[str]) -> None:
    check(invoke(argv))


@st.composite
def trajectory_options(draw: st.DrawFn, sandbox_dir: str) -> list[str]:
    folder = draw(st.sampled_from([str(TINY_MODEL), "/nonexistent", sandbox_dir, str(ROOT / "pyproject.toml"),
                                   "", "\x00", "sample_models"]) | st.text(max_size=8))
    argv = ["trajectory", folder]
    # Trajectories cost one run per checkpoint (20 here): keep the valid share small.
    argv += ["--chains", draw(counts(1, 1, MAX_CHAINS)), "--draws", draw(counts(2, 2, MAX_STEPS)),
             "--burnin", draw(counts(0, 0, MAX_STEPS))]
    argv += ["--out", draw(safe_names([".csv", ".parquet", ".json", ""]))]
    for name in draw(st.lists(st.sampled_from(["--nbeta", "--gamma", "--epsilon", "--batch-size", "--seed"]),
                              max_size=3, unique=True)):
        argv += [name, draw(numbers())]
    argv += draw(st.lists(st.sampled_from(UNKNOWN_FLAGS[:-3]), max_size=1))
    return [*argv, "--no-progress", "--device", "cpu"]


@given(data=st.data())
@settings(FUZZ, max_examples=60)
def test_fuzz_trajectory(data: st.DataObject, sandbox: Path) -> None:
    check(invoke(data.draw(trajectory_options(str(sandbox)))))


# ----------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def pristine_store(sandbox: Path) -> tuple[Path, str]:
    """A store holding one tiny complete run (copied afresh for every case)."""
    store = sandbox / "pristine-store"
    o = check(invoke(["estimate", "--potential", "w1**2", "--chains", "1", "--draws", "2", "--burnin", "0",
                      "--save", "--store", str(store), "--no-progress", "--device", "cpu"]))
    assert o.code == 0, o
    run_id = re.search(r"saved run (\S+)", o.stderr).group(1)  # type: ignore[union-attr]
    return store, run_id


@st.composite
def runs_options(draw: st.DrawFn, run_id: str) -> list[str]:
    ids = st.sampled_from(["latest", run_id, run_id[:8], run_id[:1], "", "..", "../..", "*", "-1", "\x00"])
    ids = ids | st.text(max_size=10)
    sub = draw(st.sampled_from(["list", "show", "export", "rm", "discard", "resume", "bogus", ""]))
    argv = ["runs"] if sub == "" else ["runs", sub]
    if sub in ("show", "export", "rm", "discard", "resume"):
        argv.append(draw(ids))
    if sub == "export":
        argv.append(draw(safe_names([".csv", ".parquet", ".json", ".txt", ""])))
    extras = {
        "list": ["--json", "--status", "--kind", "--limit"],
        "show": ["--json"],
        "rm": ["--yes", "--force"],
        "resume": ["--json", "--discard-old", "--no-progress"],
    }.get(sub, [])
    for flag in draw(st.lists(st.sampled_from(extras or ["--json"]), max_size=3, unique=True)):
        argv.append(flag)
        if flag in ("--status", "--kind", "--limit"):
            words = st.sampled_from(["complete", "running", "estimate", "sweep"])
            argv.append(draw(st.one_of(numbers(), words)))
    argv += draw(st.lists(st.sampled_from(UNKNOWN_FLAGS[:2]), max_size=1))
    if draw(st.integers(0, 5)):
        argv += ["--store", "{store}"]
    else:
        argv += ["--store", draw(st.sampled_from(["/nonexistent", str(ROOT / "pyproject.toml"), "", "\x00"]))]
    return argv


@given(data=st.data())
@settings(FUZZ, max_examples=200)
def test_fuzz_runs(data: st.DataObject, pristine_store: tuple[Path, str], sandbox: Path) -> None:
    store, run_id = pristine_store
    argv = data.draw(runs_options(run_id))
    with tempfile.TemporaryDirectory(dir=sandbox) as tmp:
        copy = Path(tmp) / "store"
        shutil.copytree(store, copy)
        check(invoke([a.replace("{store}", str(copy)) for a in argv]))


# ----------------------------------------------------------------------------- raw argv
def raw_tokens() -> st.SearchStrategy[str]:
    known = ["--potential", "--model", "--checkpoint", "--nbeta", "--gamma", "--epsilon", "--chains",
             "--draws", "--burnin", "--thinning", "--batch-size", "--seed", "--device", "--dtype", "--out",
             "--json", "--save", "--store", "--trace-out", "--progress", "--no-progress", "x**2", "w1**2"]
    flag = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8).map(
        lambda s: "--" + s)
    return st.one_of(st.sampled_from(known), st.sampled_from(UNKNOWN_FLAGS), flag, numbers(),
                     st.text(max_size=10))


@given(command=st.sampled_from(["estimate", "sweep", "trajectory", "runs", "theory", "", "ESTIMATE", "-j"]),
       tokens=st.lists(raw_tokens(), max_size=8))
@settings(FUZZ, max_examples=200)
def test_fuzz_raw_argv(command: str, tokens: list[str]) -> None:
    """Random tokens after a command; a tiny-run tail keeps whatever is accepted cheap."""
    argv = [command, *tokens] if command else list(tokens)
    if command in ("estimate", "sweep", "trajectory"):
        argv += ["--chains", "1", "--draws", "2", "--burnin", "0", "--no-progress", "--device", "cpu"]
    if command == "sweep":
        argv += ["--out", "raw-sweep.csv"]
    if command == "trajectory":
        argv += ["--out", "raw-trajectory.csv"]
    check(invoke(argv))


# ----------------------------------------------------------------------------- the harness itself
def test_check_rejects_what_the_contract_forbids() -> None:
    """The checker fails on a traceback, a second line, a silent failure or a wrong status."""
    good = Outcome(["x"], 2, "", "error: bad value\n")
    assert check(good) is good
    for bad in (
        Outcome(["x"], 2, "", "Traceback (most recent call last):\nerror: x\n"),
        Outcome(["x"], 2, "", "error: one\nerror: two\n"),
        Outcome(["x"], 2, "", "error: one\n  continued on a second line\n"),
        Outcome(["x"], 2, "", ""),
        Outcome(["x"], 1, "", "error: wrong status\n"),
    ):
        with pytest.raises(AssertionError):
            check(bad)


def test_watchdog_turns_a_hang_into_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that never returns raises ``Hang`` (which ``main()`` cannot catch)."""
    import time

    monkeypatch.setattr(sys.modules[__name__], "CASE_TIMEOUT_S", 0.2)
    monkeypatch.setattr(cli, "load_target", lambda *a, **k: time.sleep(30))
    with pytest.raises(Hang):
        invoke(["estimate", "--potential", "w1**2", "--no-progress"])
