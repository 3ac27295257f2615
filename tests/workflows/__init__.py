"""Tests of lltools.workflows (mirrors the package)."""
