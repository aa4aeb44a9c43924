"""Benchmarks: print figures side by side with SIPp; not timed tests, not in the default test run."""
