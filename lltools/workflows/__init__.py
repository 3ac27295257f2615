"""Workflows: estimate, sweep, trajectory, distributed (Ray); each stream yields ONE
:class:`~lltools.workflows.events.RunEvent` type, the last one carrying the result."""
