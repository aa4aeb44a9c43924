"""Bounded polling for the suites that watch a running stack from outside (a thread, no event loop)."""

from __future__ import annotations

import time

import pytest


def wait_for(fn, what: str, timeout: float = 90.0, step: float = 0.3):
    """The first truthy value of `fn()`, polled every `step` s; fails naming `what` (and the last
    value seen) after `timeout` s. A bound on a wait, never a timing assertion."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
