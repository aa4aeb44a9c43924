"""When a run leaves QUEUED.

The engine says ``RunAccepted`` (the run is QUEUED) as soon as it takes a run, and
``RunMediaStarted`` (RUNNING) only when the run really begins: its first call holds one of the
engine's call slots — after the fair share and the account's concurrent-calls quota let it
(:mod:`fairness`) — or its first action that takes no slot (a SIPp-driven load, a registration, a
waiting callee) starts. A run that waits for capacity is therefore seen QUEUED, not RUNNING with
nothing placed. A run that ends before it began (stopped while queued, or every call refused
before placing) never says it started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class RunStart:
    """Once-only "the run has begun" signal, bound to the emit of ``RunMediaStarted``."""

    def __init__(self) -> None:
        self._emit: Callable[[], Awaitable[None]] | None = None
        self._lock = asyncio.Lock()
        self.started = False

    def bind(self, emit_started: Callable[[], Awaitable[None]]) -> None:
        self._emit = emit_started

    async def __call__(self) -> None:
        if self.started:
            return
        async with self._lock:  # calls getting their slots at once: one RunMediaStarted, before their events
            if self.started:
                return
            if self._emit is not None:
                await self._emit()
            self.started = True

    def placer(self, inner) -> StartingPlacer:
        """``inner`` as the run sees it: placing a call (or running a SIP job) first says the run began.
        Wrap the engine's own placer, under the fair share, so that the signal comes when a slot
        is held, not while the call waits for one."""
        return StartingPlacer(inner, self)


class StartingPlacer:
    def __init__(self, inner, start: RunStart) -> None:
        self._inner, self._start = inner, start

    def __getattr__(self, name: str):  # capacity, add_listener, hangup, … (AttributeError passes through)
        attr = getattr(self._inner, name)
        if name == "run_call":
            async def run_call(job):
                await self._start()
                return await attr(job)
            return run_call
        return attr

    async def place(self, call_id, action):
        await self._start()
        return await self._inner.place(call_id, action)
