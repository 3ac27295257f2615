"""The "Refined λ̂" section of the Networks page: λ̂ per layer or attention head (and, on
request, on a named data subset) as ONE batched run, as bars beside the whole model's λ̂,
with the probe samples embedded by the covariance of their losses (the Bayesian influence
function).  Also the refined-trajectory heatmap of the Trajectories page.

Thin: restrictions from :mod:`lltools.targets.restrictions`, the run from
:mod:`lltools.workflows.refined`, figures from :mod:`lltools.viz.refined`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
import torch

from dashboard import common as ui
from lltools.targets.models import data_subsets
from lltools.targets.restrictions import RestrictionError, each_head, everything, resolve
from lltools.viz.refined import influence_scatter, restricted_bars, restricted_heatmap
from lltools.workflows.refined import REFINED_TRAJECTORY_FILE, refined_stream

NS = "refined"
RESULT = f"{NS}.__result"
#: Widget keys of the choices (the Networks page keeps them in the URL).
K_KIND, K_SUBSET = f"{NS}.kind", f"{NS}.subset"
ALL_DATA = "all data"
#: Probe samples tracked for the per-sample view.
PROBE_CHOICES = (0, 100, 250, 500)

TEACHING = (
    "A **refined** λ̂ samples only part of the weights — one layer, one attention head — with "
    "the rest held at w*, or measures the loss on part of the data. Each bar is that slice's "
    "own learning coefficient: how many effective directions the loss has *within* it. The "
    "hollow mark is d_S/2, what a regular model with that many parameters would give; the "
    "dashed line is the whole model's λ̂. Components whose λ̂ falls far below d_S/2 are "
    "degenerate (many directions cost nothing); across training, heads that specialise "
    "(previous-token, induction) separate in these numbers. All restrictions run as more "
    "chains of one batched run."
)
INFLUENCE_TEACHING = (
    "Each point is a probe sample, placed by how its loss **moves together** with the others' "
    "across the posterior draws (the Bayesian influence function: the posterior covariance of "
    "per-sample losses). Samples close together are learned by the same directions of the "
    "weights; colour shows a label you pick."
)


def _has_heads(module: torch.nn.Module) -> bool:
    try:
        each_head(module)
    except RestrictionError:
        return False
    return True


@st.cache_data(show_spinner=False, max_entries=16)
def _subsets(path: str) -> dict[str, list[bool]]:
    """The folder's named data subsets as bool lists (cached: ``subsets()`` is the user's code)."""
    out = {}
    for name, value in data_subsets(path).items():
        t = torch.as_tensor(value)
        if t.dtype != torch.bool:
            mask = torch.zeros(int(t.max()) + 1 if t.numel() else 0, dtype=torch.bool)
            mask[t] = True
            t = mask
        out[name] = t.tolist()
    return out


def _sample_text(target: Any, index: torch.Tensor) -> list[str]:
    """A short text of each probe sample's inputs for the hover (tokens or the first values)."""
    x = target.data[0][index]
    out = []
    for row in x:
        flat = row.reshape(-1)
        if not flat.is_floating_point():
            out.append(" ".join(str(int(v)) for v in flat[:32]))
        else:
            out.append(", ".join(f"{float(v):.2g}" for v in flat[:8]) + (" …" if flat.numel() > 8 else ""))
    return out


def refined_panel(
    path: str, checkpoint_key: str, target: Any, params: dict[str, Any], *, running: bool
) -> None:
    """The Refined λ̂ expander for the selected model and checkpoint."""
    module = getattr(target, "module", None)
    if module is None:
        return
    done = st.session_state.get(RESULT)
    if done is not None and done["key"][:2] != (path, checkpoint_key):
        done = None
    with st.expander("Refined λ̂: per layer or attention head", expanded=done is not None):
        ui.teaching_note(TEACHING, title="What is a refined λ̂?")
        kinds = ["layer", "head"] if _has_heads(module) else ["layer"]
        subsets = _subsets(path)
        for key, options in ((K_KIND, kinds), (K_SUBSET, [ALL_DATA, *subsets])):
            if key in st.session_state and st.session_state[key] not in options:  # e.g. from a URL
                st.caption(f"{ui.plain(str(st.session_state[key])[:80])} is not available for this model: "
                           f"{ui.plain(str(options[0]))} instead.")
                st.session_state[key] = options[0]
        c1, c2, c3 = st.columns(3)
        kind = c1.radio("One λ̂ per", kinds, horizontal=True, key=K_KIND, disabled=running)
        subset = c2.selectbox("Loss measured on", [ALL_DATA, *subsets], key=K_SUBSET, disabled=running)
        probe_n = c3.selectbox("Per-sample view: probe samples", PROBE_CHOICES, index=0, key=f"{NS}.probe",
                               disabled=running,
                               help="Track these many samples' losses across the posterior (running mean "
                                    "and covariance only).")
        draws = st.slider("Draws per chain (keep it short: every restriction adds chains)", 50, 2000,
                          min(400, int(params.get("draws", 400))), step=50, key=f"{NS}.draws",
                          disabled=running)
        key = (path, checkpoint_key, kind, subset, probe_n, draws, tuple(sorted(params.items())))
        if st.button("Run refined λ̂", key=f"{NS}.run", disabled=running, icon=":material/splitscreen:"):
            ui.run_page(lambda: _run(target, module, kind, subset, subsets, probe_n, draws, params, key),
                        what="run the refined λ̂")
            done = st.session_state.get(RESULT)
        if done is None:
            st.caption("Press **Run refined λ̂** to sample every component around this checkpoint.")
            return
        if done["key"] != key:
            st.caption(":material/edit: The choices changed since this run: press **Run refined λ̂** "
                       "to update.")
        table: pd.DataFrame = done["table"]
        ui.show_figure(restricted_bars(table, title=f"λ̂ per {done['kind']}"), key=f"{NS}.bars")
        shown = table[["restriction", "restricted_dim", "llc_mean", "llc_sem", "rhat", "acceptance"]]
        st.dataframe(shown, hide_index=True, width="stretch")
        for warning in done["warnings"][:4]:
            st.caption(f":material/warning: {ui.plain(warning)}")
        if done.get("influence") is not None:
            _influence_view(done, subsets)


