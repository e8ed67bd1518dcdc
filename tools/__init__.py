"""Helpers for building the documentation (not shipped in the wheel)."""
