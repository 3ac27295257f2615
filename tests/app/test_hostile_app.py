"""Hostile stored runs and URLs in the app (issue 14, items 2, 8, 9).

A run label holding Markdown (an uploaded file named like a link) is rendered literally; a
corrupt manifest in the shared store does not break the history or the unfinished-runs
notice; a non-2-D expression from the URL gets an inline message on the Toy page.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import common as ui
from lltools.storage.files import MANIFEST
from lltools.storage.index import RunStore
from lltools.targets.potentials import potential_target
from lltools.workflows.estimate import estimate_stream
from tests.app.conftest import TIMEOUT, assert_healthy, page

EVIL = "[Sign in again](https://evil.example/login).safetensors"
TINY = {"nbeta": 100.0, "gamma": 1.0, "epsilon": 1e-3, "chains": 2, "draws": 20, "burnin": 5,
        "seed": 11, "device": "cpu"}  # fmt: skip
#: A Markdown link or a bare URL that a renderer would turn into a link (escaped ones excluded).
LINK = re.compile(r"(?<!\\)\]\s*(?<!\\)\(|(?<![\\\w])https?(?<!\\):(?<!\\)/(?<!\\)/|<https?:")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "lltools_home"
    monkeypatch.setenv("LLTOOLS_HOME", str(root))
    return root


def _incomplete(store: RunStore, label: str) -> str:
    """An unfinished run labelled ``label`` whose writer died after one flush."""
    stream = estimate_stream(potential_target("x**2 + y**2"), report_every=10, **TINY)
    writer = store.create_run("estimate", TINY, {"kind": "model", "path": "/nowhere", "checkpoint": None},
                              {"page": "Networks", "label": label}, flush_interval=0)
    writer.append(next(stream).trace)
    proc = subprocess.Popen(["true"])
    proc.wait()
    manifest = json.loads((writer.path / MANIFEST).read_text())
    manifest["writer"].update(pid=proc.pid, start_ticks=None)
    (writer.path / MANIFEST).write_text(json.dumps(manifest))
    return writer.run_id


def _notice_app() -> AppTest:
    def script() -> None:
        from dashboard import sidebar

        sidebar.sidebar_display_options()

    return AppTest.from_function(script, default_timeout=TIMEOUT)


def _all_markdown(at: AppTest) -> list[str]:
    texts = [m.value for m in at.markdown] + [w.value for w in at.warning] + [c.value for c in at.caption]
    return texts + [e.value for e in at.error] + [s.value for s in at.success]


def test_plain_escapes_links_and_controls() -> None:
    text = ui.plain(EVIL + " <b>x</b> # h \n\n* item \x1b]0;t\x07 :red[a] $x$")
    assert not LINK.search(text), text
    assert "\n" not in text and "\x1b" not in text
    assert "\\[Sign in again\\]\\(https\\://evil\\.example/login\\)" in text
    assert "\\<b>" in text and "\\:red\\[a\\]" in text and "\\$x\\$" in text


def test_a_link_in_a_run_label_is_not_rendered_as_a_link(home: Path) -> None:
    store = RunStore(home)
    _incomplete(store, EVIL)
    at = _notice_app().run()
    assert_healthy(at)
    rendered = _all_markdown(at)
    line = [t for t in rendered if "Sign in again" in t]
    assert line, rendered
    for text in rendered:
        assert not LINK.search(text), text


def test_a_corrupt_manifest_does_not_break_the_history_or_the_notice(home: Path) -> None:
    store = RunStore(home)
    good = _incomplete(store, "x**2 + y**2")
    bad = store.runs_dir / (good[:-8] + "0000dead")
    bad.mkdir()
    (bad / MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    other = store.runs_dir / (good[:-8] + "0000beef")
    other.mkdir()
    (other / MANIFEST).write_text(json.dumps({"id": "x", "progress": None, "created": "garbage"}))
    at = _notice_app().run()
    assert_healthy(at)
    assert any("1 unfinished run" in w.value for w in at.warning), [w.value for w in at.warning]

    def history() -> None:
        from dashboard import history

        history.render_history(key="t")

    at = AppTest.from_function(history, default_timeout=TIMEOUT).run()
    assert_healthy(at)
    table = at.dataframe[0].value
    assert sorted(table["status"]) == ["corrupt", "corrupt", "incomplete"]


@pytest.mark.parametrize("expr", ["w1**2", "w1**2+w2**2+w3**2"])
def test_toy_page_explains_other_dimensions_inline(expr: str) -> None:
    at = page("toy")
    at.query_params["potential"] = expr
    at.run()
    assert_healthy(at)
    errors = [e.value for e in at.error]
    assert any("plots x and y" in e and "CLI or Learn" in e for e in errors), errors


def test_a_link_in_a_url_parameter_is_not_rendered_as_a_link() -> None:
    at = page("toy")
    at.query_params["nbeta"] = EVIL
    at.run()
    assert_healthy(at)
    warned = [w.value for w in at.warning if "nbeta" in w.value]
    assert warned and all(not LINK.search(w) for w in warned), warned
