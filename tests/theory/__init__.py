"""Tests of lltools.theory (Hessian spectrum, planes)."""
