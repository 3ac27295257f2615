"""Rebuild this configuration (teacher + student training run + model.json).

Equivalent to ``python sample_models/deep_linear/train.py --config dln_100_50_50_100_r5``; the shared script
holds the settings of every deep linear configuration.
"""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.argv = [str(here.parent / "train.py"), "--config", here.name]
    runpy.run_path(sys.argv[0], run_name="__main__")
