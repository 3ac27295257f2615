"""Pure Plotly figure builders: tidy DataFrames in, ``go.Figure`` out, grouped by what they show.

- :mod:`~lltools.viz.style` — the template (light/dark, lecture size), palette, shared helpers;
- :mod:`~lltools.viz.landscape` — a potential's contour with the chains, 2-D densities;
- :mod:`~lltools.viz.planes` — a network's plane through w* with chains, Hessian spectrum, checkpoint lines;
- :mod:`~lltools.viz.traces` — one run's loss, running λ̂, acceptance, per-chain λ̂, two runs compared;
- :mod:`~lltools.viz.sweeps` — ε × γ × nβ heatmaps, λ̂ against a setting, multi-temperature fit, calibration;
- :mod:`~lltools.viz.theory` — volume scaling, Newton polygon, free energy, 1-D densities;
- :mod:`~lltools.viz.training` — trajectories over checkpoints.

Nothing here imports Streamlit or runs a sampler. The package namespace re-exports every builder.
"""

from lltools.viz.landscape import (
    density_2d_figure,
    potential_figure,
)
from lltools.viz.style import (
    CHAIN_COLORS,
    DIVERGING,
    FONT_FAMILY,
    FOREGROUND,
    HEALTHY_COLOR,
    SEQUENTIAL,
    TARGET_COLOR,
    chain_color,
    format_estimate,
    format_number,
    grid_matrix,
    style_figure,
    template,
    thin,
)
from lltools.viz.sweeps import (
    calibration_figure,
    llc_vs_param_figure,
    multi_temperature_figure,
    sweep_heatmap,
)
from lltools.viz.theory import (
    density_figure,
    free_energy_difference_figure,
    free_energy_figure,
    newton_polyhedron_figure,
    posterior_share_figure,
    volume_scaling_figure,
)
from lltools.viz.traces import (
    acceptance_figure,
    chain_llc_figure,
    compare_runs_figure,
    llc_running_figure,
    loss_trace_figure,
)

__all__ = [
    "CHAIN_COLORS",
    "DIVERGING",
    "FONT_FAMILY",
    "FOREGROUND",
    "HEALTHY_COLOR",
    "SEQUENTIAL",
    "TARGET_COLOR",
    "acceptance_figure",
    "calibration_figure",
    "chain_color",
    "chain_llc_figure",
    "compare_runs_figure",
    "density_2d_figure",
    "density_figure",
    "format_estimate",
    "format_number",
    "free_energy_difference_figure",
    "free_energy_figure",
    "grid_matrix",
    "llc_running_figure",
    "llc_vs_param_figure",
    "loss_trace_figure",
    "multi_temperature_figure",
    "newton_polyhedron_figure",
    "posterior_share_figure",
    "potential_figure",
    "style_figure",
    "sweep_heatmap",
    "template",
    "thin",
    "volume_scaling_figure",
]
