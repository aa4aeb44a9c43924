"""What one run (or one shard of it) has so far, shared by the runner and the load drivers: its
emit, per-second statistics, call figures, the calls planned and not placed (with why), and the
summaries of drivers that count their own calls (SIPp)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.run_start import RunStart
from callgauge_media.domain.second_stats import SecondStats
from callgauge_media.domain.summary import CallFigures

Emit = Callable[[Message], Awaitable[None]]


@dataclass
class RunState:
    run_id: str
    engine_id: str
    emit: Emit
    stats: SecondStats
    figures: CallFigures = field(default_factory=CallFigures)  # the run's call figures, not its calls (bounded)
    planned: int = 0
    # the summaries of load drivers that count their own calls (SIPp), merged into the run's
    driver_summaries: list[m_pb2.RunSummary] = field(default_factory=list)
    not_attempted: dict[str, int] = field(default_factory=dict)  # why planned calls were not placed -> how many
    # register / wait_for_calls user agents, calls through a registrar: the run's
    # callgauge_media.handlers.sip_run.SipRun (typed loosely: the domain imports no handler)
    sip: Any = None
    shard: int = 0  # this engine's shard of a load run split over replicas (shards.py)
    shards: int = 1
    start: RunStart | None = None  # says RunMediaStarted when the run really begins (run_start.py)

    async def begin(self) -> None:
        if self.start is not None:
            await self.start()


HALTED = "the run was stopped, or its balance ran out, before they were placed"


def not_attempted(state: RunState, why: str, n: int) -> None:
    """Record that ``n`` planned calls were not placed, and why (RunSummary.not_attempted)."""
    if n > 0:
        state.not_attempted[why] = state.not_attempted.get(why, 0) + n
