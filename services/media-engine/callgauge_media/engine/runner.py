"""Carries out one run: places its calls step by step (the actions of a step together, each at its
own concurrency), reports every measurement as it comes and a summary at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from google.protobuf.message import Message
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.engine.summary import summarize

Emit = Callable[[Message], Awaitable[None]]
_tracer = trace.get_tracer("callgauge.media")

ACTIVE_CALLS = Gauge("callgauge_media_active_calls", "calls being placed or held by this engine")
CALLS = Counter("callgauge_media_calls_total", "calls ended, by outcome", ["outcome"])
MOS = Histogram("callgauge_media_call_mos", "MOS of answered calls (E-model, G.107)",
                buckets=(1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5))
SETUP_TIME = Histogram("callgauge_media_call_setup_seconds", "INVITE sent -> 200 OK, answered calls",
                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def observe_call(m: m_pb2.CallMeasurement) -> None:
    CALLS.labels(m_pb2.CallOutcome.Name(m.outcome)).inc()
    if m.outcome == m_pb2.SUCCESS:
        MOS.observe(m.mos)
        SETUP_TIME.observe(m.setup_time_ms / 1000)


class CallPlacer(Protocol):
    async def place(self, call_id: str, action: spec_pb2.CallAction) -> m_pb2.CallMeasurement:
        """Place one call as the action says and measure it. Failures of the call are a
        measurement with an outcome, not an exception."""


def planned_calls(spec: spec_pb2.TestSpec) -> int:
    return sum(a.call.max_total_calls or 1 for s in spec.steps for a in s.actions if a.WhichOneof("kind") == "call")


async def execute_run(req: runs_pb2.RunRequested, placer: CallPlacer, emit: Emit, engine_id: str) -> m_pb2.RunSummary:
    await emit(media_pb2.RunAccepted(run_id=req.run_id, engine_id=engine_id, planned_calls=planned_calls(req.spec)))
    await emit(media_pb2.RunMediaStarted(run_id=req.run_id, engine_id=engine_id))
    calls: list[m_pb2.CallMeasurement] = []
    try:
        for si, step in enumerate(req.spec.steps):
            await asyncio.gather(*(
                _run_action(req.run_id, si, ai, action, placer, emit, engine_id, calls)
                for ai, action in enumerate(step.actions)
            ))
    except asyncio.CancelledError:
        summary = summarize(calls)
        await asyncio.shield(emit(media_pb2.RunMediaFinished(
            run_id=req.run_id, engine_id=engine_id, summary=summary, error="the media engine was stopped")))
        raise
    except Exception as exc:  # the engine itself failed; the run must still end
        summary = summarize(calls)
        await emit(media_pb2.RunMediaFinished(run_id=req.run_id, engine_id=engine_id, summary=summary,
                                              error=f"{type(exc).__name__}: {exc}"))
        return summary
    summary = summarize(calls)
    await emit(media_pb2.RunMediaFinished(run_id=req.run_id, engine_id=engine_id, summary=summary))
    return summary


async def _run_action(run_id: str, si: int, ai: int, action: spec_pb2.Action, placer: CallPlacer, emit: Emit,
                      engine_id: str, calls: list[m_pb2.CallMeasurement]) -> None:
    if action.WhichOneof("kind") != "call":
        return
    call = action.call
    gate = asyncio.Semaphore(max(1, call.concurrency or 1))

    async def one(index: int) -> None:
        async with gate:
            call_id = f"{run_id}:{si}.{ai}.{index}"
            with _tracer.start_as_current_span("call", kind=trace.SpanKind.CLIENT) as span:
                span.set_attribute("callgauge.call_id", call_id)
                span.set_attribute("sip.destination", call.dial_destination)
                with ACTIVE_CALLS.track_inprogress():
                    m = await placer.place(call_id, call)
                observe_call(m)
                m.call_id, m.step, m.action, m.index = call_id, si, ai, index
                m.destination = m.destination or call.dial_destination
                span.set_attribute("callgauge.outcome", m_pb2.CallOutcome.Name(m.outcome))
                span.set_attribute("sip.status_code", m.sip_code)
                span.set_attribute("callgauge.mos", m.mos)
                calls.append(m)
                await emit(media_pb2.CallMeasured(run_id=run_id, engine_id=engine_id, call=m))

    await asyncio.gather(*(one(i) for i in range(max(1, call.max_total_calls or 1))))
