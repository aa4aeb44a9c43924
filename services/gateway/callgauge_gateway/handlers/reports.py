"""What a run report shows, read from the runs service (no HTTP here): the test's assertions, the
per-second statistics, one page of the calls table, the first failed calls (for their SIP
ladders) and, for a small run, every call (for the charts when there are no per-second
statistics). The report page (entrypoints/reports) renders it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from callgauge_gateway.domain import report_view as view
from callgauge_gateway.domain.call_filter import FAILED_OUTCOMES, CallFilter
from callgauge_gateway.domain.proto_json import to_json
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb

log = get_logger(__name__)


def fields_of(msg_cls, **values) -> dict:
    """Only the fields the message has (older/newer protos)."""
    names = msg_cls.DESCRIPTOR.fields_by_name
    return {k: v for k, v in values.items() if k in names and v is not None}


@dataclass(frozen=True)
class ReportData:
    assertions: list[dict] | None
    seconds: list[dict]
    page: pb.ListRunCallsResponse
    failed: pb.ListRunCallsResponse
    sample: pb.ListRunCallsResponse | None  # every call of a small run, else None


async def _assertions(stub, run: pb.Run, account_id: str, mode: str) -> list[dict] | None:
    """The test's assertions (the run carries only their verdict as text)."""
    try:
        test = await stub.GetTest(pb.GetTestRequest(**fields_of(
            pb.GetTestRequest, account_id=account_id, project_id=run.project_id, test_id=run.test_id, mode=mode)),
            timeout=10)
    except grpc.aio.AioRpcError:
        return None
    return [{"metric": a.metric, "op": a.op, "value": a.value} for a in test.spec.assertions]


async def _seconds(stub, run: pb.Run, account_id: str, mode: str) -> list[dict]:
    method = getattr(stub, "GetRunSeconds", None)
    if method is None or not hasattr(pb, "GetRunSecondsRequest"):
        return []
    try:
        resp = await method(pb.GetRunSecondsRequest(**fields_of(
            pb.GetRunSecondsRequest, account_id=account_id, run_id=run.id, mode=mode)), timeout=10)
    except grpc.aio.AioRpcError as exc:
        log.warning("run_seconds_unavailable", run_id=run.id, code=str(exc.code()))
        return []
    return [to_json(s) for s in resp.seconds]


async def _calls(stub, run: pb.Run, account_id: str, mode: str, filters: CallFilter, size: int,
                 cursor: str = "") -> pb.ListRunCallsResponse:
    return await stub.ListRunCalls(filters.request(account_id, mode or "live", run.project_id, run.id, size, cursor),
                                   timeout=10)


async def report_data(stub, run: pb.Run, account_id: str, mode: str, filters: CallFilter,
                      cursor: str) -> ReportData:
    """Read at once: the table's page (`filters`, from `cursor`) is paged on the server, so a
    report never holds a big run's calls."""
    recorded = run.calls_recorded if run.HasField("calls_recorded") else run.summary.calls_attempted
    small = recorded <= view.SAMPLE_MAX
    assertions, seconds, page, failed, sample = await asyncio.gather(
        _assertions(stub, run, account_id, mode), _seconds(stub, run, account_id, mode),
        _calls(stub, run, account_id, mode, filters, view.TABLE_PAGE, cursor),
        _calls(stub, run, account_id, mode, CallFilter(outcomes=FAILED_OUTCOMES), view.MAX_LADDERS),
        _calls(stub, run, account_id, mode, CallFilter(), view.SAMPLE_MAX) if small else asyncio.sleep(0))
    return ReportData(assertions, seconds, page, failed, sample if small else None)
