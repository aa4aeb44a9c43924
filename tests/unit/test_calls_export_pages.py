"""The gateway's export reads a run's calls page by page, asking for the next page while the current
one is written out: every page once, in order, at most two at a time, and a client that goes away
mid-export leaves no request behind."""

from __future__ import annotations

import asyncio

from callgauge_gateway.entrypoints.routes.calls import _all_pages
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as media_pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb


class Pages:
    """A runs stub with `n` pages of 2 calls; records the tokens asked for and the pages in flight."""

    def __init__(self, n: int) -> None:
        self.n, self.asked, self.in_flight, self.most, self.cancelled = n, [], 0, 0, 0

    def page(self, i: int) -> pb.ListRunCallsResponse:
        return pb.ListRunCallsResponse(
            calls=[media_pb.CallMeasurement(call_id=f"c{i}-{k}") for k in range(2)],
            next_page_token=str(i + 1) if i + 1 < self.n else "", total=2 * self.n)

    async def ListRunCalls(self, req: pb.ListRunCallsRequest) -> pb.ListRunCallsResponse:  # noqa: N802
        self.asked.append(req.page_token)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            return self.page(int(req.page_token))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1


async def test_every_page_once_in_order_the_next_asked_for_while_one_is_written() -> None:
    stub = Pages(5)
    req = pb.ListRunCallsRequest(run_id="r1", page_size=2)
    got = [c.call_id async for page in _all_pages(stub, stub.page(0), req) for c in page]
    assert got == [f"c{i}-{k}" for i in range(5) for k in range(2)]
    assert stub.asked == ["1", "2", "3", "4"] and stub.most == 1 and req.page_token == ""


async def test_a_client_gone_mid_export_cancels_the_page_asked_for() -> None:
    stub = Pages(5)
    pages = _all_pages(stub, stub.page(0), pb.ListRunCallsRequest(run_id="r1", page_size=2))
    first = await anext(pages)  # page 0 out, page 1 asked for
    assert [c.call_id for c in first] == ["c0-0", "c0-1"]
    await asyncio.sleep(0)  # page 1's request is on its way
    assert stub.in_flight == 1
    await pages.aclose()
    await asyncio.sleep(0.05)
    assert stub.cancelled == 1 and stub.in_flight == 0


def test_an_exported_row_holds_what_each_column_reads_off_the_call() -> None:
    """The export's rows are built from the fields a call has set over a blank call's cells; every
    cell is what reading its column off the call gives: unset optional figures absent (also when an
    optional is set to 0, it is present), enums by name, timestamps as datetimes."""
    import random

    from callgauge_gateway.entrypoints.routes.calls import COLUMNS, _cells, _csv_cell, _csv_row, _value

    rng = random.Random(7)
    calls = [media_pb.CallMeasurement(),
             media_pb.CallMeasurement(mos=0.0, loss_pct=0.0, outcome=media_pb.SUCCESS, dtmf_ok=False)]
    for _ in range(200):
        c = media_pb.CallMeasurement(call_id=f"c{rng.random()}", sip_code=rng.choice([0, 200, 486]),
                                     outcome=rng.choice(list(media_pb.CallOutcome.values())),
                                     duration_ms=rng.choice([0.0, 1000.5]), one_way_audio=rng.random() < 0.5)
        for name in ("setup_time_ms", "mos", "loss_pct", "jitter_ms", "mos_lqo", "rtt_ms"):
            if rng.random() < 0.5:
                setattr(c, name, rng.choice([0.0, rng.uniform(0, 500)]))
        if rng.random() < 0.7:
            c.started_at.FromSeconds(1_700_000_000 + rng.randrange(10**6))
            c.started_at.nanos = rng.choice([0, 999, 1000, 123_456_789])
        if rng.random() < 0.5:
            c.ended_at.FromSeconds(rng.randrange(2**33))
        c.sip_ladder.add(direction="sent") if rng.random() < 0.3 else None
        calls.append(c)
    for c in calls:
        assert _cells(c) == [_value(c, fd) for fd in COLUMNS]
        assert _csv_row(c) == [_csv_cell(_value(c, fd)) for fd in COLUMNS]
