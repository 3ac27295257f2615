"""Tests of lltools.estimation (mirrors the package)."""
