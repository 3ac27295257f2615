"""Estimation: everything computed from a finished (or partial) Trace, in one-way layers.

- :mod:`~lltools.estimation.stats` — array statistics over ``(…, chain, draw)`` (R-hat, bulk
  ESS, MCSE; arviz-stats underneath, batched over leading axes).  Imports nothing of ours.
- :mod:`~lltools.estimation.select` — trace selection helpers (host copy, settings, valid chains).
- :mod:`~lltools.estimation.llc` — λ̂ per chain / per setting, running λ̂, temperature fits, WBIC.
- :mod:`~lltools.estimation.diagnostics` — acceptance, divergences, frozen chains.
- :mod:`~lltools.estimation.health` — ONE :class:`~lltools.estimation.health.Criteria`, the
  advice it gives and its wording for help text (a leaf over numbers).
- :mod:`~lltools.estimation.summary` — ONE :func:`~lltools.estimation.summary.summarize` →
  :class:`~lltools.estimation.summary.Summary` (the per-setting table, in one pass).
- :mod:`~lltools.estimation.frames` (tidy frames for plots) and
  :mod:`~lltools.estimation.calibrate` (recommend ε, γ from a sweep table).
"""
