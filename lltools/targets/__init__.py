"""What SGLD samples: :class:`~lltools.targets.base.Target` (the contract the sampler and the
run planner read — nothing else) and its kinds: potentials, expressions, networks, sample
models, checkpoints.  A new target kind subclasses ``Target`` and states its contract
(``has_data``, ``batch_size``, ``bytes_per_chain``, ``kernel_kind`` and, for compiled steps,
``traceable_loss`` or ``data`` + ``chain_loss``).  Imports only :mod:`lltools.base`."""
