"""Tests of lltools.targets (mirrors the package)."""
