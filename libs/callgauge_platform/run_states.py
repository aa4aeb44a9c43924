"""The run states every part of the platform agrees on (the REST/proto names of RunStatus)."""

from __future__ import annotations

# A run in one of these states is over: nothing more happens to it.
# (callgauge_client.models.TERMINAL repeats it for the standalone client library;
# tests/unit/test_run_states.py keeps the two equal.)
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
