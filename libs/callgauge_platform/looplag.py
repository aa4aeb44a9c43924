"""Event-loop lag: how long a callback that is ready to run waits for the loop.

Every service is one asyncio loop that serves requests and runs its consumers. When a consumer
holds the loop with a long stretch of synchronous work (decoding a batch, folding events), a
request that has arrived waits, and a handler's own latency histogram does not see that wait.
``watch_loop_lag`` sleeps a fixed interval over and over and records by how much each wake-up
came late, in ``callgauge_event_loop_lag_seconds`` on the service's /metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import Histogram

LOOP_LAG = Histogram(
    "callgauge_event_loop_lag_seconds",
    "How late the event loop ran a callback that was due (sampled every 100 ms)",
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5),
)
INTERVAL_S = 0.1


async def watch_loop_lag(interval_s: float = INTERVAL_S,
                         observe: Callable[[float], None] = LOOP_LAG.observe) -> None:
    """Until cancelled: sleep `interval_s`, observe how much later than that the loop woke us."""
    loop = asyncio.get_running_loop()
    while True:
        t0 = loop.time()
        await asyncio.sleep(interval_s)
        observe(max(0.0, loop.time() - t0 - interval_s))
