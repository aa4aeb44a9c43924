"""Shared plumbing of every Callgauge service: settings, logging, telemetry, health, gRPC, processes."""
