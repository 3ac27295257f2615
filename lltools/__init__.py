"""lltools: local learning coefficient (LLC) estimation with vectorised SGLD.

This module is the public facade. The code lives in layers (see ``docs/architecture.md``):
``targets`` (what is sampled), ``theory`` (exact and numeric references), ``sampling`` (the SGLD
kernel and the driver that returns a :class:`Trace`), ``estimation`` (λ̂, diagnostics, health),
``workflows`` (estimate, sweep, trajectory, distributed), ``storage`` (runs on disk), ``viz``
(figure builders) and ``cli``.

Quick use::

    import lltools
    result = lltools.estimate(lltools.potential_target("x**2 * y**4"), nbeta=100, gamma=1.0,
                              epsilon=1e-3, chains=8, draws=2000, burnin=500)
    result.llc_mean, result.llc_sem, result.warnings

Your own model: ``lltools.estimate(model, data, loss=..., batch_size=...)`` with an
``nn.Module`` and tensors, a Dataset or a DataLoader (see README, "Your own model"), or a
model folder: ``lltools.load_model_folder("my_model")``.  Refined (per-layer / per-head)
LLCs: ``lltools.refined_llc(model, data, restrict_each="layer")``.
"""

from lltools.estimation.health import Criteria
from lltools.estimation.summary import Summary, summarize
from lltools.sampling.driver import run, run_chunks
from lltools.sampling.sgld import SGLDParams, make_params
from lltools.sampling.trace import Trace
from lltools.targets.base import FunctionTarget, Target, TargetError
from lltools.targets.folders import ModelFolderError
from lltools.targets.models import load_model_folder, load_sample_model
from lltools.targets.networks import NetworkTarget
from lltools.targets.potentials import potential_target
from lltools.targets.specs import TargetSpec
from lltools.workflows.estimate import EstimateResult, estimate, estimate_stream
from lltools.workflows.events import RunEvent
from lltools.workflows.refined import RefinedResult, refined_llc, refined_trajectory
from lltools.workflows.sweep import SweepResult, sweep, sweep_stream
from lltools.workflows.trajectory import compute_trajectory as trajectory

__version__ = "0.1.0"

__all__ = [
    "Criteria",
    "EstimateResult",
    "FunctionTarget",
    "ModelFolderError",
    "NetworkTarget",
    "RefinedResult",
    "RunEvent",
    "SGLDParams",
    "Summary",
    "SweepResult",
    "Target",
    "TargetError",
    "TargetSpec",
    "Trace",
    "__version__",
    "estimate",
    "estimate_stream",
    "load_model_folder",
    "load_sample_model",
    "make_params",
    "potential_target",
    "refined_llc",
    "refined_trajectory",
    "run",
    "run_chunks",
    "summarize",
    "sweep",
    "sweep_stream",
    "trajectory",
]
