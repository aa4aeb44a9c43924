"""Callgauge service."""
