"""A run is QUEUED until it begins (engine/run_start.py): the engine says RunMediaStarted when the
run's first call holds a slot under the fair share, once, before that call's measurement — not
while the call waits for a slot, and never for a run that placed nothing."""

from __future__ import annotations

import asyncio

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.fairness import FairShare
from callgauge_media.domain.run_start import RunStart
from callgauge_media.handlers.runner import execute_run


class Placer:
    """Answers every call at once after ``hold`` is set; records the order of what it saw."""

    def __init__(self, log: list[str]) -> None:
        self.log, self.hold = log, asyncio.Event()
        self.hold.set()
        self.capacity = 8

    async def place(self, call_id: str, action: spec_pb2.CallAction) -> m_pb2.CallMeasurement:
        self.log.append(f"place {call_id}")
        await self.hold.wait()
        return m_pb2.CallMeasurement(call_id=call_id, outcome=m_pb2.SUCCESS, sip_code=200, codec="PCMU")


def request(run_id: str, calls: int = 2) -> runs_pb2.RunRequested:
    spec = spec_pb2.TestSpec(steps=[spec_pb2.Step(actions=[spec_pb2.Action(call=spec_pb2.CallAction(
        dial_destination="sip:echo@127.0.0.1:5070", max_total_calls=calls, concurrency=calls, duration_ms=10))])])
    return runs_pb2.RunRequested(run_id=run_id, account_id="acc", spec=spec)


async def test_the_run_starts_once_before_its_first_call_is_placed() -> None:
    log: list[str] = []

    async def emit(m) -> None:
        log.append(type(m).__name__)

    await execute_run(request("r1"), Placer(log), emit, "e1")
    assert log[0] == "RunAccepted" and log[1] == "RunMediaStarted"
    assert log.count("RunMediaStarted") == 1
    assert log.index("RunMediaStarted") < min(i for i, x in enumerate(log) if x.startswith("place"))
    assert log[-1] == "RunMediaFinished"


async def test_a_run_waiting_for_a_slot_stays_queued_until_it_holds_one() -> None:
    # given an engine of 2 slots whose account quota is 1, and a first run holding that slot
    share = FairShare(capacity=2, quota=1, reserve=0)
    log: list[str] = []
    inner = Placer(log)
    inner.hold.clear()
    events: dict[str, list[str]] = {"a": [], "b": []}

    def runner(run_id: str):
        start = RunStart()
        placer = share.placer_for(start.placer(inner), "acc")

        async def emit(m) -> None:
            events[run_id].append(type(m).__name__)

        return asyncio.create_task(execute_run(request(run_id, calls=1), placer, emit, "e1", start=start))

    a = runner("a")
    for _ in range(20):
        await asyncio.sleep(0)
    assert events["a"][:2] == ["RunAccepted", "RunMediaStarted"]
    # when a second run of the same account comes while the first holds the account's only slot
    b = runner("b")
    for _ in range(20):
        await asyncio.sleep(0)
    # then it is accepted (QUEUED) but has not started
    assert events["b"] == ["RunAccepted"]
    # and when the first run's call ends, the second starts and finishes
    inner.hold.set()
    await asyncio.wait_for(asyncio.gather(a, b), 5)
    assert events["b"][:2] == ["RunAccepted", "RunMediaStarted"] and events["b"][-1] == "RunMediaFinished"


async def test_a_run_that_places_nothing_never_says_it_started() -> None:
    log: list[str] = []

    async def emit(m) -> None:
        log.append(type(m).__name__)

    spec = spec_pb2.TestSpec(steps=[spec_pb2.Step(actions=[])])
    await execute_run(runs_pb2.RunRequested(run_id="r0", spec=spec), Placer(log), emit, "e1")
    assert log == ["RunAccepted", "RunMediaFinished"]
    assert media_pb2.RunMediaStarted.DESCRIPTOR.name not in log
