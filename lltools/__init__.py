"""lltools: local learning coefficient (LLC) estimation with vectorised SGLD.

The core is a set of pure pieces: a :class:`~lltools.target.Target` (centre w* and a batched
loss), the SGLD kernel (:mod:`lltools.sgld`), one sampling loop (:mod:`lltools.run`),
estimators and diagnostics over traces, and closed-form theory values.

Quick use::

    import lltools
    from lltools.potentials import potential_target
    result = lltools.estimate(potential_target("x**2 * y**4"), nbeta=100, gamma=1.0,
                              epsilon=1e-3, chains=8, draws=2000, burnin=500)
    result.llc_mean, result.llc_sem, result.warnings
"""

from lltools.api import EstimateResult, estimate, estimate_stream
from lltools.run import Trace, run, run_chunks
from lltools.sgld import SGLDParams, make_params
from lltools.sweeps import SweepResult, sweep
from lltools.target import FunctionTarget, Target, TargetError

__version__ = "0.1.0"

__all__ = [
    "EstimateResult",
    "FunctionTarget",
    "SGLDParams",
    "SweepResult",
    "Target",
    "TargetError",
    "Trace",
    "__version__",
    "estimate",
    "estimate_stream",
    "make_params",
    "run",
    "run_chunks",
    "sweep",
]


def __getattr__(name: str):
    """Lazy access to the heavier submodules: ``lltools.models``, ``lltools.theory``, ..."""
    import importlib

    if name in {"models", "theory", "networks", "potentials", "trajectories", "checkpoints",
                "estimators", "diagnostics", "frames", "store", "plots"}:
        return importlib.import_module(f"lltools.{name}")
    raise AttributeError(f"module 'lltools' has no attribute {name!r}")
