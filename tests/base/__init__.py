"""Tests of lltools.base (mirrors the package)."""