def _run(target: Any, module: Any, kind: str, subset: str, subsets: dict[str, list[bool]], probe_n: int,
         draws: int, params: dict[str, Any], key: tuple) -> None:
    restrictions = [*resolve(module, (), kind), everything(module)]
    base = target if subset == ALL_DATA else target.restrict_data(torch.tensor(subsets[subset]))
    probe = torch.arange(min(probe_n, base.n)) if probe_n else None
    settings = {k: v for k, v in params.items() if k in ("epsilon", "gamma", "nbeta", "chains", "burnin",
                                                          "batch_size", "seed")}
    bar = st.progress(0.0, text="Sampling every component…")
    result = None
    stream = refined_stream(base, restrictions, draws=draws, report_every=max(1, draws // 20), probe=probe,
                            **settings)
    for event in stream:
        bar.progress(event.fraction, text=f"Sampling every component… {event.fraction:.0%}")
        result = event.result or result
    bar.empty()
    influence = None
    if result is not None and result.influence:
        influence = result.influence[max(result.influence)]  # the whole model's cell
    st.session_state[RESULT] = {
        "key": key, "kind": kind, "table": result.table if result is not None else pd.DataFrame(),
        "warnings": result.warnings if result is not None else [], "influence": influence,
        "probe_text": _sample_text(base, probe) if probe is not None else None,
        "probe_subsets": ({name: [mask[i] for i in probe.tolist()] for name, mask in subsets.items()}
                          if probe is not None and subset == ALL_DATA else {}),
    }


def _influence_view(done: dict[str, Any], subsets: dict[str, list[bool]]) -> None:
    ui.teaching_note(INFLUENCE_TEACHING, title="Per-sample view: the Bayesian influence function")
    frame = done["influence"].table()
    frame["sample text"] = done["probe_text"]
    for name, labels in done["probe_subsets"].items():
        frame[name] = ["yes" if v else "no" for v in labels]
    colour = st.selectbox("Colour by", ["loss_change", "mean_loss", *done["probe_subsets"]],
                          key=f"{NS}.colour")
    ui.show_figure(influence_scatter(frame, color=colour, hover="sample text",
                                     title="Probe samples by loss covariance"), key=f"{NS}.influence")


def refined_trajectory_view(model_dir: str) -> None:
    """The shipped refined trajectory of a model folder as a component × checkpoint heatmap
    under its loss curves (nothing when the folder ships none)."""
    path = Path(model_dir) / REFINED_TRAJECTORY_FILE
    if not path.is_file():
        return
    table = _read_table(str(path), path.stat().st_mtime)
    st.subheader("Refined λ̂ over training")
    ui.teaching_note(
        "Each row is one attention head's own λ̂ (the other weights held at the checkpoint), each "
        "column a checkpoint; the loss curves above share the x axis. Watch the rows separate "
        "where the loss drops: heads taking on a role (previous-token in layer 0, induction in "
        "layer 1) change their effective dimension at the transition.",
        title="Reading the refined trajectory",
    )
    ui.show_figure(restricted_heatmap(table, title="Restricted λ̂ per component and checkpoint"),
                   key="trajectories.refined", height=520)


@st.cache_data(show_spinner=False, max_entries=8)
def _read_table(path: str, _mtime: float) -> pd.DataFrame:
    return pd.read_parquet(path)
