"""Tests of lltools.sampling (mirrors the package)."""
