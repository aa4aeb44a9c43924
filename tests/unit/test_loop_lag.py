"""The event-loop lag watcher sees a loop held by synchronous work, and little on an idle one."""

from __future__ import annotations

import asyncio
import time

from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.looplag import watch_loop_lag


async def _observed(block_s: float, interval_s: float = 0.05) -> list[float]:
    seen: list[float] = []
    task = asyncio.create_task(watch_loop_lag(interval_s, seen.append))
    await asyncio.sleep(0)  # the watcher takes its start time and sleeps
    if block_s:
        time.sleep(block_s)  # a consumer holding the loop with synchronous work
    for _ in range(100):  # bounded: at most 100 intervals
        if seen:
            break
        await asyncio.sleep(interval_s)
    await cancel_and_wait(task)
    return seen


def test_a_loop_held_by_synchronous_work_shows_as_lag():
    seen = asyncio.run(_observed(block_s=0.3))
    assert seen and seen[0] >= 0.2  # held 0.3 s, the watcher was due after 0.05 s


def test_the_observations_are_never_negative():
    seen = asyncio.run(_observed(block_s=0))
    assert seen and all(v >= 0 for v in seen)
