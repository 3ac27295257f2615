"""lltools: local learning coefficient (LLC) estimation with vectorised SGLD.

The core is a set of pure pieces: a :class:`~lltools.target.Target` (centre w* and a batched
loss), the SGLD kernel (:mod:`lltools.sgld`), one sampling loop (:mod:`lltools.run`),
estimators and diagnostics over traces, and closed-form theory values.
"""

from lltools.run import Trace, run, run_chunks
from lltools.sgld import SGLDParams, make_params
from lltools.target import FunctionTarget, Target, TargetError

__version__ = "0.1.0"

__all__ = [
    "FunctionTarget",
    "SGLDParams",
    "Target",
    "TargetError",
    "Trace",
    "__version__",
    "make_params",
    "run",
    "run_chunks",
]
