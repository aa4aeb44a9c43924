"""The media engine's pure logic: jobs and measurements, the E-model, run figures, load shapes,
the fair share, the impairment model, reasons, and the ports (CallPlacer, LoadDriver). Imports no
adapter, handler or entrypoint (an import contract in pyproject.toml checks it)."""
