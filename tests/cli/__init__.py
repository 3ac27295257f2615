"""Tests of lltools.cli (mirrors the package)."""
