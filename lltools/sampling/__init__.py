"""Sampling: the SGLD kernel and the loop that runs it.

- :mod:`~lltools.sampling.kernel` — the maths, written once (U, ∇U, Langevin update, MALA,
  divergence mask);
- :mod:`~lltools.sampling.sgld` — params/state/info types, ``init`` and the eager ``step``;
- :mod:`~lltools.sampling.compiled` — compiled steps calling the same kernel, and when to use them;
- :mod:`~lltools.sampling.trace` — :class:`~lltools.sampling.trace.Trace`, the record of a run;
- :mod:`~lltools.sampling.driver` — the plan (sizes, memory, chain batches, threads) and the loop.

A new sampler goes here: a step with the signature of :func:`lltools.sampling.sgld.step`
built from :mod:`~lltools.sampling.kernel`, selected in :func:`lltools.sampling.compiled.select_step`.
Imports only :mod:`lltools.targets` and :mod:`lltools.base`.
"""
