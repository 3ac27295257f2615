"""Low-level helpers with no project imports: counter-based random numbers (``rng``), devices,
dtypes and the CPU thread policy (``devices``), memory budgets (``memory``)."""
